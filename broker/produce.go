package broker

// Produce: versions 3 to 11.
//
// v3 is the first version that carries record batch v2, the only format
// Tiercel stores; v11 is Kafka 3.9's maximum (KIP-951 leader hints).

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tiercel/tiercel/wire"
	"github.com/tiercel/tiercel/wire/batch"
)

const (
	produceMinVersion = 3
	produceMaxVersion = 11
)

// diskFullThrottleMs asks clients to back off while the disk is full.
const diskFullThrottleMs = 1000

// pendingAck is a partition whose acks=all answer waits for the high
// watermark to pass its last offset.
type pendingAck struct {
	p      *partition
	resp   *kmsg.ProduceResponseTopicPartition
	target int64
}

func (b *Broker) handleProduce(ctx context.Context, req *wire.Request) wire.Response {
	in := req.Msg.(*kmsg.ProduceRequest)
	_, span := b.tracer.Start(ctx, "produce", trace.WithAttributes(
		attribute.Int("acks", int(in.Acks)), attribute.Int("topics", len(in.Topics))))
	resp := in.ResponseKind().(*kmsg.ProduceResponse)
	resp.Version = req.Version
	if in.TransactionID != nil {
		b.logger.Warn("transactional produce refused: transactions are not supported yet",
			"client", req.Client.Addr, "transactional.id", *in.TransactionID)
	}
	// The response slices are allocated whole before any address is
	// taken, so pending acks can point into them.
	var pending []pendingAck
	// Partitions appended to, whose parked follower fetches are woken
	// once the whole request is appended (see appendBatch).
	var appended []*partition
	failed := false
	leaders := map[int32]bool{}
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(in.Topics))
	for i := range in.Topics {
		t := &in.Topics[i]
		rt := &resp.Topics[i]
		rt.Default()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(t.Partitions))
		for j := range t.Partitions {
			tp := &t.Partitions[j]
			rp := &rt.Partitions[j]
			rp.Default()
			rp.Partition = tp.Partition
			p, last, err := b.produceOne(in, t.Topic, tp, rp)
			if err != nil {
				failed = true
				rp.ErrorCode = errCode(b.logger, err)
				rp.BaseOffset = -1
				if req.Version >= 8 {
					rp.ErrorMessage = errMessage(err)
				}
				if errors.Is(err, kerr.NotLeaderForPartition) && req.Version >= 10 {
					if leader, epoch, ok := b.leaderHint(t.Topic, tp.Partition); ok {
						rp.CurrentLeader.LeaderID, rp.CurrentLeader.LeaderEpoch = leader, epoch
						leaders[leader] = true
					}
				}
				continue
			}
			if len(appended) == 0 || appended[len(appended)-1] != p {
				appended = append(appended, p)
			}
			if in.Acks == -1 && p.HighWatermark() <= last {
				pending = append(pending, pendingAck{p: p, resp: rp, target: last + 1})
			}
		}
	}
	// Followers wait for the log end, not the watermark: tell them now,
	// since their next fetch is what moves the watermark for acks=all.
	for _, p := range appended {
		p.wakeFollowers()
	}
	if req.Version >= 10 && len(leaders) > 0 {
		resp.Brokers = b.produceBrokers(leaders)
	}
	if failed && b.diskFull.Load() {
		resp.ThrottleMillis = diskFullThrottleMs
	}
	if failed {
		span.SetStatus(codes.Error, "some partitions failed")
	}
	if in.Acks == 0 {
		span.End()
		if failed {
			// The client reads no answer; closing tells it something went
			// wrong, as Kafka does.
			return wire.CloseConnection
		}
		return wire.NoResponse
	}
	if len(pending) == 0 {
		span.End()
		return wire.Msg(resp)
	}
	timeout := time.Duration(in.TimeoutMillis) * time.Millisecond
	return wire.Deferred(func(ctx context.Context) (kmsg.Response, error) {
		defer span.End()
		span.AddEvent("appended; waiting for the high watermark")
		if err := b.awaitAcks(ctx, pending, timeout); err != nil {
			return nil, err
		}
		return resp, nil
	})
}

// produceOne validates and appends one partition's records.
func (b *Broker) produceOne(in *kmsg.ProduceRequest, topic string, tp *kmsg.ProduceRequestTopicPartition, rp *kmsg.ProduceResponseTopicPartition) (*partition, int64, error) {
	if in.Acks != 0 && in.Acks != 1 && in.Acks != -1 {
		return nil, 0, fmt.Errorf("%w: acks=%d", kerr.InvalidRequiredAcks, in.Acks)
	}
	t, p := b.lookup(topic, tp.Partition)
	if t == nil {
		return nil, 0, fmt.Errorf("%w: topic %q", kerr.UnknownTopicOrPartition, topic)
	}
	if p == nil {
		if tp.Partition < 0 || int(tp.Partition) >= len(t.partitions) {
			return nil, 0, fmt.Errorf("%w: %s-%d", kerr.UnknownTopicOrPartition, topic, tp.Partition)
		}
		return nil, 0, kerr.NotLeaderForPartition
	}
	if t.meta.Internal {
		return nil, 0, fmt.Errorf("%w: %s is an internal topic", kerr.InvalidTopicException, topic)
	}
	if b.diskFull.Load() {
		// Retriable: clients back off and retry, and by then offload may
		// have freed space.
		return nil, 0, fmt.Errorf("%w: %v", kerr.KafkaStorageError, errDiskFull)
	}
	raw := tp.Records
	if len(raw) == 0 {
		return nil, 0, fmt.Errorf("%w: no records", kerr.CorruptMessage)
	}
	s := p.settings()
	h, err := batch.Validate(raw)
	if err != nil {
		if size, ok := batch.PeekSize(raw); ok && size < len(raw) {
			// Kafka accepts one batch per partition in v3+. Say so when
			// the extra bytes are a second batch rather than garbage.
			if _, err1 := batch.Validate(raw[:size]); err1 == nil {
				if _, err2 := batch.ParseHeader(raw[size:]); err2 == nil {
					return nil, 0, fmt.Errorf("%w: a produce request must carry exactly one record batch per partition", kerr.InvalidRecord)
				}
			}
		}
		return nil, 0, err
	}
	if len(raw) > s.MaxMessageBytes {
		return nil, 0, fmt.Errorf("%w: batch of %d bytes exceeds max.message.bytes %d", kerr.MessageTooLarge, len(raw), s.MaxMessageBytes)
	}
	if h.IsControl() {
		return nil, 0, fmt.Errorf("%w: clients may not write control batches", kerr.InvalidRecord)
	}
	if h.IsTransactional() || in.TransactionID != nil {
		return nil, 0, fmt.Errorf("%w: transactions are not supported by this broker yet", kerr.InvalidRecord)
	}
	if err := b.checkRecords(raw, &h, s); err != nil {
		return nil, 0, err
	}
	res, err := p.appendBatch(b.cfg.NodeID, raw, &h, in.Acks)
	if err != nil {
		return nil, 0, err
	}
	if !res.duplicate {
		b.metrics.bytesIn.Add(context.Background(), int64(len(raw)), t.attrs)
		b.metrics.messagesIn.Add(context.Background(), int64(h.RecordCount), t.attrs)
	}
	rp.BaseOffset = res.baseOffset
	rp.LogAppendTime = res.logAppendTime
	rp.LogStartOffset = res.logStart
	return p, res.lastOffset, nil
}

// checkRecords walks the records (inflating compressed ones), checking
// that they parse, that their count matches the header, and that their
// timestamps are within the topic's window for CreateTime topics.
func (b *Broker) checkRecords(raw []byte, h *batch.Header, s *topicSettings) error {
	checkTS := !s.LogAppendTime && (s.TimestampBeforeMaxMs >= 0 || s.TimestampAfterMaxMs >= 0)
	now := b.now().UnixMilli()
	err := batch.Records(raw, func(r batch.Record) error {
		if !checkTS {
			return nil
		}
		ts := h.BaseTimestamp + r.TimestampDelta
		if s.TimestampBeforeMaxMs >= 0 && ts < now-s.TimestampBeforeMaxMs {
			return fmt.Errorf("%w: timestamp %d is more than message.timestamp.before.max.ms=%d before broker time %d", kerr.InvalidTimestamp, ts, s.TimestampBeforeMaxMs, now)
		}
		if s.TimestampAfterMaxMs >= 0 && ts > now+s.TimestampAfterMaxMs {
			return fmt.Errorf("%w: timestamp %d is more than message.timestamp.after.max.ms=%d after broker time %d", kerr.InvalidTimestamp, ts, s.TimestampAfterMaxMs, now)
		}
		return nil
	})
	return err
}

// awaitAcks waits until each partition's high watermark passes its
// append, or the request times out (REQUEST_TIMED_OUT for the laggards).
// When the ISR has shrunk below min.insync.replicas by the time the
// watermark passes, the answer is NOT_ENOUGH_REPLICAS_AFTER_APPEND, as in
// Kafka: the records are in, but not as durably as asked.
func (b *Broker) awaitAcks(ctx context.Context, acks []pendingAck, timeout time.Duration) error {
	b.metrics.pendingAcks.Add(1)
	defer b.metrics.pendingAcks.Add(-1)
	wake := make(chan struct{}, 1)
	for _, a := range acks {
		a.p.addWaiter(wake)
	}
	defer func() {
		for _, a := range acks {
			a.p.removeWaiter(wake)
		}
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	remaining := len(acks)
	done := make([]bool, len(acks))
	for {
		for i, a := range acks {
			if done[i] {
				continue
			}
			isLeader, _, _ := a.p.leaderState(b.cfg.NodeID)
			switch {
			case !isLeader:
				a.resp.ErrorCode = kerr.NotLeaderForPartition.Code
			case a.p.HighWatermark() >= a.target:
				if a.p.isrSize() < a.p.settings().MinInsyncReplicas {
					a.resp.ErrorCode = kerr.NotEnoughReplicasAfterAppend.Code
				}
			default:
				continue
			}
			done[i] = true
			remaining--
		}
		if remaining == 0 {
			return nil
		}
		select {
		case <-wake:
		case <-timer.C:
			for i, a := range acks {
				if !done[i] {
					a.resp.ErrorCode = kerr.RequestTimedOut.Code
				}
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// leaderHint returns the current leader of a partition for KIP-951.
func (b *Broker) leaderHint(topic string, index int32) (leader, epoch int32, ok bool) {
	t := b.current().md.Topics[topic]
	if t == nil || index < 0 || int(index) >= len(t.Partitions) {
		return 0, 0, false
	}
	pa := t.Partitions[index]
	return pa.Leader, pa.LeaderEpoch, pa.Leader >= 0
}
