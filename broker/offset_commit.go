package broker

// OffsetCommit: versions 0 to 9.
//
// v1 adds the generation, member id and a per-partition commit timestamp,
// v2-v4 a retention time (which gives the offset its own expiry, stored as
// OffsetCommitValue v1, as Kafka does), v6 the leader epoch, v7
// group.instance.id, v8 is flexible; v9 (KIP-848's member epoch, which for
// a classic group is its generation) is Kafka 3.9's maximum. v0 stored
// offsets in ZooKeeper on Kafka; here it is a commit without generation.
//
// Commits are records in __consumer_offsets, answered once replicated to
// the ISR (acks=all). A partition of a topic that does not exist is
// UNKNOWN_TOPIC_OR_PARTITION, metadata over offset.metadata.max.bytes
// (4096) OFFSET_METADATA_TOO_LARGE.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/wire"
)

const (
	offsetCommitMinVersion = 0
	offsetCommitMaxVersion = 9
)

func (b *Broker) handleOffsetCommit(ctx context.Context, req *wire.Request) wire.Response {
	in := req.Msg.(*kmsg.OffsetCommitRequest)
	return groupResponse(b.groups.coord.OffsetCommit(in, req.Version))
}
