package broker

// ListGroups: versions 0 to 5.
//
// v3 is flexible, v4 filters by state (case-insensitively) and returns it,
// v5 filters by type and returns it ("classic" for every group here); v5
// is Kafka 3.9's maximum. The groups listed are those this broker
// coordinates.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/wire"
)

const (
	listGroupsMinVersion = 0
	listGroupsMaxVersion = 5
)

func (b *Broker) handleListGroups(ctx context.Context, req *wire.Request) wire.Response {
	in := req.Msg.(*kmsg.ListGroupsRequest)
	return wire.Msg(b.groups.coord.ListGroups(in, req.Version))
}
