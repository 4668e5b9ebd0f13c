package broker

// IncrementalAlterConfigs: versions 0 to 1.
//
// Each config of a resource carries an operation: SET, DELETE (back to the
// inherited value), APPEND or SUBTRACT (list configs), applied by
// config.ApplyIncremental to the topic's current overrides. The checks are
// those of AlterConfigs (see alter_configs.go): a resource twice, a config
// twice or a null value for anything but DELETE are INVALID_REQUEST; an
// unknown operation is INVALID_REQUEST, an unknown config name or a bad
// value INVALID_CONFIG, with the config package's message. The change is
// computed from the overrides in the metadata document being written, so
// concurrent alterations of one topic do not lose each other's updates.
// BROKER resources get INVALID_REQUEST for any config (no dynamic broker
// configuration); BROKER_LOGGER and other types INVALID_REQUEST.
// ValidateOnly writes nothing.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/broker/config"
	"github.com/tiercel/tiercel/broker/controller"
	"github.com/tiercel/tiercel/wire"
)

const (
	incrementalAlterConfigsMinVersion = 0
	incrementalAlterConfigsMaxVersion = 1
)

func (b *Broker) handleIncrementalAlterConfigs(ctx context.Context, req *wire.Request) wire.Response {
	in := req.Msg.(*kmsg.IncrementalAlterConfigsRequest)
	resp := in.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
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
		nullValue := func(j int) bool {
			return r.Configs[j].Value == nil && r.Configs[j].Op != kmsg.IncrementalAlterConfigOpDelete
		}
		if err := checkConfigNames(names, nullValue); err != nil {
			errs[i] = err
			continue
		}
		switch r.ResourceType {
		case resourceTopic:
			if err := checkTopicName(r.ResourceName); err != nil {
				errs[i] = err
				continue
			}
			ops := make([]config.AlterOp, len(r.Configs))
			for j, c := range r.Configs {
				ops[j] = config.AlterOp{Name: c.Name, Op: c.Op, Value: c.Value}
			}
			changes[r.ResourceName] = func(current map[string]string) (map[string]string, error) {
				return config.ApplyIncremental(current, ops)
			}
		case resourceBroker:
			if err := b.checkBrokerResource(r.ResourceName, true); err != nil {
				errs[i] = err
			} else if len(names) > 0 {
				errs[i] = noDynamicBrokerConfigs(names)
			}
		case resourceBrokerLogger:
			errs[i] = apiErrorf(kerr.InvalidRequest, "BROKER_LOGGER resources are not supported: Tiercel's log levels are not configs")
		default:
			errs[i] = apiErrorf(kerr.InvalidRequest, "Unknown resource type %s.", r.ResourceType)
		}
	}
	b.applyTopicConfigChanges(ctx, keys, errs, changes, in.ValidateOnly)

	for i, r := range in.Resources {
		rr := kmsg.NewIncrementalAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
		if errs[i] != nil {
			rr.ErrorCode = errCode(b.logger, errs[i])
			rr.ErrorMessage = adminErrMessage(errs[i])
		}
		resp.Resources = append(resp.Resources, rr)
	}
	return wire.Msg(resp)
}
