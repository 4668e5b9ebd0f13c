package broker

import (
	"github.com/tiercel/tiercel/internal/bucketcheck"

	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/internal/testenv"
	"github.com/tiercel/tiercel/tiering/objstore"
	"github.com/tiercel/tiercel/wire/batch"
)

// Object-store outages under produce load: nothing acknowledged is lost,
// no local segment is deleted before it is offloaded, segments pile up
// locally meanwhile, produce is refused with a retriable error once the
// (simulated) disk crosses tiercel.local.disk.max.used.ratio, and the
// backlog is offloaded after the store comes back.

const (
	outageTopic      = "outage"
	outageParts      = 2
	outageSegBytes   = 256 << 10
	outageLocalBytes = 512 << 10
	outageRecSize    = 1000
	outageSeed       = 7
	// outageDiskBytes is the size of the simulated disk holding the
	// partitions' local logs; the broker refuses produce past half of it.
	outageDiskBytes = 16 << 20
)

// outageBroker starts a broker on store whose disk usage is the topic's
// local bytes over outageDiskBytes, with the limit at 0.5.
func outageBroker(t *testing.T, store objstore.ObjectStore) *testBroker {
	tb := startBroker(t, withStore(store),
		withSetting("remote.log.manager.task.interval.ms", "100"),
		withSetting("log.retention.check.interval.ms", "100"),
		withSetting("tiercel.local.disk.max.used.ratio", "0.5"))
	b := tb.B
	// Replacing diskUsage races with nothing: the housekeeping goroutine
	// first reads it at its one-second tick, and before that it loads
	// b.state (every 100 ms, for retention) and so sees createTopic's
	// atomic store below, which follows this write.
	b.diskUsage = func() (float64, error) {
		var used int64
		b.forEachPartition(func(_ *topicState, p *partition) { used += p.log.Size() })
		return float64(used) / outageDiskBytes, nil
	}
	createTopic(t, tb, outageTopic, outageParts, map[string]*string{
		"segment.bytes":         kadm.StringPtr(strconv.Itoa(outageSegBytes)),
		"local.retention.bytes": kadm.StringPtr(strconv.Itoa(outageLocalBytes)),
	})
	return tb
}

// outageAck is where an acknowledged record was written.
type outageAck struct {
	partition int32
	offset    int64
}

// outageLoad produces keyed records at about rate bytes/s until stopped,
// and remembers what was acknowledged.
type outageLoad struct {
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	acked  map[int]outageAck
	errs   []error
	issued atomic.Int64
}

func startOutageLoad(t *testing.T, tb *testBroker, rate float64) *outageLoad {
	// Records wait in the client, and are retried, for as long as the
	// broker refuses them: nothing is given up on. Like an application
	// with a bounded buffer, the load stops issuing (Produce blocks)
	// while 2000 records are unacknowledged.
	cl := tb.Client(kgo.DefaultProduceTopic(outageTopic), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(32<<10), kgo.RecordDeliveryTimeout(5*time.Minute), kgo.RecordRetries(1<<30),
		kgo.MaxBufferedRecords(2000))
	ctx, cancel := context.WithCancel(context.Background())
	lp := &outageLoad{cl: cl, cancel: cancel, done: make(chan struct{}), acked: map[int]outageAck{}}
	go func() {
		defer close(lp.done)
		began := time.Now()
		for i := 0; ctx.Err() == nil && i < 10_000_000; i++ {
			if ahead := time.Duration(float64(i*outageRecSize)/rate*float64(time.Second)) - time.Since(began); ahead > 0 {
				select {
				case <-time.After(ahead):
				case <-ctx.Done():
					return
				}
			}
			lp.issued.Add(1)
			cl.Produce(context.Background(), &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: bucketcheck.Value(outageSeed, i, outageRecSize)},
				func(r *kgo.Record, err error) {
					lp.mu.Lock()
					defer lp.mu.Unlock()
					if err != nil {
						lp.errs = append(lp.errs, fmt.Errorf("record %s: %w", r.Key, err))
						return
					}
					lp.acked[i] = outageAck{r.Partition, r.Offset}
				})
		}
	}()
	return lp
}

func (lp *outageLoad) ackedCount() int {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return len(lp.acked)
}

// stop ends the load, waits for every record issued to be answered and
// fails the test if any was refused for good.
func (lp *outageLoad) stop(t *testing.T) map[int]outageAck {
	t.Helper()
	lp.cancel()
	<-lp.done
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := lp.cl.Flush(ctx); err != nil {
		t.Fatalf("flushing the producer: %v", err)
	}
	lp.mu.Lock()
	defer lp.mu.Unlock()
	if len(lp.errs) > 0 {
		t.Fatalf("%d records failed, first: %v", len(lp.errs), lp.errs[0])
	}
	if n := int(lp.issued.Load()); len(lp.acked) != n {
		t.Fatalf("%d records issued, %d acknowledged", n, len(lp.acked))
	}
	return lp.acked
}

// outageRemoteEnds returns each partition's remote end.
func outageRemoteEnds(tb *testBroker) [outageParts]int64 {
	var out [outageParts]int64
	for i := range out {
		_, p := tb.B.lookup(outageTopic, int32(i))
		out[i] = p.remoteNext()
	}
	return out
}

// outageLocalSize is the topic's local bytes over every partition.
func outageLocalSize(tb *testBroker) int64 {
	var n int64
	for i := int32(0); i < outageParts; i++ {
		_, p := tb.B.lookup(outageTopic, i)
		n += p.log.Size()
	}
	return n
}

// outageProbe sends one small batch to partition 0 and returns the
// error code and throttle the broker answered.
func outageProbe(t *testing.T, tb *testBroker) (int16, int32) {
	t.Helper()
	b := batch.NewBuilder(batch.CompressionNone)
	b.Add(time.Now().UnixMilli(), nil, []byte("probe"))
	raw, err := b.Build(0)
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks = 1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = outageTopic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = raw
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := rawRequest(t, testCtx(t), tb.Client(), req).(*kmsg.ProduceResponse)
	return resp.Topics[0].Partitions[0].ErrorCode, resp.ThrottleMillis
}

// runOutage drives one outage: load, storeDown, checks during the outage,
// storeUp, recovery checks, and the final read of every acknowledged
// record.
func runOutage(t *testing.T, tb *testBroker, outage time.Duration, storeDown, storeUp func()) {
	sampler := startTieredLocalSampler(tb, outageTopic, outageParts, outageLocalBytes+2*outageSegBytes)
	sampling := true
	defer func() {
		if sampling {
			sampler.Stop(t)
		}
	}()
	// 2 MB/s: the simulated disk's limit (8 MiB of local logs) is
	// reached about four seconds into the outage.
	load := startOutageLoad(t, tb, 2e6)
	waitFor(t, "offload of both partitions", 30*time.Second, func() bool {
		e := outageRemoteEnds(tb)
		return e[0] > 0 && e[1] > 0
	})

	storeDown()
	down := time.Now()
	// Uploads in flight when the store went away may still land.
	time.Sleep(2 * time.Second)
	before := outageRemoteEnds(tb)
	t.Logf("store down; remote ends %v, %d local bytes, %d acknowledged", before, outageLocalSize(tb), load.ackedCount())

	// Segments pile up until the disk is past the limit; then produce is
	// refused with a retriable error and a throttle.
	waitFor(t, "the disk limit to refuse produce", outage/2, func() bool { return tb.B.diskFull.Load() })
	code, throttle := outageProbe(t, tb)
	if err := kerr.ErrorForCode(code); err != kerr.KafkaStorageError || !kerr.IsRetriable(err) || throttle <= 0 {
		t.Fatalf("produce over the disk limit: %v (retriable %v), throttle %d ms; want a retriable KAFKA_STORAGE_ERROR with a throttle",
			err, kerr.IsRetriable(err), throttle)
	}
	stalled := load.ackedCount()
	piled := outageLocalSize(tb)
	if piled <= outageParts*(outageLocalBytes+2*outageSegBytes) {
		t.Fatalf("%d local bytes at the disk limit: segments did not pile up", piled)
	}
	time.Sleep(time.Until(down.Add(outage)))
	if after := outageRemoteEnds(tb); after != before {
		t.Fatalf("remote ends moved from %v to %v while the store was down", before, after)
	}
	if n := load.ackedCount(); n > stalled+200 {
		t.Fatalf("%d records acknowledged while the disk was over the limit (%d before)", n-stalled, stalled)
	}
	t.Logf("after %v down: %d local bytes, %d acknowledged, produce refused since the disk limit", outage, outageLocalSize(tb), load.ackedCount())

	storeUp()
	up := time.Now()
	waitFor(t, "the backlog to be offloaded and the disk to free", 2*time.Minute, func() bool {
		if tb.B.diskFull.Load() {
			return false
		}
		for i := int32(0); i < outageParts; i++ {
			_, p := tb.B.lookup(outageTopic, i)
			segs := p.log.Segments()
			if p.remoteNext() < segs[len(segs)-1].BaseOffset-2*outageSegBytes/outageRecSize || p.log.Size() > outageLocalBytes+2*outageSegBytes {
				return false
			}
		}
		return true
	})
	t.Logf("backlog offloaded %v after the store came back; remote ends %v", time.Since(up).Round(time.Millisecond), outageRemoteEnds(tb))
	// Produce flows again.
	resumed := load.ackedCount()
	waitFor(t, "produce to resume", time.Minute, func() bool { return load.ackedCount() > resumed+1000 })
	acked := load.stop(t)
	sampling = false
	sampler.Stop(t)
	if code, _ := outageProbe(t, tb); code != 0 {
		t.Fatalf("produce after recovery: %v", kerr.ErrorForCode(code))
	}
	// The probes are records too; account for them.
	for i := int32(0); i < outageParts; i++ {
		_, p := tb.B.lookup(outageTopic, i)
		waitFor(t, "the last segments to be offloaded", time.Minute, func() bool {
			segs := p.log.Segments()
			return p.remoteNext() == segs[len(segs)-1].BaseOffset
		})
	}
	outageCheckAcked(t, tb, acked)
}

// outageCheckAcked is checkAcked, allowing the one-record probe
// batches ("probe" values) that outageProbe wrote to partition 0.
func outageCheckAcked(t *testing.T, tb *testBroker, acked map[int]outageAck) {
	t.Helper()
	_, p0 := tb.B.lookup(outageTopic, 0)
	_, p1 := tb.B.lookup(outageTopic, 1)
	total := int(p0.HighWatermark() + p1.HighWatermark())
	byPos := map[outageAck]int{}
	for i, a := range acked {
		byPos[a] = i
	}
	got := consumeAll(t, tb, outageTopic, outageParts, total, kgo.FetchMaxPartitionBytes(1<<20))
	found, probes := 0, 0
	for p, rs := range got {
		for j, r := range rs {
			if r.Offset != int64(j) {
				t.Fatalf("partition %d: record %d at offset %d", p, j, r.Offset)
			}
			i, ok := byPos[outageAck{p, r.Offset}]
			switch {
			case !ok && p == 0 && string(r.Value) == "probe":
				probes++
			case !ok:
				t.Fatalf("partition %d offset %d: not an acknowledged record (%q)", p, r.Offset, r.Key)
			case string(r.Key) != strconv.Itoa(i) || string(r.Value) != string(bucketcheck.Value(outageSeed, i, outageRecSize)):
				t.Fatalf("partition %d offset %d: holds %q, acknowledged there was record %d", p, r.Offset, r.Key, i)
			default:
				found++
			}
		}
	}
	if found != len(acked) || probes > 2 {
		t.Fatalf("read %d of %d acknowledged records and %d probes", found, len(acked), probes)
	}
	t.Logf("all %d acknowledged records read back at their offsets", found)
}

// TestTieredMinIOStoppedUnderLoad stops the MinIO server itself for 60
// seconds under produce load.
func TestTieredMinIOStoppedUnderLoad(t *testing.T) {
	srv := testenv.MinIODedicated(t)
	tb := outageBroker(t, tieredS3Store(t, srv, "outage"))
	runOutage(t, tb, 60*time.Second, func() { srv.Stop(t) }, func() { srv.Start(t) })
	parts := bucketcheck.MustCheck(t, srv.Client(), srv.Bucket, "outage")
	for i := int32(0); i < outageParts; i++ {
		_, p := tb.B.lookup(outageTopic, i)
		if bp := bucketcheck.PartitionOf(t, parts, outageTopic, i); bp.Manifest.Next() != p.remoteNext() || bp.Manifest.Start() != 0 {
			t.Fatalf("partition %d: bucket has [%d, %d), broker remote end %d", i, bp.Manifest.Start(), bp.Manifest.Next(), p.remoteNext())
		}
	}
}

// TestTieredStoreFailingEverything puts the fault wrapper in front of
// MinIO and fails 100% of requests for 20 seconds under produce load.
func TestTieredStoreFailingEverything(t *testing.T) {
	srv := testenv.MinIO(t)
	fault := objstore.NewFault(tieredS3Store(t, srv, "fault"), objstore.FaultConfig{Seed: 1})
	tb := outageBroker(t, fault)
	runOutage(t, tb, 20*time.Second, func() { fault.SetOutage(true) }, func() { fault.SetOutage(false) })
	if fault.Injected() == 0 {
		t.Fatal("the fault wrapper injected nothing")
	}
	bucketcheck.MustCheck(t, srv.Client(), srv.Bucket, "fault")
}
