package config

import (
	"errors"
	"maps"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	opSet      = kmsg.IncrementalAlterConfigOpSet
	opDelete   = kmsg.IncrementalAlterConfigOpDelete
	opAppend   = kmsg.IncrementalAlterConfigOpAppend
	opSubtract = kmsg.IncrementalAlterConfigOpSubtract
)

func op(name string, o kmsg.IncrementalAlterConfigOp, v string) AlterOp {
	return AlterOp{Name: name, Op: o, Value: &v}
}

func TestApplyIncremental(t *testing.T) {
	tests := []struct {
		name    string
		current map[string]string
		ops     []AlterOp
		want    map[string]string
	}{
		{"set new", nil, []AlterOp{op("retention.ms", opSet, "1000")}, map[string]string{"retention.ms": "1000"}},
		{"set replaces", map[string]string{"retention.ms": "1"}, []AlterOp{op("retention.ms", opSet, "2")}, map[string]string{"retention.ms": "2"}},
		{"set stores the value as given", nil, []AlterOp{op("segment.bytes", opSet, " 100 ")}, map[string]string{"segment.bytes": " 100 "}},
		{"delete reverts to default", map[string]string{"retention.ms": "1", "segment.ms": "2"}, []AlterOp{{Name: "retention.ms", Op: opDelete}},
			map[string]string{"segment.ms": "2"}},
		{"delete of absent known name", map[string]string{"segment.ms": "2"}, []AlterOp{{Name: "retention.ms", Op: opDelete}},
			map[string]string{"segment.ms": "2"}},
		{"delete of stored unknown name", map[string]string{"old.config": "x"}, []AlterOp{{Name: "old.config", Op: opDelete}},
			map[string]string{}},
		{"append to default list", nil, []AlterOp{op("cleanup.policy", opAppend, "compact")},
			map[string]string{"cleanup.policy": "delete,compact"}},
		{"append present item", nil, []AlterOp{op("cleanup.policy", opAppend, "delete")},
			map[string]string{"cleanup.policy": "delete"}},
		{"append to empty default", nil, []AlterOp{op("leader.replication.throttled.replicas", opAppend, "0:1")},
			map[string]string{"leader.replication.throttled.replicas": "0:1"}},
		{"append several with blanks", map[string]string{"follower.replication.throttled.replicas": "0:1"},
			[]AlterOp{op("follower.replication.throttled.replicas", opAppend, " 1:2 , 0:1,,2:3")},
			map[string]string{"follower.replication.throttled.replicas": "0:1,1:2,2:3"}},
		{"subtract", map[string]string{"cleanup.policy": "delete,compact"}, []AlterOp{op("cleanup.policy", opSubtract, "compact")},
			map[string]string{"cleanup.policy": "delete"}},
		{"subtract from default", nil, []AlterOp{op("cleanup.policy", opSubtract, "delete")},
			map[string]string{"cleanup.policy": ""}},
		{"subtract absent item", map[string]string{"leader.replication.throttled.replicas": "0:1,1:1"},
			[]AlterOp{op("leader.replication.throttled.replicas", opSubtract, "5:5,1:1")},
			map[string]string{"leader.replication.throttled.replicas": "0:1"}},
		{"operations in order", map[string]string{"retention.ms": "1"}, []AlterOp{
			{Name: "retention.ms", Op: opDelete}, op("segment.ms", opSet, "5"), op("cleanup.policy", opAppend, "compact"),
		}, map[string]string{"segment.ms": "5", "cleanup.policy": "delete,compact"}},
		{"no operations", map[string]string{"a": "b"}, nil, map[string]string{"a": "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := maps.Clone(tt.current)
			got, err := ApplyIncremental(tt.current, tt.ops)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if !maps.Equal(tt.current, before) {
				t.Errorf("current was modified: %q", tt.current)
			}
		})
	}
}

func TestApplyIncrementalErrors(t *testing.T) {
	tests := []struct {
		name    string
		current map[string]string
		ops     []AlterOp
		msgs    []string
		class   error
	}{
		{"append to non-list", nil, []AlterOp{op("retention.ms", opAppend, "1")},
			[]string{"Can't APPEND to key retention.ms because its type is not LIST."}, ErrInvalidConfig},
		{"subtract from non-list", nil, []AlterOp{op("segment.bytes", opSubtract, "1")},
			[]string{"Can't SUBTRACT to key segment.bytes because its type is not LIST."}, ErrInvalidConfig},
		{"set null", nil, []AlterOp{{Name: "retention.ms", Op: opSet}},
			[]string{"Null value not supported for topic configs: retention.ms"}, ErrInvalidConfig},
		{"append null", nil, []AlterOp{{Name: "cleanup.policy", Op: opAppend}},
			[]string{"Null value not supported for topic configs: cleanup.policy"}, ErrInvalidConfig},
		{"unknown name", nil, []AlterOp{op("retention.hours", opSet, "1")},
			[]string{"Unknown topic config name: retention.hours"}, ErrUnknownConfig},
		{"delete of unknown name not stored", nil, []AlterOp{{Name: "nope", Op: opDelete}},
			[]string{"Unknown topic config name: nope"}, ErrUnknownConfig},
		{"append to stored unknown name", map[string]string{"old": "x"}, []AlterOp{op("old", opAppend, "y")},
			[]string{"Unknown topic config name: old"}, ErrUnknownConfig},
		{"duplicate name", nil, []AlterOp{op("retention.ms", opSet, "1"), {Name: "retention.ms", Op: opDelete}},
			[]string{"Error due to duplicate config keys: retention.ms"}, ErrInvalidRequest},
		{"unknown operation", nil, []AlterOp{op("retention.ms", kmsg.IncrementalAlterConfigOp(9), "1")},
			[]string{"Unknown alter configs op type 9 for config retention.ms"}, ErrInvalidRequest},
		{"all problems", nil, []AlterOp{op("x", opSet, "1"), op("retention.ms", opAppend, "1"), op("x", opSet, "2")},
			[]string{"Unknown topic config name: x", "Can't APPEND", "duplicate config keys: x"}, ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ApplyIncremental(tt.current, tt.ops)
			if got != nil {
				t.Errorf("a map was returned with an error: %q", got)
			}
			checkErrs(t, err, tt.msgs)
			if !errors.Is(err, tt.class) {
				t.Errorf("%v is not %v", err, tt.class)
			}
			if tt.class == ErrInvalidRequest && errors.Is(err, ErrInvalidConfig) {
				t.Errorf("%v: INVALID_REQUEST errors must not match ErrInvalidConfig", err)
			}
		})
	}
}

// TestIncrementalThenValidate is the broker's IncrementalAlterConfigs flow:
// apply, then validate the result as an update.
func TestIncrementalThenValidate(t *testing.T) {
	b := DefaultBroker()
	current := map[string]string{"retention.ms": "86400000"}
	next, err := ApplyIncremental(current, []AlterOp{op("cleanup.policy", opAppend, "compact")})
	if err != nil {
		t.Fatal(err)
	}
	err = ValidateTopicUpdate(b, current, next)
	if err == nil || !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("compact accepted: %v", err)
	}
	next, err = ApplyIncremental(current, []AlterOp{op("local.retention.ms", opSet, "3600000")})
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidateTopicUpdate(b, current, next); err != nil {
		t.Fatal(err)
	}
	topic, err := ResolveTopic(b, next)
	if err != nil || topic.LocalRetentionMs != 3600000 || topic.RetentionMs != 86400000 {
		t.Fatalf("ResolveTopic = %+v, %v", topic, err)
	}
}
