package broker

// AlterPartition: versions 0 to 3.
//
// A partition's leader asks the controller to change its ISR. Only the
// controller answers; others say NOT_CONTROLLER. v2 names topics by id,
// v3 carries broker epochs in the ISR (Tiercel's brokers have none: -1).

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/broker/controller"
	"github.com/tiercel/tiercel/wire"
)

const (
	alterPartitionMinVersion = 0
	alterPartitionMaxVersion = 3
)

func (b *Broker) handleAlterPartition(ctx context.Context, req *wire.Request) wire.Response {
	in := req.Msg.(*kmsg.AlterPartitionRequest)
	resp := in.ResponseKind().(*kmsg.AlterPartitionResponse)
	resp.Version = req.Version
	if !b.ctrl.Active() {
		resp.ErrorCode = kerr.NotController.Code
		return wire.Msg(resp)
	}
	md := b.ctrl.Current()
	live := b.liveSet()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, t := range in.Topics {
		rt := kmsg.NewAlterPartitionResponseTopic()
		rt.Topic, rt.TopidID = t.Topic, t.TopicID // (sic: kmsg spells it TopidID)
		name := t.Topic
		if req.Version >= 2 {
			if tp := md.TopicByID(controller.TopicID(t.TopicID)); tp != nil {
				name = tp.Name
			}
		}
		for _, tp := range t.Partitions {
			rp := kmsg.NewAlterPartitionResponseTopicPartition()
			rp.Partition = tp.Partition
			isr := tp.NewISR
			if req.Version >= 3 {
				isr = isr[:0:0]
				for _, e := range tp.NewEpochISR {
					isr = append(isr, e.BrokerID)
				}
			}
			got, err := b.ctrl.AlterISR(ctx, in.BrokerID, name, tp.Partition, tp.LeaderEpoch, tp.PartitionEpoch, isr, live)
			if err != nil {
				rp.ErrorCode = alterPartitionCode(b, err)
			} else {
				rp.LeaderID, rp.LeaderEpoch, rp.ISR, rp.PartitionEpoch = got.Leader, got.LeaderEpoch, got.ISR, got.PartitionEpoch
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return wire.Msg(resp)
}

func alterPartitionCode(b *Broker, err error) int16 {
	switch {
	case errors.Is(err, controller.ErrFencedLeaderEpoch):
		return kerr.FencedLeaderEpoch.Code
	case errors.Is(err, controller.ErrNotLeader):
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, controller.ErrInvalidUpdateVersion):
		return kerr.InvalidUpdateVersion.Code
	case errors.Is(err, controller.ErrIneligibleReplica):
		return kerr.IneligibleReplica.Code
	case errors.Is(err, controller.ErrUnknownPartition):
		return kerr.UnknownTopicOrPartition.Code
	}
	return errCode(b.logger, err)
}
