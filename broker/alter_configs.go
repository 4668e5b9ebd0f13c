package broker

// AlterConfigs: versions 0 to 2.
//
// The legacy alteration: the configs given replace every override of the
// resource (a config left out returns to its default). Kafka's request
// checks come first, per resource: a resource named twice in the request
// (INVALID_REQUEST for each), a config named twice or with a null value
// (INVALID_REQUEST). Then:
//   - TOPIC: an invalid name is INVALID_TOPIC_EXCEPTION, an unknown topic
//     UNKNOWN_TOPIC_OR_PARTITION; the new overrides are checked with
//     config.ValidateTopicUpdate (INVALID_CONFIG with its message). Every
//     valid topic change is written in one metadata change, after which the
//     running partitions use the new settings.
//   - BROKER: the name must be empty or this broker's id. Tiercel has no
//     dynamic broker configs, so any config is INVALID_REQUEST, as Kafka
//     answers for settings that cannot change at run time; an empty list
//     (clear the dynamic configs, of which there are none) succeeds.
//   - BROKER_LOGGER and anything else: INVALID_REQUEST.
//
// ValidateOnly does every check and writes nothing.

import (
	"context"
	"maps"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/broker/controller"
	"github.com/tiercel/tiercel/wire"
)

const (
	alterConfigsMinVersion = 0
	alterConfigsMaxVersion = 2
)

func (b *Broker) handleAlterConfigs(ctx context.Context, req *wire.Request) wire.Response {
	in := req.Msg.(*kmsg.AlterConfigsRequest)
	resp := in.ResponseKind().(*kmsg.AlterConfigsResponse)
	resp.Version = req.Version

	keys := make([]resourceKey, len(in.Resources))
	for i, r := range in.Resources {
		keys[i] = resourceKey{r.ResourceType, r.ResourceName}
	}
	dup := duplicateResources(keys)
	errs := make([]error, len(in.Resources))
	changes := map[string]controller.ConfigChange{}
	for i := range in.Resources {
		r := &in.Resources[i]
		if dup[i] {
			errs[i] = errDuplicateResource
			continue
		}
		names := make([]string, len(r.Configs))
		for j, c := range r.Configs {
			names[j] = c.Name
		}
		if err := checkConfigNames(names, func(j int) bool { return r.Configs[j].Value == nil }); err != nil {
			errs[i] = err
			continue
		}
		switch r.ResourceType {
		case resourceTopic:
			if err := checkTopicName(r.ResourceName); err != nil {
				errs[i] = err
				continue
			}
			overrides := make(map[string]string, len(r.Configs))
			for _, c := range r.Configs {
				overrides[c.Name] = *c.Value
			}
			changes[r.ResourceName] = func(map[string]string) (map[string]string, error) {
				return maps.Clone(overrides), nil
			}
		case resourceBroker:
			if err := b.checkBrokerResource(r.ResourceName, true); err != nil {
				errs[i] = err
			} else if len(names) > 0 {
				errs[i] = noDynamicBrokerConfigs(names)
			}
		case resourceBrokerLogger:
			errs[i] = apiErrorf(kerr.InvalidRequest, "BROKER_LOGGER resources cannot be altered with AlterConfigs, and Tiercel does not support them")
		default:
			errs[i] = apiErrorf(kerr.InvalidRequest, "Unknown resource type %s.", r.ResourceType)
		}
	}
	b.applyTopicConfigChanges(ctx, keys, errs, changes, in.ValidateOnly)

	for i, r := range in.Resources {
		rr := kmsg.NewAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
		if errs[i] != nil {
			rr.ErrorCode = errCode(b.logger, errs[i])
			rr.ErrorMessage = adminErrMessage(errs[i])
		}
		resp.Resources = append(resp.Resources, rr)
	}
	return wire.Msg(resp)
}

// applyTopicConfigChanges writes the topic changes of an (incremental)
// alter configs request and records each topic's outcome in errs, by the
// index of its resource.
func (b *Broker) applyTopicConfigChanges(ctx context.Context, keys []resourceKey, errs []error, changes map[string]controller.ConfigChange, validateOnly bool) {
	if len(changes) == 0 {
		return
	}
	results, err := b.alterTopicConfigs(ctx, changes, validateOnly)
	if err != nil {
		b.logger.Warn("altering topic configs failed", "err", err)
	}
	for i, k := range keys {
		if k.typ != resourceTopic || errs[i] != nil {
			continue
		}
		if _, ok := changes[k.name]; !ok {
			continue
		}
		if err != nil {
			errs[i] = err
		} else {
			errs[i] = results[k.name]
		}
	}
}
