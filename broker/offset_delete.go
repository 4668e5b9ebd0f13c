package broker

// OffsetDelete: version 0, Kafka 3.9's only one (KIP-496).
//
// Deletes committed offsets of an empty group, or of an active consumer
// group for topics it does not subscribe to (GROUP_SUBSCRIBED_TO_TOPIC
// for the others); an active group of another protocol type is
// NON_EMPTY_GROUP. Tombstones are written to __consumer_offsets.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/wire"
)

const (
	offsetDeleteMinVersion = 0
	offsetDeleteMaxVersion = 0
)

func (b *Broker) handleOffsetDelete(ctx context.Context, req *wire.Request) wire.Response {
	in := req.Msg.(*kmsg.OffsetDeleteRequest)
	return groupResponse(b.groups.coord.OffsetDelete(in, req.Version))
}
