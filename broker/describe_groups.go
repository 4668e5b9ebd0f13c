package broker

// DescribeGroups: versions 0 to 5.
//
// v3 can return the authorized operations, v4 the members'
// group.instance.id, v5 is flexible; v5 is Kafka 3.9's maximum. An unknown
// group is described as Dead with no error, as Kafka does; member metadata
// and assignments are only shown in Stable.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/wire"
)

const (
	describeGroupsMinVersion = 0
	describeGroupsMaxVersion = 5
)

func (b *Broker) handleDescribeGroups(ctx context.Context, req *wire.Request) wire.Response {
	in := req.Msg.(*kmsg.DescribeGroupsRequest)
	return wire.Msg(b.groups.coord.DescribeGroups(in, req.Version))
}
