package broker

// Metadata: versions 0 to 12.
//
// v4 lets the client opt out of topic auto-creation, v10 adds topic ids,
// v12 lets the client name topics by id. Auto-creation follows
// auto.create.topics.enable, with num.partitions and
// default.replication.factor.

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/broker/controller"
	"github.com/tiercel/tiercel/wire"
)

const (
	metadataMinVersion = 0
	metadataMaxVersion = 12
)

func (b *Broker) handleMetadata(ctx context.Context, req *wire.Request) wire.Response {
	in := req.Msg.(*kmsg.MetadataRequest)
	resp := in.ResponseKind().(*kmsg.MetadataResponse)
	resp.Version = req.Version

	allTopics := in.Topics == nil || (req.Version == 0 && len(in.Topics) == 0)
	st := b.current()

	// Auto-create unknown topics the client asked for by name.
	autoCreate := b.cfg.Settings.AutoCreateTopicsEnable && (req.Version < 4 || in.AllowAutoTopicCreation)
	if !allTopics && autoCreate {
		var specs []controller.TopicSpec
		for _, t := range in.Topics {
			if t.Topic == nil || *t.Topic == "" {
				continue
			}
			if _, ok := st.md.Topics[*t.Topic]; ok || controller.ValidateTopicName(*t.Topic) != nil || isInternalTopicName(*t.Topic) {
				continue
			}
			specs = append(specs, controller.TopicSpec{
				Name:              *t.Topic,
				NumPartitions:     b.cfg.Settings.NumPartitions,
				ReplicationFactor: int16(b.cfg.Settings.DefaultReplicationFactor),
			})
		}
		if len(specs) > 0 {
			b.autoCreate(ctx, specs)
			st = b.current()
		}
	}

	for _, br := range b.liveBrokers() {
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID, mb.Host, mb.Port, mb.Rack = br.ID, br.Host, br.Port, br.Rack
		resp.Brokers = append(resp.Brokers, mb)
	}
	cluster := st.md.ClusterID
	resp.ClusterID = &cluster
	resp.ControllerID = b.controllerID()

	appendTopic := func(name string, id [16]byte, t *controller.Topic, errCode int16) {
		mt := kmsg.NewMetadataResponseTopic()
		mt.ErrorCode = errCode
		if name != "" {
			n := name
			mt.Topic = &n
		}
		mt.TopicID = id
		if t != nil {
			mt.IsInternal = t.Internal
			for i, pa := range t.Partitions {
				mp := kmsg.NewMetadataResponseTopicPartition()
				mp.Partition = int32(i)
				mp.Leader = pa.Leader
				mp.LeaderEpoch = pa.LeaderEpoch
				mp.Replicas = append([]int32(nil), pa.Replicas...)
				mp.ISR = append([]int32(nil), pa.ISR...)
				mp.OfflineReplicas = b.offlineReplicas(pa.Replicas)
				if pa.Leader < 0 || !b.isLive(pa.Leader) {
					mp.ErrorCode = kerr.LeaderNotAvailable.Code
				}
				mt.Partitions = append(mt.Partitions, mp)
			}
		}
		resp.Topics = append(resp.Topics, mt)
	}

	if allTopics {
		for _, name := range st.md.TopicNames() {
			t := st.md.Topics[name]
			appendTopic(name, t.ID, t, 0)
		}
		return wire.Msg(resp)
	}
	for _, rt := range in.Topics {
		switch {
		case rt.Topic == nil || *rt.Topic == "":
			// v12: by id.
			if t := st.md.TopicByID(controller.TopicID(rt.TopicID)); t != nil {
				appendTopic(t.Name, t.ID, t, 0)
			} else {
				appendTopic("", rt.TopicID, nil, kerr.UnknownTopicID.Code)
			}
		default:
			name := *rt.Topic
			if t := st.md.Topics[name]; t != nil {
				appendTopic(name, t.ID, t, 0)
			} else if controller.ValidateTopicName(name) != nil {
				appendTopic(name, [16]byte{}, nil, kerr.InvalidTopicException.Code)
			} else {
				appendTopic(name, [16]byte{}, nil, kerr.UnknownTopicOrPartition.Code)
			}
		}
	}
	return wire.Msg(resp)
}

// autoCreate creates topics a client asked for: through the controller
// directly when this broker is it, with a CreateTopics request to it
// otherwise, then rereading the document so the answer can name them.
func (b *Broker) autoCreate(ctx context.Context, specs []controller.TopicSpec) {
	if b.ctrl.Active() {
		results, err := b.ctrl.CreateTopics(ctx, specs, false)
		if err == nil {
			for _, r := range results {
				if r.Err != nil && !errors.Is(r.Err, controller.ErrTopicExists) {
					b.logger.Warn("topic auto-creation failed", "topic", r.Name, "err", r.Err)
				}
			}
			return
		}
		if !errors.Is(err, controller.ErrNotController) {
			b.logger.Warn("topic auto-creation failed", "err", err)
			return
		}
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10000
	for _, s := range specs {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = s.Name, s.NumPartitions, s.ReplicationFactor
		req.Topics = append(req.Topics, rt)
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := b.controllerRequest(cctx, req); err != nil {
		b.logger.Warn("topic auto-creation through the controller failed", "err", err)
		return
	}
	if err := b.ctrl.Refresh(cctx); err != nil {
		b.logger.Warn("cannot reread the metadata document after auto-creation", "err", err)
	}
}

// isInternalTopicName reports Kafka's internal topics, which clients may
// not auto-create.
func isInternalTopicName(name string) bool {
	return name == "__consumer_offsets" || name == "__transaction_state"
}

// brokerEndpoint is a live broker as clients should see it.
type brokerEndpoint struct {
	ID   int32
	Host string
	Port int32
	Rack *string
}

func (b *Broker) isLive(id int32) bool {
	for _, br := range b.liveBrokers() {
		if br.ID == id {
			return true
		}
	}
	return false
}

func (b *Broker) offlineReplicas(replicas []int32) []int32 {
	out := []int32{}
	for _, r := range replicas {
		if !b.isLive(r) {
			out = append(out, r)
		}
	}
	return out
}

// controllerID is the broker that holds the controller role, -1 if none
// is known.
func (b *Broker) controllerID() int32 { return b.ctrl.ControllerID() }

func (b *Broker) produceBrokers(ids map[int32]bool) []kmsg.ProduceResponseBroker {
	var out []kmsg.ProduceResponseBroker
	for _, br := range b.liveBrokers() {
		if ids[br.ID] {
			pb := kmsg.NewProduceResponseBroker()
			pb.NodeID, pb.Host, pb.Port, pb.Rack = br.ID, br.Host, br.Port, br.Rack
			out = append(out, pb)
		}
	}
	return out
}

func (b *Broker) fetchBrokers(ids map[int32]bool) []kmsg.FetchResponseBroker {
	var out []kmsg.FetchResponseBroker
	for _, br := range b.liveBrokers() {
		if ids[br.ID] {
			fb := kmsg.NewFetchResponseBroker()
			fb.NodeID, fb.Host, fb.Port, fb.Rack = br.ID, br.Host, br.Port, br.Rack
			out = append(out, fb)
		}
	}
	return out
}
