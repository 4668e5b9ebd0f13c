package broker

// AllocateProducerIds: version 0.
//
// A broker that is not the controller asks the controller for a block of
// producer ids, which the controller claims in the metadata document.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/wire"
)

const (
	allocateProducerIDsMinVersion = 0
	allocateProducerIDsMaxVersion = 0
)

func (b *Broker) handleAllocateProducerIDs(ctx context.Context, req *wire.Request) wire.Response {
	in := req.Msg.(*kmsg.AllocateProducerIDsRequest)
	resp := in.ResponseKind().(*kmsg.AllocateProducerIDsResponse)
	resp.Version = req.Version
	if !b.ctrl.Active() {
		resp.ErrorCode = kerr.NotController.Code
		return wire.Msg(resp)
	}
	first, n, err := b.ctrl.AllocateProducerIDs(ctx, 0)
	if err != nil {
		resp.ErrorCode = errCode(b.logger, err)
		return wire.Msg(resp)
	}
	resp.ProducerIDStart, resp.ProducerIDLen = first, int32(n)
	return wire.Msg(resp)
}
