package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/tiercel/tiercel/broker/controller"
	plog "github.com/tiercel/tiercel/broker/log"
	"github.com/tiercel/tiercel/broker/replication"
	"github.com/tiercel/tiercel/tiering"
	"github.com/tiercel/tiercel/wire/batch"
)

// partition is one partition hosted on this broker: its local log, its
// leadership state, its high watermark and its producer state.
//
// Lock order: partition.mu, then the log's own locks. Handlers never hold
// partition.mu while waiting on anything but the disk.
type partition struct {
	topic   string
	topicID controller.TopicID
	index   int32
	selfID  int32 // this broker's node id
	log     *plog.Log
	// remote is the partition's remote copy; nil when the broker does not
	// tier. Whether this topic offloads is tiered().
	remote *tiering.RemoteLog
	// remoteLoadedEpoch is the leader epoch at which this broker, as
	// leader, last read the manifest from the bucket (-1: never).
	remoteLoadedEpoch atomic.Int32
	// remoteBusy is set while a round of remote work runs on it.
	remoteBusy atomic.Bool
	logger     *slog.Logger
	now        func() time.Time

	// cfg is swapped whole when topic configs change.
	cfg atomic.Pointer[topicSettings]

	mu             sync.Mutex // serializes appends and leadership changes
	leader         int32
	leaderEpoch    int32
	partitionEpoch int32
	replicas       []int32
	isr            []int32
	producers      *producerState
	// repl tracks followers while this broker leads; nil otherwise.
	repl *replication.Leader
	// followHeaders is scratch for the batch headers of a follower
	// append, reused under mu (one append at a time).
	followHeaders []batch.Header

	// hw is the high watermark: consumers read below it. It is written
	// under mu and read without it.
	hw atomic.Int64

	// waiters are fetches parked until this partition's log or high
	// watermark moves.
	waitMu          sync.Mutex
	waiters         map[chan struct{}]struct{}
	followerWaiters map[chan struct{}]struct{}
}

// isLeader reports whether this broker leads the partition.
func (p *partition) leaderState(self int32) (isLeader bool, leader, epoch int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.leader == self, p.leader, p.leaderEpoch
}

// roleChange says what an assignment did to this broker's role.
type roleChange int

const (
	roleUnchanged roleChange = iota
	roleLeader               // became leader, or a new leader epoch
	roleFollower             // follows a (new) leader
	roleNone                 // no live leader to follow
)

// applyAssignment takes the controller's view of the partition. The
// caller starts or stops follower fetching according to the result, with
// no partition lock held. An assignment with an older leader epoch than
// the one known is stale and ignored.
func (p *partition) applyAssignment(self int32, a controller.Partition, lagMax time.Duration) (roleChange, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if a.LeaderEpoch < p.leaderEpoch {
		return roleUnchanged, nil
	}
	p.replicas = slices.Clone(a.Replicas)
	p.isr = slices.Clone(a.ISR)
	newEpoch := a.LeaderEpoch > p.leaderEpoch || p.leader != a.Leader
	p.leader, p.leaderEpoch = a.Leader, a.LeaderEpoch
	switch {
	case a.Leader == self && (newEpoch || p.repl == nil):
		// A new epoch starts at our log end. Our log may already know it
		// (restart); only a newer epoch is assigned.
		if latest, ok := p.log.LatestEpoch(); !ok || latest < a.LeaderEpoch {
			if err := p.log.AssignEpoch(a.LeaderEpoch, p.log.EndOffset()); err != nil {
				return roleLeader, fmt.Errorf("assign leader epoch %d: %w", a.LeaderEpoch, err)
			}
		}
		p.repl = replication.NewLeader(self, a.Replicas, a.ISR, lagMax, p.now())
		p.partitionEpoch = a.PartitionEpoch
		p.advanceHWLocked()
		p.logger.Info("leading partition", "leader.epoch", a.LeaderEpoch, "isr", fmt.Sprint(a.ISR),
			"log.end.offset", p.log.EndOffset(), "high.watermark", p.hw.Load())
		return roleLeader, nil
	case a.Leader == self:
		p.repl.SetAssignment(a.Replicas, a.ISR, a.PartitionEpoch, p.now())
		p.partitionEpoch = a.PartitionEpoch
		p.advanceHWLocked()
		return roleUnchanged, nil
	case a.Leader >= 0:
		p.repl = nil
		p.partitionEpoch = a.PartitionEpoch
		if newEpoch {
			return roleFollower, nil
		}
		return roleUnchanged, nil
	default:
		p.repl = nil
		p.partitionEpoch = a.PartitionEpoch
		return roleNone, nil
	}
}

// advanceHWLocked moves the high watermark to the smallest log end offset
// in the ISR (the union of the old and the new ISR while a change is in
// flight). It never moves it back.
func (p *partition) advanceHWLocked() {
	if p.repl == nil {
		return
	}
	hw := p.repl.HighWatermark(p.log.EndOffset())
	if hw > p.hw.Load() {
		p.hw.Store(hw)
		// Consumers and acks=all produces wait for this. Parked follower
		// fetches do not: they wait for bytes past their offset, and learn
		// the watermark with them, as in Kafka. Waking them here would
		// only make each re-read and park again.
		p.wakeWaiters()
	}
}

func (p *partition) isrSize() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.isr)
}

// HighWatermark returns the high watermark.
func (p *partition) HighWatermark() int64 { return p.hw.Load() }

func (p *partition) settings() *topicSettings { return p.cfg.Load() }

// appendResult is what a produce learns from an append.
type appendResult struct {
	baseOffset    int64
	lastOffset    int64
	logAppendTime int64 // -1 unless the topic uses LogAppendTime
	logStart      int64
	duplicate     bool // a retried batch already in the log
}

// appendBatch validates nothing but idempotence: the caller has checked
// the batch's bytes. It assigns offsets, stamps the leader epoch, appends,
// and records the producer's sequence. raw is rewritten in place.
//
// It does not wake parked follower fetches: the caller does, with
// wakeFollowers, once every partition of its request is appended. A
// follower woken after the first of two partitions would fetch one, then
// come back for the other, and an acks=all produce of both would wait for
// that second round trip (Kafka completes delayed fetches after the whole
// produce request too).
func (p *partition) appendBatch(self int32, raw []byte, h *batch.Header, acks int16) (appendResult, error) {
	s := p.settings()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.leader != self {
		return appendResult{}, kerr.NotLeaderForPartition
	}
	if acks == -1 && len(p.isr) < s.MinInsyncReplicas {
		return appendResult{}, kerr.NotEnoughReplicas
	}
	if err := p.producers.check(h); err != nil {
		var dup *errDuplicate
		if errors.As(err, &dup) {
			return appendResult{baseOffset: dup.orig.FirstOffset, lastOffset: dup.orig.LastOffset, logAppendTime: -1,
				logStart: p.logStartOffset(), duplicate: true}, nil
		}
		return appendResult{}, err
	}
	leo := p.log.EndOffset()
	batch.SetBaseOffset(raw, leo)
	batch.SetPartitionLeaderEpoch(raw, p.leaderEpoch)
	h.BaseOffset = leo
	res := appendResult{baseOffset: leo, lastOffset: h.LastOffset(), logAppendTime: -1}
	now := p.now()
	if s.LogAppendTime {
		ts := now.UnixMilli()
		batch.SetLogAppendTime(raw, ts)
		h.MaxTimestamp = ts
		res.logAppendTime = ts
	}
	if _, err := p.log.Append(raw); err != nil {
		return appendResult{}, fmt.Errorf("%w: append to %s-%d: %v", kerr.KafkaStorageError, p.topic, p.index, err)
	}
	p.producers.update(h, now.UnixMilli())
	p.advanceHWLocked()
	res.logStart = p.logStartOffset()
	return res, nil
}

// addFollowerWaiter registers a follower fetch, woken by every append.
func (p *partition) addFollowerWaiter(ch chan struct{}) {
	p.waitMu.Lock()
	if p.followerWaiters == nil {
		p.followerWaiters = make(map[chan struct{}]struct{})
	}
	p.followerWaiters[ch] = struct{}{}
	p.waitMu.Unlock()
}

func (p *partition) removeFollowerWaiter(ch chan struct{}) {
	p.waitMu.Lock()
	delete(p.followerWaiters, ch)
	p.waitMu.Unlock()
}

// wakeFollowers signals parked follower fetches after an append.
func (p *partition) wakeFollowers() {
	p.waitMu.Lock()
	for ch := range p.followerWaiters {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	p.waitMu.Unlock()
}

// wakeWaiters signals the parked consumer fetches and acks=all produces.
func (p *partition) wakeWaiters() {
	p.waitMu.Lock()
	for ch := range p.waiters {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	p.waitMu.Unlock()
}

// wait registers ch to be signalled when the log or high watermark moves.
func (p *partition) addWaiter(ch chan struct{}) {
	p.waitMu.Lock()
	if p.waiters == nil {
		p.waiters = make(map[chan struct{}]struct{})
	}
	p.waiters[ch] = struct{}{}
	p.waitMu.Unlock()
}

func (p *partition) removeWaiter(ch chan struct{}) {
	p.waitMu.Lock()
	delete(p.waiters, ch)
	p.waitMu.Unlock()
}

// wake signals every parked fetch without blocking; a waiter's channel has
// room for one signal, which is all it needs. Consumers and acks=all
// produces wait on the high watermark; followers are woken too, for the
// events (deletions, leadership) that concern everyone.
func (p *partition) wake() {
	p.wakeFollowers()
	p.wakeWaiters()
}

// snapshotProducers writes the producer state at the log end. It runs
// from the log's roll callback, on the appending goroutine, which holds
// p.mu: the state then covers exactly the offsets below the new segment.
func (p *partition) snapshotProducersLocked(offset int64) {
	if err := p.log.WriteSnapshot(offset, p.producers.encode()); err != nil {
		p.logger.Warn("producer snapshot failed", "offset", offset, "err", err)
	}
}

// restoreProducers rebuilds producer state from the newest snapshot and
// the batches after it.
func (p *partition) restoreProducers() error {
	p.producers = newProducerState()
	from := p.log.StartOffset()
	if off, data, ok, err := p.log.LatestSnapshot(); err != nil {
		p.logger.Warn("producer snapshot unreadable; rebuilding from the log", "err", err)
	} else if ok {
		st, err := decodeProducerState(data)
		if err != nil {
			p.logger.Warn("producer snapshot corrupt; rebuilding from the log", "offset", off, "err", err)
		} else {
			p.producers, from = st, off
		}
	}
	if from < p.log.StartOffset() {
		from = p.log.StartOffset()
	}
	nowMs := p.now().UnixMilli()
	return p.log.Batches(from, p.log.EndOffset(), func(h batch.Header, _ []byte) error {
		p.producers.update(&h, nowMs)
		return nil
	})
}

// expireProducers applies producer.id.expiration.ms.
func (p *partition) expireProducers(expirationMs int64) {
	p.mu.Lock()
	n := p.producers.expire(p.now().UnixMilli(), expirationMs)
	p.mu.Unlock()
	if n > 0 {
		p.logger.Info("producers expired", "count", n)
	}
}
