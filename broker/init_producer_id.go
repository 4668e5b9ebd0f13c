package broker

// InitProducerId: versions 0 to 5.
//
// Only idempotent producers (no transactional id) are served: each gets a
// fresh producer id at epoch 0, from a block claimed in the cluster
// metadata document so ids stay unique across restarts and brokers. A
// request with a transactional id is refused until transactions exist.

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/wire"
)

const (
	initProducerIDMinVersion = 0
	initProducerIDMaxVersion = 5
)

func (b *Broker) handleInitProducerID(ctx context.Context, req *wire.Request) wire.Response {
	in := req.Msg.(*kmsg.InitProducerIDRequest)
	resp := in.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.Version = req.Version
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if in.TransactionalID != nil {
		b.logger.Warn("InitProducerId with a transactional id refused: transactions are not supported yet",
			"client", req.Client.Addr, "transactional.id", *in.TransactionalID)
		resp.ErrorCode = kerr.InvalidRequest.Code // "sent to an incompatible broker"
		return wire.Msg(resp)
	}
	id, err := b.pids.nextID(ctx)
	if err != nil {
		b.logger.Warn("producer id allocation failed", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return wire.Msg(resp)
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return wire.Msg(resp)
}

// producerIDs hands out ids from blocks claimed from the controller:
// directly on the controller, with AllocateProducerIds elsewhere.
type producerIDs struct {
	b *Broker

	mu        sync.Mutex
	next, end int64
}

func (p *producerIDs) nextID(ctx context.Context) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next >= p.end {
		first, n, err := p.b.allocateProducerIDs(ctx)
		if err != nil {
			return 0, err
		}
		p.next, p.end = first, first+n
	}
	id := p.next
	p.next++
	return id, nil
}

func (b *Broker) allocateProducerIDs(ctx context.Context) (int64, int64, error) {
	if b.ctrl.Active() {
		return b.ctrl.AllocateProducerIDs(ctx, 0)
	}
	req := kmsg.NewPtrAllocateProducerIDsRequest()
	req.BrokerID, req.BrokerEpoch = b.cfg.NodeID, -1
	raw, err := b.controllerRequest(ctx, req)
	if err != nil {
		return 0, 0, err
	}
	resp := raw.(*kmsg.AllocateProducerIDsResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return 0, 0, err
	}
	return resp.ProducerIDStart, int64(resp.ProducerIDLen), nil
}
