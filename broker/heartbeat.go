package broker

// Heartbeat: versions 0 to 4.
//
// v3 adds group.instance.id, v4 is flexible; v4 is Kafka 3.9's maximum.
// A heartbeat restarts the member's session and answers
// REBALANCE_IN_PROGRESS while the group waits for its members to rejoin.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/wire"
)

const (
	heartbeatMinVersion = 0
	heartbeatMaxVersion = 4
)

func (b *Broker) handleHeartbeat(ctx context.Context, req *wire.Request) wire.Response {
	in := req.Msg.(*kmsg.HeartbeatRequest)
	return wire.Msg(b.groups.coord.Heartbeat(in, req.Version))
}
