package broker

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tiercel/tiercel/internal/faultproxy"
	"github.com/tiercel/tiercel/wire/batch"
)

// TestIdempotentProduceThroughFaults cuts connections mid-produce, both
// after the broker appended (the response is lost) and before the request
// arrives. The client retries; reading back must find every record exactly
// once, in order, with no gap.
func TestIdempotentProduceThroughFaults(t *testing.T) {
	proxy, err := faultproxy.New()
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	tb := startBroker(t, withAdvertise(proxy.Addr()))
	proxy.SetTarget(tb.Addr)
	createTopic(t, tb, "idem", 4, nil)

	proxy.SetRule(func(key int16, n int64) faultproxy.Action {
		if key != 0 { // Produce
			return faultproxy.Forward
		}
		switch {
		case n%7 == 0:
			return faultproxy.DropAndCut
		case n%11 == 0:
			return faultproxy.CutBeforeRequest
		}
		return faultproxy.Forward
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(proxy.Addr()), kgo.DefaultProduceTopic("idem"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0), kgo.ProducerBatchMaxBytes(1024),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RetryTimeout(60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	const perPartition = 3000
	ctx := testCtx(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := 0; i < perPartition; i++ {
		for p := int32(0); p < 4; p++ {
			wg.Add(1)
			cl.Produce(ctx, &kgo.Record{Partition: p, Value: []byte(strconv.Itoa(i))}, func(_ *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("produce failed (cuts so far %d): %v", proxy.Cuts.Load(), firstErr)
	}
	if proxy.Cuts.Load() < 5 {
		t.Fatalf("only %d connections were cut; the test did not exercise retries", proxy.Cuts.Load())
	}
	proxy.SetRule(nil)
	got := consumeAll(t, tb, "idem", 4, 4*perPartition)
	for p := int32(0); p < 4; p++ {
		recs := got[p]
		if len(recs) != perPartition {
			t.Fatalf("partition %d: %d records, want %d", p, len(recs), perPartition)
		}
		for i, r := range recs {
			if string(r.Value) != strconv.Itoa(i) || r.Offset != int64(i) {
				t.Fatalf("partition %d: position %d holds %q at offset %d (duplicate or gap)", p, i, r.Value, r.Offset)
			}
		}
	}
	t.Logf("%d connections cut; every record read back exactly once", proxy.Cuts.Load())
}

func hdr(pid int64, epoch int16, seq int32, n int32, base int64) *batch.Header {
	return &batch.Header{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, LastOffsetDelta: n - 1, RecordCount: n, BaseOffset: base}
}

func TestProducerStateRules(t *testing.T) {
	s := newProducerState()
	must := func(h *batch.Header, want error) {
		t.Helper()
		err := s.check(h)
		var dup *errDuplicate
		switch {
		case want == nil && err != nil:
			t.Fatalf("check %+v: %v", h, err)
		case want == errDupMarker:
			if !errors.As(err, &dup) {
				t.Fatalf("check %+v: %v, want duplicate", h, err)
			}
		case want != nil && !errors.Is(err, want):
			t.Fatalf("check %+v: %v, want %v", h, err, want)
		}
		if err == nil {
			s.update(h, 0)
		}
	}
	must(hdr(7, 0, 5, 1, 0), kerr.UnknownProducerID) // unknown producer mid-stream
	must(hdr(7, 0, 0, 3, 0), nil)                    // seqs 0-2 at offsets 0-2
	must(hdr(7, 0, 3, 2, 3), nil)                    // 3-4
	must(hdr(7, 0, 0, 3, 99), errDupMarker)          // retry of the first batch
	must(hdr(7, 0, 6, 1, 5), kerr.OutOfOrderSequenceNumber)
	must(hdr(7, 0, 5, 1, 5), nil)
	must(hdr(7, 1, 3, 1, 6), kerr.OutOfOrderSequenceNumber) // new epoch must start at 0
	must(hdr(7, 1, 0, 1, 6), nil)
	must(hdr(7, 0, 6, 1, 7), kerr.InvalidProducerEpoch) // fenced
	// Sequence wraps after MaxInt32.
	must(hdr(8, 0, 0, 1, 8), nil)
	s.m[8].Batches[0].LastSeq = 1<<31 - 1
	must(hdr(8, 0, 0, 2, 9), nil) // 0 follows MaxInt32
	// Expiry and snapshots.
	enc := s.encode()
	dec, err := decodeProducerState(enc)
	if err != nil || len(dec.m) != 2 || dec.m[7].Epoch != 1 {
		t.Fatalf("snapshot round trip: %v %+v", err, dec)
	}
	enc[len(enc)-1] ^= 1
	if _, err := decodeProducerState(enc); err == nil {
		t.Fatal("corrupt snapshot accepted")
	}
	s.m[7].LastUpdateMs = 0
	s.m[8].LastUpdateMs = 1000
	if n := s.expire(2000, 1500); n != 1 || s.m[8] == nil {
		t.Fatalf("expired %d", n)
	}
}

var errDupMarker = fmt.Errorf("duplicate")

// TestIdempotenceSurvivesRestart retries a batch after a restart: the
// broker rebuilt producer state from its snapshot and log, so the retry is
// recognised as a duplicate.
func TestIdempotenceSurvivesRestart(t *testing.T) {
	tb := startBroker(t, withSetting("log.segment.bytes", "4096"))
	createTopic(t, tb, "idem-restart", 1, nil)
	cl := tb.Client()
	ctx := testCtx(t)
	pid := initProducerID(t, ctx, cl)
	raws := make([][]byte, 0)
	seq := int32(0)
	for i := 0; i < 30; i++ { // enough to roll several 4 KiB segments
		b := batch.NewBuilder(batch.CompressionNone)
		b.ProducerID, b.ProducerEpoch, b.BaseSequence = pid, 0, seq
		for j := 0; j < 5; j++ {
			b.Add(time.Now().UnixMilli(), nil, make([]byte, 200))
		}
		raw, err := b.Build(0)
		if err != nil {
			t.Fatal(err)
		}
		seq += 5
		if off, code := rawProduce(t, ctx, cl, "idem-restart", 0, raw); code != 0 || off != int64(i*5) {
			t.Fatalf("batch %d: offset %d code %d", i, off, code)
		}
		raws = append(raws, raw)
	}
	cl.Close()
	tb.Restart()
	cl = tb.Client()
	// Retry the last batch: a duplicate, answered with its first offset.
	if off, code := rawProduce(t, ctx, cl, "idem-restart", 0, raws[len(raws)-1]); code != 0 || off != 145 {
		t.Fatalf("retried batch after restart: offset %d code %d", off, code)
	}
	ends, err := kadmNew(cl).ListEndOffsets(ctx, "idem-restart")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("idem-restart", 0); o.Offset != 150 {
		t.Fatalf("end offset %d after a duplicate retry; want 150", o.Offset)
	}
}
