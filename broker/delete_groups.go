package broker

// DeleteGroups: versions 0 to 2.
//
// v2 is flexible and Kafka 3.9's maximum. An empty group is deleted with
// its offsets (tombstones in __consumer_offsets); a group with members is
// NON_EMPTY_GROUP, an unknown one GROUP_ID_NOT_FOUND.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/wire"
)

const (
	deleteGroupsMinVersion = 0
	deleteGroupsMaxVersion = 2
)

func (b *Broker) handleDeleteGroups(ctx context.Context, req *wire.Request) wire.Response {
	in := req.Msg.(*kmsg.DeleteGroupsRequest)
	return groupResponse(b.groups.coord.DeleteGroups(in, req.Version))
}
