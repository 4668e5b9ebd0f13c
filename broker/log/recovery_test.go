package log

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tiercel/tiercel/wire/batch"
)

// captureHandler records log messages.
type captureHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r)
	h.mu.Unlock()
	return nil
}
func (h *captureHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *captureHandler) WithGroup(string) slog.Handler      { return h }

func (h *captureHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.recs {
		if r.Message == msg {
			n++
		}
	}
	return n
}

func (h *captureHandler) total() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.recs)
}

// writeLog fills a log in a fresh directory, closes it cleanly and returns
// the directory and what was appended.
func writeLog(t *testing.T, cfg Config, n int) (string, *appended) {
	t.Helper()
	dir := t.TempDir()
	l := openLog(t, dir, cfg, Options{})
	a := &appended{}
	fill(t, l, a, rand.New(rand.NewPCG(21, 22)), n)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, a
}

func appendToFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func TestRecoverTornTail(t *testing.T) {
	cfg := smallConfig()
	next := func(a *appended) int64 {
		h, _ := batch.ParseHeader(a.batches[len(a.batches)-1])
		return h.NextOffset()
	}
	cases := []struct {
		name string
		// tamper damages the last segment; it returns how many of the
		// appended batches must survive (from the end, how many are lost).
		tamper func(t *testing.T, path string, a *appended) (lost int)
	}{
		{"random junk", func(t *testing.T, path string, a *appended) int {
			junk := make([]byte, 777)
			rng := rand.New(rand.NewPCG(1, 1))
			for i := range junk {
				junk[i] = byte(rng.Uint32())
			}
			appendToFile(t, path, junk)
			return 0
		}},
		{"zeros", func(t *testing.T, path string, a *appended) int {
			appendToFile(t, path, make([]byte, 4096))
			return 0
		}},
		{"half a batch", func(t *testing.T, path string, a *appended) int {
			b := build(t, next(a), spec{n: 3, valSize: 100, epoch: -1})
			appendToFile(t, path, b[:len(b)/2])
			return 0
		}},
		{"header only", func(t *testing.T, path string, a *appended) int {
			b := build(t, next(a), spec{n: 3, valSize: 100, epoch: -1})
			appendToFile(t, path, b[:batch.HeaderSize])
			return 0
		}},
		{"flipped crc byte", func(t *testing.T, path string, a *appended) int {
			b := build(t, next(a), spec{n: 3, valSize: 100, epoch: -1})
			b[len(b)-5] ^= 0x40
			good := build(t, next(a)+3, spec{n: 1, epoch: -1})
			appendToFile(t, path, append(b, good...))
			return 0
		}},
		{"corrupt last written batch", func(t *testing.T, path string, a *appended) int {
			fi, _ := os.Stat(path)
			f, _ := os.OpenFile(path, os.O_RDWR, 0)
			defer f.Close()
			last := a.batches[len(a.batches)-1]
			f.WriteAt([]byte{0xff}, fi.Size()-int64(len(last))+batch.HeaderSize+2)
			return 1
		}},
		{"wrong base offset", func(t *testing.T, path string, a *appended) int {
			appendToFile(t, path, build(t, next(a)+5, spec{n: 1, epoch: -1}))
			return 0
		}},
		{"huge length", func(t *testing.T, path string, a *appended) int {
			b := build(t, next(a), spec{n: 1, epoch: -1})
			binary.BigEndian.PutUint32(b[8:], 1<<30)
			appendToFile(t, path, b)
			return 0
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, a := writeLog(t, cfg, 120)
			probe := openLog(t, dir, cfg, Options{})
			path := lastSegmentPath(t, probe)
			probe.Close()
			if err := os.Remove(filepath.Join(dir, cleanShutdownFile)); err != nil {
				t.Fatal(err)
			}
			fi, _ := os.Stat(path)
			sizeBefore := fi.Size()
			lost := tc.tamper(t, path, a)
			a.batches, a.bases = a.batches[:len(a.batches)-lost], a.bases[:len(a.bases)-lost]

			h := &captureHandler{}
			l := openLog(t, dir, cfg, Options{Logger: slog.New(h)})
			defer l.Close()
			if want := next(a); l.EndOffset() != want {
				t.Fatalf("end %d, want %d", l.EndOffset(), want)
			}
			fi, _ = os.Stat(path)
			if lost == 0 && fi.Size() != sizeBefore {
				t.Fatalf("segment is %d bytes, want %d", fi.Size(), sizeBefore)
			}
			if h.count("recovered log") != 1 || h.total() > 2 {
				t.Fatalf("%d log lines, want one recovery line", h.total())
			}
			checkAll(t, l, a)
			fill(t, l, a, rand.New(rand.NewPCG(2, 2)), 30)
			checkAll(t, l, a)
		})
	}
}

// TestRecoverMiddleSegment corrupts a segment below the recovery point's
// segment: with a lowered recovery point, recovery cuts there and drops
// every later segment.
func TestRecoverMiddleSegment(t *testing.T) {
	cfg := smallConfig()
	dir, a := writeLog(t, cfg, 150)
	os.Remove(filepath.Join(dir, cleanShutdownFile))
	if err := writeOffsetCheckpoint(OSFS(), dir, recoveryPointFile, 0); err != nil {
		t.Fatal(err)
	}
	probe := openLog(t, dir, cfg, Options{})
	segs := probe.Segments()
	probe.Close()
	os.Remove(filepath.Join(dir, cleanShutdownFile))
	writeOffsetCheckpoint(OSFS(), dir, recoveryPointFile, 0)
	victim := segs[3]
	// Flip a byte inside the second batch of segment 3.
	i := a.indexOf(victim.BaseOffset)
	f, _ := os.OpenFile(victim.LogPath, os.O_RDWR, 0)
	f.WriteAt([]byte{0xaa}, int64(len(a.batches[i]))+batch.HeaderSize+1)
	f.Close()

	l := openLog(t, dir, cfg, Options{})
	defer l.Close()
	if l.EndOffset() != a.bases[i+1] {
		t.Fatalf("end %d, want %d", l.EndOffset(), a.bases[i+1])
	}
	if n := len(l.Segments()); n != 4 {
		t.Fatalf("%d segments", n)
	}
	for _, s := range segs[4:] {
		if _, err := os.Stat(s.LogPath); !os.IsNotExist(err) {
			t.Fatalf("%s survived", s.LogPath)
		}
	}
	a.batches, a.bases = a.batches[:i+1], a.bases[:i+1]
	checkAll(t, l, a)
}

// TestRebuildDeletedIndexes deletes index files and checks Open rebuilds
// them byte for byte.
func TestRebuildDeletedIndexes(t *testing.T) {
	cfg := Config{SegmentBytes: 5000, IndexIntervalBytes: 300}
	dir, a := writeLog(t, cfg, 200)
	orig := map[string][]byte{}
	var idxFiles []string
	for _, n := range listDir(t, dir) {
		if filepath.Ext(n) == indexSuffix || filepath.Ext(n) == timeIndexSuffix {
			b, _ := os.ReadFile(filepath.Join(dir, n))
			orig[n] = b
			idxFiles = append(idxFiles, n)
		}
	}
	if len(idxFiles) < 10 {
		t.Fatalf("%d index files", len(idxFiles))
	}
	for _, clean := range []bool{true, false} {
		for _, n := range idxFiles {
			os.Remove(filepath.Join(dir, n))
		}
		if !clean {
			os.Remove(filepath.Join(dir, cleanShutdownFile))
		}
		l := openLog(t, dir, cfg, Options{})
		checkAll(t, l, a)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		for _, n := range idxFiles {
			b, err := os.ReadFile(filepath.Join(dir, n))
			if err != nil {
				t.Fatalf("clean=%v: %v", clean, err)
			}
			if !bytes.Equal(b, orig[n]) {
				t.Fatalf("clean=%v: %s rebuilt differently (%d bytes, was %d)", clean, n, len(b), len(orig[n]))
			}
		}
	}
}

func TestRebuildCorruptIndexes(t *testing.T) {
	cfg := Config{SegmentBytes: 5000, IndexIntervalBytes: 300}
	cases := []struct {
		name   string
		suffix string
		mut    func([]byte) []byte
	}{
		{"odd size", indexSuffix, func(b []byte) []byte { return b[:len(b)-3] }},
		{"not increasing", indexSuffix, func(b []byte) []byte { copy(b[8:16], b[0:8]); return b }},
		{"past the file", indexSuffix, func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[len(b)-4:], 1<<30)
			return b
		}},
		{"garbage", indexSuffix, func(b []byte) []byte {
			for i := range b {
				b[i] = byte(i * 7)
			}
			return b
		}},
		{"time odd size", timeIndexSuffix, func(b []byte) []byte { return append(b, 1) }},
		{"time not increasing", timeIndexSuffix, func(b []byte) []byte { copy(b[12:24], b[0:12]); return b }},
		{"time past the segment", timeIndexSuffix, func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[len(b)-4:], 1<<20)
			return b
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, a := writeLog(t, cfg, 200)
			probe := openLog(t, dir, cfg, Options{})
			segs := probe.Segments()
			probe.Close()
			victims := []SegmentInfo{segs[1], segs[len(segs)-1]} // a sealed and the active segment
			orig := map[string][]byte{}
			for _, s := range victims {
				p := s.IndexPath
				if tc.suffix == timeIndexSuffix {
					p = s.TimeIndexPath
				}
				b, err := os.ReadFile(p)
				entry := offsetEntrySize
				if tc.suffix == timeIndexSuffix {
					entry = timeEntrySize
				}
				if err != nil || len(b) < 2*entry {
					t.Fatalf("%s: %d bytes, %v", p, len(b), err)
				}
				orig[p] = bytes.Clone(b)
				if err := os.WriteFile(p, tc.mut(b), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			l := openLog(t, dir, cfg, Options{})
			checkAll(t, l, a)
			if _, _, _, err := l.OffsetForTimestamp(0); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			for p, want := range orig {
				got, _ := os.ReadFile(p)
				if !bytes.Equal(got, want) {
					t.Fatalf("%s not rebuilt (%d bytes, want %d)", p, len(got), len(want))
				}
			}
		})
	}
}

func TestOpenRemovesLeftovers(t *testing.T) {
	dir, a := writeLog(t, smallConfig(), 60)
	junk := []string{
		"00000000000000000000.log.deleted", "00000000000000000007.index.deleted",
		"00000000000000000010.log.cleaned", "00000000000000000010.log.swap",
		"recovery-point.tmp", "00000000000000000003.snapshot.tmp",
		"00000000000099999999.index", "00000000000099999999.timeindex", // orphans
	}
	for _, n := range junk {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("junk"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l := openLog(t, dir, smallConfig(), Options{})
	defer l.Close()
	for _, n := range junk {
		if _, err := os.Stat(filepath.Join(dir, n)); !os.IsNotExist(err) {
			t.Errorf("%s survived", n)
		}
	}
	checkAll(t, l, a)
}

// TestLostTailBelowLogStart: the log-start checkpoint says 1000 but the
// segments end below it (data lost). Open starts empty at 1000, as Kafka.
func TestLostTailBelowLogStart(t *testing.T) {
	dir, _ := writeLog(t, smallConfig(), 20)
	if err := writeOffsetCheckpoint(OSFS(), dir, logStartCheckpointFile, 1000); err != nil {
		t.Fatal(err)
	}
	l := openLog(t, dir, smallConfig(), Options{})
	defer l.Close()
	if l.StartOffset() != 1000 || l.EndOffset() != 1000 || len(l.Segments()) != 1 {
		t.Fatalf("start %d end %d segments %d", l.StartOffset(), l.EndOffset(), len(l.Segments()))
	}
	mustAppend(t, l, build(t, 1000, spec{n: 1, epoch: -1}))
	if res, err := l.ReadBytes(1000, 100, math.MaxInt64, true); err != nil || len(res) == 0 {
		t.Fatal(err)
	}
}
