package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tiercel/tiercel/broker/replication"
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
