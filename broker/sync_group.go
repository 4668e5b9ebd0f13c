package broker

// SyncGroup: versions 0 to 5.
//
// v3 adds group.instance.id, v4 is flexible, v5 lets the member name the
// protocol type and protocol it expects (INCONSISTENT_GROUP_PROTOCOL when
// they differ); v5 is Kafka 3.9's maximum.
//
// Members wait for the leader's assignment, which is stored in
// __consumer_offsets (acks=all) before anyone gets theirs.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/wire"
)

const (
	syncGroupMinVersion = 0
	syncGroupMaxVersion = 5
)

func (b *Broker) handleSyncGroup(ctx context.Context, req *wire.Request) wire.Response {
	in := req.Msg.(*kmsg.SyncGroupRequest)
	return groupResponse(b.groups.coord.SyncGroup(in, req.Version))
}
