package broker

// ListOffsets: versions 1 to 9.
//
// Special timestamps: -1 latest (the high watermark, or the last stable
// offset under read_committed), -2 earliest, -3 the record with the largest
// timestamp (KIP-734, v7+), -4 the earliest offset still on local disk and
// -5 the latest offset in the remote tier (KIP-1005, v8+ and v9+).
// Any other timestamp finds the first record at or after it.

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/wire"
)

const (
	listOffsetsMinVersion = 1
	listOffsetsMaxVersion = 9
)

// Special timestamps of ListOffsets.
const (
	tsLatest        = -1
	tsEarliest      = -2
	tsMaxTimestamp  = -3
	tsEarliestLocal = -4
	tsLatestTiered  = -5
)

func (b *Broker) handleListOffsets(ctx context.Context, req *wire.Request) wire.Response {
	in := req.Msg.(*kmsg.ListOffsetsRequest)
	resp := in.ResponseKind().(*kmsg.ListOffsetsResponse)
	resp.Version = req.Version
	for _, t := range in.Topics {
		rt := kmsg.NewListOffsetsResponseTopic()
		rt.Topic = t.Topic
		for _, tp := range t.Partitions {
			rp := kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition = tp.Partition
			if err := b.listOffset(req.Version, in.IsolationLevel, in.ReplicaID, t.Topic, &tp, &rp); err != nil {
				rp.ErrorCode = errCode(b.logger, err)
				rp.Timestamp, rp.Offset = -1, -1
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return wire.Msg(resp)
}

func (b *Broker) listOffset(version int16, isolation int8, replica int32, topic string, tp *kmsg.ListOffsetsRequestTopicPartition, rp *kmsg.ListOffsetsResponseTopicPartition) error {
	t, p := b.lookup(topic, tp.Partition)
	switch {
	case t == nil:
		return kerr.UnknownTopicOrPartition
	case tp.Partition < 0 || int(tp.Partition) >= len(t.partitions):
		return kerr.UnknownTopicOrPartition
	case p == nil:
		return kerr.NotLeaderForPartition
	}
	isLeader, _, epoch := p.leaderState(b.cfg.NodeID)
	if !isLeader {
		return kerr.NotLeaderForPartition
	}
	if version >= 4 && tp.CurrentLeaderEpoch >= 0 {
		switch {
		case tp.CurrentLeaderEpoch < epoch:
			return kerr.FencedLeaderEpoch
		case tp.CurrentLeaderEpoch > epoch:
			return kerr.UnknownLeaderEpoch
		}
	}
	rp.LeaderEpoch = epoch
	rp.Timestamp = -1
	hw := p.HighWatermark()
	ctx, cancel := context.WithTimeout(context.Background(), listOffsetsRemoteTimeout)
	defer cancel()
	switch ts := tp.Timestamp; {
	case ts == tsLatest && replica >= 0:
		rp.Offset = p.log.EndOffset() // a follower asks for the leader's log end
	case ts == tsLatest:
		rp.Offset = hw // no transactions: the last stable offset is the HW
	case ts == tsEarliest:
		rp.Offset = p.logStartOffset()
	case ts == tsEarliestLocal && version >= 8:
		rp.Offset = p.log.StartOffset()
	case ts == tsLatestTiered && version >= 9:
		// KIP-1005: the highest offset in the remote tier, -1 if none.
		if next := p.remoteNext(); next > 0 {
			rp.Offset = next - 1
		} else {
			rp.Offset = -1
		}
	case ts == tsMaxTimestamp && version >= 7:
		off, mts, found, err := p.maxTimestamp(ctx)
		if err != nil {
			return err
		}
		if !found || off >= hw {
			rp.Offset, rp.Timestamp = -1, -1
			return nil
		}
		rp.Offset, rp.Timestamp = off, mts
	case ts >= 0:
		off, fts, found, err := p.offsetForTimestamp(ctx, ts)
		if err != nil {
			return err
		}
		if !found || off >= hw {
			rp.Offset, rp.Timestamp = -1, -1
			return nil
		}
		rp.Offset, rp.Timestamp = off, fts
	default:
		return fmt.Errorf("%w: timestamp %d", kerr.InvalidRequest, ts)
	}
	_ = isolation
	return nil
}

// listOffsetsRemoteTimeout bounds a time lookup in the remote tier.
const listOffsetsRemoteTimeout = 10 * time.Second

// offsetForTimestamp searches the remote tier, then the local log: the
// first record at or after ts may be in either.
func (p *partition) offsetForTimestamp(ctx context.Context, ts int64) (int64, int64, bool, error) {
	localStart := p.log.StartOffset()
	if p.remote != nil {
		if m := p.remote.Manifest(); !m.Empty() && m.StartOffset() < localStart {
			off, rts, found, err := p.remote.OffsetForTimestamp(ctx, ts)
			if err != nil {
				return 0, 0, false, fmt.Errorf("%w: remote time lookup: %v", kerr.KafkaStorageError, err)
			}
			if found && off < localStart {
				return off, rts, true, nil
			}
		}
	}
	off, fts, found, err := p.log.OffsetForTimestamp(ts)
	if err != nil {
		return 0, 0, false, fmt.Errorf("%w: %v", kerr.KafkaStorageError, err)
	}
	return off, fts, found, nil
}

// maxTimestamp finds the record with the largest timestamp across both
// tiers; on a tie the earlier offset wins, as in Kafka.
func (p *partition) maxTimestamp(ctx context.Context) (int64, int64, bool, error) {
	off, mts, found, err := p.log.MaxTimestamp()
	if err != nil {
		return 0, 0, false, fmt.Errorf("%w: %v", kerr.KafkaStorageError, err)
	}
	if p.remote == nil {
		return off, mts, found, nil
	}
	m := p.remote.Manifest()
	localStart := p.log.StartOffset()
	best := int64(-1)
	for _, s := range m.Segments {
		if s.BaseOffset < localStart && s.MaxTimestamp > best && s.NextOffset > m.StartOffset() {
			best = s.MaxTimestamp
		}
	}
	if best < 0 || (found && best < mts) {
		return off, mts, found, nil
	}
	roff, rts, rfound, err := p.remote.OffsetForTimestamp(ctx, best)
	if err != nil {
		return 0, 0, false, fmt.Errorf("%w: remote lookup: %v", kerr.KafkaStorageError, err)
	}
	if rfound && rts == best && roff < localStart {
		return roff, rts, true, nil
	}
	return off, mts, found, nil
}
