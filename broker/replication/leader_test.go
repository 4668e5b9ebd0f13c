package replication

import (
	"slices"
	"testing"
	"time"
)

func TestHighWatermarkIsISRMinimum(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLeader(1, []int32{1, 2, 3}, []int32{1, 2, 3}, 10*time.Second, now)
	if hw := l.HighWatermark(100); hw != 0 {
		t.Fatalf("hw %d before any follower fetched", hw)
	}
	l.FollowerFetched(2, 80, 100, now)
	l.FollowerFetched(3, 60, 100, now)
	if hw := l.HighWatermark(100); hw != 60 {
		t.Fatalf("hw %d, want 60", hw)
	}
	// A follower outside the ISR does not hold the watermark back.
	l.SetAssignment([]int32{1, 2, 3}, []int32{1, 2}, 0, now)
	if hw := l.HighWatermark(100); hw != 80 {
		t.Fatalf("hw %d, want 80", hw)
	}
	// Alone in the ISR, the leader's log end is the watermark.
	l.SetAssignment([]int32{1, 2, 3}, []int32{1}, 0, now)
	if hw := l.HighWatermark(100); hw != 100 {
		t.Fatalf("hw %d, want 100", hw)
	}
}

func TestISRShrinksAndExpands(t *testing.T) {
	now := time.Unix(1000, 0)
	lag := 10 * time.Second
	l := NewLeader(1, []int32{1, 2, 3}, []int32{1, 2, 3}, lag, now)
	// 2 keeps up; 3 stops fetching.
	for i := 1; i <= 12; i++ {
		t0 := now.Add(time.Duration(i) * time.Second)
		l.FollowerFetched(2, int64(i*10), int64(i*10), t0)
	}
	later := now.Add(12 * time.Second)
	isr, changed := l.ProposeISR(l.HighWatermark(120), 0, later)
	if !changed || !slices.Equal(isr, []int32{1, 2}) {
		t.Fatalf("proposal %v %v, want [1 2]", isr, changed)
	}
	l.Pending(isr, 0)
	// While pending, the old ISR still counts for the watermark and
	// nothing else is proposed.
	if hw := l.HighWatermark(120); hw != 0 {
		t.Fatalf("hw %d while the shrink is pending, want 0 (3 still counted)", hw)
	}
	if _, changed := l.ProposeISR(120, 0, later); changed {
		t.Fatal("proposed again while a change was pending")
	}
	l.SetAssignment([]int32{1, 2, 3}, []int32{1, 2}, 0, later) // committed
	if hw := l.HighWatermark(120); hw != 120 {
		t.Fatalf("hw %d after the shrink, want 120", hw)
	}
	// 3 comes back and catches up to the watermark: it rejoins.
	l.FollowerFetched(3, 120, 120, later.Add(time.Second))
	isr, changed = l.ProposeISR(120, 0, later.Add(time.Second))
	if !changed || !slices.Equal(isr, []int32{1, 2, 3}) {
		t.Fatalf("proposal %v %v, want [1 2 3]", isr, changed)
	}
}

func TestFollowerBehindTheEpochStartDoesNotJoin(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLeader(1, []int32{1, 2}, []int32{1}, 10*time.Second, now)
	l.FollowerFetched(2, 50, 50, now)
	if _, changed := l.ProposeISR(50, 60, now); changed {
		t.Fatal("a follower below the current epoch's start joined the ISR")
	}
	l.FollowerFetched(2, 60, 60, now)
	if isr, changed := l.ProposeISR(60, 60, now); !changed || len(isr) != 2 {
		t.Fatalf("proposal %v %v", isr, changed)
	}
}

func TestCaughtUpAsOfPreviousFetch(t *testing.T) {
	// A follower that fetches at the offset the leader had at its
	// previous fetch was caught up then, even if the leader moved on.
	now := time.Unix(1000, 0)
	l := NewLeader(1, []int32{1, 2}, []int32{1, 2}, 5*time.Second, now)
	l.FollowerFetched(2, 10, 20, now)                    // behind
	l.FollowerFetched(2, 20, 30, now.Add(4*time.Second)) // has what the leader had at the last fetch
	// Caught up as of the previous fetch (at now): within the limit until
	// now+5s, out after.
	if _, changed := l.ProposeISR(20, 0, now.Add(4500*time.Millisecond)); changed {
		t.Fatal("shrunk a follower that was caught up 4.5s ago with a 5s lag limit")
	}
	if isr, changed := l.ProposeISR(20, 0, now.Add(6*time.Second)); !changed || len(isr) != 1 {
		t.Fatalf("kept a follower last caught up 6s ago with a 5s lag limit: %v %v", isr, changed)
	}
}

// TestRefusalHoldsProposalsUntilRetry: after the controller refuses an
// ISR change, the same proposal waits out the backoff, unless RetryNow
// (a broker joined) lifts the hold.
func TestRefusalHoldsProposalsUntilRetry(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLeader(1, []int32{1, 2}, []int32{1}, 10*time.Second, now)
	l.FollowerFetched(2, 50, 50, now)
	isr, changed := l.ProposeISR(50, 0, now)
	if !changed || !slices.Equal(isr, []int32{1, 2}) {
		t.Fatalf("proposal %v %v, want [1 2]", isr, changed)
	}
	l.Pending(isr, 0)
	// Holds double from the first refusal, up to a second.
	for i, want := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		want *= time.Millisecond
		l.Pending(isr, 0)
		if got := l.Refused(isr, now, 100*time.Millisecond); got != want {
			t.Fatalf("refusal %d: hold %v, want %v", i+1, got, want)
		}
		if _, changed := l.ProposeISR(50, 0, now.Add(want-time.Millisecond)); changed {
			t.Fatalf("refusal %d: proposed again within the hold", i+1)
		}
		if _, changed := l.ProposeISR(50, 0, now.Add(want)); !changed {
			t.Fatalf("refusal %d: no proposal once the hold passed", i+1)
		}
	}
	l.Pending(isr, 0)
	l.Refused(isr, now, 100*time.Millisecond)
	l.RetryNow()
	if _, changed := l.ProposeISR(50, 0, now); !changed {
		t.Fatal("RetryNow did not lift the hold")
	}
	// An accepted proposal starts the doubling over; a longer base
	// (another kind of refusal) is not capped below itself.
	l.Pending(isr, 0)
	l.Accepted(isr)
	l.Pending(isr, 0)
	if got := l.Refused(isr, now, 100*time.Millisecond); got != 100*time.Millisecond {
		t.Fatalf("hold %v after an accepted proposal, want 100ms", got)
	}
	l.Pending(isr, 0)
	l.Accepted(isr)
	l.Pending(isr, 0)
	if got := l.Refused(isr, now, 2*time.Second); got != 2*time.Second {
		t.Fatalf("hold %v with a 2s base, want 2s", got)
	}
}

// TestFollowerOutOfTheISRMustFetchFirst: a follower that left the ISR
// rejoins on a fetch made since, never on what the leader knew of it
// before (a restart may have wiped its disk), even when nothing was
// produced meanwhile and its old log end is still at the watermark.
func TestFollowerOutOfTheISRMustFetchFirst(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLeader(1, []int32{1, 2, 3}, []int32{1, 2, 3}, 10*time.Second, now)
	l.FollowerFetched(2, 100, 100, now)
	l.FollowerFetched(3, 100, 100, now)
	l.SetAssignment([]int32{1, 2, 3}, []int32{1, 3}, 0, now) // 2 stopped
	if isr, changed := l.ProposeISR(100, 0, now.Add(time.Second)); changed {
		t.Fatalf("proposed %v on the previous process's log end", isr)
	}
	l.FollowerFetched(2, 100, 100, now.Add(time.Second))
	if isr, changed := l.ProposeISR(100, 0, now.Add(time.Second)); !changed || !slices.Equal(isr, []int32{1, 2, 3}) {
		t.Fatalf("proposal %v %v after its fetch, want [1 2 3]", isr, changed)
	}
}

// TestLateAnswerLeavesNewerProposalPending: the metadata settled
// proposal A, B was sent, and then A's answer arrives. It must not clear
// B: until B is answered, the watermark counts both ISRs.
func TestLateAnswerLeavesNewerProposalPending(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLeader(1, []int32{1, 2, 3}, []int32{1, 2, 3}, 10*time.Second, now)
	l.FollowerFetched(2, 100, 100, now)
	a := []int32{1, 2} // A: 3 leaves
	l.Pending(a, 0)
	l.SetAssignment([]int32{1, 2, 3}, a, 0, now) // the metadata settles A
	l.FollowerFetched(3, 50, 100, now)
	b := []int32{1, 2, 3} // B: 3 comes back (the test pends it directly)
	l.Pending(b, 0)
	if hw := l.HighWatermark(100); hw != 50 {
		t.Fatalf("hw %d with B pending, want 50 (3 counted)", hw)
	}
	l.Accepted(a)
	if hw := l.HighWatermark(100); hw != 50 {
		t.Fatalf("hw %d after a late acceptance of A, want 50: B was cleared", hw)
	}
	if hold := l.Refused(a, now, 100*time.Millisecond); hold != 0 {
		t.Fatalf("a late refusal of A set a hold of %v", hold)
	}
	if hw := l.HighWatermark(100); hw != 50 {
		t.Fatalf("hw %d after a late refusal of A, want 50: B was cleared", hw)
	}
	if got := l.Refused(b, now, 100*time.Millisecond); got != 100*time.Millisecond {
		t.Fatalf("B's own refusal: hold %v, want 100ms", got)
	}
	if hw := l.HighWatermark(100); hw != 100 {
		t.Fatalf("hw %d once B is refused, want 100", hw)
	}
}

// TestNewerPartitionEpochSettlesPending: a change whose answer was lost
// stays pending until the metadata carries a newer partition epoch; the
// controller's ISR then counts, whatever it is.
func TestNewerPartitionEpochSettlesPending(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLeader(1, []int32{1, 2, 3}, []int32{1, 2}, 10*time.Second, now)
	l.FollowerFetched(2, 100, 100, now)
	l.FollowerFetched(3, 50, 100, now)
	l.SetAssignment([]int32{1, 2, 3}, []int32{1, 2}, 5, now)
	l.Pending([]int32{1, 2, 3}, 5)
	l.SetAssignment([]int32{1, 2, 3}, []int32{1, 2}, 5, now) // same epoch: not settled
	if hw := l.HighWatermark(100); hw != 50 {
		t.Fatalf("hw %d, want 50: the pending expansion still counts", hw)
	}
	l.SetAssignment([]int32{1, 2, 3}, []int32{1, 2}, 6, now) // the controller decided otherwise
	if l.IsPending([]int32{1, 2, 3}) {
		t.Fatal("still pending after a newer partition epoch")
	}
	if hw := l.HighWatermark(100); hw != 100 {
		t.Fatalf("hw %d, want 100 over the controller's ISR [1 2]", hw)
	}
}
