package config

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const week = int64(7 * 24 * 3600 * 1000)

func defaultTopic() Topic {
	return Topic{
		SegmentBytes: 1 << 30, SegmentMs: week, SegmentIndexBytes: 10 << 20, IndexIntervalBytes: 4096,
		RetentionMs: week, RetentionBytes: -1, RemoteStorageEnable: true,
		LocalRetentionMs: week, LocalRetentionBytes: -1, MaxMessageBytes: 1048588,
		MessageTimestampType: CreateTime, MessageTimestampBeforeMaxMs: math.MaxInt64, MessageTimestampAfterMaxMs: math.MaxInt64,
		CleanupPolicy: []string{"delete"}, MinInsyncReplicas: 1, FlushMessages: math.MaxInt64, FlushMs: math.MaxInt64,
		UncleanLeaderElectionEnable: false, CompressionType: "producer",
	}
}

func TestResolveTopic(t *testing.T) {
	tests := []struct {
		name      string
		broker    map[string]string
		overrides map[string]string
		want      func(*Topic)
	}{
		{"defaults", nil, nil, func(*Topic) {}},
		{"inherits broker settings", map[string]string{
			"log.segment.bytes": "1000", "log.roll.hours": "1", "log.index.size.max.bytes": "4096",
			"log.index.interval.bytes": "100", "log.retention.minutes": "60", "log.retention.bytes": "5000",
			"message.max.bytes": "2000", "log.message.timestamp.type": "LogAppendTime", "min.insync.replicas": "2",
			"log.flush.interval.messages": "10", "log.flush.scheduler.interval.ms": "20",
			"unclean.leader.election.enable": "true", "log.local.retention.ms": "60000", "log.local.retention.bytes": "100",
			"log.message.timestamp.before.max.ms": "30", "log.message.timestamp.after.max.ms": "40",
		}, nil, func(t *Topic) {
			t.SegmentBytes, t.SegmentMs, t.SegmentIndexBytes, t.IndexIntervalBytes = 1000, 3600000, 4096, 100
			t.RetentionMs, t.RetentionBytes, t.LocalRetentionMs, t.LocalRetentionBytes = 3600000, 5000, 60000, 100
			t.MaxMessageBytes, t.MessageTimestampType, t.MinInsyncReplicas = 2000, LogAppendTime, 2
			t.FlushMessages, t.FlushMs, t.UncleanLeaderElectionEnable = 10, 20, true
			t.MessageTimestampBeforeMaxMs, t.MessageTimestampAfterMaxMs = 30, 40
		}},
		{"every supported override", nil, map[string]string{
			"segment.bytes": "2000", "segment.ms": "60000", "segment.index.bytes": "8192", "index.interval.bytes": "1",
			"retention.ms": "86400000", "retention.bytes": "1000000", "local.retention.ms": "3600000",
			"local.retention.bytes": "1000", "max.message.bytes": "100", "message.timestamp.type": "LogAppendTime",
			"message.timestamp.before.max.ms": "5", "message.timestamp.after.max.ms": "6", "cleanup.policy": "delete",
			"min.insync.replicas": "3", "flush.messages": "1", "flush.ms": "0", "unclean.leader.election.enable": "TRUE",
			"compression.type": "producer", "remote.storage.enable": "true",
		}, func(t *Topic) {
			t.SegmentBytes, t.SegmentMs, t.SegmentIndexBytes, t.IndexIntervalBytes = 2000, 60000, 8192, 1
			t.RetentionMs, t.RetentionBytes, t.LocalRetentionMs, t.LocalRetentionBytes = 86400000, 1000000, 3600000, 1000
			t.MaxMessageBytes, t.MessageTimestampType = 100, LogAppendTime
			t.MessageTimestampBeforeMaxMs, t.MessageTimestampAfterMaxMs = 5, 6
			t.MinInsyncReplicas, t.FlushMessages, t.FlushMs, t.UncleanLeaderElectionEnable = 3, 1, 0, true
		}},
		{"override beats broker", map[string]string{"log.retention.hours": "1"}, map[string]string{"retention.ms": "-1"},
			func(t *Topic) { t.RetentionMs, t.LocalRetentionMs = -1, -1 }},
		{"local -2 follows the topic's retention", nil, map[string]string{"retention.ms": "1000", "retention.bytes": "50"},
			func(t *Topic) {
				t.RetentionMs, t.LocalRetentionMs, t.RetentionBytes, t.LocalRetentionBytes = 1000, 1000, 50, 50
			}},
		{"local forever with total forever", nil, map[string]string{"retention.ms": "-1", "local.retention.ms": "-1"},
			func(t *Topic) { t.RetentionMs, t.LocalRetentionMs = -1, -1 }},
		{"local limited with total forever", nil, map[string]string{"retention.ms": "-1", "local.retention.ms": "1000"},
			func(t *Topic) { t.RetentionMs, t.LocalRetentionMs = -1, 1000 }},
		{"tiering off: local follows total whatever it says", nil, map[string]string{
			"remote.storage.enable": "false", "retention.ms": "1000", "local.retention.ms": "5000", "local.retention.bytes": "-1", "retention.bytes": "10",
		}, func(t *Topic) {
			t.RemoteStorageEnable, t.RetentionMs, t.LocalRetentionMs, t.RetentionBytes, t.LocalRetentionBytes = false, 1000, 1000, 10, 10
		}},
		{"tiering off on the broker", map[string]string{"remote.log.storage.system.enable": "false"}, nil,
			func(t *Topic) { t.RemoteStorageEnable = false }},
		{"difference fills both sides", nil, map[string]string{"message.timestamp.difference.max.ms": "1000"},
			func(t *Topic) { t.MessageTimestampBeforeMaxMs, t.MessageTimestampAfterMaxMs = 1000, 1000 }},
		{"difference fills only unset sides", nil, map[string]string{"message.timestamp.difference.max.ms": "1000", "message.timestamp.before.max.ms": "50"},
			func(t *Topic) { t.MessageTimestampBeforeMaxMs, t.MessageTimestampAfterMaxMs = 50, 1000 }},
		{"difference from the broker", map[string]string{"log.message.timestamp.difference.max.ms": "7"}, nil,
			func(t *Topic) { t.MessageTimestampBeforeMaxMs, t.MessageTimestampAfterMaxMs = 7, 7 }},
		{"broker after beats topic difference", map[string]string{"log.message.timestamp.after.max.ms": "9"}, map[string]string{"message.timestamp.difference.max.ms": "7"},
			func(t *Topic) { t.MessageTimestampBeforeMaxMs, t.MessageTimestampAfterMaxMs = 7, 9 }},
		{"no-effect configs change nothing", nil, map[string]string{
			"preallocate": "true", "file.delete.delay.ms": "0", "segment.jitter.ms": "10", "message.downconversion.enable": "false",
			"follower.replication.throttled.replicas": "0:1,1:2", "leader.replication.throttled.replicas": "*",
			"delete.retention.ms": "1", "min.compaction.lag.ms": "1", "max.compaction.lag.ms": "2", "min.cleanable.dirty.ratio": "0.1",
			"message.format.version": "2.8", "remote.log.copy.disable": "false", "remote.log.delete.on.disable": "true",
			"compression.gzip.level": "9", "compression.lz4.level": "17", "compression.zstd.level": "-5",
		}, func(*Topic) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustBroker(t, tt.broker)
			got, err := ResolveTopic(b, tt.overrides)
			if err != nil {
				t.Fatal(err)
			}
			want := defaultTopic()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			if err := ValidateTopicOverrides(b, tt.overrides); err != nil {
				t.Errorf("ValidateTopicOverrides: %v", err)
			}
		})
	}
}

// topicBad gives a bad value for every topic config that has one, with a
// piece of the message.
var topicBad = map[string]struct{ bad, msg string }{
	"cleanup.policy":                          {"compact", "cleanup.policy=compact is not supported yet"},
	"compression.type":                        {"zstd", `"zstd" is not supported: only "producer" is, because Tiercel stores batches as the producer compressed them and never recompresses`},
	"compression.gzip.level":                  {"0", "must be -1 or between 1 and 9, got 0"},
	"compression.lz4.level":                   {"18", "must be between 1 and 17, got 18"},
	"compression.zstd.level":                  {"23", "must be between -131072 and 22, got 23"},
	"delete.retention.ms":                     {"-1", "must be >= 0, got -1"},
	"file.delete.delay.ms":                    {"-1", "must be >= 0, got -1"},
	"flush.messages":                          {"0", "must be >= 1, got 0"},
	"flush.ms":                                {"-1", "must be >= 0, got -1"},
	"follower.replication.throttled.replicas": {"0:1,x", `"x" is not valid; must be "*" or a list of partition:broker pairs`},
	"index.interval.bytes":                    {"-1", "must be >= 0, got -1"},
	"leader.replication.throttled.replicas":   {"*,0:1", `"*" is not valid`},
	"local.retention.bytes":                   {"-3", "must be >= -2, got -3"},
	"local.retention.ms":                      {"-3", "must be >= -2, got -3"},
	"max.compaction.lag.ms":                   {"0", "must be >= 1, got 0"},
	"max.message.bytes":                       {"-1", "must be >= 0, got -1"},
	"message.downconversion.enable":           {"nope", `"nope" is not a valid boolean`},
	"message.timestamp.after.max.ms":          {"-1", "must be >= 0, got -1"},
	"message.timestamp.before.max.ms":         {"x", `"x" is not a valid long`},
	"message.timestamp.difference.max.ms":     {"-1", "must be >= 0, got -1"},
	"message.timestamp.type":                  {"NoTime", `"NoTime" is not valid; must be one of CreateTime, LogAppendTime`},
	"min.cleanable.dirty.ratio":               {"1.5", "must be in [0.0, 1.0], got 1.5"},
	"min.compaction.lag.ms":                   {"-1", "must be >= 0, got -1"},
	"min.insync.replicas":                     {"0", "must be >= 1, got 0"},
	"preallocate":                             {"2", `"2" is not a valid boolean`},
	"remote.log.copy.disable":                 {"true", "true is not supported yet; only false is accepted"},
	"remote.log.delete.on.disable":            {"x", `"x" is not a valid boolean`},
	"remote.storage.enable":                   {"on", `"on" is not a valid boolean`},
	"retention.bytes":                         {"-2", "must be >= -1, got -2"},
	"retention.ms":                            {"-2", "must be >= -1, got -2"},
	"segment.bytes":                           {"13", "must be >= 14, got 13"},
	"segment.index.bytes":                     {"3", "must be >= 4, got 3"},
	"segment.jitter.ms":                       {"-1", "must be >= 0, got -1"},
	"segment.ms":                              {"0", "must be >= 1, got 0"},
	"unclean.leader.election.enable":          {"yes", `"yes" is not a valid boolean`},
}

func TestResolveTopicBadValues(t *testing.T) {
	b := DefaultBroker()
	for i := range topicDefs {
		d := &topicDefs[i]
		tc, ok := topicBad[d.name]
		if !ok {
			if d.typ != kmsg.ConfigTypeString {
				t.Errorf("%s: no bad-value case", d.name)
			}
			continue
		}
		overrides := map[string]string{d.name: tc.bad}
		if d.name == "cleanup.policy" {
			overrides["remote.storage.enable"] = "false" // only the policy error
		}
		_, err := ResolveTopic(b, overrides)
		if err == nil {
			t.Errorf("%s=%s accepted", d.name, tc.bad)
			continue
		}
		if !errors.Is(err, ErrInvalidConfig) || errors.Is(err, ErrUnknownConfig) {
			t.Errorf("%s: %v: want ErrInvalidConfig only", d.name, err)
		}
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Name != d.name || ce.Value != tc.bad {
			t.Errorf("%s: ConfigError %+v", d.name, ce)
		}
		if !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: message %q does not contain %q", d.name, err, tc.msg)
		}
	}
}

func TestResolveTopicRules(t *testing.T) {
	tests := []struct {
		name      string
		broker    map[string]string
		overrides map[string]string
		msgs      []string
	}{
		{"unknown name", nil, map[string]string{"retention.hours": "1"}, []string{"Unknown topic config name: retention.hours"}},
		{"broker setting is not a topic config", nil, map[string]string{"log.retention.ms": "1"}, []string{"Unknown topic config name: log.retention.ms"}},
		{"compact", map[string]string{"remote.log.storage.system.enable": "false"}, map[string]string{"cleanup.policy": "compact"},
			[]string{"cleanup.policy=compact is not supported yet"}},
		{"compact,delete", map[string]string{"remote.log.storage.system.enable": "false"}, map[string]string{"cleanup.policy": "compact,delete"},
			[]string{"cleanup.policy=compact is not supported yet"}},
		{"compact on a tiered topic", nil, map[string]string{"cleanup.policy": "delete,compact"}, []string{
			"cleanup.policy=compact is not supported yet",
			"cleanup.policy: compaction cannot be combined with remote.storage.enable=true",
		}},
		{"empty cleanup policy", nil, map[string]string{"cleanup.policy": ""}, []string{"cleanup.policy: must not be empty"}},
		{"unknown cleanup policy", nil, map[string]string{"cleanup.policy": "delete,shred"}, []string{`cleanup.policy: "shred" is not valid`}},
		{"tiering needs the broker", map[string]string{"remote.log.storage.system.enable": "false"}, map[string]string{"remote.storage.enable": "true"},
			[]string{"remote.storage.enable: tiered storage is switched off on this broker"}},
		{"local ms beyond total", nil, map[string]string{"retention.ms": "1000", "local.retention.ms": "2000"},
			[]string{"local.retention.ms: 2000 exceeds retention.ms (1000)"}},
		{"local ms beyond broker total", map[string]string{"log.retention.hours": "1"}, map[string]string{"local.retention.ms": "86400000"},
			[]string{"local.retention.ms: 86400000 exceeds retention.ms (3600000)"}},
		{"local ms beyond total from broker local default", map[string]string{"log.local.retention.ms": "1000"}, map[string]string{"retention.ms": "500"},
			[]string{"local.retention.ms: 1000 exceeds retention.ms (500)"}},
		{"local ms forever, total finite", nil, map[string]string{"local.retention.ms": "-1"},
			[]string{"local.retention.ms: -1 (keep forever) is not allowed while retention.ms is limited (604800000)"}},
		{"local bytes beyond total", nil, map[string]string{"retention.bytes": "1000", "local.retention.bytes": "1001"},
			[]string{"local.retention.bytes: 1001 exceeds retention.bytes (1000)"}},
		{"local bytes forever, total finite", nil, map[string]string{"retention.bytes": "1000", "local.retention.bytes": "-1"},
			[]string{"local.retention.bytes: -1 (keep forever) is not allowed while retention.bytes is limited (1000)"}},
		{"compaction lags inverted", nil, map[string]string{"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"},
			[]string{"min.compaction.lag.ms: 10 exceeds max.compaction.lag.ms (5)"}},
		{"bad retention does not cascade", nil, map[string]string{"retention.ms": "abc", "local.retention.ms": "5"},
			[]string{`retention.ms: "abc" is not a valid long`}},
		{"bad remote flag does not cascade", nil, map[string]string{"remote.storage.enable": "x", "local.retention.ms": "-1"},
			[]string{`remote.storage.enable: "x" is not a valid boolean`}},
		{"all problems in order", nil, map[string]string{
			"zz.top": "1", "segment.bytes": "1", "a.b": "1", "retention.ms": "10", "local.retention.ms": "20",
		}, []string{
			"Unknown topic config name: a.b", "segment.bytes: must be >= 14, got 1", "Unknown topic config name: zz.top",
			"local.retention.ms: 20 exceeds retention.ms (10)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustBroker(t, tt.broker)
			topic, err := ResolveTopic(b, tt.overrides)
			checkErrs(t, err, tt.msgs)
			if !reflect.DeepEqual(topic, Topic{}) {
				t.Errorf("a Topic was returned with an error: %+v", topic)
			}
			verr := ValidateTopicOverrides(b, tt.overrides)
			if verr == nil || verr.Error() != err.Error() {
				t.Errorf("ValidateTopicOverrides = %v, want the same error", verr)
			}
		})
	}
}

func TestUnknownTopicConfigError(t *testing.T) {
	err := ValidateTopicOverrides(DefaultBroker(), map[string]string{"x": "1"})
	if err == nil || err.Error() != "Unknown topic config name: x" {
		t.Fatalf("err = %v", err)
	}
	if !errors.Is(err, ErrUnknownConfig) || !errors.Is(err, ErrInvalidConfig) || errors.Is(err, ErrInvalidRequest) {
		t.Errorf("classification wrong for %v", err)
	}
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Name != "x" || ce.Value != "" {
		t.Errorf("ConfigError = %+v", ce)
	}
}

func TestValidateTopicUpdate(t *testing.T) {
	tests := []struct {
		name             string
		broker           map[string]string
		current, updated map[string]string
		msgs             []string
	}{
		{"unchanged", nil, nil, nil, nil},
		{"ordinary change", nil, nil, map[string]string{"retention.ms": "5"}, nil},
		{"switching tiering off", nil, nil, map[string]string{"remote.storage.enable": "false"},
			[]string{"remote.storage.enable: switching tiered storage off for an existing topic is not supported yet"}},
		{"switching tiering off explicitly set", nil, map[string]string{"remote.storage.enable": "true"}, map[string]string{"remote.storage.enable": "false"},
			[]string{"switching tiered storage off"}},
		{"switching tiering on", nil, map[string]string{"remote.storage.enable": "false"}, nil, nil},
		{"off and off", map[string]string{"remote.log.storage.system.enable": "false"}, nil, map[string]string{"remote.storage.enable": "false"}, nil},
		{"invalid update and switch off", nil, nil, map[string]string{"remote.storage.enable": "false", "segment.ms": "0"},
			[]string{"segment.ms: must be >= 1, got 0", "switching tiered storage off"}},
		{"unparsable current counts as default", nil, map[string]string{"remote.storage.enable": "??"}, map[string]string{"remote.storage.enable": "false"},
			[]string{"switching tiered storage off"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErrs(t, ValidateTopicUpdate(mustBroker(t, tt.broker), tt.current, tt.updated), tt.msgs)
		})
	}
}

func TestTopicRegistry(t *testing.T) {
	var r resolving
	for i := range topicDefs {
		d := &topicDefs[i]
		if i > 0 && topicDefs[i-1].name >= d.name {
			t.Errorf("%s: registry not sorted or has duplicates", d.name)
		}
		if d.doc == "" || !strings.HasSuffix(d.doc, ".") {
			t.Errorf("%s: doc missing or not a sentence", d.name)
		}
		if d.noEffect() != strings.Contains(d.doc, "No effect") && d.name != "remote.log.copy.disable" {
			t.Errorf("%s: doc must say \"No effect\" exactly when the config has none", d.name)
		}
		if _, err := d.parse(d.kafkaDefault); err != nil {
			t.Errorf("%s: Kafka default %q: %v", d.name, d.kafkaDefault, err)
		}
		for _, s := range d.synonyms {
			bd := brokerIndex[s]
			if bd == nil {
				t.Errorf("%s: synonym %s is not a broker setting", d.name, s)
				continue
			}
			if bd.typ != d.typ && d.fromBroker == nil {
				t.Errorf("%s: type %s differs from synonym %s (%s) without a conversion", d.name, typeName(d.typ), s, typeName(bd.typ))
			}
		}
		if d.noEffect() && len(d.synonyms) > 0 {
			t.Errorf("%s: no-effect configs take Kafka's default, not a broker synonym", d.name)
		}
		if !d.noEffect() {
			p := d.field(&r)
			if _, ok := p.(*int64); ok && d.typ == kmsg.ConfigTypeLong {
				continue
			}
			checkFieldType(t, d.name, d.typ, p, false)
		}
	}
	defs := TopicDefinitions()
	if len(defs) != len(topicDefs) {
		t.Fatalf("TopicDefinitions: %d, want %d", len(defs), len(topicDefs))
	}
	byName := map[string]Definition{}
	for _, d := range defs {
		byName[d.Name] = d
		if d.ReadOnly || d.Default == nil {
			t.Errorf("%s: %+v", d.Name, d)
		}
	}
	if d := byName["retention.ms"]; *d.Default != "604800000" || len(d.Synonyms) != 3 || d.NoEffect {
		t.Errorf("retention.ms = %+v", d)
	}
	if d := byName["preallocate"]; !d.NoEffect || *d.Default != "false" {
		t.Errorf("preallocate = %+v", d)
	}
	if d := byName["remote.storage.enable"]; *d.Default != "true" {
		t.Errorf("remote.storage.enable = %+v", d)
	}
}
