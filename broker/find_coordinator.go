package broker

// FindCoordinator: versions 0 to 6.
//
// v1 adds the key type and an error message, v3 is flexible, v4 batches
// keys (KIP-699), v5 only promises TRANSACTION_ABORTABLE (KIP-890) and v6
// admits the share key type (KIP-932); v6 is Kafka 3.9's maximum.
//
// A group's coordinator is the leader of its partition of
// __consumer_offsets (group.PartitionFor). The topic is created here on
// first use, as Kafka does; COORDINATOR_NOT_AVAILABLE while it cannot be
// (or its partition has no live leader). Transactions do not exist in
// Tiercel: a transaction key is INVALID_REQUEST with a message saying so,
// which fails a transactional producer at once rather than having it
// retry forever. Share groups are not supported either; like Kafka 3.9,
// which had no share coordinator running, the share key type is
// COORDINATOR_NOT_AVAILABLE from v6 and INVALID_REQUEST before.

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/broker/group"
	"github.com/tiercel/tiercel/wire"
)

const (
	findCoordinatorMinVersion = 0
	findCoordinatorMaxVersion = 6
)

// Coordinator key types.
const (
	coordinatorGroup       = 0
	coordinatorTransaction = 1
	coordinatorShare       = 2
)

// offsetsTopicCreateTimeout bounds the creation of __consumer_offsets
// inside a FindCoordinator.
const offsetsTopicCreateTimeout = 10 * time.Second

func (b *Broker) handleFindCoordinator(ctx context.Context, req *wire.Request) wire.Response {
	in := req.Msg.(*kmsg.FindCoordinatorRequest)
	resp := in.ResponseKind().(*kmsg.FindCoordinatorResponse)
	resp.Version = req.Version
	keys := in.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{in.CoordinatorKey}
	}
	for _, key := range keys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = key
		ep, err := b.findCoordinator(ctx, in.CoordinatorType, key, req.Version)
		if err != nil {
			c.NodeID, c.Host, c.Port = -1, "", -1
			c.ErrorCode = errCode(b.logger, err)
			c.ErrorMessage = adminErrMessage(err)
		} else {
			c.NodeID, c.Host, c.Port = ep.ID, ep.Host, ep.Port
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	if req.Version < 4 {
		c := resp.Coordinators[0]
		resp.Coordinators = nil
		resp.NodeID, resp.Host, resp.Port, resp.ErrorCode = c.NodeID, c.Host, c.Port, c.ErrorCode
		if req.Version >= 1 {
			resp.ErrorMessage = c.ErrorMessage
		}
	}
	return wire.Msg(resp)
}

// findCoordinator returns the broker that coordinates key.
func (b *Broker) findCoordinator(ctx context.Context, keyType int8, key string, version int16) (brokerEndpoint, error) {
	switch keyType {
	case coordinatorGroup:
	case coordinatorTransaction:
		return brokerEndpoint{}, apiErrorf(kerr.InvalidRequest, "transactions are not supported by this broker (no transaction coordinator for %q)", key)
	case coordinatorShare:
		if version < 6 {
			return brokerEndpoint{}, apiErrorf(kerr.InvalidRequest, "the share coordinator key type needs FindCoordinator v6")
		}
		return brokerEndpoint{}, apiErrorf(kerr.CoordinatorNotAvailable, "share groups are not supported by this broker")
	default:
		return brokerEndpoint{}, apiErrorf(kerr.InvalidRequest, "Unknown coordinator type in FindCoordinator request: %d", keyType)
	}
	cctx, cancel := context.WithTimeout(ctx, offsetsTopicCreateTimeout)
	defer cancel()
	n, err := b.ensureOffsetsTopic(cctx)
	if err != nil {
		b.logger.Warn("cannot create the group coordinator's topic", "topic", offsetsTopic, "err", err)
		return brokerEndpoint{}, fmt.Errorf("%w: %v", kerr.CoordinatorNotAvailable, err)
	}
	p := group.PartitionFor(key, n)
	t := b.current().md.Topics[offsetsTopic]
	if t == nil || int(p) >= len(t.Partitions) {
		return brokerEndpoint{}, kerr.CoordinatorNotAvailable
	}
	leader := t.Partitions[p].Leader
	for _, br := range b.liveBrokers() {
		if br.ID == leader {
			return br, nil
		}
	}
	return brokerEndpoint{}, kerr.CoordinatorNotAvailable
}
