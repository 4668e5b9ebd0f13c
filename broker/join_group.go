package broker

// JoinGroup: versions 0 to 9.
//
// v1 adds the rebalance timeout (v0 uses the session timeout for both),
// v4 answers a member without an id MEMBER_ID_REQUIRED with its new id
// (KIP-394), v5 adds group.instance.id (static membership, KIP-345), v6
// is flexible, v7 returns the protocol type, v8 carries a reason, and v9
// lets a rejoining static leader skip the assignment (KIP-814); v9 is
// Kafka 3.9's maximum.
//
// The handler registers the join with the group on the connection's
// reader goroutine (so the order of a client's requests is kept); the
// answer waits, in the writer, for the end of the join phase. The group
// state machine is in package group.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/wire"
)

const (
	joinGroupMinVersion = 0
	joinGroupMaxVersion = 9
)

func (b *Broker) handleJoinGroup(ctx context.Context, req *wire.Request) wire.Response {
	in := req.Msg.(*kmsg.JoinGroupRequest)
	return groupResponse(b.groups.coord.JoinGroup(in, req.Version, req.ClientID, clientHost(req)))
}
