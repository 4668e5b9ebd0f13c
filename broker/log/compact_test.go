package log

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tiercel/tiercel/wire/batch"
)

// kv is a record to append; a nil value is a tombstone.
type kv struct {
	key   string
	value []byte
}

// appendKV appends the records as one batch at the log end.
func appendKV(t testing.TB, l *Log, epoch int32, ts int64, recs ...kv) int64 {
	t.Helper()
	b := batch.NewBuilder(batch.CompressionNone)
	for _, r := range recs {
		b.Add(ts, []byte(r.key), r.value)
	}
	raw, err := b.Build(l.EndOffset())
	if err != nil {
		t.Fatal(err)
	}
	batch.SetPartitionLeaderEpoch(raw, epoch)
	mustAppend(t, l, raw)
	return l.EndOffset() - int64(len(recs))
}

// logRecord is a record read back.
type logRecord struct {
	offset int64
	key    string
	value  []byte
	epoch  int32
}

// readAllRecords reads the whole log through Batches, checking that
// batches are contiguous, intact and count their records right.
func readAllRecords(t testing.TB, l *Log) []logRecord {
	t.Helper()
	var out []logRecord
	next := l.StartOffset()
	err := l.Batches(l.StartOffset(), l.EndOffset(), func(h batch.Header, raw []byte) error {
		if h.BaseOffset != next {
			return fmt.Errorf("batch at %d, want %d (offsets not contiguous)", h.BaseOffset, next)
		}
		if got := batch.Checksum(raw); got != h.CRC {
			return fmt.Errorf("batch at %d: crc %x, computed %x", h.BaseOffset, h.CRC, got)
		}
		n := 0
		prev := int64(-1)
		err := batch.Records(raw, func(r batch.Record) error {
			off := h.BaseOffset + int64(r.OffsetDelta)
			if off <= prev || off > h.LastOffset() {
				return fmt.Errorf("record offset %d in batch [%d, %d] after %d", off, h.BaseOffset, h.LastOffset(), prev)
			}
			prev = off
			out = append(out, logRecord{off, string(r.Key), append([]byte(nil), r.Value...), h.PartitionLeaderEpoch})
			if r.Value == nil {
				out[len(out)-1].value = nil
			}
			n++
			return nil
		})
		next = h.NextOffset()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if next != l.EndOffset() {
		t.Fatalf("batches end at %d, log end is %d", next, l.EndOffset())
	}
	return out
}

// latestOf is what compaction must keep: the last record of each key.
func latestOf(recs []logRecord) map[string]logRecord {
	m := map[string]logRecord{}
	for _, r := range recs {
		m[r.key] = r
	}
	return m
}

func cleanOpts(now time.Time, upTo int64) OffsetsCleanOptions {
	return OffsetsCleanOptions{UpTo: upTo, DeleteRetention: time.Hour, MinDirtyRatio: 0.5, Now: now}
}

// TestOffsetsCleanerBoundsSteadyLoad commits 100k times to a few keys
// (one key written once at the start, so that its record pins an old
// segment) and checks that the log stays small while every latest value
// survives.
func TestOffsetsCleanerBoundsSteadyLoad(t *testing.T) {
	const (
		commits  = 100_000
		keys     = 5
		segBytes = 16 << 10
	)
	clock := newTestClock()
	l := openLog(t, t.TempDir(), Config{SegmentBytes: segBytes, IndexIntervalBytes: 1024, MaxIndexBytes: 1 << 20}, Options{Now: clock.Now})
	defer l.Close()
	c := NewOffsetsCleaner(l)
	appendKV(t, l, 0, testEpochMs, kv{"pinned", []byte("written once")})
	var maxSize, maxBefore int64
	maxSegs := 0
	want := map[string][]byte{"pinned": []byte("written once")}
	for i := 0; i < commits; i++ {
		k := fmt.Sprintf("group-%d/topic/%d", i%keys, i%3)
		v := []byte(fmt.Sprintf("offset=%09d metadata=%s", i, "xxxxxxxxxxxxxxxx"))
		want[k] = v
		appendKV(t, l, 0, testEpochMs+int64(i), kv{k, v})
		if i%1000 == 999 {
			maxBefore = max(maxBefore, l.Size())
			if _, err := c.Clean(context.Background(), cleanOpts(clock.Now(), l.EndOffset())); err != nil {
				t.Fatalf("clean after %d commits: %v", i+1, err)
			}
			maxSize = max(maxSize, l.Size())
			maxSegs = max(maxSegs, len(l.Segments()))
		}
	}
	raw := int64(commits) * 90
	t.Logf("%d commits (~%d bytes written): log size at most %d bytes before a pass, %d after, in at most %d segments",
		commits, raw, maxBefore, maxSize, maxSegs)
	// Bounded: the dirty part before a pass (about one pass's worth of
	// commits, 1000 x ~90 bytes, rounded up to whole segments) plus the
	// compacted part, never growing with the number of commits.
	if maxSize > 4*segBytes || maxBefore > 12*segBytes || maxSegs > 10 {
		t.Fatalf("log grew to %d bytes (%d before a pass) in %d segments", maxSize, maxBefore, maxSegs)
	}
	got := latestOf(readAllRecords(t, l))
	if len(got) != len(want) {
		t.Fatalf("%d keys survive, want %d", len(got), len(want))
	}
	for k, v := range want {
		if string(got[k].value) != string(v) {
			t.Fatalf("key %s: %q, want %q", k, got[k].value, v)
		}
	}
	if l.EndOffset() != commits+1 {
		t.Fatalf("end offset %d, want %d: cleaning must not renumber", l.EndOffset(), commits+1)
	}
}

// TestOffsetsCleanerKeepsOffsetsAndEpochs checks what a rewrite leaves:
// the latest record of each key at its own offset, contiguous batches
// that pass CRC, leader epochs on the batches, a log that reopens the
// same way cleanly and after a crash, and reads through the fetch path.
func TestOffsetsCleanerKeepsOffsetsAndEpochs(t *testing.T) {
	dir := t.TempDir()
	clock := newTestClock()
	cfg := Config{SegmentBytes: 2048, IndexIntervalBytes: 128, MaxIndexBytes: 1 << 20}
	l := openLog(t, dir, cfg, Options{Now: clock.Now})
	var all []logRecord
	for i := 0; i < 200; i++ {
		epoch := int32(0)
		if i >= 120 {
			epoch = 3
		}
		k := fmt.Sprintf("k%d", i%7)
		if i%10 == 0 {
			k = fmt.Sprintf("unique-%d", i) // kept wherever it is
		}
		v := []byte(fmt.Sprintf("v%d", i))
		if i%50 == 49 {
			v = nil // a tombstone now and then
		}
		off := appendKV(t, l, epoch, testEpochMs+int64(i), kv{k, v})
		all = append(all, logRecord{off, k, v, epoch})
	}
	beforeEnd := l.EndOffset()
	segsBefore := len(l.Segments())
	c := NewOffsetsCleaner(l)
	st, err := c.Clean(context.Background(), cleanOpts(clock.Now(), l.EndOffset()))
	if err != nil || !st.Ran {
		t.Fatalf("clean: %+v %v", st, err)
	}
	t.Logf("pass: %+v", st)
	if st.SegmentsAfter >= segsBefore || st.BytesAfter >= st.BytesBefore || st.RecordsDropped == 0 {
		t.Fatalf("nothing was compacted: %+v", st)
	}
	if segs := l.Segments(); len(segs) < 2 || segs[0].BaseOffset != 0 {
		t.Fatalf("the records kept in sealed segments should be in one rewritten segment at 0: %+v", segs)
	}
	check := func(what string, l *Log) {
		t.Helper()
		if l.EndOffset() != beforeEnd {
			t.Fatalf("%s: end %d, want %d", what, l.EndOffset(), beforeEnd)
		}
		recs := readAllRecords(t, l)
		latest := latestOf(all)
		// The active segment is not cleaned, so older records may stay
		// there; what the sealed part keeps must be latest per key.
		active := l.Segments()[len(l.Segments())-1].BaseOffset
		seen := map[string]bool{}
		for _, r := range recs {
			if r.offset < active {
				if latest[r.key].offset != r.offset {
					t.Fatalf("%s: stale record %+v kept (latest is at %d)", what, r, latest[r.key].offset)
				}
				if r.epoch != all[r.offset].epoch {
					t.Fatalf("%s: record at %d in a batch of epoch %d, was %d", what, r.offset, r.epoch, all[r.offset].epoch)
				}
			}
			if string(r.value) != string(all[r.offset].value) || r.key != all[r.offset].key {
				t.Fatalf("%s: record at %d is %+v, was %+v", what, r.offset, r, all[r.offset])
			}
			seen[r.key] = true
		}
		for k := range latest {
			if !seen[k] {
				t.Fatalf("%s: key %s lost", what, k)
			}
		}
		// The fetch path reads every batch from the start.
		from := l.StartOffset()
		for from < l.EndOffset() {
			b, err := l.ReadBytes(from, 1<<20, l.EndOffset(), true)
			if err != nil || len(b) == 0 {
				t.Fatalf("%s: read at %d: %v", what, from, err)
			}
			n, err := batch.Iterate(b, func(h batch.Header, _ []byte) error { from = h.NextOffset(); return nil })
			if err != nil || n != len(b) {
				t.Fatalf("%s: iterate: %d of %d, %v", what, n, len(b), err)
			}
		}
	}
	check("after the pass", l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, cfg, Options{Now: clock.Now})
	check("after a clean restart", l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// An unclean restart rescans only from the recovery point, which is
	// past every cleaned segment.
	if err := os.Remove(filepath.Join(dir, cleanShutdownFile)); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, cfg, Options{Now: clock.Now})
	check("after a crash", l)
	// Appends go on after the cleaned part.
	appendKV(t, l, 3, testEpochMs+1000, kv{"k0", []byte("after")})
	beforeEnd = l.EndOffset()
	all = append(all, logRecord{beforeEnd - 1, "k0", []byte("after"), 3})
	check("after an append", l)
	l.Close()
}

// TestOffsetsCleanerTombstones: a tombstone survives the pass that first
// sees it (so that everything older of its key is gone first) and is
// dropped by a later pass once older than the delete retention.
func TestOffsetsCleanerTombstones(t *testing.T) {
	clock := newTestClock()
	l := openLog(t, t.TempDir(), Config{SegmentBytes: 1024, IndexIntervalBytes: 128, MaxIndexBytes: 1 << 20}, Options{Now: clock.Now})
	defer l.Close()
	for i := 0; i < 20; i++ {
		appendKV(t, l, 0, testEpochMs, kv{"doomed", []byte(fmt.Sprintf("v%d", i))}, kv{"kept", []byte("x")})
	}
	appendKV(t, l, 0, testEpochMs, kv{"doomed", nil})
	for i := 0; i < 40; i++ {
		appendKV(t, l, 0, testEpochMs, kv{fmt.Sprintf("filler-%d", i%2), []byte("yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy")})
	}
	c := NewOffsetsCleaner(l)
	has := func() (records, tombstones int) {
		for _, r := range readAllRecords(t, l) {
			if r.key == "doomed" {
				records++
				if r.value == nil {
					tombstones++
				}
			}
		}
		return
	}
	opts := cleanOpts(clock.Now(), l.EndOffset())
	opts.MinDirtyRatio = 0
	if _, err := c.Clean(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if n, tomb := has(); n != 1 || tomb != 1 {
		t.Fatalf("after the first pass: %d records of the key, %d tombstones; want only the tombstone", n, tomb)
	}
	// Seen by a pass, but younger than the retention: kept.
	if _, err := c.Clean(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if n, _ := has(); n != 1 {
		t.Fatalf("tombstone dropped before its retention: %d left", n)
	}
	clock.Advance(2 * time.Hour)
	opts.Now = clock.Now()
	st, err := c.Clean(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := has(); n != 0 || st.TombstonesDropped != 1 {
		t.Fatalf("tombstone past its retention: %d left, stats %+v", n, st)
	}
	if got := latestOf(readAllRecords(t, l)); string(got["kept"].value) != "x" {
		t.Fatalf("other key lost: %+v", got["kept"])
	}
}

// TestOffsetsCleanerStaysBelowBounds: segments at or above UpTo (the high
// watermark) and the active segment are not touched, and a pass over a
// log that is not dirty enough does nothing.
func TestOffsetsCleanerStaysBelowBounds(t *testing.T) {
	clock := newTestClock()
	l := openLog(t, t.TempDir(), Config{SegmentBytes: 1024, IndexIntervalBytes: 128, MaxIndexBytes: 1 << 20}, Options{Now: clock.Now})
	defer l.Close()
	for i := 0; i < 100; i++ {
		appendKV(t, l, 0, testEpochMs, kv{"k", []byte(fmt.Sprintf("value-%03d-padding-padding", i))})
	}
	segs := l.Segments()
	upTo := segs[2].NextOffset
	c := NewOffsetsCleaner(l)
	if _, err := c.Clean(context.Background(), cleanOpts(clock.Now(), upTo)); err != nil {
		t.Fatal(err)
	}
	for _, r := range readAllRecords(t, l) {
		if r.offset >= upTo {
			continue
		}
		t.Fatalf("record at %d below the bound survived: the key's latest is above it", r.offset)
	}
	after := l.Segments()
	for i := range segs {
		if segs[i].BaseOffset < upTo {
			continue
		}
		found := false
		for _, s := range after {
			if s.BaseOffset == segs[i].BaseOffset && s.Size == segs[i].Size {
				found = true
			}
		}
		if !found {
			t.Fatalf("segment %d above the bound was changed", segs[i].BaseOffset)
		}
	}
	// Nothing new: the next pass has nothing dirty to do.
	st, err := c.Clean(context.Background(), cleanOpts(clock.Now(), upTo))
	if err != nil || st.Ran {
		t.Fatalf("second pass: %+v %v", st, err)
	}
}

// TestOffsetsCleanerLeftoverFiles: a pass interrupted before its commit
// leaves *.cleaned files, which the next open removes.
func TestOffsetsCleanerLeftoverFiles(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallConfig(), Options{})
	appendKV(t, l, 0, testEpochMs, kv{"k", []byte("v")})
	l.Close()
	for _, name := range []string{fileName(0, logSuffix) + cleanedSuffix, fileName(0, indexSuffix) + cleanedSuffix} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l = openLog(t, dir, smallConfig(), Options{})
	defer l.Close()
	for _, name := range listDir(t, dir) {
		if filepath.Ext(name) == cleanedSuffix {
			t.Fatalf("leftover %s not removed", name)
		}
	}
	if got := readAllRecords(t, l); len(got) != 1 || string(got[0].value) != "v" {
		t.Fatalf("records: %+v", got)
	}
}

// TestOffsetsCleanerConcurrent runs passes while records are appended and
// the log is read from its start, as the broker does (appends from the
// coordinator, reads from loads and consumers of the topic).
func TestOffsetsCleanerConcurrent(t *testing.T) {
	clock := newTestClock()
	l := openLog(t, t.TempDir(), Config{SegmentBytes: 4096, IndexIntervalBytes: 256, MaxIndexBytes: 1 << 20}, Options{Now: clock.Now})
	defer l.Close()
	const n = 20_000
	done := make(chan struct{})
	errs := make(chan error, 3)
	go func() { // the cleaner
		c := NewOffsetsCleaner(l)
		for {
			select {
			case <-done:
				errs <- nil
				return
			default:
			}
			if _, err := c.Clean(context.Background(), cleanOpts(clock.Now(), l.EndOffset())); err != nil && !errors.Is(err, errCleanerRaced) {
				errs <- err
				return
			}
		}
	}()
	go func() { // a reader replaying the log, as a coordinator load does
		for {
			select {
			case <-done:
				errs <- nil
				return
			default:
			}
			from := l.StartOffset()
			err := l.Batches(from, l.EndOffset(), func(h batch.Header, raw []byte) error {
				return batch.Records(raw, nil)
			})
			if err != nil && !isOutOfRange(err) {
				errs <- fmt.Errorf("reader: %w", err)
				return
			}
		}
	}()
	want := map[string]string{}
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("k%d", i%13)
		v := fmt.Sprintf("v%06d", i)
		want[k] = v
		appendKV(t, l, 0, testEpochMs, kv{k, []byte(v)})
	}
	close(done)
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got := latestOf(readAllRecords(t, l))
	for k, v := range want {
		if string(got[k].value) != v {
			t.Fatalf("key %s: %q, want %q", k, got[k].value, v)
		}
	}
}

func isOutOfRange(err error) bool { return err != nil && errors.Is(err, ErrOffsetOutOfRange) }
