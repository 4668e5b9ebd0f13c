package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/broker/replication"
	"github.com/tiercel/tiercel/wire/batch"
)

// TestWatermarkMoveWakesWaitersNotFollowers pins who a high-watermark move
// wakes: parked consumer fetches and acks=all produces, which wait for it,
// but not parked follower fetches, which wait for bytes past their offset
// (as in Kafka) and would only re-read and park again. An append still
// wakes followers.
func TestWatermarkMoveWakesWaitersNotFollowers(t *testing.T) {
	tb := startBroker(t)
	createTopic(t, tb, "wake", 1, nil)
	cl := tb.Client(kgo.DefaultProduceTopic("wake"), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	defer cl.Close()
	produceSync(t, cl, &kgo.Record{Value: []byte("a")})
	_, p := tb.B.lookup("wake", 0)

	// Make the partition believe it has a follower, 2, in its ISR, so
	// that the watermark waits for 2's fetches.
	p.mu.Lock()
	p.repl = replication.NewLeader(1, []int32{1, 2}, []int32{1, 2}, time.Minute, p.now())
	p.mu.Unlock()

	follower, consumer := make(chan struct{}, 1), make(chan struct{}, 1)
	p.addFollowerWaiter(follower)
	p.addWaiter(consumer)
	defer p.removeFollowerWaiter(follower)
	defer p.removeWaiter(consumer)

	signalled := func(ch chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	produceSync(t, cl, &kgo.Record{Value: []byte("b")})
	if !signalled(follower) {
		t.Fatal("an append did not wake the parked follower fetch")
	}
	hw := p.HighWatermark()
	if hw != 1 {
		t.Fatalf("high watermark %d before follower 2 fetched, want 1", hw)
	}
	signalled(consumer) // the append itself may have signalled it; start clean

	tb.B.followerFetched(p, 2, 2)
	if got := p.HighWatermark(); got != 2 {
		t.Fatalf("high watermark %d after follower 2 fetched up to 2, want 2", got)
	}
	if !signalled(consumer) {
		t.Fatal("the watermark move did not wake the parked consumer fetch")
	}
	if signalled(follower) {
		t.Fatal("the watermark move woke the parked follower fetch")
	}
}

// TestProduceWakesFollowersAfterWholeRequest: a produce to two partitions
// wakes the parked follower fetches only once both are appended. A
// follower woken after the first would fetch it alone and come back for
// the second, and an acks=all produce of both would wait for that extra
// round trip.
func TestProduceWakesFollowersAfterWholeRequest(t *testing.T) {
	tb := startBroker(t)
	createTopic(t, tb, "wake2", 2, nil)
	cl := tb.Client()
	defer cl.Close()
	ctx := testCtx(t)
	_, p0 := tb.B.lookup("wake2", 0)
	_, p1 := tb.B.lookup("wake2", 1)
	// An early wake loses this race only sometimes, so try many times.
	for i := 0; i < 50; i++ {
		woken := make(chan struct{}, 1)
		p0.addFollowerWaiter(woken)
		want := p1.log.EndOffset() + 4001
		seen := make(chan int64, 1)
		go func() {
			<-woken
			seen <- p1.log.EndOffset() // as a follower woken now would read it
		}()
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = 1, 10000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "wake2"
		for part := int32(0); part < 2; part++ {
			b := batch.NewBuilder(batch.CompressionNone)
			// Partition 1 gets many records, so that checking them
			// leaves an early-woken follower time to look.
			for n := 0; n < 1+int(part)*4000; n++ {
				b.Add(time.Now().UnixMilli(), nil, []byte("value of a record, some bytes long"))
			}
			raw, err := b.Build(0)
			if err != nil {
				t.Fatal(err)
			}
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition, rp.Records = part, raw
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp := rawRequest(t, ctx, cl, req).(*kmsg.ProduceResponse)
		for _, rp := range resp.Topics[0].Partitions {
			if rp.ErrorCode != 0 {
				t.Fatalf("partition %d: error %d", rp.Partition, rp.ErrorCode)
			}
		}
		got := <-seen
		p0.removeFollowerWaiter(woken)
		if got < want {
			t.Fatalf("try %d: the follower of partition 0 was woken when partition 1 ended at %d, before the same request's append to it (end %d)", i, got, want)
		}
	}
}
