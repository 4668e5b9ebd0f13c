package config

import (
	"math"
	"slices"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	srcTopic   = kmsg.ConfigSourceDynamicTopicConfig
	srcStatic  = kmsg.ConfigSourceStaticBrokerConfig
	srcDefault = kmsg.ConfigSourceDefaultConfig
)

func syn(name, value string, src kmsg.ConfigSource) Synonym {
	return Synonym{Name: name, Value: &value, Source: src}
}

func equalPtr(a, b *string) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

func equalSynonyms(a, b []Synonym) bool {
	return slices.EqualFunc(a, b, func(x, y Synonym) bool {
		return x.Name == y.Name && x.Source == y.Source && equalPtr(x.Value, y.Value)
	})
}

func equalEntry(a, b Entry) bool {
	return a.Name == b.Name && equalPtr(a.Value, b.Value) && a.ReadOnly == b.ReadOnly &&
		a.IsDefault == b.IsDefault && a.Source == b.Source && a.IsSensitive == b.IsSensitive &&
		equalSynonyms(a.Synonyms, b.Synonyms) && a.Type == b.Type && equalPtr(a.Documentation, b.Documentation)
}

func find(t *testing.T, entries []Entry, name string) Entry {
	t.Helper()
	for _, e := range entries {
		if e.Name == name {
			return e
		}
	}
	t.Fatalf("no entry %s", name)
	return Entry{}
}

func mustBroker(t *testing.T, props map[string]string) Broker {
	t.Helper()
	b, err := NewBroker(props)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDescribeTopic(t *testing.T) {
	max := strconv.FormatInt(math.MaxInt64, 10)
	tests := []struct {
		name      string
		broker    map[string]string
		overrides map[string]string
		config    string
		value     *string
		source    kmsg.ConfigSource
		synonyms  []Synonym
	}{
		{"retention default", nil, nil, "retention.ms", ptr("604800000"), srcDefault,
			[]Synonym{syn("log.retention.hours", "168", srcDefault)}},
		{"retention from static minutes and hours", map[string]string{"log.retention.minutes": "10", "log.retention.hours": "24"}, nil,
			"retention.ms", ptr("600000"), srcStatic, []Synonym{
				syn("log.retention.minutes", "10", srcStatic),
				syn("log.retention.hours", "24", srcStatic),
				syn("log.retention.hours", "168", srcDefault),
			}},
		{"retention override first", map[string]string{"log.retention.ms": "5000"}, map[string]string{"retention.ms": "1000"},
			"retention.ms", ptr("1000"), srcTopic, []Synonym{
				syn("retention.ms", "1000", srcTopic),
				syn("log.retention.ms", "5000", srcStatic),
				syn("log.retention.hours", "168", srcDefault),
			}},
		{"segment.ms from hours", map[string]string{"log.roll.hours": "1"}, nil, "segment.ms", ptr("3600000"), srcStatic,
			[]Synonym{syn("log.roll.hours", "1", srcStatic), syn("log.roll.hours", "168", srcDefault)}},
		{"segment.bytes default", nil, nil, "segment.bytes", ptr("1073741824"), srcDefault,
			[]Synonym{syn("log.segment.bytes", "1073741824", srcDefault)}},
		{"segment.bytes static equal to default", map[string]string{"log.segment.bytes": "1073741824"}, nil, "segment.bytes", ptr("1073741824"), srcStatic,
			[]Synonym{syn("log.segment.bytes", "1073741824", srcStatic), syn("log.segment.bytes", "1073741824", srcDefault)}},
		{"flush.ms never", nil, nil, "flush.ms", &max, srcDefault,
			[]Synonym{syn("log.flush.scheduler.interval.ms", max, srcDefault)}},
		{"flush.ms from interval", map[string]string{"log.flush.interval.ms": "10"}, nil, "flush.ms", ptr("10"), srcStatic,
			[]Synonym{syn("log.flush.interval.ms", "10", srcStatic), syn("log.flush.scheduler.interval.ms", max, srcDefault)}},
		{"remote.storage.enable default", nil, nil, "remote.storage.enable", ptr("true"), srcDefault,
			[]Synonym{syn("remote.log.storage.system.enable", "true", srcDefault)}},
		{"remote.storage.enable from broker", map[string]string{"remote.log.storage.system.enable": "false"}, nil, "remote.storage.enable", ptr("false"), srcStatic,
			[]Synonym{syn("remote.log.storage.system.enable", "false", srcStatic), syn("remote.log.storage.system.enable", "true", srcDefault)}},
		{"local.retention.ms shows -2", nil, nil, "local.retention.ms", ptr("-2"), srcDefault,
			[]Synonym{syn("log.local.retention.ms", "-2", srcDefault)}},
		{"override normalized", nil, map[string]string{"segment.bytes": " 100 "}, "segment.bytes", ptr("100"), srcTopic,
			[]Synonym{syn("segment.bytes", "100", srcTopic), syn("log.segment.bytes", "1073741824", srcDefault)}},
		{"list override normalized", nil, map[string]string{"cleanup.policy": " delete , delete "}, "cleanup.policy", ptr("delete,delete"), srcTopic,
			[]Synonym{syn("cleanup.policy", "delete,delete", srcTopic), syn("log.cleanup.policy", "delete", srcDefault)}},
		{"invalid stored override shown raw", nil, map[string]string{"retention.ms": "soon"}, "retention.ms", ptr("soon"), srcTopic,
			[]Synonym{syn("retention.ms", "soon", srcTopic), syn("log.retention.hours", "168", srcDefault)}},
		{"no-effect config default", nil, nil, "preallocate", ptr("false"), srcDefault, nil},
		{"no-effect double default", nil, nil, "min.cleanable.dirty.ratio", ptr("0.5"), srcDefault, nil},
		{"no-effect override", nil, map[string]string{"min.cleanable.dirty.ratio": "1"}, "min.cleanable.dirty.ratio", ptr("1.0"), srcTopic,
			[]Synonym{syn("min.cleanable.dirty.ratio", "1.0", srcTopic)}},
		{"throttled replicas default empty", nil, nil, "leader.replication.throttled.replicas", ptr(""), srcDefault, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustBroker(t, tt.broker)
			e := find(t, DescribeTopic(b, tt.overrides, true, true), tt.config)
			if !equalPtr(e.Value, tt.value) {
				t.Errorf("value = %s, want %s", deref(e.Value), deref(tt.value))
			}
			if e.Source != tt.source || e.IsDefault != (tt.source == srcDefault) {
				t.Errorf("source = %v (IsDefault %v), want %v", e.Source, e.IsDefault, tt.source)
			}
			if !equalSynonyms(e.Synonyms, tt.synonyms) {
				t.Errorf("synonyms = %s, want %s", fmtSyns(e.Synonyms), fmtSyns(tt.synonyms))
			}
			if e.ReadOnly || e.IsSensitive || e.Documentation == nil || *e.Documentation == "" {
				t.Errorf("flags/doc wrong: %+v", e)
			}
			// Without synonyms and docs, the rest stays the same.
			bare := find(t, DescribeTopic(b, tt.overrides, false, false), tt.config)
			if bare.Synonyms != nil || bare.Documentation != nil || bare.Source != e.Source || !equalPtr(bare.Value, e.Value) {
				t.Errorf("bare entry = %+v", bare)
			}
		})
	}
}

func fmtSyns(s []Synonym) string {
	out := "["
	for _, x := range s {
		out += x.Source.String() + ":" + x.Name + "=" + deref(x.Value) + " "
	}
	return out + "]"
}

func TestDescribeTopicCoversEverything(t *testing.T) {
	entries := DescribeTopic(DefaultBroker(), nil, false, false)
	if len(entries) != len(topicDefs) {
		t.Fatalf("%d entries, want %d", len(entries), len(topicDefs))
	}
	if !slices.IsSortedFunc(entries, func(a, b Entry) int { return compareStrings(a.Name, b.Name) }) {
		t.Error("entries not sorted by name")
	}
	types := map[string]kmsg.ConfigType{
		"segment.bytes": kmsg.ConfigTypeInt, "retention.ms": kmsg.ConfigTypeLong, "cleanup.policy": kmsg.ConfigTypeList,
		"remote.storage.enable": kmsg.ConfigTypeBoolean, "message.timestamp.type": kmsg.ConfigTypeString,
		"min.cleanable.dirty.ratio": kmsg.ConfigTypeDouble,
	}
	for name, typ := range types {
		if e := find(t, entries, name); e.Type != typ {
			t.Errorf("%s: type %v, want %v", name, e.Type, typ)
		}
	}
	// The defaults described are the values a topic resolves to.
	topic, err := ResolveTopic(DefaultBroker(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if v := find(t, entries, "max.message.bytes").Value; *v != strconv.Itoa(int(topic.MaxMessageBytes)) {
		t.Errorf("max.message.bytes described %s, resolved %d", *v, topic.MaxMessageBytes)
	}
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestBrokerDescribe(t *testing.T) {
	b := mustBroker(t, map[string]string{"log.retention.ms": "1000", "log.retention.hours": "24", "num.partitions": "3"})
	b.BrokerRack = "r1" // changed by the caller after NewBroker: still configured
	entries := b.Describe(true, true)
	if len(entries) != len(brokerDefs) {
		t.Fatalf("%d entries, want %d", len(entries), len(brokerDefs))
	}
	tests := []struct {
		name     string
		value    *string
		source   kmsg.ConfigSource
		synonyms []Synonym
	}{
		{"log.retention.ms", ptr("1000"), srcStatic, []Synonym{
			syn("log.retention.ms", "1000", srcStatic), syn("log.retention.hours", "24", srcStatic), syn("log.retention.hours", "168", srcDefault)}},
		{"log.retention.minutes", nil, srcDefault, nil},
		{"log.retention.hours", ptr("24"), srcStatic, []Synonym{
			syn("log.retention.hours", "24", srcStatic), syn("log.retention.hours", "168", srcDefault)}},
		{"num.partitions", ptr("3"), srcStatic, []Synonym{syn("num.partitions", "3", srcStatic), syn("num.partitions", "1", srcDefault)}},
		{"broker.rack", ptr("r1"), srcStatic, []Synonym{syn("broker.rack", "r1", srcStatic), syn("broker.rack", "", srcDefault)}},
		{"log.roll.ms", nil, srcDefault, nil},
		{"log.roll.hours", ptr("168"), srcDefault, []Synonym{syn("log.roll.hours", "168", srcDefault)}},
		{"tiercel.local.disk.max.used.ratio", ptr("0.9"), srcDefault, []Synonym{syn("tiercel.local.disk.max.used.ratio", "0.9", srcDefault)}},
		{"log.cleanup.policy", ptr("delete"), srcDefault, []Synonym{syn("log.cleanup.policy", "delete", srcDefault)}},
	}
	for _, tt := range tests {
		e := find(t, entries, tt.name)
		if !equalPtr(e.Value, tt.value) || e.Source != tt.source || !equalSynonyms(e.Synonyms, tt.synonyms) {
			t.Errorf("%s = %s %v %s, want %s %v %s", tt.name, deref(e.Value), e.Source, fmtSyns(e.Synonyms),
				deref(tt.value), tt.source, fmtSyns(tt.synonyms))
		}
		if !e.ReadOnly || e.IsSensitive || e.Documentation == nil {
			t.Errorf("%s: flags/doc wrong: %+v", tt.name, e)
		}
	}
	for _, e := range DefaultBroker().Describe(false, false) {
		if e.Source != srcDefault || !e.IsDefault || e.Synonyms != nil || e.Documentation != nil {
			t.Errorf("default broker: %s = %+v", e.Name, e)
		}
	}
}

func TestEntryKmsg(t *testing.T) {
	b := mustBroker(t, map[string]string{"log.retention.hours": "24"})
	e := find(t, DescribeTopic(b, map[string]string{"retention.ms": "5"}, true, true), "retention.ms")
	k := e.Kmsg()
	if k.Name != e.Name || k.Value != e.Value || k.ReadOnly || k.IsDefault || k.Source != srcTopic ||
		k.IsSensitive || k.ConfigType != kmsg.ConfigTypeLong || k.Documentation != e.Documentation {
		t.Errorf("Kmsg() = %+v from %+v", k, e)
	}
	if len(k.ConfigSynonyms) != 3 || k.ConfigSynonyms[1].Name != "log.retention.hours" ||
		*k.ConfigSynonyms[1].Value != "24" || k.ConfigSynonyms[1].Source != srcStatic {
		t.Errorf("synonyms = %+v", k.ConfigSynonyms)
	}
	// It must survive the wire.
	resp := kmsg.NewDescribeConfigsResponse()
	resp.Version = 4
	res := kmsg.NewDescribeConfigsResponseResource()
	res.Configs = append(res.Configs, k)
	resp.Resources = append(resp.Resources, res)
	var back kmsg.DescribeConfigsResponse
	back.Version = 4
	if err := back.ReadFrom(resp.AppendTo(nil)); err != nil {
		t.Fatal(err)
	}
	if got := back.Resources[0].Configs[0]; got.Name != "retention.ms" || *got.Value != "5" || len(got.ConfigSynonyms) != 3 {
		t.Errorf("after round trip: %+v", got)
	}
}

func TestFormatJavaDouble(t *testing.T) {
	for in, want := range map[float64]string{
		0: "0.0", 0.5: "0.5", 1: "1.0", 0.9: "0.9", 1234567: "1234567.0", 0.001: "0.001",
		1e-4: "1.0E-4", 1.5e-5: "1.5E-5", 1e7: "1.0E7", -2.5e10: "-2.5E10",
	} {
		if got := formatJavaDouble(in); got != want {
			t.Errorf("formatJavaDouble(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestFinishHidesPasswords(t *testing.T) {
	syns := []Synonym{syn("secret", "hunter2", srcStatic)}
	e := finish(Entry{Name: "secret", Value: ptr("hunter2"), Type: kmsg.ConfigTypePassword}, syns, true, "doc", false)
	if !e.IsSensitive || e.Value != nil || e.Synonyms[0].Value != nil || e.Source != srcStatic {
		t.Errorf("password entry = %+v", e)
	}
}
