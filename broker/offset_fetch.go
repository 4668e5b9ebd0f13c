package broker

// OffsetFetch: versions 0 to 9.
//
// v2 adds a group-level error and lets the topic list be null (all of the
// group's offsets), v5 returns the committed leader epoch, v6 is
// flexible, v7 asks for stable offsets (there are no transactions, so
// every offset is stable), v8 fetches for several groups at once, v9 adds
// the KIP-848 member id and epoch (not checked for classic groups, as in
// Kafka); v9 is Kafka 3.9's maximum. Before v2 a group-level error is put
// on every partition.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/wire"
)

const (
	offsetFetchMinVersion = 0
	offsetFetchMaxVersion = 9
)

func (b *Broker) handleOffsetFetch(ctx context.Context, req *wire.Request) wire.Response {
	in := req.Msg.(*kmsg.OffsetFetchRequest)
	return wire.Msg(b.groups.coord.OffsetFetch(in, req.Version))
}
