package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterOp is one config change of an IncrementalAlterConfigs request; its
// fields are those of kmsg.IncrementalAlterConfigsRequestResourceConfig.
type AlterOp struct {
	// Name is the topic config to change.
	Name string
	// Op is SET, DELETE, APPEND or SUBTRACT.
	Op kmsg.IncrementalAlterConfigOp
	// Value is the operand; ignored by DELETE, required by the others.
	Value *string
}

// ApplyIncremental applies IncrementalAlterConfigs operations to a topic's
// current overrides and returns the new overrides; current is not
// modified. Operations apply in order:
//
//   - SET replaces the override.
//   - DELETE removes it, so the topic inherits the broker default again.
//   - APPEND adds the comma-separated items that are not yet present to a
//     LIST config; SUBTRACT removes them. Both start from the override, or
//     when there is none from Kafka's topic-level default, as Kafka does.
//     On any other type they fail with Kafka's message.
//
// Unknown names fail with Kafka's "Unknown topic config name", except that
// DELETE may remove an override that is stored but no longer known. A name
// given twice, or an unknown operation, is ErrInvalidRequest. ApplyIncremental
// checks operations only: pass the result to ValidateTopicUpdate (or
// ValidateTopicOverrides) before storing it.
func ApplyIncremental(current map[string]string, ops []AlterOp) (map[string]string, error) {
	next := maps.Clone(current)
	if next == nil {
		next = make(map[string]string)
	}
	var errs []error
	seen := make(map[string]bool, len(ops))
	for _, op := range ops {
		if seen[op.Name] {
			errs = append(errs, badRequest(op.Name, "Error due to duplicate config keys: "+op.Name))
			continue
		}
		seen[op.Name] = true
		d, known := topicIndex[op.Name]
		_, stored := next[op.Name]
		if !known && !(op.Op == kmsg.IncrementalAlterConfigOpDelete && stored) {
			errs = append(errs, unknownTopicConfig(op.Name))
			continue
		}
		switch op.Op {
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(next, op.Name)
		case kmsg.IncrementalAlterConfigOpSet:
			if op.Value == nil {
				errs = append(errs, invalidMsg(op.Name, "", "Null value not supported for topic configs: "+op.Name))
				continue
			}
			next[op.Name] = *op.Value
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if d.typ != kmsg.ConfigTypeList {
				errs = append(errs, invalidMsg(op.Name, derefOr(op.Value), fmt.Sprintf("Can't %s to key %s because its type is not LIST.", op.Op, op.Name)))
				continue
			}
			if op.Value == nil {
				errs = append(errs, invalidMsg(op.Name, "", "Null value not supported for topic configs: "+op.Name))
				continue
			}
			base, ok := next[op.Name]
			if !ok {
				base = d.kafkaDefault
			}
			items := splitList(base)
			for _, item := range splitList(*op.Value) {
				if item == "" {
					continue
				}
				if op.Op == kmsg.IncrementalAlterConfigOpAppend {
					if !slices.Contains(items, item) {
						items = append(items, item)
					}
				} else {
					items = slices.DeleteFunc(items, func(s string) bool { return s == item })
				}
			}
			next[op.Name] = strings.Join(items, ",")
		default:
			errs = append(errs, badRequest(op.Name, fmt.Sprintf("Unknown alter configs op type %d for config %s", int8(op.Op), op.Name)))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return next, nil
}

func derefOr(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
