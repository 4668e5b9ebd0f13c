package broker

// CreateTopics: versions 0 to 7.
//
// v1 adds ValidateOnly and per-topic error messages, v4 lets NumPartitions
// and ReplicationFactor be -1 for the broker defaults (num.partitions,
// default.replication.factor; accepted at every version, as Kafka's broker
// does), v5 returns the created topic's partition count, replication factor
// and resolved configs, v7 its topic id.
//
// Each topic is checked in Kafka's order: a name given twice in the request
// (INVALID_REQUEST for every entry of it), the name rules
// (INVALID_TOPIC_EXCEPTION), Kafka's internal topics (INVALID_REQUEST: the
// broker creates those itself), an existing topic (TOPIC_ALREADY_EXISTS),
// the configs (INVALID_CONFIG, with config.ValidateTopicOverrides' message),
// then the partitions: a manual assignment needs -1 for both counts and
// consecutive partition indexes (INVALID_REQUEST, INVALID_REPLICA_ASSIGNMENT),
// otherwise the counts must be positive or -1 (INVALID_PARTITIONS,
// INVALID_REPLICATION_FACTOR). The controller then places replicas and
// writes every valid topic in one metadata change.
//
// Creation is synchronous: the controller's watcher opens the new
// partitions before the write returns. If this broker could not open one,
// the topic still exists and the answer is REQUEST_TIMED_OUT, as Kafka
// answers when a new topic does not become ready within TimeoutMillis.

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/broker/config"
	"github.com/tiercel/tiercel/broker/controller"
	"github.com/tiercel/tiercel/wire"
)

const (
	createTopicsMinVersion = 0
	createTopicsMaxVersion = 7
)

func (b *Broker) handleCreateTopics(ctx context.Context, req *wire.Request) wire.Response {
	in := req.Msg.(*kmsg.CreateTopicsRequest)
	resp := in.ResponseKind().(*kmsg.CreateTopicsResponse)
	resp.Version = req.Version
	resp.Topics = make([]kmsg.CreateTopicsResponseTopic, len(in.Topics))

	count := make(map[string]int, len(in.Topics))
	for _, t := range in.Topics {
		count[t.Topic]++
	}
	md := b.ctrl.Current()
	var (
		specs []controller.TopicSpec
		at    []int // index in the response of each spec
	)
	for i := range in.Topics {
		t := &in.Topics[i]
		rt := &resp.Topics[i]
		rt.Default()
		rt.Topic = t.Topic
		if t.Topic == offsetsTopic && isBrokerClient(req) {
			// Another broker asks the controller to create the group
			// coordinator's topic, which clients may not create.
			if _, err := b.ensureOffsetsTopic(ctx); err != nil {
				b.setCreateTopicError(req.Version, rt, err)
			}
			continue
		}
		spec, err := b.createTopicSpec(md, t, count[t.Topic])
		if err != nil {
			b.setCreateTopicError(req.Version, rt, err)
			continue
		}
		specs = append(specs, spec)
		at = append(at, i)
	}
	if len(specs) == 0 {
		return wire.Msg(resp)
	}

	cctx, cancel := adminContext(ctx, in.TimeoutMillis)
	defer cancel()
	results, err := b.ctrl.CreateTopics(cctx, specs, in.ValidateOnly)
	if err != nil {
		b.logger.Warn("CreateTopics failed", "err", err)
		for _, i := range at {
			b.setCreateTopicError(req.Version, &resp.Topics[i], err)
		}
		return wire.Msg(resp)
	}
	for k, r := range results {
		rt := &resp.Topics[at[k]]
		if r.Err == nil && !in.ValidateOnly {
			if missing := b.unopenedPartitions(r.Name, r.Topic.ID, 0); len(missing) > 0 {
				r.Err = b.notOpenedError(r.Name, missing)
			}
		}
		if r.Err != nil {
			b.setCreateTopicError(req.Version, rt, r.Err)
			continue
		}
		b.fillCreatedTopic(rt, r.Topic)
	}
	return wire.Msg(resp)
}

func (b *Broker) setCreateTopicError(version int16, rt *kmsg.CreateTopicsResponseTopic, err error) {
	rt.ErrorCode = errCode(b.logger, err)
	if version >= 1 {
		rt.ErrorMessage = adminErrMessage(err)
	}
}

// fillCreatedTopic sets the v5+ description of a created (or validated)
// topic: its id, counts, and every topic config as DescribeConfigs would
// show it.
func (b *Broker) fillCreatedTopic(rt *kmsg.CreateTopicsResponseTopic, t *controller.Topic) {
	rt.TopicID = t.ID
	rt.NumPartitions = int32(len(t.Partitions))
	if len(t.Partitions) > 0 {
		rt.ReplicationFactor = int16(len(t.Partitions[0].Replicas))
	}
	for _, e := range config.DescribeTopic(b.cfg.Settings, t.Configs, false, false) {
		c := kmsg.NewCreateTopicsResponseTopicConfig()
		c.Name = e.Name
		c.Value = e.Value
		c.ReadOnly = e.ReadOnly
		c.Source = int8(e.Source)
		c.IsSensitive = e.IsSensitive
		rt.Configs = append(rt.Configs, c)
	}
}

// createTopicSpec checks one requested topic and turns it into what the
// controller needs. md is the document as of the request, for the early
// existence check; the controller checks again when it writes.
func (b *Broker) createTopicSpec(md *controller.Metadata, t *kmsg.CreateTopicsRequestTopic, named int) (controller.TopicSpec, error) {
	var spec controller.TopicSpec
	if named > 1 {
		return spec, apiErrorf(kerr.InvalidRequest, "Duplicate topic name.")
	}
	if err := checkTopicName(t.Topic); err != nil {
		return spec, err
	}
	if isInternalTopic(t.Topic, nil) {
		return spec, apiErrorf(kerr.InvalidRequest, "Creation of internal topic %s is prohibited: the broker creates it when it is first needed.", t.Topic)
	}
	if _, ok := md.Topics[t.Topic]; ok {
		return spec, apiErrorf(kerr.TopicAlreadyExists, "Topic '%s' already exists.", t.Topic)
	}

	// Configs. A name given twice keeps its last value, as in Kafka.
	overrides := make(map[string]string, len(t.Configs))
	for _, c := range t.Configs {
		if c.Value == nil {
			return spec, apiErrorf(kerr.InvalidConfig, "Null value not supported for topic configs: %s", c.Name)
		}
		overrides[c.Name] = *c.Value
	}
	if err := config.ValidateTopicOverrides(b.cfg.Settings, overrides); err != nil {
		return spec, err
	}
	if len(overrides) == 0 {
		overrides = nil
	}

	spec = controller.TopicSpec{Name: t.Topic, Configs: overrides}
	if len(t.ReplicaAssignment) > 0 {
		assignment, err := manualAssignment(t)
		if err != nil {
			return spec, err
		}
		spec.Assignment = assignment
		return spec, nil
	}
	switch {
	case t.ReplicationFactor < -1 || t.ReplicationFactor == 0:
		return spec, apiErrorf(kerr.InvalidReplicationFactor, "Replication factor must be larger than 0, or -1 to use the default value.")
	case t.NumPartitions < -1 || t.NumPartitions == 0:
		return spec, apiErrorf(kerr.InvalidPartitions, "Number of partitions was set to an invalid non-positive value.")
	}
	spec.NumPartitions, spec.ReplicationFactor = t.NumPartitions, t.ReplicationFactor
	if spec.NumPartitions == -1 {
		spec.NumPartitions = b.cfg.Settings.NumPartitions
	}
	if spec.ReplicationFactor == -1 {
		spec.ReplicationFactor = int16(b.cfg.Settings.DefaultReplicationFactor)
	}
	return spec, nil
}

// manualAssignment checks a CreateTopics replica assignment and orders it
// by partition. The controller checks the replicas themselves (none twice,
// every broker live, one replication factor throughout).
func manualAssignment(t *kmsg.CreateTopicsRequestTopic) ([][]int32, error) {
	if t.ReplicationFactor != -1 {
		return nil, apiErrorf(kerr.InvalidRequest, "A manual partition assignment was specified, but replication factor was not set to -1.")
	}
	if t.NumPartitions != -1 {
		return nil, apiErrorf(kerr.InvalidRequest, "A manual partition assignment was specified, but numPartitions was not set to -1.")
	}
	byIndex := make(map[int32][]int32, len(t.ReplicaAssignment))
	for _, a := range t.ReplicaAssignment {
		if _, dup := byIndex[a.Partition]; dup {
			return nil, apiErrorf(kerr.InvalidReplicaAssignment, "Found multiple manual partition assignments for partition %d", a.Partition)
		}
		if len(a.Replicas) == 0 {
			return nil, apiErrorf(kerr.InvalidReplicaAssignment, "The manual partition assignment includes an empty replica list.")
		}
		byIndex[a.Partition] = slices.Clone(a.Replicas)
	}
	out := make([][]int32, len(byIndex))
	for i := range out {
		r, ok := byIndex[int32(i)]
		if !ok {
			return nil, apiErrorf(kerr.InvalidReplicaAssignment, "partitions should be a consecutive 0-based integer sequence")
		}
		out[i] = r
	}
	return out, nil
}
