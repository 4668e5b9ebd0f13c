package broker

import (
	"github.com/tiercel/tiercel/internal/bucketcheck"

	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/internal/testenv"
)

// Total retention and DeleteRecords across both tiers on a real MinIO,
// checked against the bucket as minio-go lists it.

const retRecSize = 1000

// retentionTopic creates a one-partition topic with 64 KiB segments and
// 128 KiB of local retention, plus configs.
func retentionTopic(t *testing.T, tb *testBroker, name string, configs map[string]string) {
	t.Helper()
	all := map[string]*string{
		"segment.bytes":         kadm.StringPtr("65536"),
		"local.retention.bytes": kadm.StringPtr("131072"),
	}
	for k, v := range configs {
		all[k] = kadm.StringPtr(v)
	}
	createTopic(t, tb, name, 1, all)
}

// tieredProduceN produces n records of retRecSize bytes with keys from..from+n
// and the given timestamp (zero: now), and returns their offsets.
func tieredProduceN(t *testing.T, cl *kgo.Client, topic string, from, n int, seed uint64, ts time.Time) []int64 {
	t.Helper()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(strconv.Itoa(from + i)), Value: bucketcheck.Value(seed, from+i, retRecSize), Timestamp: ts}
	}
	res := cl.ProduceSync(testCtx(t), recs...)
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	offs := make([]int64, n)
	for i, r := range res {
		offs[i] = r.Record.Offset
	}
	return offs
}

// tieredWaitOffloaded waits until every sealed segment of partition 0 is in the
// remote tier.
func tieredWaitOffloaded(t *testing.T, p *partition) {
	t.Helper()
	waitFor(t, "offload of every sealed segment", time.Minute, func() bool {
		segs := p.log.Segments()
		return p.remoteNext() == segs[len(segs)-1].BaseOffset
	})
}

// tieredEarliest is ListOffsets(-2) through kadm.
func tieredEarliest(t *testing.T, adm *kadm.Client, topic string) int64 {
	t.Helper()
	offs, err := adm.ListStartOffsets(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := offs.Lookup(topic, 0)
	if !ok || o.Err != nil {
		t.Fatalf("ListOffsets earliest of %s: %+v", topic, o)
	}
	return o.Offset
}

// bucketMatchesManifest waits until minio-go lists, under the partition's
// directory, exactly the manifest and the objects it names, and checks
// that the bucket's manifest is the broker's.
func bucketMatchesManifest(t *testing.T, srv *testenv.MinIOServer, prefix, topic string, p *partition) *bucketcheck.Partition {
	t.Helper()
	var bp *bucketcheck.Partition
	var extra []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		parts := bucketcheck.MustCheck(t, srv.Client(), srv.Bucket, prefix)
		bp = bucketcheck.PartitionOf(t, parts, topic, 0)
		if extra = bp.Unreferenced(); len(extra) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bucket holds objects the manifest does not name: %v", extra)
		}
		time.Sleep(100 * time.Millisecond)
	}
	m := p.remote.Manifest()
	if bp.Manifest.Start() != m.StartOffset() || bp.Manifest.Next() != m.NextOffset() || len(bp.Manifest.Segments) != len(m.Segments) ||
		bp.Manifest.LogStartOffset != m.LogStartOffset {
		t.Fatalf("bucket manifest [%d, %d) in %d segments, log start %d; broker's [%d, %d) in %d, log start %d",
			bp.Manifest.Start(), bp.Manifest.Next(), len(bp.Manifest.Segments), bp.Manifest.LogStartOffset,
			m.StartOffset(), m.NextOffset(), len(m.Segments), m.LogStartOffset)
	}
	return bp
}

// tieredFirstRecord consumes from offset and returns the first record.
func tieredFirstRecord(t *testing.T, tb *testBroker, topic string, offset int64) *kgo.Record {
	t.Helper()
	cl := tb.Client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(offset)}}),
		kgo.FetchMaxWait(200*time.Millisecond))
	defer cl.Close()
	ctx := testCtx(t)
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("nothing read from %s at %d", topic, offset)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch %s at %d: %v", topic, offset, err) })
		if recs := fs.Records(); len(recs) > 0 {
			return recs[0]
		}
	}
}

// tieredFetchCode sends one raw Fetch at offset and returns the partition's
// error code.
func tieredFetchCode(t *testing.T, tb *testBroker, topic string, offset int64) int16 {
	t.Helper()
	cl := tb.Client()
	td, err := kadm.NewClient(cl).ListTopics(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxBytes = 1 << 20
	req.MaxWaitMillis = 100
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = topic, td[topic].ID
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.FetchOffset, fp.PartitionMaxBytes, fp.CurrentLeaderEpoch, fp.LogStartOffset = offset, 1<<20, -1, -1
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	resp := rawRequest(t, testCtx(t), cl, req).(*kmsg.FetchResponse)
	return resp.Topics[0].Partitions[0].ErrorCode
}

func TestTieredMinIORetention(t *testing.T) {
	srv := testenv.MinIO(t)
	const prefix = "retention"
	tb := startBroker(t, withStore(tieredS3Store(t, srv, prefix)),
		withSetting("remote.log.manager.task.interval.ms", "100"),
		withSetting("log.retention.check.interval.ms", "100"))
	cl := tb.Client(kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(16<<10))
	adm := tb.Admin()

	t.Run("retention.bytes", func(t *testing.T) {
		const topic, limit = "ret-bytes", 512 << 10
		retentionTopic(t, tb, topic, map[string]string{"retention.bytes": strconv.Itoa(limit)})
		tieredProduceN(t, cl, topic, 0, 2000, 1, time.Time{})
		_, p := tb.B.lookup(topic, 0)
		tieredWaitOffloaded(t, p)
		// Retention runs every 100 ms; wait until it no longer changes the
		// remote log start.
		var start int64
		waitFor(t, "remote retention to settle", 30*time.Second, func() bool {
			m := p.remote.Manifest()
			if m.StartOffset() <= 0 || m.StartOffset() != start {
				start = m.StartOffset()
				time.Sleep(300 * time.Millisecond)
				return false
			}
			return true
		})
		m := p.remote.Manifest()
		total := m.Size()
		for _, si := range p.log.Segments() {
			if si.BaseOffset >= m.NextOffset() {
				total += si.Size
			}
		}
		// Kafka's rule: delete the oldest segment only while the log stays
		// at or above retention.bytes without it.
		if total < limit || total-m.Segments[0].Size >= limit {
			t.Fatalf("after retention the log is %d bytes (oldest remote segment %d): retention.bytes is %d", total, m.Segments[0].Size, limit)
		}
		bp := bucketMatchesManifest(t, srv, prefix, topic, p)
		if e := tieredEarliest(t, adm, topic); e != m.StartOffset() || e != bp.Manifest.Segments[0].Base {
			t.Fatalf("earliest %d, remote start %d, first segment in the bucket %d", e, m.StartOffset(), bp.Manifest.Segments[0].Base)
		}
		r := tieredFirstRecord(t, tb, topic, 0) // out of range: kgo resets to the start
		if r.Offset != m.StartOffset() || string(r.Value) != string(bucketcheck.Value(1, int(r.Offset), retRecSize)) {
			t.Fatalf("first record %d (want %d)", r.Offset, m.StartOffset())
		}
		if code := tieredFetchCode(t, tb, topic, m.StartOffset()-1); code != kerr.OffsetOutOfRange.Code {
			t.Fatalf("fetch below the start: %v", kerr.ErrorForCode(code))
		}
	})

	t.Run("retention.ms", func(t *testing.T) {
		const topic = "ret-ms"
		retentionTopic(t, tb, topic, nil)
		old := time.Now().Add(-2 * time.Hour)
		tieredProduceN(t, cl, topic, 0, 600, 2, old)
		newOffs := tieredProduceN(t, cl, topic, 600, 600, 2, time.Time{})
		_, p := tb.B.lookup(topic, 0)
		tieredWaitOffloaded(t, p)
		if e := tieredEarliest(t, adm, topic); e != 0 {
			t.Fatalf("earliest %d before retention.ms applies", e)
		}
		// The first segment that holds a new record keeps it, and with it
		// any old records it also holds.
		firstNew := newOffs[0]
		want := int64(-1)
		for _, s := range p.remote.Manifest().Segments {
			if firstNew >= s.BaseOffset && firstNew < s.NextOffset {
				want = s.BaseOffset
			}
		}
		if want <= 0 {
			t.Fatalf("first new record %d is not in a remote segment after the first: %+v", firstNew, p.remote.Manifest().Segments)
		}
		objectsBefore := len(bucketMatchesManifest(t, srv, prefix, topic, p).Objects)
		if _, err := adm.AlterTopicConfigs(testCtx(t), []kadm.AlterConfig{{Name: "retention.ms", Value: kadm.StringPtr("3600000")}}, topic); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "retention.ms to remove the old segments", 30*time.Second, func() bool { return p.remote.Manifest().StartOffset() == want })
		time.Sleep(300 * time.Millisecond) // one more round: nothing else goes
		if s := p.remote.Manifest().StartOffset(); s != want {
			t.Fatalf("remote start %d, want %d", s, want)
		}
		bp := bucketMatchesManifest(t, srv, prefix, topic, p)
		if len(bp.Objects) >= objectsBefore {
			t.Fatalf("%d objects before retention.ms, %d after", objectsBefore, len(bp.Objects))
		}
		if e := tieredEarliest(t, adm, topic); e != want {
			t.Fatalf("earliest %d, want %d", e, want)
		}
		// Local retention follows retention.ms too (local.retention.ms is -2).
		if ls := p.log.StartOffset(); ls < want {
			t.Fatalf("local log still starts at %d", ls)
		}
	})

	t.Run("DeleteRecords", func(t *testing.T) {
		const topic = "ret-del"
		retentionTopic(t, tb, topic, nil)
		tieredProduceN(t, cl, topic, 0, 1500, 3, time.Time{})
		_, p := tb.B.lookup(topic, 0)
		tieredWaitOffloaded(t, p)
		m := p.remote.Manifest()
		if p.log.StartOffset() <= m.Segments[2].NextOffset {
			t.Fatalf("local log starts at %d: the test needs several segments in the remote tier only", p.log.StartOffset())
		}
		deleteTo := func(to int64) int64 {
			t.Helper()
			res, err := adm.DeleteRecords(testCtx(t), kadm.Offsets{topic: {0: {Topic: topic, Partition: 0, At: to}}})
			if err != nil {
				t.Fatal(err)
			}
			r, _ := res.Lookup(topic, 0)
			if r.Err != nil {
				t.Fatalf("DeleteRecords to %d: %v", to, r.Err)
			}
			return r.LowWatermark
		}
		// Inside the third remote segment: the first two go, from the
		// manifest and from the bucket.
		to := m.Segments[2].BaseOffset + 7
		if low := deleteTo(to); low != to {
			t.Fatalf("low watermark %d, want %d", low, to)
		}
		bp := bucketMatchesManifest(t, srv, prefix, topic, p)
		if bp.Manifest.Segments[0].Base != m.Segments[2].BaseOffset || bp.Manifest.LogStartOffset != to {
			t.Fatalf("bucket manifest starts with segment %d, log start %d", bp.Manifest.Segments[0].Base, bp.Manifest.LogStartOffset)
		}
		for k := range bp.Objects {
			if strings.Contains(k, fmt.Sprintf("/%020d-", m.Segments[0].BaseOffset)) || strings.Contains(k, fmt.Sprintf("/%020d-", m.Segments[1].BaseOffset)) {
				t.Fatalf("%s is still in the bucket", k)
			}
		}
		if e := tieredEarliest(t, adm, topic); e != to {
			t.Fatalf("earliest %d, want %d", e, to)
		}
		if r := tieredFirstRecord(t, tb, topic, to); r.Offset != to || string(r.Key) != strconv.Itoa(int(to)) {
			t.Fatalf("first record at %d is %d (%q)", to, r.Offset, r.Key)
		}
		if code := tieredFetchCode(t, tb, topic, to-1); code != kerr.OffsetOutOfRange.Code {
			t.Fatalf("fetch below the new start: %v", kerr.ErrorForCode(code))
		}

		// Past everything offloaded, into the local log: the remote tier
		// empties, and offload goes on from the new start.
		localTo := p.HighWatermark() - 3
		if localTo <= p.remoteNext() {
			t.Fatalf("high watermark %d, remote end %d: the test needs local records", p.HighWatermark(), p.remoteNext())
		}
		if low := deleteTo(localTo); low != localTo {
			t.Fatalf("low watermark %d, want %d", low, localTo)
		}
		bp = bucketMatchesManifest(t, srv, prefix, topic, p)
		if len(bp.Manifest.Segments) != 0 || len(bp.Objects) != 1 || bp.Manifest.LogStartOffset != localTo {
			t.Fatalf("after deleting past the remote end the bucket holds %d objects, manifest %+v", len(bp.Objects), bp.Manifest)
		}
		if e := tieredEarliest(t, adm, topic); e != localTo {
			t.Fatalf("earliest %d, want %d", e, localTo)
		}
		tieredProduceN(t, cl, topic, 1500, 500, 3, time.Time{})
		tieredWaitOffloaded(t, p)
		if s := p.remote.Manifest().StartOffset(); s != localTo {
			t.Fatalf("remote log restarted at %d, want %d", s, localTo)
		}
		if e := tieredEarliest(t, adm, topic); e != localTo {
			t.Fatalf("earliest %d after offload resumed, want %d", e, localTo)
		}
		bucketMatchesManifest(t, srv, prefix, topic, p)
	})

	t.Run("delete topic", func(t *testing.T) {
		const topic = "ret-gone"
		retentionTopic(t, tb, topic, nil)
		tieredProduceN(t, cl, topic, 0, 500, 4, time.Time{})
		_, p := tb.B.lookup(topic, 0)
		tieredWaitOffloaded(t, p)
		if n := tieredCountObjects(t, srv, prefix+"/topics/"+topic+"-"); n < 6 {
			t.Fatalf("%d objects of %s before its deletion", n, topic)
		}
		if _, err := adm.DeleteTopics(testCtx(t), topic); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the topic's objects to be deleted", 30*time.Second, func() bool {
			return tieredCountObjects(t, srv, prefix+"/topics/"+topic+"-") == 0
		})
	})
}

// tieredCountObjects counts the bucket's objects under prefix, with minio-go.
func tieredCountObjects(t *testing.T, srv *testenv.MinIOServer, prefix string) int {
	t.Helper()
	n := 0
	for obj := range srv.Client().ListObjects(testCtx(t), srv.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		n++
	}
	return n
}
