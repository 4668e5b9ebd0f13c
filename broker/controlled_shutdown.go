package broker

// ControlledShutdown: versions 0 to 3.
//
// A broker that is stopping asks the controller to move its leaderships
// to other in-sync replicas and to take it out of the ISRs, so that no
// partition is unavailable while it goes. The answer lists the partitions
// it still leads (those with no other in-sync replica); it asks again
// until none are left or it gives up.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/wire"
)

const (
	controlledShutdownMinVersion = 0
	controlledShutdownMaxVersion = 3
)

func (b *Broker) handleControlledShutdown(ctx context.Context, req *wire.Request) wire.Response {
	in := req.Msg.(*kmsg.ControlledShutdownRequest)
	resp := in.ResponseKind().(*kmsg.ControlledShutdownResponse)
	resp.Version = req.Version
	if !b.ctrl.Active() {
		resp.ErrorCode = kerr.NotController.Code
		return wire.Msg(resp)
	}
	remaining, err := b.controlledShutdown(ctx, in.BrokerID)
	if err != nil {
		resp.ErrorCode = errCode(b.logger, err)
		return wire.Msg(resp)
	}
	resp.PartitionsRemaining = append(resp.PartitionsRemaining, remaining...)
	return wire.Msg(resp)
}

// controlledShutdown, on the controller, moves leadership away from
// broker and lists what it still leads.
func (b *Broker) controlledShutdown(ctx context.Context, broker int32) ([]kmsg.ControlledShutdownResponsePartitionsRemaining, error) {
	live := b.liveSet()
	delete(live, broker)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := b.ctrl.ShutdownBroker(ctx, broker, live); err != nil {
		return nil, err
	}
	var out []kmsg.ControlledShutdownResponsePartitionsRemaining
	for _, t := range b.ctrl.Current().Topics {
		for i, p := range t.Partitions {
			if p.Leader == broker {
				rp := kmsg.NewControlledShutdownResponsePartitionsRemaining()
				rp.Topic, rp.Partition = t.Name, int32(i)
				out = append(out, rp)
			}
		}
	}
	return out, nil
}

// ControlledShutdown moves this broker's leaderships to other in-sync
// replicas before it stops (on SIGTERM), so clients switch leaders at
// once instead of waiting for a failure to be detected. Alone, there is
// nowhere to move them, and it returns at once.
func (b *Broker) ControlledShutdown(ctx context.Context) error {
	if b.cfg.Gossip == nil || len(b.liveBrokers()) < 2 {
		return nil
	}
	for attempt := 0; ; attempt++ {
		remaining, err := b.requestControlledShutdown(ctx)
		if err == nil && remaining == 0 {
			break
		}
		if err != nil {
			b.logger.Warn("controlled shutdown request failed; retrying", "err", err)
		} else {
			b.logger.Info("controlled shutdown: still leading partitions with no other in-sync replica", "partitions", remaining)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		if attempt >= 10 {
			return nil // give up moving the rest; they fail over when we are gone
		}
	}
	// Wait until this broker has applied the moves, so that it answers
	// NOT_LEADER with the new leader for anything still in flight.
	for ctx.Err() == nil {
		if err := b.ctrl.Refresh(ctx); err != nil {
			return err
		}
		leading := 0
		b.forEachPartition(func(_ *topicState, p *partition) {
			if ok, _, _ := p.leaderState(b.cfg.NodeID); ok {
				leading++
			}
		})
		if leading == 0 {
			b.logger.Info("controlled shutdown: leadership moved to other brokers")
			return nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return ctx.Err()
}

func (b *Broker) requestControlledShutdown(ctx context.Context) (int, error) {
	if b.ctrl.Active() {
		remaining, err := b.controlledShutdown(ctx, b.cfg.NodeID)
		return len(remaining), err
	}
	req := kmsg.NewPtrControlledShutdownRequest()
	req.BrokerID, req.BrokerEpoch = b.cfg.NodeID, -1
	raw, err := b.controllerRequest(ctx, req)
	if err != nil {
		return 0, err
	}
	resp := raw.(*kmsg.ControlledShutdownResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return 0, err
	}
	return len(resp.PartitionsRemaining), nil
}
