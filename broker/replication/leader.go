// Package replication is Kafka's replication model: the leader tracks
// each follower's log end offset, advances the high watermark over the
// in-sync replicas and proposes ISR changes by replica.lag.time.max.ms;
// followers fetch from the leader, truncate where their log diverged, and
// append what the leader sends. It knows nothing of S3.
package replication

import (
	"slices"
	"sync"
	"time"
)

// follower is the leader's record of one follower.
type follower struct {
	leo int64
	// lastFetch is when its last fetch arrived, and leoAtLastFetch the
	// leader's log end then: a fetch at or past that offset proves the
	// follower had everything the leader had at the previous fetch.
	lastFetch      time.Time
	leoAtLastFetch int64
	// lastCaughtUp is the last time the follower was known to have all
	// of the leader's log.
	lastCaughtUp time.Time
}

// Leader is the replication state of a partition on its leader. It is
// safe for concurrent use.
type Leader struct {
	self   int32
	lagMax time.Duration

	mu        sync.Mutex
	replicas  []int32
	isr       []int32
	followers map[int32]*follower
	// pending is an ISR change sent to the controller and not yet
	// confirmed. While it is in flight the leader proposes nothing else,
	// and the high watermark counts the union of the old and the new ISR
	// (Kafka's "maximal ISR"): a shrink takes effect for the watermark only
	// once committed, an expansion at once.
	pending []int32
	// pendingEpoch is the partition epoch the pending change was based
	// on: metadata with a newer one has settled it, one way or the other.
	pendingEpoch int32
	// retryAt holds off the next proposal after the controller refused
	// one, so that a stale view does not turn every follower fetch into a
	// request to the controller.
	retryAt time.Time
	// refusals counts refusals since the last accepted proposal; each
	// doubles the hold, up to maxRefusalBackoff.
	refusals int
}

// maxRefusalBackoff caps the hold after repeated refusals.
const maxRefusalBackoff = time.Second

// NewLeader starts tracking a partition this broker now leads. Followers
// start as caught up "now", so that a new leader does not shrink the ISR
// before they had a chance to fetch.
func NewLeader(self int32, replicas, isr []int32, lagMax time.Duration, now time.Time) *Leader {
	l := &Leader{self: self, lagMax: lagMax, followers: map[int32]*follower{}}
	l.SetAssignment(replicas, isr, 0, now)
	return l
}

// SetAssignment takes the controller's replicas, ISR and partition epoch
// (a new metadata version). A pending change is settled when the new ISR
// matches it or the partition epoch moved past the one it was based on
// (the controller then decided, and its ISR is the one that counts).
func (l *Leader) SetAssignment(replicas, isr []int32, partitionEpoch int32, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.isr {
		if f := l.followers[r]; f != nil && !slices.Contains(isr, r) {
			// Out of the ISR: it rejoins on a fetch made from now on, not
			// on what it had before, which a restart may have wiped.
			f.leo, f.lastFetch, f.leoAtLastFetch = -1, time.Time{}, 0
		}
	}
	l.replicas = slices.Clone(replicas)
	l.isr = slices.Clone(isr)
	for _, r := range replicas {
		if r == l.self {
			continue
		}
		if _, ok := l.followers[r]; !ok {
			l.followers[r] = &follower{leo: -1, lastCaughtUp: now, lastFetch: now}
		}
	}
	for r := range l.followers {
		if !slices.Contains(replicas, r) {
			delete(l.followers, r)
		}
	}
	if l.pending != nil && (sameSet(l.pending, isr) || partitionEpoch > l.pendingEpoch) {
		l.pending = nil
	}
}

// ISR returns the ISR as the controller last confirmed it.
func (l *Leader) ISR() []int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.isr)
}

// IsReplica reports whether id is an assigned replica.
func (l *Leader) IsReplica(id int32) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.replicas, id)
}

// FollowerFetched records a follower's fetch at fetchOffset, when the
// leader's log ends at leaderLEO.
func (l *Leader) FollowerFetched(id int32, fetchOffset, leaderLEO int64, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.followers[id]
	if f == nil {
		return
	}
	f.leo = fetchOffset
	switch {
	case fetchOffset >= leaderLEO:
		f.lastCaughtUp = now
	case fetchOffset >= f.leoAtLastFetch && !f.lastFetch.IsZero():
		f.lastCaughtUp = maxTime(f.lastCaughtUp, f.lastFetch)
	}
	f.lastFetch, f.leoAtLastFetch = now, leaderLEO
}

// HighWatermark is the smallest log end offset among the in-sync
// replicas, the leader's own included. While an ISR change is pending, the
// union of the old and the new ISR counts, so the watermark never passes
// what a replica that may still be in the ISR has.
func (l *Leader) HighWatermark(leaderLEO int64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	hw := leaderLEO
	count := func(ids []int32) {
		for _, r := range ids {
			if r == l.self {
				continue
			}
			f := l.followers[r]
			if f == nil {
				continue
			}
			hw = min(hw, max(f.leo, 0))
		}
	}
	count(l.isr)
	count(l.pending)
	return hw
}

// ProposeISR returns the ISR the leader wants now, and whether it
// differs from the current one: followers out of date for longer than
// replica.lag.time.max.ms leave; followers back at the high watermark
// (and past the start of the leader's epoch) join. Nothing is proposed
// while a change is pending. The caller sends the proposal to the
// controller and then calls Pending.
func (l *Leader) ProposeISR(hw, epochStart int64, now time.Time) ([]int32, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending != nil || now.Before(l.retryAt) {
		return nil, false
	}
	next := []int32{}
	for _, r := range l.replicas {
		if r == l.self {
			next = append(next, r)
			continue
		}
		f := l.followers[r]
		inISR := slices.Contains(l.isr, r)
		switch {
		case f == nil:
		case inISR && now.Sub(f.lastCaughtUp) <= l.lagMax:
			next = append(next, r)
		case !inISR && f.leo >= hw && f.leo >= epochStart && now.Sub(f.lastCaughtUp) <= l.lagMax:
			next = append(next, r)
		}
	}
	if sameSet(next, l.isr) {
		return nil, false
	}
	return next, true
}

// Pending records an ISR proposal in flight, made at partitionEpoch.
func (l *Leader) Pending(isr []int32, partitionEpoch int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending, l.pendingEpoch = slices.Clone(isr), partitionEpoch
}

// IsPending reports whether isr is the proposal in flight.
func (l *Leader) IsPending(isr []int32) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pending != nil && sameSet(l.pending, isr)
}

// Refused records the controller's refusal of proposal isr: it clears the
// pending change and holds off the next one, for backoff after a first
// refusal, twice as long after each further one, up to maxRefusalBackoff.
// It returns the hold, or 0 if isr is not the pending proposal (a late
// answer to one that the metadata already settled): that changes nothing.
func (l *Leader) Refused(isr []int32, now time.Time, backoff time.Duration) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending == nil || !sameSet(l.pending, isr) {
		return 0
	}
	l.pending = nil
	backoff = min(backoff<<min(l.refusals, 10), max(backoff, maxRefusalBackoff))
	l.refusals++
	l.retryAt = now.Add(backoff)
	return backoff
}

// Accepted records that the controller took proposal isr. A late answer
// to an earlier proposal leaves a newer pending one in place: the
// watermark must keep counting both ISRs until that one is answered.
func (l *Leader) Accepted(isr []int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending != nil && sameSet(l.pending, isr) {
		l.pending = nil
	}
	l.refusals = 0
}

// RetryNow lifts the hold after a refusal: something the controller
// judges by (the live brokers) has changed.
func (l *Leader) RetryNow() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.retryAt = time.Time{}
}

// FollowerLEO is a follower's log end offset as of its last fetch.
func (l *Leader) FollowerLEO(id int32) (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.followers[id]
	if f == nil {
		return 0, false
	}
	return f.leo, true
}

func sameSet(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
