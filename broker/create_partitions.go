package broker

// CreatePartitions: versions 0 to 3.
//
// Grows topics to Count partitions, with replicas placed by the controller
// or given for the new partitions only (Assignment). Per topic: a topic
// named twice (INVALID_REQUEST for each entry), an unknown topic
// (UNKNOWN_TOPIC_OR_PARTITION), Kafka's internal topics (INVALID_REQUEST:
// their partition count is what maps groups and transactional ids to
// coordinators), a count that is not an increase (INVALID_PARTITIONS, with
// Kafka's message), an assignment whose length is not the number of new
// partitions or whose replica count differs from the topic's
// (INVALID_REPLICA_ASSIGNMENT). ValidateOnly checks everything and writes
// nothing. The new partitions are open on this broker when the answer goes
// out, so producing to them works at once.

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/broker/controller"
	"github.com/tiercel/tiercel/wire"
)

const (
	createPartitionsMinVersion = 0
	createPartitionsMaxVersion = 3
)

func (b *Broker) handleCreatePartitions(ctx context.Context, req *wire.Request) wire.Response {
	in := req.Msg.(*kmsg.CreatePartitionsRequest)
	resp := in.ResponseKind().(*kmsg.CreatePartitionsResponse)
	resp.Version = req.Version
	resp.Topics = make([]kmsg.CreatePartitionsResponseTopic, len(in.Topics))

	count := make(map[string]int, len(in.Topics))
	for _, t := range in.Topics {
		count[t.Topic]++
	}
	md := b.ctrl.Current()
	var (
		specs []controller.PartitionSpec
		at    []int
		from  []int // partition count before, to check the new ones opened
	)
	for i := range in.Topics {
		t := &in.Topics[i]
		rt := &resp.Topics[i]
		rt.Default()
		rt.Topic = t.Topic
		spec, cur, err := createPartitionsSpec(md, t, count[t.Topic])
		if err != nil {
			b.setCreatePartitionsError(rt, err)
			continue
		}
		specs = append(specs, spec)
		at = append(at, i)
		from = append(from, cur)
	}
	if len(specs) == 0 {
		return wire.Msg(resp)
	}

	cctx, cancel := adminContext(ctx, in.TimeoutMillis)
	defer cancel()
	results, err := b.ctrl.CreatePartitions(cctx, specs, in.ValidateOnly)
	if err != nil {
		b.logger.Warn("CreatePartitions failed", "err", err)
		for _, i := range at {
			b.setCreatePartitionsError(&resp.Topics[i], err)
		}
		return wire.Msg(resp)
	}
	for k, r := range results {
		if r.Err == nil && !in.ValidateOnly {
			b.logger.Info("partitions added", "topic", r.Name, "partitions", len(r.Topic.Partitions), "was", from[k])
			if missing := b.unopenedPartitions(r.Name, r.Topic.ID, from[k]); len(missing) > 0 {
				r.Err = b.notOpenedError(r.Name, missing)
			}
		}
		if r.Err != nil {
			b.setCreatePartitionsError(&resp.Topics[at[k]], r.Err)
		}
	}
	return wire.Msg(resp)
}

func (b *Broker) setCreatePartitionsError(rt *kmsg.CreatePartitionsResponseTopic, err error) {
	rt.ErrorCode = errCode(b.logger, err)
	rt.ErrorMessage = adminErrMessage(err)
}

// createPartitionsSpec checks one topic of the request against md, the
// document as of the request (the controller checks again as it writes),
// and returns the topic's current partition count.
func createPartitionsSpec(md *controller.Metadata, t *kmsg.CreatePartitionsRequestTopic, named int) (controller.PartitionSpec, int, error) {
	var spec controller.PartitionSpec
	if named > 1 {
		return spec, 0, apiErrorf(kerr.InvalidRequest, "Duplicate topic name.")
	}
	topic := md.Topics[t.Topic]
	if topic == nil {
		return spec, 0, unknownTopic(t.Topic)
	}
	if isInternalTopic(t.Topic, topic) {
		return spec, 0, apiErrorf(kerr.InvalidRequest, "The partition count of internal topic %s cannot be changed: it decides which partition holds each coordinator's state.", t.Topic)
	}
	cur := len(topic.Partitions)
	switch {
	case int(t.Count) == cur:
		return spec, cur, apiErrorf(kerr.InvalidPartitions, "Topic already has %d partition(s).", cur)
	case int(t.Count) < cur:
		return spec, cur, apiErrorf(kerr.InvalidPartitions, "The topic %s currently has %d partition(s); %d would not be an increase.", t.Topic, cur, t.Count)
	}
	spec = controller.PartitionSpec{Topic: t.Topic, Count: t.Count}
	if t.Assignment != nil {
		add := int(t.Count) - cur
		if len(t.Assignment) != add {
			return spec, cur, apiErrorf(kerr.InvalidReplicaAssignment, "Attempted to add %d additional partition(s), but only %d assignment(s) were specified.", add, len(t.Assignment))
		}
		rf := len(topic.Partitions[0].Replicas)
		for _, a := range t.Assignment {
			if len(a.Replicas) != rf {
				return spec, cur, apiErrorf(kerr.InvalidReplicaAssignment,
					"The manual partition assignment includes a partition with %d replica(s), but this is not consistent with previous partitions, which have %d replica(s).",
					len(a.Replicas), rf)
			}
			spec.Assignment = append(spec.Assignment, slices.Clone(a.Replicas))
		}
	}
	return spec, cur, nil
}
