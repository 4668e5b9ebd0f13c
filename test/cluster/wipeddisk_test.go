package cluster_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Sizes of the wiped-disk test: the partition's total data at the first
// and the second rejoin, with the same local tail.
const (
	wipedRecordSize  = 4 << 10
	wipedSegment     = 1 << 20
	wipedLocalTail   = 4 << 20
	wipedSmallTotal  = 20 << 20
	wipedLargeTotal  = 80 << 20
	wipedMaxRatio    = 2.0
	wipedRejoins     = 3 // rejoins per size; the median counts
	wipedTopic       = "wiped"
	listEarliestLoc  = -4 // ListOffsets timestamp: earliest local offset (KIP-405)
	listLatestOffset = -1
)

// TestWipedDiskRejoin: a tiered topic with 1 MiB segments and a 4 MiB
// local tail. A follower is stopped, its data directory wiped, and it is
// restarted; it must rebuild from the bucket and copy only the leader's
// local tail, and be back in the ISR. Done at 20 MB and at 80 MB of total
// data: the rejoin must not take proportionally longer (ratio < 2 for 4x
// the data), and the rejoined disk must hold about the tail, not the
// whole log. Finally the rejoined broker is made the only broker left
// (the other two stop with SIGTERM, moving leadership to it), and it
// must serve the whole partition, remote and local, byte for byte as
// the original leader did.
func TestWipedDiskRejoin(t *testing.T) {
	start := time.Now()
	c := newCluster(t, clusterOpts{})
	c.createTopic(wipedTopic, 1, map[string]*string{
		"segment.bytes":         ptr(fmt.Sprint(wipedSegment)),
		"local.retention.bytes": ptr(fmt.Sprint(wipedLocalTail)),
		"retention.bytes":       ptr("-1"),
		"remote.storage.enable": ptr("true"),
	})
	c.waitSettled(30*time.Second, wipedTopic)

	// The follower to wipe: not the leader and, if possible, not the
	// controller (so the lease does not move as well).
	ctrl := c.waitFormed(30 * time.Second)
	leader := c.leader(wipedTopic, 0)
	var victim *broker
	for _, b := range c.brokers {
		if b.id != leader && (victim == nil || victim.id == ctrl) {
			victim = b
		}
	}
	t.Logf("leader %d, controller %d; broker %d will lose its disk", leader, ctrl, victim.id)

	var rejoins []time.Duration
	produced := int64(0)
	for _, total := range []int64{wipedSmallTotal, wipedLargeTotal} {
		produceBytes(t, c.seeds(), wipedTopic, total-produced)
		produced = total
		end := c.waitTiered(leader, wipedTopic, 120*time.Second)
		objs, objBytes, _ := c.countObjects("topics/")
		t.Logf("%d MB produced: log end %d; %d objects, %.1f MB in the bucket", total>>20, end, objs, float64(objBytes)/1e6)

		var times []time.Duration
		for range wipedRejoins {
			took, disk := c.wipeAndRejoin(victim, wipedTopic)
			times = append(times, took)
			t.Logf("%d MB total: wiped broker %d back in the ISR %v after restart, holding %.1f MB locally",
				total>>20, victim.id, took.Round(time.Millisecond), float64(disk)/1e6)
			if limit := int64(wipedLocalTail + 4*wipedSegment); disk > limit {
				t.Errorf("the rejoined broker holds %d bytes locally with %d MB retained; want at most the local tail (%d)", disk, total>>20, limit)
			}
		}
		sortDurations(times)
		rejoins = append(rejoins, percentile(times, 50))
	}
	ratio := float64(rejoins[1]) / float64(rejoins[0])
	t.Logf("rejoin after wipe (median of %d): %v at %d MB, %v at %d MB (ratio %.2f for 4x the data)", wipedRejoins,
		rejoins[0].Round(time.Millisecond), wipedSmallTotal>>20, rejoins[1].Round(time.Millisecond), wipedLargeTotal>>20, ratio)
	// Proportional growth would be 4x. Times this short are noisy, so
	// the bound is twice the small time plus a second of slack.
	if bound := wipedMaxRatio*float64(rejoins[0]) + float64(time.Second); float64(rejoins[1]) > bound {
		t.Errorf("rejoin time grows with the retained data: %v at %d MB vs %v at %d MB (ratio %.2f)",
			rejoins[1], wipedLargeTotal>>20, rejoins[0], wipedSmallTotal>>20, ratio)
	}

	// The reference: everything as the cluster serves it now.
	want := digestPartition(t, c.seeds(), wipedTopic, 180*time.Second)
	t.Logf("reference read: %d records, offsets %d..%d", want.count, want.first, want.last)

	// Leave the rejoined broker alone: the others stop cleanly, moving
	// leadership (and the lease) to it.
	for _, b := range c.brokers {
		if b != victim {
			b.term()
		}
	}
	waitFor(t, 60*time.Second, fmt.Sprintf("broker %d leading %s-0 alone", victim.id, wipedTopic), func() (bool, string) {
		md, err := c.metadata(victim, []string{wipedTopic})
		if err != nil {
			return false, err.Error()
		}
		ls, err := leadersOf(md, wipedTopic)
		return err == nil && ls[0] == victim.id, fmt.Sprintf("leaders %v (%v)", ls, err)
	})
	got := digestPartition(t, []string{victim.kafka}, wipedTopic, 180*time.Second)
	t.Logf("read from the rejoined broker: %d records, offsets %d..%d", got.count, got.first, got.last)
	if got != want {
		t.Errorf("the rejoined broker serves different data: %+v, the original leader served %+v", got, want)
	}
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

func ptr(s string) *string { return &s }

// rebuiltLines counts the broker's log lines saying a partition was
// rebuilt from the bucket: at start-up (the local log is behind the
// manifest) or on OFFSET_MOVED_TO_TIERED_STORAGE from the leader.
func rebuiltLines(log string) int {
	return countLines(log, "local log restored from the remote tier") + countLines(log, "rebuilt from the remote tier")
}

// wipeAndRejoin stops b cleanly, wipes its data directory, restarts it
// and waits until it is back in the ISR of topic-0. It returns the time
// from the restart to the ISR, and the bytes b then holds on disk.
func (c *cluster) wipeAndRejoin(b *broker, topic string) (time.Duration, int64) {
	c.t.Helper()
	b.term()
	b.wipe()
	// The stopped broker must be out of the ISR first, or the wait
	// below would measure nothing.
	waitFor(c.t, 30*time.Second, fmt.Sprintf("stopped broker %d out of the ISR", b.id), func() (bool, string) {
		doc, err := c.readMetadataDoc()
		if err != nil {
			return false, err.Error()
		}
		p := doc.Topics[topic].Partitions[0]
		return !slices.Contains(p.ISR, b.id), fmt.Sprintf("isr %v", p.ISR)
	})
	rebuiltBefore := rebuiltLines(c.logs(b.id))
	restarted := time.Now()
	b.start()
	waitFor(c.t, 120*time.Second, fmt.Sprintf("broker %d back in the ISR", b.id), func() (bool, string) {
		doc, err := c.readMetadataDoc()
		if err != nil {
			return false, err.Error()
		}
		p := doc.Topics[topic].Partitions[0]
		return slices.Contains(p.ISR, b.id), fmt.Sprintf("isr %v", p.ISR)
	})
	took := time.Since(restarted)
	if rebuiltLines(c.logs(b.id))-rebuiltBefore == 0 {
		c.t.Errorf("broker %d did not log rebuilding its log from the remote tier", b.id)
	}
	return took, b.dataBytes()
}

// produceBytes writes about n bytes of incompressible records with
// acks=all.
func produceBytes(t testing.TB, seeds []string, topic string, n int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(60*time.Second),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var mu sync.Mutex
	var firstErr error
	count := int(n / wipedRecordSize)
	for range count {
		v := make([]byte, wipedRecordSize)
		_, _ = rand.Read(v)
		cl.Produce(ctx, &kgo.Record{Value: v}, func(_ *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flushing %d records: %v", count, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil {
		t.Fatalf("producing: %v", firstErr)
	}
}

// listOffset asks broker b for one ListOffsets answer (as a consumer).
func (c *cluster) listOffset(b *broker, topic string, partition int32, ts int64) (int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = partition, ts, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	raw, err := c.request(b, req, 5*time.Second)
	if err != nil {
		return 0, err
	}
	resp := raw.(*kmsg.ListOffsetsResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return 0, fmt.Errorf("malformed ListOffsets response")
	}
	r := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
		return 0, err
	}
	return r.Offset, nil
}

// waitTiered waits until the leader has offloaded all but its local tail:
// its earliest local offset is within the local retention (plus two
// segments) of its log end. It returns the log end.
func (c *cluster) waitTiered(leader int32, topic string, timeout time.Duration) int64 {
	c.t.Helper()
	b := c.broker(leader)
	var end int64
	waitFor(c.t, timeout, fmt.Sprintf("%s-0 offloaded down to its local tail", topic), func() (bool, string) {
		var err error
		end, err = c.listOffset(b, topic, 0, listLatestOffset)
		if err != nil {
			return false, err.Error()
		}
		local, err := c.listOffset(b, topic, 0, listEarliestLoc)
		if err != nil {
			return false, err.Error()
		}
		maxLocal := int64(wipedLocalTail+2*wipedSegment) / wipedRecordSize
		return local > 0 && end-local <= maxLocal, fmt.Sprintf("local log [%d, %d), want at most %d records local", local, end, maxLocal)
	})
	return end
}

// partitionDigest summarizes a whole partition as read by a consumer.
type partitionDigest struct {
	count       int64
	first, last int64
	sum         [32]byte
}

// digestPartition reads partition 0 of topic from its start to its high
// watermark and hashes every offset, key and value.
func digestPartition(t testing.TB, seeds []string, topic string, timeout time.Duration) partitionDigest {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var end int64
	var lastErr error
	admin, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RequestTimeoutOverhead(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := retry(ctx, func() error {
		req := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = 0, listLatestOffset, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		raw, err := req.RequestWith(ctx, admin)
		if err != nil {
			lastErr = err
			return err
		}
		p := raw.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
			lastErr = err
			return err
		}
		end = p.Offset
		return nil
	}); err != nil {
		t.Fatalf("end offset of %s: %v (%v)", topic, err, lastErr)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(500*time.Millisecond), kgo.RequestTimeoutOverhead(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	d := partitionDigest{first: -1, last: -1}
	h := sha256.New()
	next := int64(0)
	for next < end {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s-0: at offset %d of %d after %v", topic, next, end, timeout)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("reading %s-0: %v (kgo retries)", topic, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if d.first < 0 {
				d.first = r.Offset
			}
			d.last = r.Offset
			d.count++
			hashRecord(h, r)
			next = r.Offset + 1
		})
	}
	copy(d.sum[:], h.Sum(nil))
	return d
}

func hashRecord(h hash.Hash, r *kgo.Record) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(r.Offset))
	h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(len(r.Key)))
	h.Write(n[:])
	h.Write(r.Key)
	binary.BigEndian.PutUint64(n[:], uint64(len(r.Value)))
	h.Write(n[:])
	h.Write(r.Value)
}
