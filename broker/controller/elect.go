package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Decisions about leadership and ISRs, made by the active controller and
// written into the document like every other change.

// Errors for AlterPartition, mapped to Kafka codes by the broker.
var (
	// ErrFencedLeaderEpoch: the request names an older leader epoch.
	ErrFencedLeaderEpoch = errors.New("leader epoch is not the current one")
	// ErrNotLeader: the requester does not lead the partition.
	ErrNotLeader = errors.New("requester is not the partition's leader")
	// ErrInvalidUpdateVersion: the partition epoch moved since the
	// requester read it.
	ErrInvalidUpdateVersion = errors.New("partition epoch is not the current one")
	// ErrIneligibleReplica: the new ISR names a replica that is not
	// assigned or not alive.
	ErrIneligibleReplica = errors.New("ISR names an ineligible replica")
	// ErrUnknownPartition: no such partition.
	ErrUnknownPartition = errors.New("unknown partition")
)

// ElectionResult counts what an election pass changed.
type ElectionResult struct {
	Elected   int // partitions given a new leader
	Offline   int // partitions left without a leader
	ISRShrunk int // partitions whose ISR lost dead brokers
}

// Unclean reports whether a topic allows an out-of-sync replica to become
// leader (unclean.leader.election.enable). The broker answers it from the
// topic's configs.
type Unclean func(t *Topic) bool

// Reconcile brings leadership in line with the live brokers: a partition
// whose leader is gone gets a new one from its ISR (or, if the topic
// allows it, from any live replica), dead brokers leave ISRs, and an
// offline partition whose ISR member is back is led again. Every leader
// change bumps the leader epoch. It writes nothing when nothing changes.
func (c *Controller) Reconcile(ctx context.Context, live map[int32]bool, unclean Unclean) (ElectionResult, error) {
	var res ElectionResult
	_, err := c.Update(ctx, func(md *Metadata) error {
		res = ElectionResult{}
		changed := false
		for _, name := range md.TopicNames() {
			t := md.Topics[name]
			for i := range t.Partitions {
				p := &t.Partitions[i]
				if reconcilePartition(p, live, unclean != nil && unclean(t), &res) {
					changed = true
				}
			}
		}
		if !changed {
			return errNothingToDo
		}
		return nil
	})
	if errors.Is(err, errNothingToDo) {
		return res, nil
	}
	if err == nil && (res.Elected > 0 || res.Offline > 0 || res.ISRShrunk > 0) {
		c.cfg.Logger.Info("leaders elected", "elected", res.Elected, "offline", res.Offline, "isr.shrunk", res.ISRShrunk)
	}
	return res, err
}

func reconcilePartition(p *Partition, live map[int32]bool, unclean bool, res *ElectionResult) bool {
	liveISR := filter(p.ISR, func(r int32) bool { return live[r] })
	if p.Leader >= 0 && live[p.Leader] {
		// Leader fine; drop dead replicas from the ISR, never the leader.
		if len(liveISR) != len(p.ISR) && slices.Contains(liveISR, p.Leader) {
			p.ISR = liveISR
			p.PartitionEpoch++
			res.ISRShrunk++
			return true
		}
		return false
	}
	// Choose in replica order, so the preferred replica wins when it can.
	var leader int32 = -1
	for _, r := range p.Replicas {
		if slices.Contains(liveISR, r) {
			leader = r
			break
		}
	}
	if leader < 0 && unclean {
		for _, r := range p.Replicas {
			if live[r] {
				leader = r
				liveISR = []int32{r}
				break
			}
		}
	}
	if leader < 0 {
		if p.Leader == -1 {
			return false // already offline
		}
		// Offline: keep the last ISR, so the first of them back leads.
		p.Leader = -1
		p.LeaderEpoch++
		p.PartitionEpoch++
		res.Offline++
		return true
	}
	p.Leader = leader
	p.ISR = liveISR
	p.LeaderEpoch++
	p.PartitionEpoch++
	res.Elected++
	return true
}

func filter(ids []int32, keep func(int32) bool) []int32 {
	out := []int32{}
	for _, id := range ids {
		if keep(id) {
			out = append(out, id)
		}
	}
	return out
}

// PreferredLeaders moves leadership back to each partition's first
// replica where it is alive and in sync.
func (c *Controller) PreferredLeaders(ctx context.Context, live map[int32]bool) (int, error) {
	n := 0
	_, err := c.Update(ctx, func(md *Metadata) error {
		n = 0
		for _, t := range md.Topics {
			for i := range t.Partitions {
				p := &t.Partitions[i]
				pref := p.Replicas[0]
				if p.Leader != pref && live[pref] && slices.Contains(p.ISR, pref) {
					p.Leader = pref
					p.LeaderEpoch++
					p.PartitionEpoch++
					n++
				}
			}
		}
		if n == 0 {
			return errNothingToDo
		}
		return nil
	})
	if errors.Is(err, errNothingToDo) {
		return 0, nil
	}
	if err == nil {
		c.cfg.Logger.Info("preferred leaders restored", "partitions", n)
	}
	return n, err
}

// AlterISR applies an ISR change proposed by a partition's leader
// (AlterPartition). The request must come from the current leader at the
// current leader and partition epochs; every new ISR member must be an
// assigned, live replica. It returns the partition as written.
func (c *Controller) AlterISR(ctx context.Context, broker int32, topic string, index int32, leaderEpoch, partitionEpoch int32, isr []int32, live map[int32]bool) (Partition, error) {
	var out Partition
	_, err := c.Update(ctx, func(md *Metadata) error {
		t := md.Topics[topic]
		if t == nil || index < 0 || int(index) >= len(t.Partitions) {
			return fmt.Errorf("%w: %s-%d", ErrUnknownPartition, topic, index)
		}
		p := &t.Partitions[index]
		switch {
		case p.Leader != broker:
			return fmt.Errorf("%w: %s-%d is led by %d, not %d", ErrNotLeader, topic, index, p.Leader, broker)
		case leaderEpoch != p.LeaderEpoch:
			return fmt.Errorf("%w: %s-%d is at leader epoch %d, request has %d", ErrFencedLeaderEpoch, topic, index, p.LeaderEpoch, leaderEpoch)
		case partitionEpoch != p.PartitionEpoch:
			return fmt.Errorf("%w: %s-%d is at partition epoch %d, request has %d", ErrInvalidUpdateVersion, topic, index, p.PartitionEpoch, partitionEpoch)
		}
		for _, r := range isr {
			if !slices.Contains(p.Replicas, r) || (!live[r] && !slices.Contains(p.ISR, r)) {
				return fmt.Errorf("%w: %d in %s-%d", ErrIneligibleReplica, r, topic, index)
			}
		}
		if !slices.Contains(isr, broker) {
			return fmt.Errorf("%w: the leader %d must stay in the ISR", ErrIneligibleReplica, broker)
		}
		out = *p
		if sameSet(p.ISR, isr) {
			return errNothingToDo
		}
		p.ISR = slices.Clone(isr)
		p.PartitionEpoch++
		out = *p
		return nil
	})
	if errors.Is(err, errNothingToDo) {
		return out, nil
	}
	return out, err
}

// ShutdownBroker moves leadership away from a broker that is stopping and
// takes it out of every ISR it can leave (controlled shutdown). It returns
// how many partitions it still leads: those with no other in-sync replica.
func (c *Controller) ShutdownBroker(ctx context.Context, broker int32, live map[int32]bool) (int, error) {
	remaining := 0
	_, err := c.Update(ctx, func(md *Metadata) error {
		remaining = 0
		changed := false
		for _, t := range md.Topics {
			for i := range t.Partitions {
				p := &t.Partitions[i]
				others := filter(p.ISR, func(r int32) bool { return r != broker && live[r] })
				if p.Leader == broker {
					if len(others) == 0 {
						remaining++
						continue
					}
					next := int32(-1)
					for _, r := range p.Replicas {
						if slices.Contains(others, r) {
							next = r
							break
						}
					}
					p.Leader = next
					p.ISR = others
					p.LeaderEpoch++
					p.PartitionEpoch++
					changed = true
					continue
				}
				if slices.Contains(p.ISR, broker) && len(others) > 0 {
					p.ISR = filter(p.ISR, func(r int32) bool { return r != broker })
					p.PartitionEpoch++
					changed = true
				}
			}
		}
		if !changed {
			return errNothingToDo
		}
		return nil
	})
	if errors.Is(err, errNothingToDo) {
		err = nil
	}
	if err == nil {
		c.cfg.Logger.Info("controlled shutdown", "broker", broker, "still.leading", remaining)
	}
	return remaining, err
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
