package broker

// OffsetForLeaderEpoch: versions 0 to 4.
//
// A replica (or a consumer validating its position after a leader change,
// KIP-320) asks where a leader epoch ended; the answer comes from the
// leader-epoch checkpoint. v2 adds the caller's current epoch for fencing,
// v3 the replica id.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/wire"
)

const (
	offsetForLeaderEpochMinVersion = 0
	offsetForLeaderEpochMaxVersion = 4
)

func (b *Broker) handleOffsetForLeaderEpoch(ctx context.Context, req *wire.Request) wire.Response {
	in := req.Msg.(*kmsg.OffsetForLeaderEpochRequest)
	resp := in.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	resp.Version = req.Version
	for _, t := range in.Topics {
		rt := kmsg.NewOffsetForLeaderEpochResponseTopic()
		rt.Topic = t.Topic
		for _, tp := range t.Partitions {
			rp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			rp.Partition = tp.Partition
			rp.LeaderEpoch, rp.EndOffset = -1, -1
			rp.ErrorCode = b.endOffsetForEpoch(req.Version, t.Topic, &tp, &rp)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return wire.Msg(resp)
}

func (b *Broker) endOffsetForEpoch(version int16, topic string, tp *kmsg.OffsetForLeaderEpochRequestTopicPartition, rp *kmsg.OffsetForLeaderEpochResponseTopicPartition) int16 {
	t, p := b.lookup(topic, tp.Partition)
	switch {
	case t == nil, tp.Partition < 0 || int(tp.Partition) >= len(t.partitions):
		return kerr.UnknownTopicOrPartition.Code
	case p == nil:
		return kerr.NotLeaderForPartition.Code
	}
	isLeader, _, epoch := p.leaderState(b.cfg.NodeID)
	if !isLeader {
		return kerr.NotLeaderForPartition.Code
	}
	if version >= 2 && tp.CurrentLeaderEpoch >= 0 {
		switch {
		case tp.CurrentLeaderEpoch < epoch:
			return kerr.FencedLeaderEpoch.Code
		case tp.CurrentLeaderEpoch > epoch:
			return kerr.UnknownLeaderEpoch.Code
		}
	}
	rp.LeaderEpoch, rp.EndOffset = p.log.EndOffsetForEpoch(tp.LeaderEpoch)
	return 0
}
