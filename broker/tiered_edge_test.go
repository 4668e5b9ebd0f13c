package broker

import (
	"github.com/tiercel/tiercel/internal/bucketcheck"

	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tiercel/tiercel/tiering/objstore"
	"github.com/tiercel/tiercel/wire/batch"
)

// Quick tiering edge cases on the embedded directory store.

// tieredProduceBatches sends n raw batches of per records each, with 100-byte
// values, to partition 0 and returns the base offsets.
func tieredProduceBatches(t *testing.T, cl *kgo.Client, topic string, n, per int) []int64 {
	t.Helper()
	ctx := testCtx(t)
	var bases []int64
	for i := 0; i < n; i++ {
		b := batch.NewBuilder(batch.CompressionNone)
		for j := 0; j < per; j++ {
			v := make([]byte, 100)
			copy(v, fmt.Sprintf("batch %d record %d", i, j))
			b.Add(time.Now().UnixMilli(), nil, v)
		}
		raw, err := b.Build(0)
		if err != nil {
			t.Fatal(err)
		}
		off, code := rawProduce(t, ctx, cl, topic, 0, raw)
		if code != 0 {
			t.Fatalf("produce batch %d: code %d", i, code)
		}
		bases = append(bases, off)
	}
	return bases
}

// TestTieredOffloadAfterDeleteRecordsInsideABatch: DeleteRecords to an
// offset inside a batch, before anything was offloaded, must not stop
// offload: the remote log starts with the batch holding the new start,
// and the log start stays where DeleteRecords put it.
func TestTieredOffloadAfterDeleteRecordsInsideABatch(t *testing.T) {
	tb := tieredBroker(t)
	createTopic(t, tb, "delmid", 1, map[string]*string{
		"segment.bytes":         kadm.StringPtr("16384"),
		"local.retention.bytes": kadm.StringPtr("16384"),
	})
	cl := tb.Client()
	// Ten batches of ten records: all in the active segment, so nothing
	// can have been offloaded yet.
	tieredProduceBatches(t, cl, "delmid", 10, 10)
	_, p := tb.B.lookup("delmid", 0)
	if n := len(p.log.Segments()); n != 1 || p.remoteNext() >= 0 {
		t.Fatalf("%d segments, remote end %d: the setup needs one active segment and nothing offloaded", n, p.remoteNext())
	}
	adm := tb.Admin()
	const deleteTo = 15 // inside the second batch
	res, err := adm.DeleteRecords(testCtx(t), kadm.Offsets{"delmid": {0: {Topic: "delmid", Partition: 0, At: deleteTo}}})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := res.Lookup("delmid", 0); r.Err != nil || r.LowWatermark != deleteTo {
		t.Fatalf("DeleteRecords: %+v", r)
	}
	// Enough to roll several segments.
	tieredProduceBatches(t, cl, "delmid", 150, 10)
	waitFor(t, "the first segment to be offloaded", 15*time.Second, func() bool { return p.remoteNext() > 0 })
	m := p.remote.Manifest()
	if m.StartOffset() != deleteTo {
		t.Errorf("remote log starts at %d, DeleteRecords moved the start to %d", m.StartOffset(), deleteTo)
	}
	starts, err := adm.ListStartOffsets(testCtx(t), "delmid")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup("delmid", 0); o.Offset != deleteTo {
		t.Errorf("earliest offset %d after offload, want %d", o.Offset, deleteTo)
	}
}

// TestTieredOffloadAfterDeleteRecordsPastTheRemoteEnd: DeleteRecords past
// everything offloaded, to an offset inside a batch, empties the
// manifest; offload must go on from the new start.
func TestTieredOffloadAfterDeleteRecordsPastTheRemoteEnd(t *testing.T) {
	tb := tieredBroker(t)
	createTopic(t, tb, "delpast", 1, map[string]*string{
		"segment.bytes":         kadm.StringPtr("16384"),
		"local.retention.bytes": kadm.StringPtr("16384"),
	})
	cl := tb.Client()
	tieredProduceBatches(t, cl, "delpast", 100, 10)
	_, p := tb.B.lookup("delpast", 0)
	// Wait until every sealed segment is offloaded, so no upload is in
	// flight when DeleteRecords runs (TestTieredDeleteRecordsRacingOffload
	// covers that).
	waitFor(t, "offload of every sealed segment", 15*time.Second, func() bool {
		segs := p.log.Segments()
		return p.remoteNext() == segs[len(segs)-1].BaseOffset
	})
	time.Sleep(300 * time.Millisecond)
	// Past the remote end: inside the last batch, in the active segment.
	deleteTo := p.HighWatermark() - 5
	adm := tb.Admin()
	res, err := adm.DeleteRecords(testCtx(t), kadm.Offsets{"delpast": {0: {Topic: "delpast", Partition: 0, At: deleteTo}}})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := res.Lookup("delpast", 0); r.Err != nil || r.LowWatermark != deleteTo {
		t.Fatalf("DeleteRecords to %d: %+v (remote end %d)", deleteTo, r, p.remoteNext())
	}
	end := p.HighWatermark()
	tieredProduceBatches(t, cl, "delpast", 100, 10)
	waitFor(t, "offload past the deleted records", 15*time.Second, func() bool { return p.remoteNext() > end })
	if s := p.remote.Manifest().StartOffset(); s != deleteTo {
		t.Errorf("remote log starts at %d, want %d", s, deleteTo)
	}
}

// TestTieredDeleteRecordsRacingOffload moves the log start with
// DeleteRecords, to offsets inside batches of the remote tier, while
// records are produced and segments offloaded, so manifest writes of both
// race. Offload must keep up, and the log start must end where the last
// DeleteRecords put it. (Deleting past the remote end while an upload is
// in flight is TestTieredDeleteRecordsDuringFirstUpload.)
func TestTieredDeleteRecordsRacingOffload(t *testing.T) {
	tb := tieredBroker(t)
	createTopic(t, tb, "delrace", 1, map[string]*string{
		"segment.bytes":         kadm.StringPtr("16384"),
		"local.retention.bytes": kadm.StringPtr("16384"),
	})
	cl := tb.Client()
	adm := tb.Admin()
	_, p := tb.B.lookup("delrace", 0)
	last := int64(0)
	for round := 0; round < 20; round++ {
		tieredProduceBatches(t, cl, "delrace", 20, 10)
		if p.remoteNext() <= last+20 {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		to := p.remoteNext() - 13
		res, err := adm.DeleteRecords(testCtx(t), kadm.Offsets{"delrace": {0: {Topic: "delrace", Partition: 0, At: to}}})
		if err != nil {
			t.Fatal(err)
		}
		if r, _ := res.Lookup("delrace", 0); r.Err != nil || r.LowWatermark != max(to, last) {
			t.Fatalf("round %d: DeleteRecords to %d: %+v", round, to, r)
		}
		last = max(to, last)
		time.Sleep(time.Duration(round%4) * 30 * time.Millisecond)
	}
	tieredProduceBatches(t, cl, "delrace", 50, 10)
	waitFor(t, "offload to catch up", 15*time.Second, func() bool {
		segs := p.log.Segments()
		return p.remoteNext() == segs[len(segs)-1].BaseOffset
	})
	if last == 0 {
		t.Fatal("no DeleteRecords ran: offload never got ahead")
	}
	if s := p.logStartOffset(); s != last {
		t.Fatalf("log start %d, last DeleteRecords was to %d", s, last)
	}
	if m := p.remote.Manifest(); m.StartOffset() != last {
		t.Fatalf("remote log [%d, %d), last DeleteRecords was to %d", m.StartOffset(), m.NextOffset(), last)
	}
}

// tieredPutCounter counts the .log objects put through it.
type tieredPutCounter struct {
	objstore.ObjectStore
	logPuts atomic.Int64
}

func (c *tieredPutCounter) Put(ctx context.Context, key string, r io.Reader, size int64, opts objstore.PutOptions) (objstore.Attrs, error) {
	if strings.HasSuffix(key, ".log") {
		c.logPuts.Add(1)
	}
	return c.ObjectStore.Put(ctx, key, r, size, opts)
}

// TestTieredRetentionEmptyingTheRemoteLogUploadsNothingAgain: when
// retention.ms expires every remote segment, the manifest is left empty
// with its log start past them. The local copies of those segments are
// still there until local retention runs (here every 3 s), and offload
// must not take them for new data and upload them again.
func TestTieredRetentionEmptyingTheRemoteLogUploadsNothingAgain(t *testing.T) {
	dir := t.TempDir()
	fs, err := objstore.NewFS(dir + "/objects")
	if err != nil {
		t.Fatal(err)
	}
	store := &tieredPutCounter{ObjectStore: fs}
	tb := startBroker(t, withStore(store),
		withSetting("remote.log.manager.task.interval.ms", "100"),
		withSetting("log.retention.check.interval.ms", "3000"))
	createTopic(t, tb, "expire", 1, map[string]*string{
		"segment.bytes":      kadm.StringPtr("16384"),
		"local.retention.ms": kadm.StringPtr("3600000"),
	})
	cl := tb.Client(kgo.ProducerBatchMaxBytes(4096), kgo.ProducerBatchCompression(kgo.NoCompression()))
	old := time.Now().Add(-2 * time.Hour)
	recs := make([]*kgo.Record, 300)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "expire", Value: bucketcheck.Value(5, i, 200), Timestamp: old}
	}
	produceSync(t, cl, recs...)
	_, p := tb.B.lookup("expire", 0)
	waitFor(t, "offload", 10*time.Second, func() bool {
		segs := p.log.Segments()
		return len(segs) > 3 && p.remoteNext() == segs[len(segs)-1].BaseOffset
	})
	uploaded := store.logPuts.Load()
	end := p.remoteNext()
	if _, err := tb.Admin().AlterTopicConfigs(testCtx(t), []kadm.AlterConfig{
		{Name: "retention.ms", Value: kadm.StringPtr("3600000")},
	}, "expire"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "remote retention to empty the manifest", 10*time.Second, func() bool { return p.remote.Manifest().Empty() })
	// Local retention has not run yet: the expired segments are still on
	// disk for another few seconds, while offload runs every 100 ms.
	time.Sleep(time.Second)
	if n := store.logPuts.Load(); n != uploaded {
		t.Fatalf("%d segments uploaded again after retention removed them", n-uploaded)
	}
	if m := p.remote.Manifest(); !m.Empty() || m.LogStartOffset != end {
		t.Fatalf("manifest after retention: log start %d, %d segments; want empty from %d", m.LogStartOffset, len(m.Segments), end)
	}
}

// tieredSlowStore delays every put under one topic's remote directory.
type tieredSlowStore struct {
	objstore.ObjectStore
	topic string
	delay time.Duration
}

func (s *tieredSlowStore) Put(ctx context.Context, key string, r io.Reader, size int64, opts objstore.PutOptions) (objstore.Attrs, error) {
	if strings.HasPrefix(key, "topics/"+s.topic+"-") {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return objstore.Attrs{}, ctx.Err()
		}
	}
	return s.ObjectStore.Put(ctx, key, r, size, opts)
}

// TestTieredSlowPartitionDoesNotHoldUpOthers: one partition with a
// backlog of slow uploads (after an outage, or with huge segments) must
// not stop the offload of the others, whose disks fill meanwhile. Today
// runRemoteTasks starts the next round only when every partition of the
// current one is done, and a partition's turn uploads its whole backlog:
// this test fails until offload is scheduled per partition.
func TestTieredSlowPartitionDoesNotHoldUpOthers(t *testing.T) {
	dir := t.TempDir()
	fs, err := objstore.NewFS(dir + "/objects")
	if err != nil {
		t.Fatal(err)
	}
	tb := tieredBroker(t, withStore(&tieredSlowStore{ObjectStore: fs, topic: "slow", delay: 300 * time.Millisecond}))
	for _, topic := range []string{"slow", "fast"} {
		createTopic(t, tb, topic, 1, map[string]*string{"segment.bytes": kadm.StringPtr("16384")})
	}
	cl := tb.Client()
	// About ten segments for the slow partition: some 18 s of uploads.
	tieredProduceBatches(t, cl, "slow", 100, 10)
	_, slow := tb.B.lookup("slow", 0)
	waitFor(t, "the slow partition's first upload", 10*time.Second, func() bool { return slow.remoteNext() > 0 })
	// Now the fast partition rolls segments of its own.
	tieredProduceBatches(t, cl, "fast", 40, 10)
	_, fast := tb.B.lookup("fast", 0)
	segs := fast.log.Segments()
	sealedEnd := segs[len(segs)-1].BaseOffset
	began := time.Now()
	deadline := began.Add(3 * time.Second)
	for fast.remoteNext() < sealedEnd {
		if time.Now().After(deadline) {
			segsNow := slow.log.Segments()
			t.Fatalf("the fast partition's sealed segments (up to %d) waited %v and are still not offloaded (remote end %d), "+
				"while the slow partition uploads its backlog (remote end %d of %d)",
				sealedEnd, time.Since(began).Round(time.Millisecond), fast.remoteNext(), slow.remoteNext(), segsNow[len(segsNow)-1].BaseOffset)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("fast partition offloaded %v after its segments rolled", time.Since(began).Round(time.Millisecond))
}

// tieredSignalStore closes started when the first put under a topic's remote
// directory begins, and delays every such put.
type tieredSignalStore struct {
	tieredSlowStore
	once    sync.Once
	started chan struct{}
}

func (s *tieredSignalStore) Put(ctx context.Context, key string, r io.Reader, size int64, opts objstore.PutOptions) (objstore.Attrs, error) {
	if strings.HasPrefix(key, "topics/"+s.topic+"-") {
		s.once.Do(func() { close(s.started) })
	}
	return s.tieredSlowStore.Put(ctx, key, r, size, opts)
}

// TestTieredDeleteRecordsDuringFirstUpload: DeleteRecords past a segment
// whose upload is in flight, while the remote log is still empty. When
// the upload lands, the records DeleteRecords removed must stay removed:
// the log start must not move back to the uploaded segment's base.
// DeleteRecords (broker/delete_records.go) skips the remote tier when the
// manifest is empty, so nothing tells the late upload where the log now
// starts: this test fails until it records the new start in the manifest
// (tiering.RemoteLog.SetStartOffset must then accept an empty manifest).
func TestTieredDeleteRecordsDuringFirstUpload(t *testing.T) {
	dir := t.TempDir()
	fs, err := objstore.NewFS(dir + "/objects")
	if err != nil {
		t.Fatal(err)
	}
	store := &tieredSignalStore{tieredSlowStore: tieredSlowStore{ObjectStore: fs, topic: "inflight", delay: 500 * time.Millisecond}, started: make(chan struct{})}
	tb := tieredBroker(t, withStore(store))
	createTopic(t, tb, "inflight", 1, map[string]*string{"segment.bytes": kadm.StringPtr("16384")})
	cl := tb.Client()
	tieredProduceBatches(t, cl, "inflight", 20, 10) // one sealed segment and the active one
	select {
	case <-store.started:
	case <-time.After(10 * time.Second):
		t.Fatal("no upload started")
	}
	_, p := tb.B.lookup("inflight", 0)
	to := p.HighWatermark()
	res, err := tb.Admin().DeleteRecords(testCtx(t), kadm.Offsets{"inflight": {0: {Topic: "inflight", Partition: 0, At: to}}})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := res.Lookup("inflight", 0); r.Err != nil || r.LowWatermark != to {
		t.Fatalf("DeleteRecords to %d: %+v", to, r)
	}
	// The upload takes six puts of half a second; wait for it to be
	// recorded or refused.
	time.Sleep(4 * time.Second)
	if s := p.logStartOffset(); s != to {
		t.Errorf("log start %d after the in-flight upload landed; DeleteRecords moved it to %d (remote log [%d, %d))",
			s, to, p.remote.Manifest().StartOffset(), p.remote.Manifest().NextOffset())
	}
	if e := tieredEarliest(t, tb.Admin(), "inflight"); e != to {
		t.Errorf("ListOffsets earliest %d, want %d", e, to)
	}
}

// TestTieredRestoreAfterRetentionEmptiedTheRemoteLog: retention has
// removed every remote segment (the manifest is empty, its log start past
// them) when the local disk is lost. The partition must not start again
// at offset 0: offsets are never reused, so the log resumes at the remote
// log start at least.
func TestTieredRestoreAfterRetentionEmptiedTheRemoteLog(t *testing.T) {
	tb := tieredBroker(t)
	createTopic(t, tb, "expired", 1, map[string]*string{"segment.bytes": kadm.StringPtr("16384")})
	cl := tb.Client(kgo.ProducerBatchMaxBytes(4096), kgo.ProducerBatchCompression(kgo.NoCompression()))
	old := time.Now().Add(-2 * time.Hour)
	recs := make([]*kgo.Record, 300)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "expired", Value: bucketcheck.Value(6, i, 200), Timestamp: old}
	}
	produceSync(t, cl, recs...)
	_, p := tb.B.lookup("expired", 0)
	waitFor(t, "offload", 10*time.Second, func() bool {
		segs := p.log.Segments()
		return len(segs) > 3 && p.remoteNext() == segs[len(segs)-1].BaseOffset
	})
	if _, err := tb.Admin().AlterTopicConfigs(testCtx(t), []kadm.AlterConfig{
		{Name: "retention.ms", Value: kadm.StringPtr("3600000")},
	}, "expired"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "remote retention to empty the manifest", 10*time.Second, func() bool { return p.remote.Manifest().Empty() })
	start := p.remote.Manifest().LogStartOffset
	if start <= 0 {
		t.Fatalf("manifest log start %d after retention", start)
	}
	cl.Close()
	tb.Stop()
	entries, err := os.ReadDir(tb.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "objects" {
			if err := os.RemoveAll(filepath.Join(tb.DataDir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	tb.start()
	rs := tb.Client().ProduceSync(testCtx(t), &kgo.Record{Topic: "expired", Value: []byte("after the wipe")})
	if err := rs.FirstErr(); err != nil {
		t.Fatal(err)
	}
	if off := rs[0].Record.Offset; off < start {
		t.Fatalf("after losing the disk the log restarted at offset %d: offsets below the remote log start %d are reused", off, start)
	}
}
