package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/broker/controller"
	"github.com/tiercel/tiercel/broker/replication"
	"github.com/tiercel/tiercel/tiering"
	"github.com/tiercel/tiercel/wire/batch"
)

// Replication, seen from a partition: the follower side (what the
// fetcher calls), the leader side (follower fetches, the high watermark,
// ISR proposals sent to the controller).

func (p *partition) replicaKey() replication.Key {
	return replication.Key{Topic: p.topic, TopicID: p.topicID, Partition: p.index}
}

// followerReplica is the partition as the replication fetcher sees it.
type followerReplica partition

var _ replication.Replica = (*followerReplica)(nil)

// FetchPosition is where the follower fetches from.
func (f *followerReplica) FetchPosition() (int64, int32, int32, int64) {
	p := (*partition)(f)
	p.mu.Lock()
	epoch := p.leaderEpoch
	p.mu.Unlock()
	last, ok := p.log.LatestEpoch()
	if !ok {
		last = -1
	}
	return p.log.EndOffset(), last, epoch, p.log.StartOffset()
}

// errNotFollower stops a fetcher that raced with a leadership change.
var errNotFollower = errors.New("partition is no longer a follower here")

// Append stores batches from the leader byte for byte, after checking
// their CRCs: a replica never keeps bytes it could not serve.
func (f *followerReplica) Append(records []byte, leaderHW int64) error {
	p := (*partition)(f)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.repl != nil || p.leader < 0 {
		return errNotFollower
	}
	if len(records) > 0 {
		headers := p.followHeaders[:0]
		used, err := batch.Iterate(records, func(h batch.Header, raw []byte) error {
			// Sparse: a compacted log (__consumer_offsets) has batches
			// with fewer records than their offset range.
			if _, err := batch.ValidateSparse(raw); err != nil {
				return err
			}
			headers = append(headers, h)
			return nil
		})
		p.followHeaders = headers[:0]
		if err != nil {
			return fmt.Errorf("batch from the leader: %w", err)
		}
		records = records[:used]
		if len(records) > 0 {
			if _, err := p.log.Append(records); err != nil {
				return fmt.Errorf("append from the leader: %w", err)
			}
			nowMs := p.now().UnixMilli()
			for i := range headers {
				p.producers.update(&headers[i], nowMs)
			}
		}
	}
	hw := min(leaderHW, p.log.EndOffset())
	if hw > p.hw.Load() {
		p.hw.Store(hw)
	}
	return nil
}

// Truncate cuts the log where it diverged from the leader's: at the
// smaller of the leader's end offset for epoch and our own (KIP-279).
func (f *followerReplica) Truncate(epoch int32, endOffset int64) error {
	p := (*partition)(f)
	p.mu.Lock()
	defer p.mu.Unlock()
	target := endOffset
	if ours, ourEnd := p.log.EndOffsetForEpoch(epoch); ours == epoch && ourEnd >= 0 && ourEnd < target {
		target = ourEnd
	}
	leo := p.log.EndOffset()
	if target >= leo {
		// Nothing to cut, but an epoch that began at our end and holds no
		// batch must go, or the leader keeps answering with this divergence.
		return p.log.TruncateTo(target)
	}
	if err := p.log.TruncateTo(target); err != nil {
		return fmt.Errorf("truncate to %d: %w", target, err)
	}
	if err := p.restoreProducers(); err != nil {
		return fmt.Errorf("rebuild producer state after truncation: %w", err)
	}
	if p.hw.Load() > p.log.EndOffset() {
		p.hw.Store(p.log.EndOffset())
	}
	p.logger.Warn("log truncated to where it diverged from the leader", "epoch", epoch,
		"leader.end.offset", endOffset, "from", leo, "to", p.log.EndOffset())
	return nil
}

// listLeaderOffset asks the leader for one ListOffsets answer, as a
// replica (which gets the log end rather than the high watermark).
func (f *followerReplica) listLeaderOffset(ctx context.Context, t replication.Transport, key replication.Key, ts int64) (int64, error) {
	p := (*partition)(f)
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = p.selfID
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = key.Topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = key.Partition, ts
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	raw, err := t.Request(ctx, req)
	if err != nil {
		return 0, err
	}
	resp := raw.(*kmsg.ListOffsetsResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return 0, errors.New("malformed ListOffsets response")
	}
	r := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
		return 0, err
	}
	return r.Offset, nil
}

// OffsetMovedToTiered rebuilds a follower that is behind the leader's
// local log start from the remote tier: leader epochs and producer state
// come from the bucket, and the local log restarts at the end of an
// offloaded segment at or past the leader's local start, so that only the
// local tail is copied from the leader (KIP-405).
func (f *followerReplica) OffsetMovedToTiered(ctx context.Context, t replication.Transport, key replication.Key) error {
	p := (*partition)(f)
	if p.remote == nil {
		return errors.New("leader says the offset is tiered, but this broker does not tier")
	}
	localStart, err := f.listLeaderOffset(ctx, t, key, tsEarliestLocal)
	if err != nil {
		return fmt.Errorf("leader's local log start: %w", err)
	}
	m, err := p.remote.Load(ctx)
	if err != nil {
		return err
	}
	var seg *tiering.Segment
	for i := range m.Segments {
		if m.Segments[i].NextOffset >= localStart {
			seg = &m.Segments[i]
			break
		}
	}
	start := localStart
	var snap []byte
	if seg != nil {
		start = seg.NextOffset
		if snap, err = p.remote.Snapshot(ctx, seg); err != nil {
			return fmt.Errorf("remote producer snapshot: %w", err)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.repl != nil {
		return errNotFollower
	}
	before := p.log.EndOffset()
	if err := p.log.TruncateFullyAndStartAt(start); err != nil {
		return err
	}
	for _, e := range m.Epochs() {
		if e.StartOffset < start {
			if err := p.log.AssignEpoch(e.Epoch, e.StartOffset); err != nil {
				return err
			}
		}
	}
	if snap != nil {
		if err := p.log.WriteSnapshot(start, snap); err != nil {
			return err
		}
	}
	if err := p.restoreProducers(); err != nil {
		return err
	}
	p.hw.Store(start)
	p.logger.Info("follower rebuilt from the remote tier; copying only the local tail",
		"restart.offset", start, "leader.local.start", localStart, "local.end.before", before)
	return nil
}

// OutOfRange handles a fetch offset outside the leader's log: above it
// (this replica had data an unclean election lost) it truncates to the
// leader's end; below it (and not tiered) it restarts at the leader's start.
func (f *followerReplica) OutOfRange(ctx context.Context, t replication.Transport, key replication.Key) error {
	p := (*partition)(f)
	end, err := f.listLeaderOffset(ctx, t, key, tsLatest)
	if err != nil {
		return err
	}
	start, err := f.listLeaderOffset(ctx, t, key, tsEarliest)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.repl != nil {
		return errNotFollower
	}
	leo := p.log.EndOffset()
	switch {
	case leo > end:
		if err := p.log.TruncateTo(end); err != nil {
			return err
		}
		p.logger.Warn("follower was ahead of the leader; truncated", "from", leo, "to", end)
	case leo < start:
		if err := p.log.TruncateFullyAndStartAt(start); err != nil {
			return err
		}
		p.logger.Warn("follower was behind the leader's log start; restarted there", "from", leo, "to", start)
	default:
		return nil
	}
	if p.hw.Load() > p.log.EndOffset() {
		p.hw.Store(p.log.EndOffset())
	}
	return p.restoreProducers()
}

// followerFetched records a follower's fetch on the leader: its log end,
// the high watermark that follows, and, if it caught up, an ISR
// expansion.
func (b *Broker) followerFetched(p *partition, replica int32, fetchOffset int64) {
	p.mu.Lock()
	if p.repl == nil {
		p.mu.Unlock()
		return
	}
	p.repl.FollowerFetched(replica, fetchOffset, p.log.EndOffset(), p.now())
	p.advanceHWLocked()
	expand := !slices.Contains(p.isr, replica) && fetchOffset >= p.hw.Load()
	p.mu.Unlock()
	if expand {
		b.proposeISR(p)
	}
}

// Holds on the next ISR proposal after the controller refused one.
const (
	isrRefusalBackoff    = time.Second
	isrIneligibleBackoff = 25 * time.Millisecond
	// isrSettleMax bounds how long a proposal with no definite answer
	// stays pending while the metadata does not settle it.
	isrSettleMax = 30 * time.Second
)

// isrOutcome sorts an AlterPartition error: refused means the controller
// did not apply the change; stale, that it has a newer partition epoch
// (the change may be in it). Anything else is an unknown outcome.
func isrOutcome(err error) (refused, stale bool) {
	switch {
	case errors.Is(err, controller.ErrInvalidUpdateVersion), errors.Is(err, kerr.InvalidUpdateVersion):
		return false, true
	case errors.Is(err, controller.ErrIneligibleReplica), errors.Is(err, kerr.IneligibleReplica),
		errors.Is(err, controller.ErrFencedLeaderEpoch), errors.Is(err, kerr.FencedLeaderEpoch),
		errors.Is(err, controller.ErrNotLeader), errors.Is(err, kerr.NotLeaderForPartition),
		errors.Is(err, controller.ErrUnknownPartition), errors.Is(err, kerr.UnknownTopicOrPartition),
		errors.Is(err, controller.ErrNotController), errors.Is(err, kerr.NotController):
		return true, false
	}
	return false, false
}

// requestRefresh asks the cluster loop to reread the metadata document.
func (b *Broker) requestRefresh() {
	select {
	case b.refreshNow <- struct{}{}:
	default:
	}
}

// brokerJoined runs when gossip reports a broker (re)joined: on every
// partition led here, the hold after refused ISR proposals is lifted and
// the ISR proposed again, since the controller judges by the live brokers
// and they changed. (What the leader knew of a follower that left the ISR
// is already forgotten: it rejoins by fetching.)
func (b *Broker) brokerJoined() {
	b.forEachPartition(func(_ *topicState, p *partition) {
		p.mu.Lock()
		repl := p.repl
		p.mu.Unlock()
		if repl != nil {
			repl.RetryNow()
			b.proposeISR(p)
		}
	})
}

// proposeISR sends the leader's wanted ISR to the controller, if it
// differs and nothing is in flight. It runs the request in the background.
func (b *Broker) proposeISR(p *partition) {
	p.mu.Lock()
	if p.repl == nil {
		p.mu.Unlock()
		return
	}
	epochStart := int64(0)
	if es := p.log.Epochs(); len(es) > 0 {
		epochStart = es[len(es)-1].StartOffset
	}
	isr, changed := p.repl.ProposeISR(p.hw.Load(), epochStart, p.now())
	if !changed {
		p.mu.Unlock()
		return
	}
	p.repl.Pending(isr, p.partitionEpoch)
	leaderEpoch, partitionEpoch, old := p.leaderEpoch, p.partitionEpoch, slices.Clone(p.isr)
	p.mu.Unlock()
	p.logger.Info("proposing ISR change", "from", fmt.Sprint(old), "to", fmt.Sprint(isr))
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		got, ok := b.sendISR(p, isr, leaderEpoch, partitionEpoch)
		if !ok {
			return
		}
		ctx := b.ctx
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.repl == nil {
			return
		}
		// A late answer may follow the metadata that already carried it
		// (and a newer proposal): only a newer partition epoch applies.
		if got.LeaderEpoch == p.leaderEpoch && got.PartitionEpoch > p.partitionEpoch {
			p.isr = slices.Clone(got.ISR)
			p.partitionEpoch = got.PartitionEpoch
			p.repl.SetAssignment(p.replicas, got.ISR, got.PartitionEpoch, p.now())
		}
		p.repl.Accepted(isr)
		p.advanceHWLocked()
		if len(got.ISR) < len(old) {
			b.metrics.isrShrinks.Add(ctx, 1)
		} else {
			b.metrics.isrExpands.Add(ctx, 1)
		}
	}()
}

// sendISR sends proposal isr to the controller until it has a definite
// answer. A timeout or a store error leaves the outcome unknown: the
// controller may have applied the change. Then the change stays pending,
// so the watermark keeps counting both ISRs, the proposal is sent again
// each second, and the metadata is reread; a newer partition epoch in it
// settles the change (SetAssignment). A stale-epoch answer is not sent
// again (it would be the same), only waited on. ok is false when there is
// nothing to apply: refused (handled by isrRefused), settled by the
// metadata, or the broker is closing.
func (b *Broker) sendISR(p *partition, isr []int32, leaderEpoch, partitionEpoch int32) (controller.Partition, bool) {
	ask := true
	var lastErr error
	for waited := time.Duration(0); ; waited += isrRefusalBackoff {
		if ask {
			ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
			got, err := b.alterPartition(ctx, p, leaderEpoch, partitionEpoch, isr)
			cancel()
			if err == nil {
				return got, true
			}
			refused, stale := isrOutcome(err)
			if refused {
				b.isrRefused(p, isr, err)
				return controller.Partition{}, false
			}
			ask, lastErr = !stale, err
			p.logger.Warn("ISR change without a definite answer; it stays pending until the metadata settles it",
				"isr", fmt.Sprint(isr), "err", err)
		}
		if waited >= isrSettleMax {
			b.isrRefused(p, isr, fmt.Errorf("no definite answer in %v: %w", waited, lastErr))
			return controller.Partition{}, false
		}
		b.requestRefresh()
		t := time.NewTimer(isrRefusalBackoff)
		select {
		case <-b.ctx.Done():
			t.Stop()
			return controller.Partition{}, false
		case <-t.C:
		}
		p.mu.Lock()
		pending := p.repl != nil && p.repl.IsPending(isr)
		p.mu.Unlock()
		if !pending {
			return controller.Partition{}, false // settled by the metadata
		}
	}
}

// isrRefused holds off the next proposal after the controller refused
// isr. A refusal for an ineligible replica is usually a follower that the
// controller's gossip has not seen come back yet (it converges within a
// probe or so): that one is retried after a short wait by this goroutine,
// not at the follower's next fetch, which may be a whole long poll away;
// the hold doubles while refusals go on.
func (b *Broker) isrRefused(p *partition, isr []int32, err error) {
	backoff := isrRefusalBackoff
	ineligible := errors.Is(err, controller.ErrIneligibleReplica) || errors.Is(err, kerr.IneligibleReplica)
	if ineligible {
		backoff = isrIneligibleBackoff
	}
	p.mu.Lock()
	repl := p.repl
	hold := time.Duration(0)
	if repl != nil {
		hold = repl.Refused(isr, p.now(), backoff)
	}
	p.mu.Unlock()
	if repl == nil {
		return
	}
	if hold == 0 {
		// A late answer to a proposal the metadata already settled: no
		// hold, but the ISR may still want the follower it refused.
		hold = backoff
	}
	p.logger.Warn("ISR change refused", "isr", fmt.Sprint(isr), "err", err, "retry.after", hold)
	if !ineligible {
		return
	}
	t := time.NewTimer(hold)
	defer t.Stop()
	select {
	case <-b.ctx.Done():
	case <-t.C:
		b.proposeISR(p) // still inside a goroutine b.wg counts
	}
}

// alterPartition sends an ISR change to the controller: locally when
// this broker is the controller, as an AlterPartition request otherwise.
func (b *Broker) alterPartition(ctx context.Context, p *partition, leaderEpoch, partitionEpoch int32, isr []int32) (controller.Partition, error) {
	if b.ctrl.Active() {
		return b.ctrl.AlterISR(ctx, b.cfg.NodeID, p.topic, p.index, leaderEpoch, partitionEpoch, isr, b.liveSet())
	}
	req := kmsg.NewPtrAlterPartitionRequest()
	req.BrokerID, req.BrokerEpoch = b.cfg.NodeID, -1
	rt := kmsg.NewAlterPartitionRequestTopic()
	rt.Topic, rt.TopicID = p.topic, p.topicID
	rp := kmsg.NewAlterPartitionRequestTopicPartition()
	rp.Partition, rp.LeaderEpoch, rp.PartitionEpoch = p.index, leaderEpoch, partitionEpoch
	rp.NewISR = isr
	for _, r := range isr {
		e := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
		e.BrokerID, e.BrokerEpoch = r, -1
		rp.NewEpochISR = append(rp.NewEpochISR, e)
	}
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	raw, err := b.controllerRequest(ctx, req)
	if err != nil {
		return controller.Partition{}, err
	}
	resp := raw.(*kmsg.AlterPartitionResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return controller.Partition{}, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return controller.Partition{}, errors.New("malformed AlterPartition response")
	}
	r := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
		return controller.Partition{}, err
	}
	return controller.Partition{Leader: r.LeaderID, LeaderEpoch: r.LeaderEpoch, ISR: r.ISR, PartitionEpoch: r.PartitionEpoch}, nil
}

// checkISR runs on the leader's tick: followers that stopped keeping up
// for replica.lag.time.max.ms leave the ISR.
func (b *Broker) checkISR(p *partition) {
	p.mu.Lock()
	leading := p.repl != nil
	p.mu.Unlock()
	if leading {
		b.proposeISR(p)
	}
}
