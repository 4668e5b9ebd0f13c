package broker

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// tieredBroker starts a broker that offloads fast, with small segments.
func tieredBroker(t *testing.T, opts ...brokerOpt) *testBroker {
	all := append([]brokerOpt{
		withSetting("remote.log.manager.task.interval.ms", "100"),
		withSetting("log.retention.check.interval.ms", "100"),
		withSetting("tiercel.remote.fetch.chunk.bytes", "65536"),
	}, opts...)
	return startBroker(t, all...)
}

func randomRecords(n, size int, seed int64) []*kgo.Record {
	rng := rand.New(rand.NewSource(seed))
	recs := make([]*kgo.Record, n)
	for i := range recs {
		v := make([]byte, size)
		rng.Read(v)
		recs[i] = &kgo.Record{Key: []byte(fmt.Sprintf("k%d", i)), Value: v}
	}
	return recs
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTieredRoundTripFromZero(t *testing.T) {
	tb := tieredBroker(t)
	createTopic(t, tb, "cold", 2, map[string]*string{
		"segment.bytes":         kadm.StringPtr("16384"),
		"local.retention.bytes": kadm.StringPtr("32768"),
	})
	recs := randomRecords(2000, 200, 1)
	cl := tb.Client(kgo.DefaultProduceTopic("cold"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(4096))
	produceSync(t, cl, recs...)

	for p := int32(0); p < 2; p++ {
		_, part := tb.B.lookup("cold", p)
		waitFor(t, "offload and local retention", 20*time.Second, func() bool {
			return part.log.StartOffset() > 0 && part.remoteNext() > part.log.StartOffset()
		})
		if part.logStartOffset() != 0 {
			t.Fatalf("partition %d: log start %d, want 0 (remote)", p, part.logStartOffset())
		}
	}
	got := consumeAll(t, tb, "cold", 2, len(recs), kgo.FetchMaxPartitionBytes(20000))
	byKey := map[string][]byte{}
	for _, r := range recs {
		byKey[string(r.Key)] = r.Value
	}
	n := 0
	for p, rs := range got {
		for i, r := range rs {
			if r.Offset != int64(i) {
				t.Fatalf("partition %d: record %d at offset %d", p, i, r.Offset)
			}
			if !bytes.Equal(byKey[string(r.Key)], r.Value) {
				t.Fatalf("partition %d offset %d: value differs", p, r.Offset)
			}
			n++
		}
	}
	if n != len(recs) {
		t.Fatalf("read %d records, produced %d", n, len(recs))
	}
	// ListOffsets spans both tiers.
	adm := tb.Admin()
	starts, err := adm.ListStartOffsets(testCtx(t), "cold")
	if err != nil {
		t.Fatal(err)
	}
	starts.Each(func(o kadm.ListedOffset) {
		if o.Offset != 0 {
			t.Errorf("earliest of partition %d is %d", o.Partition, o.Offset)
		}
	})
	st := tb.B.cache.Stats()
	t.Logf("cache: %+v hit ratio %.2f", st, st.HitRatio())
}

func TestTieredRestoreFromBucketAfterWipe(t *testing.T) {
	tb := tieredBroker(t)
	createTopic(t, tb, "wipe", 1, map[string]*string{
		"segment.bytes":         kadm.StringPtr("8192"),
		"local.retention.bytes": kadm.StringPtr("8192"),
	})
	recs := randomRecords(1000, 100, 2)
	cl := tb.Client(kgo.DefaultProduceTopic("wipe"), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(2048))
	produceSync(t, cl, recs...)
	_, p := tb.B.lookup("wipe", 0)
	waitFor(t, "offload", 20*time.Second, func() bool { return p.remoteNext() > 800 })
	cl.Close()
	tb.Stop()
	// Read the remote end only after Stop: offload keeps going until the
	// broker has shut down, so an earlier reading can be overtaken.
	offloaded := p.remoteNext()
	// Wipe the local data, keep the object store (its own directory).
	entries, _ := os.ReadDir(tb.DataDir)
	for _, e := range entries {
		if e.Name() != "objects" {
			os.RemoveAll(tb.DataDir + "/" + e.Name())
		}
	}
	tb.start()
	got := consumeAll(t, tb, "wipe", 1, int(offloaded))[0]
	for i := int64(0); i < offloaded; i++ {
		if !bytes.Equal(got[i].Value, recs[i].Value) || got[i].Offset != i {
			t.Fatalf("record %d differs after restore", i)
		}
	}
	// New records continue from the offloaded end.
	rs := tb.Client(kgo.DefaultProduceTopic("wipe")).ProduceSync(testCtx(t), &kgo.Record{Value: []byte("after")})
	if err := rs.FirstErr(); err != nil || rs[0].Record.Offset != offloaded {
		t.Fatalf("produce after restore: offset %d (want %d), err %v", rs[0].Record.Offset, offloaded, err)
	}
}
