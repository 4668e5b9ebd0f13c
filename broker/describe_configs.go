package broker

// DescribeConfigs: versions 0 to 4.
//
// v0 reports IsDefault, v1 adds each config's Source and, when asked,
// its synonyms (IncludeSynonyms), v3 the config type and, when asked,
// the documentation (IncludeDocumentation); config.Entry.Kmsg fills all of
// them and the encoder writes those of the version.
//
// Resources:
//   - TOPIC (2): every topic config, overrides as DYNAMIC_TOPIC_CONFIG and
//     inherited values as STATIC_BROKER_CONFIG or DEFAULT_CONFIG. An invalid
//     name is INVALID_TOPIC_EXCEPTION, an unknown topic
//     UNKNOWN_TOPIC_OR_PARTITION.
//   - BROKER (4): named by this broker's id, every broker setting (all
//     read-only). The empty name means the cluster-wide dynamic defaults in
//     Kafka; Tiercel has none, so the list is empty. Another broker's id or
//     a name that is not a number is INVALID_REQUEST, with Kafka's message.
//   - BROKER_LOGGER (8) and anything else: INVALID_REQUEST. Tiercel does not
//     expose its loggers as configs.
//
// ConfigNames filters the entries; nil or empty means all, as in Kafka.
// Each resource is answered on its own; one failing does not fail others.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/broker/config"
	"github.com/tiercel/tiercel/wire"
)

const (
	describeConfigsMinVersion = 0
	describeConfigsMaxVersion = 4
)

func (b *Broker) handleDescribeConfigs(ctx context.Context, req *wire.Request) wire.Response {
	in := req.Msg.(*kmsg.DescribeConfigsRequest)
	resp := in.ResponseKind().(*kmsg.DescribeConfigsResponse)
	resp.Version = req.Version
	synonyms := in.IncludeSynonyms && req.Version >= 1
	docs := in.IncludeDocumentation && req.Version >= 3
	for i := range in.Resources {
		r := &in.Resources[i]
		rr := kmsg.NewDescribeConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
		entries, err := b.describeResource(r, synonyms, docs)
		if err != nil {
			rr.ErrorCode = errCode(b.logger, err)
			rr.ErrorMessage = adminErrMessage(err)
		}
		rr.Configs = filterConfigs(entries, r.ConfigNames)
		resp.Resources = append(resp.Resources, rr)
	}
	return wire.Msg(resp)
}

func (b *Broker) describeResource(r *kmsg.DescribeConfigsRequestResource, synonyms, docs bool) ([]config.Entry, error) {
	switch r.ResourceType {
	case resourceTopic:
		if err := checkTopicName(r.ResourceName); err != nil {
			return nil, err
		}
		t := b.ctrl.Current().Topics[r.ResourceName]
		if t == nil {
			return nil, unknownTopic(r.ResourceName)
		}
		return config.DescribeTopic(b.cfg.Settings, t.Configs, synonyms, docs), nil
	case resourceBroker:
		if err := b.checkBrokerResource(r.ResourceName, true); err != nil {
			return nil, err
		}
		if r.ResourceName == "" {
			return nil, nil // no dynamic cluster-wide defaults exist
		}
		return b.cfg.Settings.Describe(synonyms, docs), nil
	case resourceBrokerLogger:
		return nil, apiErrorf(kerr.InvalidRequest, "BROKER_LOGGER resources are not supported: Tiercel's log levels are not configs")
	default:
		return nil, apiErrorf(kerr.InvalidRequest, "Unsupported resource type: %s", r.ResourceType)
	}
}

// filterConfigs keeps the requested names (all when names is empty) and
// converts them to their wire form. The result is never nil: Kafka sends an
// empty list, even with an error.
func filterConfigs(entries []config.Entry, names []string) []kmsg.DescribeConfigsResponseResourceConfig {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	out := make([]kmsg.DescribeConfigsResponseResourceConfig, 0, len(entries))
	for _, e := range entries {
		if len(want) == 0 || want[e.Name] {
			out = append(out, e.Kmsg())
		}
	}
	return out
}
