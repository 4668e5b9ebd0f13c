package broker

// DeleteRecords: versions 0 to 2.
//
// Moves a partition's log start offset up to the requested offset (KIP-107):
// records below it can no longer be read, and segments wholly below it are
// deleted. -1 means the high watermark. Per partition, as Kafka checks:
// Kafka's internal topics are INVALID_TOPIC_EXCEPTION; an unknown topic or
// partition UNKNOWN_TOPIC_OR_PARTITION; a partition this broker does not
// lead NOT_LEADER_OR_FOLLOWER; a topic whose cleanup.policy lacks "delete"
// POLICY_VIOLATION; an offset that is negative (other than -1) or above the
// high watermark OFFSET_OUT_OF_RANGE. An offset at or below the current
// start changes nothing. The answer's LowWatermark is the log start offset
// afterwards.
//
// The new start is persisted by the log before segments go, so it survives
// a restart. Producer state needs no change: producers whose batches now lie
// below the start keep their sequence state until they expire, as in Kafka.
//
// With replication, LowWatermark becomes the smallest log start offset of
// the replicas, and the answer waits (up to TimeoutMillis) for followers to
// reach the new start, as Kafka's delete-records purgatory does. With
// tiering, the start offset also bounds the remote log.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/broker/controller"
	plog "github.com/tiercel/tiercel/broker/log"
	"github.com/tiercel/tiercel/wire"
)

const (
	deleteRecordsMinVersion = 0
	deleteRecordsMaxVersion = 2
)

// deleteToHighWatermark is the offset that stands for the high watermark.
const deleteToHighWatermark = -1

func (b *Broker) handleDeleteRecords(ctx context.Context, req *wire.Request) wire.Response {
	in := req.Msg.(*kmsg.DeleteRecordsRequest)
	resp := in.ResponseKind().(*kmsg.DeleteRecordsResponse)
	resp.Version = req.Version
	for _, t := range in.Topics {
		rt := kmsg.NewDeleteRecordsResponseTopic()
		rt.Topic = t.Topic
		for _, tp := range t.Partitions {
			rp := kmsg.NewDeleteRecordsResponseTopicPartition()
			rp.Partition = tp.Partition
			low, err := b.deleteRecords(t.Topic, tp.Partition, tp.Offset)
			if err != nil {
				rp.ErrorCode = errCode(b.logger, err)
				rp.LowWatermark = -1
			} else {
				rp.LowWatermark = low
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return wire.Msg(resp)
}

// deleteRecords moves one partition's log start and returns the new low
// watermark.
func (b *Broker) deleteRecords(topic string, index int32, offset int64) (int64, error) {
	t, p := b.lookup(topic, index)
	var meta *controller.Topic
	if t != nil {
		meta = t.meta
	}
	switch {
	case isInternalTopic(topic, meta):
		return 0, fmt.Errorf("%w: cannot delete records of internal topic %s", kerr.InvalidTopicException, topic)
	case t == nil, index < 0 || int(index) >= len(t.partitions):
		return 0, kerr.UnknownTopicOrPartition
	case p == nil:
		return 0, kerr.NotLeaderForPartition
	}
	if !slices.Contains(p.settings().topic.CleanupPolicy, "delete") {
		return 0, fmt.Errorf("%w: records of %s-%d cannot be deleted because of its cleanup.policy", kerr.PolicyViolation, topic, index)
	}

	p.mu.Lock()
	isLeader, epoch := p.leader == b.cfg.NodeID, p.leaderEpoch
	hw := p.hw.Load()
	p.mu.Unlock()
	if !isLeader {
		return 0, kerr.NotLeaderForPartition
	}
	if offset == deleteToHighWatermark {
		offset = hw
	}
	switch {
	case offset < 0:
		return 0, fmt.Errorf("%w: the offset %d for partition %s-%d is not valid", kerr.OffsetOutOfRange, offset, topic, index)
	case offset > hw:
		return 0, fmt.Errorf("%w: cannot increment the log start offset to %d of partition %s-%d since it is larger than the high watermark %d",
			kerr.OffsetOutOfRange, offset, topic, index, hw)
	}
	before := p.logStartOffset()
	if offset <= before {
		return before, nil
	}
	// The remote tier first: once its manifest starts later, the records
	// are gone for readers even if a local copy lingers a moment.
	if p.tiered() || (p.remote != nil && !p.remote.Manifest().Empty()) {
		ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
		dropped, err := p.remote.SetStartOffset(ctx, epoch, offset)
		if err == nil {
			err = p.remote.DeleteObjects(ctx, dropped)
			if err != nil {
				// The manifest no longer names them: the sweeper finishes.
				p.logger.Warn("deleting remote segments failed; the sweeper will retry", "err", err)
				err = nil
			}
		}
		cancel()
		if err != nil {
			return 0, fmt.Errorf("%w: delete records of %s-%d in the remote tier: %v", kerr.KafkaStorageError, topic, index, err)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if offset > p.log.StartOffset() {
		if err := p.log.SetStartOffset(offset); err != nil {
			if errors.Is(err, plog.ErrClosed) {
				// The topic was deleted under us.
				return 0, kerr.UnknownTopicOrPartition
			}
			if errors.Is(err, plog.ErrOffsetOutOfRange) {
				return 0, fmt.Errorf("%w: %v", kerr.OffsetOutOfRange, err)
			}
			return 0, fmt.Errorf("%w: delete records of %s-%d: %v", kerr.KafkaStorageError, topic, index, err)
		}
	}
	start := p.logStartOffset()
	if start > before {
		p.logger.Info("records deleted by request", "log.start.offset", start, "was", before)
		// Parked fetches below the new start must learn they are out of
		// range now, not at the end of their wait.
		p.wake()
	}
	return start, nil
}
