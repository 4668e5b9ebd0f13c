package main

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tiercel/tiercel/internal/testproc"
)

// TestKill9DuringProduce kills the broker with SIGKILL in the middle of an
// acks=all produce load, restarts it on the same data directory, and checks
// that every acknowledged record is there, at its acknowledged offset, once.
func TestKill9DuringProduce(t *testing.T) {
	dir := t.TempDir()
	addr := testproc.FreeAddr(t)
	proc := testproc.Start(t, addr, "--data-dir", dir, "--override", "log.segment.bytes=262144")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	adm, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(adm).CreateTopic(ctx, 3, 1, nil, "crash"); err != nil {
		t.Fatal(err)
	}
	adm.Close()

	type ack struct {
		partition int32
		offset    int64
	}
	var mu sync.Mutex
	acked := map[string]ack{}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("crash"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(3), kgo.RetryTimeout(3*time.Second),
		kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	prodCtx, stopProducing := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; prodCtx.Err() == nil && i < 2_000_000; i++ {
			v := strconv.Itoa(i)
			cl.Produce(prodCtx, &kgo.Record{Key: []byte(v), Value: []byte(v)}, func(r *kgo.Record, err error) {
				if err == nil {
					mu.Lock()
					acked[string(r.Value)] = ack{r.Partition, r.Offset}
					mu.Unlock()
				}
			})
		}
	}()
	time.Sleep(1500 * time.Millisecond)
	proc.Kill()
	time.Sleep(200 * time.Millisecond)
	stopProducing()
	wg.Wait()
	cl.Close() // waits for outstanding promises
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	if n < 1000 {
		t.Fatalf("only %d records acknowledged before the kill; the test needs load", n)
	}

	proc.Restart()
	cons, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		"crash": {0: kgo.NewOffset().AtStart(), 1: kgo.NewOffset().AtStart(), 2: kgo.NewOffset().AtStart()},
	}), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	ends, err := kadm.NewClient(cons).ListEndOffsets(ctx, "crash")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	seen := map[string]ack{}
	next := map[int32]int64{}
	for int64(len(seen)) < total {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records", len(seen), total)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("fetch partition %d: %v", p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next[r.Partition] {
				t.Fatalf("partition %d: offset %d after %d", r.Partition, r.Offset, next[r.Partition]-1)
			}
			next[r.Partition]++
			if prev, dup := seen[string(r.Value)]; dup {
				t.Fatalf("record %s twice: %v and %d/%d", r.Value, prev, r.Partition, r.Offset)
			}
			seen[string(r.Value)] = ack{r.Partition, r.Offset}
		})
	}
	lost := 0
	for v, a := range acked {
		if got, ok := seen[v]; !ok || got != a {
			lost++
			if lost < 5 {
				t.Errorf("acknowledged record %s at %d/%d: read back %v (present %v)", v, a.partition, a.offset, got, ok)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged records lost or moved", lost, len(acked))
	}
	t.Logf("%d acknowledged, %d in the log after kill -9 and recovery; none lost", len(acked), total)
}
