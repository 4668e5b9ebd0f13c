package config

import (
	"errors"
	"math"
	"slices"
	"sort"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Topic holds the effective configs of one topic, typed, with every
// default and fallback already resolved: code that enforces a config reads
// its field and never has to know about -2, synonyms or deprecated forms.
// Times are in milliseconds, as the Kafka names say.
type Topic struct {
	// SegmentBytes is segment.bytes: roll the active segment at this size.
	SegmentBytes int32
	// SegmentMs is segment.ms: roll the active segment once its first
	// record is this old, so that it can be offloaded and expire.
	SegmentMs int64
	// SegmentIndexBytes is segment.index.bytes: size of the offset and
	// time index files; a full index rolls the segment.
	SegmentIndexBytes int32
	// IndexIntervalBytes is index.interval.bytes: bytes of batches between
	// two offset index entries.
	IndexIntervalBytes int32
	// RetentionMs is retention.ms: total retention time, local and remote;
	// -1 keeps data forever.
	RetentionMs int64
	// RetentionBytes is retention.bytes: total size limit of a partition,
	// local and remote; -1 is no limit.
	RetentionBytes int64
	// RemoteStorageEnable is remote.storage.enable: whether sealed
	// segments are offloaded to the object store.
	RemoteStorageEnable bool
	// LocalRetentionMs is the effective local.retention.ms: how long an
	// offloaded segment stays on local disk; -1 forever. It equals
	// RetentionMs when the config is -2 and whenever remote storage is off
	// (then nothing is offloaded and total retention governs local data).
	LocalRetentionMs int64
	// LocalRetentionBytes is the effective local.retention.bytes, resolved
	// like LocalRetentionMs; -1 is no limit.
	LocalRetentionBytes int64
	// MaxMessageBytes is max.message.bytes: largest record batch accepted.
	MaxMessageBytes int32
	// MessageTimestampType is message.timestamp.type.
	MessageTimestampType TimestampType
	// MessageTimestampBeforeMaxMs is the effective
	// message.timestamp.before.max.ms: a CreateTime batch with a timestamp
	// more than this far behind the broker's clock is rejected with
	// INVALID_TIMESTAMP. Where before.max.ms is left at Long.MAX, the
	// deprecated message.timestamp.difference.max.ms applies instead, as
	// in Kafka 3.6+. math.MaxInt64 means no check. Not applied to
	// LogAppendTime topics.
	MessageTimestampBeforeMaxMs int64
	// MessageTimestampAfterMaxMs is the same for timestamps ahead of the
	// broker's clock (message.timestamp.after.max.ms).
	MessageTimestampAfterMaxMs int64
	// CleanupPolicy is cleanup.policy; always ["delete"] today.
	CleanupPolicy []string
	// MinInsyncReplicas is min.insync.replicas.
	MinInsyncReplicas int32
	// FlushMessages is flush.messages: fsync after this many records;
	// math.MaxInt64 means never.
	FlushMessages int64
	// FlushMs is flush.ms: fsync data unflushed for this long;
	// math.MaxInt64 means never.
	FlushMs int64
	// UncleanLeaderElectionEnable is unclean.leader.election.enable.
	UncleanLeaderElectionEnable bool
	// CompressionType is compression.type; always "producer".
	CompressionType string
}

// resolving is a Topic under construction, with the raw forms that
// resolution and cross-config checks need but Topic does not expose.
type resolving struct {
	t                   Topic
	localMs, localBytes int64 // as configured, -2 not yet resolved
	differenceMaxMs     int64 // deprecated window, folded into before/after
	minLagMs, maxLagMs  int64 // no effect, but Kafka checks their order
}

// topicDef is one topic config in the registry.
type topicDef struct {
	spec
	// synonyms are the broker settings that supply the default, highest
	// precedence first, as DescribeConfigs lists them.
	synonyms []string
	// fromBroker computes the default from the broker when it is more
	// than the first synonym's value (unit conversion, fallbacks). nil
	// with synonyms: the first synonym's value is used as is.
	fromBroker func(b *Broker) value
	// kafkaDefault is Kafka's own topic-level default. It is the default
	// of configs without synonyms, and the starting list of APPEND and
	// SUBTRACT on a config that has no override, as in Kafka.
	kafkaDefault string
	// field points at where the value goes; nil for configs with no
	// effect in Tiercel.
	field func(r *resolving) any
}

// noEffect reports whether Tiercel accepts the config without acting on it.
func (d *topicDef) noEffect() bool { return d.field == nil }

// brokerDefault is the value a topic gets when it has no override.
func (d *topicDef) brokerDefault(b *Broker) value {
	switch {
	case d.fromBroker != nil:
		return d.fromBroker(b)
	case len(d.synonyms) > 0:
		return getField(brokerIndex[d.synonyms[0]].field(b))
	default:
		v, err := d.parse(d.kafkaDefault)
		if err != nil {
			panic("config: bad default: " + err.Error())
		}
		return v
	}
}

// topicDefs is the registry of topic configs, sorted by name. It is never
// modified. Entries without a field are Kafka topic configs that Tiercel
// accepts, validates with Kafka's rules, stores and describes, but does
// not act on; each says why that is harmless. Kafka topic configs that are
// in neither group are unknown names.
var topicDefs = sortedTopicDefs([]topicDef{
	{spec: spec{name: "cleanup.policy", typ: kmsg.ConfigTypeList, valid: listOf("compact", "delete"), policy: deleteOnly,
		doc: "How old segments are cleaned up. Only \"delete\" is supported: segments are removed once retention allows. Compaction is not implemented yet."},
		synonyms: []string{"log.cleanup.policy"}, kafkaDefault: "delete",
		field: func(r *resolving) any { return &r.t.CleanupPolicy }},
	{spec: spec{name: "compression.type", typ: kmsg.ConfigTypeString, valid: oneOf(compressionTypes...), policy: producerCompressionOnly,
		doc: "Codec of stored batches. Only \"producer\" is accepted: Tiercel stores each batch as the producer compressed it and never recompresses."},
		synonyms: []string{"compression.type"}, kafkaDefault: "producer",
		field: func(r *resolving) any { return &r.t.CompressionType }},
	// Levels only matter when the broker recompresses, which Tiercel never
	// does (compression.type is always "producer").
	{spec: spec{name: "compression.gzip.level", typ: kmsg.ConfigTypeInt, valid: gzipLevel,
		doc: "No effect in Tiercel, which never recompresses. Kafka's gzip level for broker-side compression."},
		kafkaDefault: "-1"},
	{spec: spec{name: "compression.lz4.level", typ: kmsg.ConfigTypeInt, valid: between(1, 17),
		doc: "No effect in Tiercel, which never recompresses. Kafka's lz4 level for broker-side compression."},
		kafkaDefault: "9"},
	{spec: spec{name: "compression.zstd.level", typ: kmsg.ConfigTypeInt, valid: between(-131072, 22),
		doc: "No effect in Tiercel, which never recompresses. Kafka's zstd level for broker-side compression."},
		kafkaDefault: "3"},
	// Tombstone retention only exists for compacted topics.
	{spec: spec{name: "delete.retention.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(0),
		doc: "No effect in Tiercel until compaction exists: how long delete markers of a compacted topic are kept."},
		kafkaDefault: "86400000"},
	// Tiercel deletes local segment files as soon as retention and the
	// remote manifest allow; readers hold open file descriptors, so no
	// grace period is needed.
	{spec: spec{name: "file.delete.delay.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(0),
		doc: "No effect in Tiercel: Kafka's grace period before a deleted segment file is removed from disk."},
		kafkaDefault: "60000"},
	{spec: spec{name: "flush.messages", typ: kmsg.ConfigTypeLong, valid: atLeast(1),
		doc: "Force an fsync of the partition after this many records. The default never does and relies on replication for durability."},
		synonyms: []string{"log.flush.interval.messages"}, kafkaDefault: longMax,
		field: func(r *resolving) any { return &r.t.FlushMessages }},
	{spec: spec{name: "flush.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(0),
		doc: "Force an fsync of data that has been unflushed this long. The default never does."},
		synonyms: []string{"log.flush.interval.ms", "log.flush.scheduler.interval.ms"}, kafkaDefault: longMax,
		fromBroker: func(b *Broker) value { return intValue(b.FlushMs()) },
		field:      func(r *resolving) any { return &r.t.FlushMs }},
	// Replication throttling is a reassignment aid; Tiercel has no
	// replication quotas, and refusing the lists would break Kafka's
	// reassignment tool, which sets them.
	{spec: spec{name: "follower.replication.throttled.replicas", typ: kmsg.ConfigTypeList, valid: throttledReplicas,
		doc: "No effect in Tiercel, which has no replication quotas. Replicas whose follower-side replication Kafka would throttle: \"*\" or partition:broker pairs."},
		kafkaDefault: ""},
	{spec: spec{name: "index.interval.bytes", typ: kmsg.ConfigTypeInt, valid: atLeast(0),
		doc: "Bytes of record batches between two entries of the offset index. Smaller values make lookups more precise and indexes larger."},
		synonyms: []string{"log.index.interval.bytes"}, kafkaDefault: "4096",
		field: func(r *resolving) any { return &r.t.IndexIntervalBytes }},
	{spec: spec{name: "leader.replication.throttled.replicas", typ: kmsg.ConfigTypeList, valid: throttledReplicas,
		doc: "No effect in Tiercel, which has no replication quotas. Replicas whose leader-side replication Kafka would throttle: \"*\" or partition:broker pairs."},
		kafkaDefault: ""},
	{spec: spec{name: "local.retention.bytes", typ: kmsg.ConfigTypeLong, valid: atLeast(-2),
		doc: "How many bytes of the partition stay on local disk once they are in the object store; older offloaded segments are then served from remote. -2 means the same as retention.bytes, -1 no local limit. Must not exceed retention.bytes."},
		synonyms: []string{"log.local.retention.bytes"}, kafkaDefault: "-2",
		field: func(r *resolving) any { return &r.localBytes }},
	{spec: spec{name: "local.retention.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(-2),
		doc: "How long a segment stays on local disk once it is in the object store; after that it is served from remote. -2 means the same as retention.ms, -1 forever. Must not exceed retention.ms."},
		synonyms: []string{"log.local.retention.ms"}, kafkaDefault: "-2",
		field: func(r *resolving) any { return &r.localMs }},
	// Compaction lags only exist for compacted topics.
	{spec: spec{name: "max.compaction.lag.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(1),
		doc: "No effect in Tiercel until compaction exists: the longest a record may stay uncompacted."},
		kafkaDefault: longMax},
	{spec: spec{name: "max.message.bytes", typ: kmsg.ConfigTypeInt, valid: atLeast(0),
		doc: "Largest record batch, after compression, that the topic accepts; larger ones are rejected with MESSAGE_TOO_LARGE."},
		synonyms: []string{"message.max.bytes"}, kafkaDefault: "1048588",
		field: func(r *resolving) any { return &r.t.MaxMessageBytes }},
	// Tiercel serves record batch v2 only and never converts formats.
	{spec: spec{name: "message.downconversion.enable", typ: kmsg.ConfigTypeBoolean,
		doc: "No effect in Tiercel, which never converts record formats for old clients. Removed in Kafka 4.0."},
		kafkaDefault: "true"},
	// Kafka itself has ignored this since 3.0; Tiercel always writes v2.
	{spec: spec{name: "message.format.version", typ: kmsg.ConfigTypeString,
		doc: "No effect in Tiercel, which always stores record batch v2. Deprecated since Kafka 3.0 and removed in 4.0."},
		kafkaDefault: "3.0-IV1"},
	{spec: spec{name: "message.timestamp.after.max.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(0),
		doc: "Reject a CreateTime batch whose timestamp is more than this far ahead of the broker's clock, with INVALID_TIMESTAMP."},
		synonyms: []string{"log.message.timestamp.after.max.ms"}, kafkaDefault: longMax,
		field: func(r *resolving) any { return &r.t.MessageTimestampAfterMaxMs }},
	{spec: spec{name: "message.timestamp.before.max.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(0),
		doc: "Reject a CreateTime batch whose timestamp is more than this far behind the broker's clock, with INVALID_TIMESTAMP."},
		synonyms: []string{"log.message.timestamp.before.max.ms"}, kafkaDefault: longMax,
		field: func(r *resolving) any { return &r.t.MessageTimestampBeforeMaxMs }},
	{spec: spec{name: "message.timestamp.difference.max.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(0),
		doc: "Older symmetric form of the timestamp window. It applies on each side whose before/after config is unlimited. Deprecated in Kafka 3.6 and removed in 4.0."},
		synonyms: []string{"log.message.timestamp.difference.max.ms"}, kafkaDefault: longMax,
		field: func(r *resolving) any { return &r.differenceMaxMs }},
	{spec: spec{name: "message.timestamp.type", typ: kmsg.ConfigTypeString, valid: oneOf(string(CreateTime), string(LogAppendTime)),
		doc: "CreateTime keeps the producer's record timestamps; LogAppendTime replaces them with the leader's clock when the batch is appended."},
		synonyms: []string{"log.message.timestamp.type"}, kafkaDefault: string(CreateTime),
		field: func(r *resolving) any { return &r.t.MessageTimestampType }},
	{spec: spec{name: "min.cleanable.dirty.ratio", typ: kmsg.ConfigTypeDouble, valid: ratio(0, 1, false),
		doc: "No effect in Tiercel until compaction exists: how dirty a compacted log must be before it is cleaned."},
		kafkaDefault: "0.5"},
	{spec: spec{name: "min.compaction.lag.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(0),
		doc: "No effect in Tiercel until compaction exists: the least time a record stays uncompacted."},
		kafkaDefault: "0"},
	{spec: spec{name: "min.insync.replicas", typ: kmsg.ConfigTypeInt, valid: atLeast(1),
		doc: "With acks=all, produce fails with NOT_ENOUGH_REPLICAS while fewer replicas than this are in sync."},
		synonyms: []string{"min.insync.replicas"}, kafkaDefault: "1",
		field: func(r *resolving) any { return &r.t.MinInsyncReplicas }},
	// Tiercel does not preallocate segment files; it is only a hint.
	{spec: spec{name: "preallocate", typ: kmsg.ConfigTypeBoolean,
		doc: "No effect in Tiercel: Kafka's hint to reserve a new segment's full size on disk up front."},
		kafkaDefault: "false"},
	// Accepting false is honest (Tiercel always copies); true asks for a
	// read-only tier that Tiercel does not implement yet.
	{spec: spec{name: "remote.log.copy.disable", typ: kmsg.ConfigTypeBoolean, policy: falseOnly,
		doc: "Only false is accepted: Tiercel always copies sealed segments of a tiered topic. Kafka uses true to stop offloading while keeping remote data readable."},
		kafkaDefault: "false"},
	// Consulted only when tiering is switched off for a topic, which
	// Tiercel refuses for now (see ValidateTopicUpdate).
	{spec: spec{name: "remote.log.delete.on.disable", typ: kmsg.ConfigTypeBoolean,
		doc: "No effect in Tiercel, which does not allow switching tiered storage off for an existing topic yet. Kafka requires true to do so, and then deletes the remote data."},
		kafkaDefault: "false"},
	{spec: spec{name: "remote.storage.enable", typ: kmsg.ConfigTypeBoolean,
		doc: "Offload sealed segments to the object store, keeping only local.retention.* of them on local disk. Defaults to the broker's remote.log.storage.system.enable."},
		synonyms: []string{"remote.log.storage.system.enable"}, kafkaDefault: "false",
		field: func(r *resolving) any { return &r.t.RemoteStorageEnable }},
	{spec: spec{name: "retention.bytes", typ: kmsg.ConfigTypeLong, valid: atLeast(-1),
		doc: "Once a partition, local and remote together, is larger than this, its oldest segments are deleted. -1 means no size limit."},
		synonyms: []string{"log.retention.bytes"}, kafkaDefault: "-1",
		field: func(r *resolving) any { return &r.t.RetentionBytes }},
	{spec: spec{name: "retention.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(-1),
		doc: "How long a record is kept, local and remote together, before its segment may be deleted. -1 keeps data forever."},
		synonyms: retentionGroup, kafkaDefault: "604800000",
		fromBroker: func(b *Broker) value { return intValue(b.RetentionMs()) },
		field:      func(r *resolving) any { return &r.t.RetentionMs }},
	{spec: spec{name: "segment.bytes", typ: kmsg.ConfigTypeInt, valid: atLeast(minSegmentBytes),
		doc: "Roll the active segment when it reaches this size. Segments are the unit of offload and deletion."},
		synonyms: []string{"log.segment.bytes"}, kafkaDefault: "1073741824",
		field: func(r *resolving) any { return &r.t.SegmentBytes }},
	{spec: spec{name: "segment.index.bytes", typ: kmsg.ConfigTypeInt, valid: atLeast(4),
		doc: "Size of a segment's offset and time index files; a segment whose index fills up is rolled early."},
		synonyms: []string{"log.index.size.max.bytes"}, kafkaDefault: "10485760",
		field: func(r *resolving) any { return &r.t.SegmentIndexBytes }},
	// Segments roll at exactly segment.ms; Kafka's random jitter only
	// spreads roll storms, which offload is not sensitive to.
	{spec: spec{name: "segment.jitter.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(0),
		doc: "No effect in Tiercel: Kafka's random reduction of segment.ms that spreads segment rolls over time."},
		kafkaDefault: "0"},
	{spec: spec{name: "segment.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(1),
		doc: "Roll the active segment once its first record is this old, even if it is not full, so that it can be offloaded and can expire."},
		synonyms: rollGroup, kafkaDefault: "604800000",
		fromBroker: func(b *Broker) value { return intValue(b.RollMs()) },
		field:      func(r *resolving) any { return &r.t.SegmentMs }},
	{spec: spec{name: "unclean.leader.election.enable", typ: kmsg.ConfigTypeBoolean,
		doc: "Allow a replica outside the ISR to become leader when no ISR member is alive, trading acknowledged records for availability."},
		synonyms: []string{"unclean.leader.election.enable"}, kafkaDefault: "false",
		field: func(r *resolving) any { return &r.t.UncleanLeaderElectionEnable }},
})

func sortedTopicDefs(defs []topicDef) []topicDef {
	sort.Slice(defs, func(i, j int) bool { return defs[i].name < defs[j].name })
	return defs
}

// topicIndex finds a topic definition by name.
var topicIndex = func() map[string]*topicDef {
	m := make(map[string]*topicDef, len(topicDefs))
	for i := range topicDefs {
		m[topicDefs[i].name] = &topicDefs[i]
	}
	return m
}()

// unknownTopicConfig is Kafka's error for a name that is not a topic
// config, word for word, because tools and tests match on it.
func unknownTopicConfig(name string) *ConfigError {
	return unknown(name, "Unknown topic config name: "+name)
}

// ResolveTopic validates a topic's overrides (the configs set on the topic
// itself, as stored in the cluster metadata) and returns its effective
// configs, with defaults taken from the broker.
//
// Each override is checked for name, type and range as Kafka checks it,
// then against Tiercel's limits (cleanup.policy=compact and recompression
// are not supported), then in combination: remote.storage.enable needs
// remote.log.storage.system.enable; with remote storage on, compaction is
// refused, and local.retention.* must not exceed retention.* (after -2 is
// resolved, and -1 is refused while the total is finite);
// min.compaction.lag.ms must not exceed max.compaction.lag.ms. All problems
// are reported, joined: overrides in name order, then combinations.
func ResolveTopic(b Broker, overrides map[string]string) (Topic, error) {
	var r resolving
	r.maxLagMs = math.MaxInt64
	for i := range topicDefs {
		d := &topicDefs[i]
		if !d.noEffect() {
			setField(d.field(&r), d.brokerDefault(&b))
		}
	}
	var errs []error
	failed := make(map[string]bool)
	for _, name := range sortedKeys(overrides) {
		raw := overrides[name]
		d, ok := topicIndex[name]
		if !ok {
			errs = append(errs, unknownTopicConfig(name))
			continue
		}
		v, err := d.parse(raw)
		if err != nil {
			errs = append(errs, err)
			failed[name] = true
			continue
		}
		if err := d.check(raw, v); err != nil {
			errs = append(errs, err)
		}
		switch {
		case !d.noEffect():
			setField(d.field(&r), v)
		case name == "min.compaction.lag.ms":
			r.minLagMs = v.i
		case name == "max.compaction.lag.ms":
			r.maxLagMs = v.i
		}
	}
	errs = append(errs, r.crossCheck(&b, failed)...)
	if len(errs) > 0 {
		return Topic{}, errors.Join(errs...)
	}
	r.resolve()
	return r.t, nil
}

// crossCheck applies the rules that involve more than one config.
func (r *resolving) crossCheck(b *Broker, failed map[string]bool) []error {
	var errs []error
	t := &r.t
	if !failed["remote.storage.enable"] && t.RemoteStorageEnable && !b.RemoteLogStorageSystemEnable {
		errs = append(errs, invalidf("remote.storage.enable", "true",
			"tiered storage is switched off on this broker (remote.log.storage.system.enable=false), so a topic cannot enable it"))
	}
	if t.RemoteStorageEnable && !failed["remote.storage.enable"] {
		if !failed["cleanup.policy"] && slices.Contains(t.CleanupPolicy, "compact") {
			errs = append(errs, invalidf("cleanup.policy", "compact",
				"compaction cannot be combined with remote.storage.enable=true; tiered topics must use cleanup.policy=delete"))
		}
		if !failed["local.retention.ms"] && !failed["retention.ms"] {
			if err := checkLocalRetention("local.retention.ms", r.localMs, "retention.ms", t.RetentionMs); err != nil {
				errs = append(errs, err)
			}
		}
		if !failed["local.retention.bytes"] && !failed["retention.bytes"] {
			if err := checkLocalRetention("local.retention.bytes", r.localBytes, "retention.bytes", t.RetentionBytes); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if !failed["min.compaction.lag.ms"] && !failed["max.compaction.lag.ms"] && r.minLagMs > r.maxLagMs {
		errs = append(errs, invalidf("min.compaction.lag.ms", strconv.FormatInt(r.minLagMs, 10),
			"%d exceeds max.compaction.lag.ms (%d)", r.minLagMs, r.maxLagMs))
	}
	return errs
}

// resolve folds fallbacks into the Topic's fields.
func (r *resolving) resolve() {
	t := &r.t
	t.LocalRetentionMs, t.LocalRetentionBytes = r.localMs, r.localBytes
	if !t.RemoteStorageEnable || r.localMs == -2 {
		t.LocalRetentionMs = t.RetentionMs
	}
	if !t.RemoteStorageEnable || r.localBytes == -2 {
		t.LocalRetentionBytes = t.RetentionBytes
	}
	if t.MessageTimestampBeforeMaxMs == math.MaxInt64 {
		t.MessageTimestampBeforeMaxMs = r.differenceMaxMs
	}
	if t.MessageTimestampAfterMaxMs == math.MaxInt64 {
		t.MessageTimestampAfterMaxMs = r.differenceMaxMs
	}
}

// ValidateTopicOverrides checks a topic's overrides as ResolveTopic does,
// for CreateTopics (including validate-only requests) and AlterConfigs.
func ValidateTopicOverrides(b Broker, overrides map[string]string) error {
	_, err := ResolveTopic(b, overrides)
	return err
}

// ValidateTopicUpdate checks a change of an existing topic's overrides
// from current to updated: updated must be valid on its own, and the
// change must not switch tiered storage off. Tiercel cannot yet bring
// offloaded data back or delete it on request, so turning
// remote.storage.enable from true to false would strand every remote
// segment; Kafka has a similar guard (it requires
// remote.log.delete.on.disable=true and then deletes the remote data).
func ValidateTopicUpdate(b Broker, current, updated map[string]string) error {
	err := ValidateTopicOverrides(b, updated)
	if remoteEnabled(&b, current) && !remoteEnabled(&b, updated) {
		err = errors.Join(err, invalidf("remote.storage.enable", updated["remote.storage.enable"],
			"switching tiered storage off for an existing topic is not supported yet; its offloaded data would become unreachable"))
	}
	return err
}

// remoteEnabled is the effective remote.storage.enable of a set of
// overrides; an unparsable override counts as absent.
func remoteEnabled(b *Broker, overrides map[string]string) bool {
	d := topicIndex["remote.storage.enable"]
	if raw, ok := overrides[d.name]; ok {
		if v, err := d.parse(raw); err == nil {
			return v.b
		}
	}
	return d.brokerDefault(b).b
}

// TopicDefinitions returns the definitions of every topic config Tiercel
// accepts, sorted by name, with defaults as a default Broker gives them.
func TopicDefinitions() []Definition {
	b := DefaultBroker()
	out := make([]Definition, 0, len(topicDefs))
	for i := range topicDefs {
		d := &topicDefs[i]
		out = append(out, Definition{
			Name:     d.name,
			Type:     d.typ,
			Default:  formatValue(d.typ, d.brokerDefault(&b)),
			Doc:      d.doc,
			Synonyms: slices.Clone(d.synonyms),
			NoEffect: d.noEffect(),
		})
	}
	return out
}
