package group

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// scheduler runs the coordinator's timers (session timeouts, rebalance and
// sync deadlines, the initial rebalance delay, offset expiry) on one
// goroutine, which ends when the coordinator closes. Thousands of members
// each with a session timer cost one heap entry apiece, not one runtime
// timer and goroutine apiece, and Close has exactly one goroutine to wait
// for.
//
// Callbacks run on the scheduler goroutine with no scheduler lock held.
// A timer stopped after its callback was dequeued still runs once, so
// every callback checks, under its group's lock, that it is still the
// timer the group expects (see member.hb, group.joinTimer, ...).
type scheduler struct {
	mu   sync.Mutex
	h    timerHeap
	wake chan struct{}
}

// timer is one scheduled callback.
type timer struct {
	s     *scheduler
	when  time.Time // on the monotonic clock
	fn    func()
	index int // position in the heap, -1 when not scheduled
}

func newScheduler() *scheduler {
	return &scheduler{wake: make(chan struct{}, 1)}
}

// after schedules fn(t) to run d from now on the scheduler goroutine and
// returns t. fn receives its own timer so that it can check it is still
// current.
func (s *scheduler) after(d time.Duration, fn func(t *timer)) *timer {
	t := &timer{s: s, when: time.Now().Add(d), index: -1}
	t.fn = func() { fn(t) }
	s.mu.Lock()
	heap.Push(&s.h, t)
	first := t.index == 0
	s.mu.Unlock()
	if first {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return t
}

// stop unschedules t. It is safe on nil and on a timer that already ran.
func (t *timer) stop() {
	if t == nil {
		return
	}
	s := t.s
	s.mu.Lock()
	if t.index >= 0 {
		heap.Remove(&s.h, t.index)
	}
	s.mu.Unlock()
}

// run executes timers as they fall due until ctx ends.
func (s *scheduler) run(ctx context.Context) {
	tm := time.NewTimer(time.Hour)
	defer tm.Stop()
	for {
		s.mu.Lock()
		var due *timer
		wait := time.Hour
		if len(s.h) > 0 {
			if d := time.Until(s.h[0].when); d <= 0 {
				due = heap.Pop(&s.h).(*timer)
			} else {
				wait = d
			}
		}
		s.mu.Unlock()
		if due != nil {
			if ctx.Err() != nil {
				return
			}
			due.fn()
			continue
		}
		tm.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
			// Since Go 1.23 Reset discards a pending expiry, so the
			// timer needs no draining here.
		case <-tm.C:
		}
	}
}

// pending is the number of scheduled timers, for tests.
func (s *scheduler) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.h)
}

type timerHeap []*timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].when.Before(h[j].when) }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *timerHeap) Push(x any) {
	t := x.(*timer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	n := len(old)
	t := old[n-1]
	old[n-1] = nil
	t.index = -1
	*h = old[:n-1]
	return t
}
