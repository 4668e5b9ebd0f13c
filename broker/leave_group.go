package broker

// LeaveGroup: versions 0 to 5.
//
// v3 takes several members at once, each by member id or, for an
// administrator removing a static member, by group.instance.id alone
// (KIP-345), and answers per member; v4 is flexible, v5 carries a reason;
// v5 is Kafka 3.9's maximum. Before v3 the one member's error is the
// answer's.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/wire"
)

const (
	leaveGroupMinVersion = 0
	leaveGroupMaxVersion = 5
)

func (b *Broker) handleLeaveGroup(ctx context.Context, req *wire.Request) wire.Response {
	in := req.Msg.(*kmsg.LeaveGroupRequest)
	return wire.Msg(b.groups.coord.LeaveGroup(in, req.Version))
}
