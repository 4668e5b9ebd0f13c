package config

import (
	"errors"
	"sort"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Broker holds every broker setting Tiercel understands, typed. Fields use
// Kafka's types (int32 for INT, int64 for LONG, int16 for SHORT) so that
// values move into Kafka messages without conversion, and times stay in
// the unit their Kafka name says (a time.Duration cannot hold Kafka's
// "forever" of Long.MAX_VALUE milliseconds).
//
// Build one with NewBroker, or DefaultBroker for the defaults. A Broker is
// a value: it is safe to copy and to share between goroutines as long as
// nobody writes to it.
type Broker struct {
	// NumPartitions is num.partitions: the partition count of topics
	// created without one (auto-created, or CreateTopics with -1).
	NumPartitions int32
	// DefaultReplicationFactor is default.replication.factor: the
	// replication factor of topics created without one.
	DefaultReplicationFactor int32
	// AutoCreateTopicsEnable is auto.create.topics.enable: whether a
	// metadata request for a missing topic creates it.
	AutoCreateTopicsEnable bool
	// DeleteTopicEnable is delete.topic.enable: whether DeleteTopics is
	// honoured.
	DeleteTopicEnable bool

	// LogSegmentBytes is log.segment.bytes: the size at which the active
	// segment is rolled. Default for segment.bytes.
	LogSegmentBytes int32
	// LogRollMs is log.roll.ms: the age at which the active segment is
	// rolled; nil means "use LogRollHours". See RollMs.
	LogRollMs *int64
	// LogRollHours is log.roll.hours: the same in hours, used when
	// LogRollMs is nil.
	LogRollHours int32
	// LogRetentionMs is log.retention.ms: how long data is kept; nil
	// means "use LogRetentionMinutes". -1 keeps data forever. See
	// RetentionMs.
	LogRetentionMs *int64
	// LogRetentionMinutes is log.retention.minutes, used when
	// LogRetentionMs is nil; nil means "use LogRetentionHours".
	LogRetentionMinutes *int32
	// LogRetentionHours is log.retention.hours, the last fallback.
	LogRetentionHours int32
	// LogRetentionBytes is log.retention.bytes: the size a partition may
	// reach before its oldest segments are deleted; -1 is no limit.
	LogRetentionBytes int64
	// LogRetentionCheckIntervalMs is log.retention.check.interval.ms: how
	// often retention is enforced.
	LogRetentionCheckIntervalMs int64
	// LogLocalRetentionMs is log.local.retention.ms: how long offloaded
	// data stays on local disk; -2 means the same as total retention. See
	// LocalRetentionMs.
	LogLocalRetentionMs int64
	// LogLocalRetentionBytes is log.local.retention.bytes: how much
	// offloaded data a partition keeps on local disk; -2 means the same as
	// total retention.
	LogLocalRetentionBytes int64
	// LogFlushIntervalMessages is log.flush.interval.messages: fsync after
	// this many messages. The default (Long.MAX) leaves durability to
	// replication, as Kafka does.
	LogFlushIntervalMessages int64
	// LogFlushIntervalMs is log.flush.interval.ms: fsync data older than
	// this; nil means "use LogFlushSchedulerIntervalMs". See FlushMs.
	LogFlushIntervalMs *int64
	// LogFlushSchedulerIntervalMs is log.flush.scheduler.interval.ms:
	// Kafka's fallback for log.flush.interval.ms. Long.MAX means never.
	LogFlushSchedulerIntervalMs int64
	// LogIndexIntervalBytes is log.index.interval.bytes: bytes of batches
	// between two offset index entries.
	LogIndexIntervalBytes int32
	// LogIndexSizeMaxBytes is log.index.size.max.bytes: the size of a
	// segment's offset and time index files; a full index rolls the
	// segment.
	LogIndexSizeMaxBytes int32
	// LogMessageTimestampType is log.message.timestamp.type.
	LogMessageTimestampType TimestampType
	// LogMessageTimestampDifferenceMaxMs is
	// log.message.timestamp.difference.max.ms, the pre-KIP-937 window for
	// CreateTime timestamps; it applies where the before/after settings
	// are left at Long.MAX.
	LogMessageTimestampDifferenceMaxMs int64
	// LogMessageTimestampBeforeMaxMs is
	// log.message.timestamp.before.max.ms: how far in the past a
	// CreateTime timestamp may be.
	LogMessageTimestampBeforeMaxMs int64
	// LogMessageTimestampAfterMaxMs is log.message.timestamp.after.max.ms:
	// how far in the future a CreateTime timestamp may be.
	LogMessageTimestampAfterMaxMs int64
	// LogCleanupPolicy is log.cleanup.policy; always ["delete"] today.
	LogCleanupPolicy []string
	// MessageMaxBytes is message.max.bytes: the largest record batch a
	// topic accepts by default.
	MessageMaxBytes int32
	// CompressionType is compression.type; always "producer".
	CompressionType string
	// MinInsyncReplicas is min.insync.replicas: with acks=all, the ISR
	// size below which produce fails with NOT_ENOUGH_REPLICAS.
	MinInsyncReplicas int32
	// UncleanLeaderElectionEnable is unclean.leader.election.enable.
	UncleanLeaderElectionEnable bool

	// SocketRequestMaxBytes is socket.request.max.bytes: the largest
	// request frame the broker reads.
	SocketRequestMaxBytes int32

	// BrokerRack is broker.rack: the rack or zone this broker is in, for
	// replica placement; empty when unknown.
	BrokerRack string
	// ReplicaLagTimeMaxMs is replica.lag.time.max.ms: a follower that has
	// not caught up within this long leaves the ISR.
	ReplicaLagTimeMaxMs int64
	// ReplicaFetchMaxBytes is replica.fetch.max.bytes: the per-partition
	// byte budget of a follower fetch.
	ReplicaFetchMaxBytes int32
	// ReplicaFetchMinBytes is replica.fetch.min.bytes: the bytes a
	// follower fetch waits for.
	ReplicaFetchMinBytes int32
	// ReplicaFetchWaitMaxMs is replica.fetch.wait.max.ms: how long a
	// follower fetch may wait on the leader.
	ReplicaFetchWaitMaxMs int32
	// ReplicaFetchBackoffMs is replica.fetch.backoff.ms: the pause after
	// a failed follower fetch.
	ReplicaFetchBackoffMs int32

	// ProducerIDExpirationMs is producer.id.expiration.ms: idle time after
	// which a producer's idempotence state is dropped.
	ProducerIDExpirationMs int32
	// TransactionalIDExpirationMs is transactional.id.expiration.ms: idle
	// time after which a transactional id is forgotten.
	TransactionalIDExpirationMs int32

	// OffsetsTopicNumPartitions is offsets.topic.num.partitions: the
	// partition count of __consumer_offsets, fixed at its creation.
	OffsetsTopicNumPartitions int32
	// OffsetsTopicReplicationFactor is offsets.topic.replication.factor
	// (Kafka's 3). When fewer brokers are alive as the topic is created,
	// it gets as many replicas as there are brokers, so a lone broker works.
	OffsetsTopicReplicationFactor int16
	// OffsetsRetentionMinutes is offsets.retention.minutes: how long the
	// committed offsets of an empty group are kept.
	OffsetsRetentionMinutes int32
	// OffsetsRetentionCheckIntervalMs is offsets.retention.check.interval.ms.
	OffsetsRetentionCheckIntervalMs int64
	// OffsetsLoadBufferSize is offsets.load.buffer.size: the read size
	// used when a new coordinator replays __consumer_offsets.
	OffsetsLoadBufferSize int32
	// GroupMinSessionTimeoutMs is group.min.session.timeout.ms.
	GroupMinSessionTimeoutMs int32
	// GroupMaxSessionTimeoutMs is group.max.session.timeout.ms.
	GroupMaxSessionTimeoutMs int32
	// GroupInitialRebalanceDelayMs is group.initial.rebalance.delay.ms:
	// how long the first rebalance of a new group waits for more members.
	GroupInitialRebalanceDelayMs int32

	// RemoteLogStorageSystemEnable is remote.log.storage.system.enable:
	// whether this broker offloads to the object store at all, and the
	// default of every topic's remote.storage.enable. Tiercel defaults it
	// to true (Kafka: false) because it always has an object store; a
	// caller that runs without one sets it to false, and can use IsSet to
	// refuse an explicit true.
	RemoteLogStorageSystemEnable bool
	// RemoteLogManagerTaskIntervalMs is remote.log.manager.task.interval.ms:
	// how often each partition is checked for segments to offload and
	// remote segments to expire.
	RemoteLogManagerTaskIntervalMs int64

	// RemoteFetchChunkBytes is tiercel.remote.fetch.chunk.bytes: the size
	// and alignment of ranged GETs on remote segments.
	RemoteFetchChunkBytes int32
	// RemoteCacheBytes is tiercel.remote.cache.bytes: the memory budget of
	// the remote chunk and index cache; 0 turns the cache off.
	RemoteCacheBytes int64
	// LocalDiskMaxUsedRatio is tiercel.local.disk.max.used.ratio: the
	// fraction of the data directory's file system in use beyond which
	// produce is refused, so that a slow object store cannot fill the disk.
	LocalDiskMaxUsedRatio float64
	// ControllerLeaseTTLMs is tiercel.controller.lease.ttl.ms: how long the
	// controller lease may go unrenewed before another broker takes it.
	ControllerLeaseTTLMs int64
	// ControllerLeaseRenewMs is tiercel.controller.lease.renew.ms.
	ControllerLeaseRenewMs int64
	// ControllerLeasePollMs is tiercel.controller.lease.poll.ms: how often
	// a broker that does not hold the lease reads it.
	ControllerLeasePollMs int64
	// MetadataRefreshMs is tiercel.metadata.refresh.ms: how often a broker
	// rereads the metadata document without an announcement.
	MetadataRefreshMs int64
	// GossipProbeIntervalMs is tiercel.gossip.probe.interval.ms:
	// memberlist's failure-detection probe interval.
	GossipProbeIntervalMs int64
	// GossipSuspicionMult is tiercel.gossip.suspicion.mult: how many probe
	// intervals a suspected member has to refute before it is declared
	// dead (scaled by cluster size, as memberlist does).
	GossipSuspicionMult int32
	// LeaderRebalanceIntervalMs is tiercel.leader.rebalance.interval.ms:
	// how often the controller moves leadership back to preferred
	// replicas; 0 disables it.
	LeaderRebalanceIntervalMs int64
	// RemoteSweepIntervalMs is tiercel.remote.sweep.interval.ms: how often
	// the object store is swept for objects no manifest names.
	RemoteSweepIntervalMs int64
	// RemoteOrphanGraceMs is tiercel.remote.orphan.grace.ms: how old an
	// unreferenced object must be before the sweeper deletes it, so that
	// uploads in progress are never swept.
	RemoteOrphanGraceMs int64

	// Ignored maps each known Kafka setting that was given but has no
	// effect in Tiercel to its raw value. The caller should log the names
	// once (see IgnoredNames). Do not modify it: copies of a Broker share it.
	Ignored map[string]string

	// explicit records the settings the properties set, for IsSet and for
	// the STATIC_BROKER_CONFIG source in DescribeConfigs. Shared between
	// copies and never modified after NewBroker.
	explicit map[string]bool
}

// brokerDef is one broker setting in the registry.
type brokerDef struct {
	spec
	dflt  *string             // nil: no value by default (Kafka's null)
	group []string            // synonym group, highest precedence first; nil: just this name
	field func(b *Broker) any // pointer to the typed field
}

// longMax is Java's Long.MAX_VALUE, Kafka's "never" or "unlimited".
const longMax = "9223372036854775807"

// brokerDefs is the registry of broker settings, sorted by name. It is
// never modified.
var brokerDefs = sortedBrokerDefs([]brokerDef{
	{spec: spec{name: "auto.create.topics.enable", typ: kmsg.ConfigTypeBoolean,
		doc: "Create a topic with the broker defaults when a client asks for metadata of a topic that does not exist."},
		dflt: ptr("true"), field: func(b *Broker) any { return &b.AutoCreateTopicsEnable }},
	{spec: spec{name: "broker.rack", typ: kmsg.ConfigTypeString,
		doc: "Rack, zone or other failure domain of this broker. Replica placement spreads a partition's replicas across racks; empty means unknown."},
		dflt: ptr(""), field: func(b *Broker) any { return &b.BrokerRack }},
	{spec: spec{name: "compression.type", typ: kmsg.ConfigTypeString, valid: oneOf(compressionTypes...), policy: producerCompressionOnly,
		doc: "Codec of stored batches. Only \"producer\" is accepted: Tiercel keeps each batch as the producer compressed it and never recompresses."},
		dflt: ptr("producer"), field: func(b *Broker) any { return &b.CompressionType }},
	{spec: spec{name: "default.replication.factor", typ: kmsg.ConfigTypeInt, valid: atLeast(1),
		doc: "Number of replicas of a topic created without an explicit replication factor."},
		dflt: ptr("1"), field: func(b *Broker) any { return &b.DefaultReplicationFactor }},
	{spec: spec{name: "delete.topic.enable", typ: kmsg.ConfigTypeBoolean,
		doc: "Allow DeleteTopics. When false, deletions are refused with TOPIC_DELETION_DISABLED."},
		dflt: ptr("true"), field: func(b *Broker) any { return &b.DeleteTopicEnable }},
	{spec: spec{name: "group.initial.rebalance.delay.ms", typ: kmsg.ConfigTypeInt, valid: atLeast(0),
		doc: "Time the coordinator waits for more members before the first rebalance of a new group, so a group that starts many consumers at once settles in one round."},
		dflt: ptr("3000"), field: func(b *Broker) any { return &b.GroupInitialRebalanceDelayMs }},
	{spec: spec{name: "group.max.session.timeout.ms", typ: kmsg.ConfigTypeInt, valid: atLeast(1),
		doc: "Largest session timeout a consumer may ask for when joining a group."},
		dflt: ptr("1800000"), field: func(b *Broker) any { return &b.GroupMaxSessionTimeoutMs }},
	{spec: spec{name: "group.min.session.timeout.ms", typ: kmsg.ConfigTypeInt, valid: atLeast(1),
		doc: "Smallest session timeout a consumer may ask for when joining a group; it bounds how often members must heartbeat."},
		dflt: ptr("6000"), field: func(b *Broker) any { return &b.GroupMinSessionTimeoutMs }},
	{spec: spec{name: "log.cleanup.policy", typ: kmsg.ConfigTypeList, valid: listOf("compact", "delete"), policy: deleteOnly,
		doc: "Default cleanup.policy of topics. Only \"delete\" is supported: old segments are removed by retention. Compaction is not implemented yet."},
		dflt: ptr("delete"), field: func(b *Broker) any { return &b.LogCleanupPolicy }},
	{spec: spec{name: "log.flush.interval.messages", typ: kmsg.ConfigTypeLong, valid: atLeast(1),
		doc: "Default flush.messages: fsync a partition after this many records. The default never forces a flush and relies on replication for durability."},
		dflt: ptr(longMax), field: func(b *Broker) any { return &b.LogFlushIntervalMessages }},
	{spec: spec{name: "log.flush.interval.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(0),
		doc: "Default flush.ms: fsync data that has been unflushed this long. Unset, log.flush.scheduler.interval.ms is used instead."},
		group: []string{"log.flush.interval.ms", "log.flush.scheduler.interval.ms"},
		field: func(b *Broker) any { return &b.LogFlushIntervalMs }},
	{spec: spec{name: "log.flush.scheduler.interval.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(0),
		doc: "Fallback for log.flush.interval.ms when that is unset. The default means time never forces a flush."},
		dflt: ptr(longMax), field: func(b *Broker) any { return &b.LogFlushSchedulerIntervalMs }},
	{spec: spec{name: "log.index.interval.bytes", typ: kmsg.ConfigTypeInt, valid: atLeast(0),
		doc: "Default index.interval.bytes: bytes of record batches between two entries of the offset index. Smaller values make lookups more precise and indexes larger."},
		dflt: ptr("4096"), field: func(b *Broker) any { return &b.LogIndexIntervalBytes }},
	{spec: spec{name: "log.index.size.max.bytes", typ: kmsg.ConfigTypeInt, valid: atLeast(4),
		doc: "Default segment.index.bytes: size of a segment's offset and time index files. A segment whose index fills up is rolled early."},
		dflt: ptr("10485760"), field: func(b *Broker) any { return &b.LogIndexSizeMaxBytes }},
	{spec: spec{name: "log.local.retention.bytes", typ: kmsg.ConfigTypeLong, valid: atLeast(-2),
		doc: "Default local.retention.bytes: how many bytes of a tiered partition stay on local disk once they are in the object store. -2 means the same as log.retention.bytes; -1 means no local limit."},
		dflt: ptr("-2"), field: func(b *Broker) any { return &b.LogLocalRetentionBytes }},
	{spec: spec{name: "log.local.retention.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(-2),
		doc: "Default local.retention.ms: how long a segment of a tiered partition stays on local disk once it is in the object store. -2 means the same as the total retention; -1 means forever."},
		dflt: ptr("-2"), field: func(b *Broker) any { return &b.LogLocalRetentionMs }},
	{spec: spec{name: "log.message.timestamp.after.max.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(0),
		doc: "Default message.timestamp.after.max.ms: how far ahead of the broker's clock a CreateTime timestamp may be before the batch is rejected with INVALID_TIMESTAMP."},
		dflt: ptr(longMax), field: func(b *Broker) any { return &b.LogMessageTimestampAfterMaxMs }},
	{spec: spec{name: "log.message.timestamp.before.max.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(0),
		doc: "Default message.timestamp.before.max.ms: how far behind the broker's clock a CreateTime timestamp may be before the batch is rejected with INVALID_TIMESTAMP."},
		dflt: ptr(longMax), field: func(b *Broker) any { return &b.LogMessageTimestampBeforeMaxMs }},
	{spec: spec{name: "log.message.timestamp.difference.max.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(0),
		doc: "Default message.timestamp.difference.max.ms: the older, symmetric timestamp window, used on whichever side the before/after settings leave unlimited. Deprecated in Kafka in favour of those two."},
		dflt: ptr(longMax), field: func(b *Broker) any { return &b.LogMessageTimestampDifferenceMaxMs }},
	{spec: spec{name: "log.message.timestamp.type", typ: kmsg.ConfigTypeString, valid: oneOf(string(CreateTime), string(LogAppendTime)),
		doc: "Default message.timestamp.type: CreateTime keeps the producer's timestamps, LogAppendTime replaces them with the leader's clock."},
		dflt: ptr(string(CreateTime)), field: func(b *Broker) any { return &b.LogMessageTimestampType }},
	{spec: spec{name: "log.retention.bytes", typ: kmsg.ConfigTypeLong, valid: atLeast(-1),
		doc: "Default retention.bytes: once a partition is larger than this, whole segments are deleted from its oldest end. -1 means no size limit."},
		dflt: ptr("-1"), field: func(b *Broker) any { return &b.LogRetentionBytes }},
	{spec: spec{name: "log.retention.check.interval.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(1),
		doc: "How often the broker looks for segments that retention allows it to delete."},
		dflt: ptr("300000"), field: func(b *Broker) any { return &b.LogRetentionCheckIntervalMs }},
	{spec: spec{name: "log.retention.hours", typ: kmsg.ConfigTypeInt, valid: atLeast(-1),
		doc: "Default retention time in hours, used when neither log.retention.ms nor log.retention.minutes is set. -1 keeps data forever."},
		dflt: ptr("168"), group: retentionGroup, field: func(b *Broker) any { return &b.LogRetentionHours }},
	{spec: spec{name: "log.retention.minutes", typ: kmsg.ConfigTypeInt, valid: atLeast(-1),
		doc: "Default retention time in minutes, used when log.retention.ms is not set; takes precedence over log.retention.hours. -1 keeps data forever."},
		group: retentionGroup, field: func(b *Broker) any { return &b.LogRetentionMinutes }},
	{spec: spec{name: "log.retention.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(-1),
		doc: "Default retention.ms: how long a record is kept before its segment may be deleted, in total (local and remote). Takes precedence over the minutes and hours forms. -1 keeps data forever."},
		group: retentionGroup, field: func(b *Broker) any { return &b.LogRetentionMs }},
	{spec: spec{name: "log.roll.hours", typ: kmsg.ConfigTypeInt, valid: atLeast(1),
		doc: "Default segment age in hours at which the active segment is rolled, used when log.roll.ms is not set."},
		dflt: ptr("168"), group: rollGroup, field: func(b *Broker) any { return &b.LogRollHours }},
	{spec: spec{name: "log.roll.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(1),
		doc: "Default segment.ms: the active segment is rolled once its first record is this old, even if it is not full, so that it can be offloaded and expire. Takes precedence over log.roll.hours."},
		group: rollGroup, field: func(b *Broker) any { return &b.LogRollMs }},
	{spec: spec{name: "log.segment.bytes", typ: kmsg.ConfigTypeInt, valid: atLeast(minSegmentBytes),
		doc: "Default segment.bytes: the active segment is rolled when it reaches this size. Segments are the unit of offload and deletion."},
		dflt: ptr("1073741824"), field: func(b *Broker) any { return &b.LogSegmentBytes }},
	{spec: spec{name: "message.max.bytes", typ: kmsg.ConfigTypeInt, valid: atLeast(0),
		doc: "Default max.message.bytes: the largest record batch, after compression, that a topic accepts."},
		dflt: ptr("1048588"), field: func(b *Broker) any { return &b.MessageMaxBytes }},
	{spec: spec{name: "min.insync.replicas", typ: kmsg.ConfigTypeInt, valid: atLeast(1),
		doc: "Default min.insync.replicas: with acks=all, produce fails with NOT_ENOUGH_REPLICAS while the ISR is smaller than this."},
		dflt: ptr("1"), field: func(b *Broker) any { return &b.MinInsyncReplicas }},
	{spec: spec{name: "num.partitions", typ: kmsg.ConfigTypeInt, valid: atLeast(1),
		doc: "Number of partitions of a topic created without an explicit count, including auto-created topics."},
		dflt: ptr("1"), field: func(b *Broker) any { return &b.NumPartitions }},
	{spec: spec{name: "offsets.load.buffer.size", typ: kmsg.ConfigTypeInt, valid: atLeast(1),
		doc: "Read size used when a broker becomes coordinator and rebuilds group state from __consumer_offsets."},
		dflt: ptr("5242880"), field: func(b *Broker) any { return &b.OffsetsLoadBufferSize }},
	{spec: spec{name: "offsets.retention.check.interval.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(1),
		doc: "How often the coordinator looks for expired committed offsets."},
		dflt: ptr("600000"), field: func(b *Broker) any { return &b.OffsetsRetentionCheckIntervalMs }},
	{spec: spec{name: "offsets.retention.minutes", typ: kmsg.ConfigTypeInt, valid: atLeast(1),
		doc: "How long the committed offsets of a group are kept after the group becomes empty."},
		dflt: ptr("10080"), field: func(b *Broker) any { return &b.OffsetsRetentionMinutes }},
	{spec: spec{name: "offsets.topic.num.partitions", typ: kmsg.ConfigTypeInt, valid: atLeast(1),
		doc: "Number of partitions of __consumer_offsets. It decides which broker coordinates which group and cannot change once the topic exists."},
		dflt: ptr("50"), field: func(b *Broker) any { return &b.OffsetsTopicNumPartitions }},
	{spec: spec{name: "offsets.topic.replication.factor", typ: kmsg.ConfigTypeShort, valid: atLeast(1),
		doc: "Replication factor of __consumer_offsets when it is created. If fewer brokers are alive then, it gets one replica per live broker, so a single broker works out of the box."},
		dflt: ptr("3"), field: func(b *Broker) any { return &b.OffsetsTopicReplicationFactor }},
	{spec: spec{name: "producer.id.expiration.ms", typ: kmsg.ConfigTypeInt, valid: atLeast(1),
		doc: "A producer id that has written nothing for this long loses its idempotence state, so its next sequence number starts afresh."},
		dflt: ptr("86400000"), field: func(b *Broker) any { return &b.ProducerIDExpirationMs }},
	{spec: spec{name: "remote.log.manager.task.interval.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(1),
		doc: "How often each led partition is checked for rolled segments to copy to the object store and for remote segments that retention has expired."},
		dflt: ptr("30000"), field: func(b *Broker) any { return &b.RemoteLogManagerTaskIntervalMs }},
	{spec: spec{name: "remote.log.storage.system.enable", typ: kmsg.ConfigTypeBoolean,
		doc: "Whether this broker offloads sealed segments to the object store; also the default of each topic's remote.storage.enable. Defaults to true, unlike Kafka, because a Tiercel broker always has an object store."},
		dflt: ptr("true"), field: func(b *Broker) any { return &b.RemoteLogStorageSystemEnable }},
	{spec: spec{name: "replica.fetch.backoff.ms", typ: kmsg.ConfigTypeInt, valid: atLeast(0),
		doc: "Pause before a follower retries after a fetch from the leader failed."},
		dflt: ptr("1000"), field: func(b *Broker) any { return &b.ReplicaFetchBackoffMs }},
	{spec: spec{name: "replica.fetch.max.bytes", typ: kmsg.ConfigTypeInt, valid: atLeast(0),
		doc: "Bytes a follower asks for per partition in one fetch. A larger first batch is still returned whole, so replication never stalls on it."},
		dflt: ptr("1048576"), field: func(b *Broker) any { return &b.ReplicaFetchMaxBytes }},
	{spec: spec{name: "replica.fetch.min.bytes", typ: kmsg.ConfigTypeInt, valid: atLeast(0),
		doc: "Bytes a follower fetch waits to accumulate on the leader before it is answered, up to replica.fetch.wait.max.ms."},
		dflt: ptr("1"), field: func(b *Broker) any { return &b.ReplicaFetchMinBytes }},
	{spec: spec{name: "replica.fetch.wait.max.ms", typ: kmsg.ConfigTypeInt, valid: atLeast(0),
		doc: "Longest time a follower fetch waits on the leader for new data. Must not exceed replica.lag.time.max.ms, or idle followers would drop out of the ISR."},
		dflt: ptr("500"), field: func(b *Broker) any { return &b.ReplicaFetchWaitMaxMs }},
	{spec: spec{name: "replica.lag.time.max.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(1),
		doc: "A follower that has not caught up with the leader's log end within this time is removed from the ISR."},
		dflt: ptr("30000"), field: func(b *Broker) any { return &b.ReplicaLagTimeMaxMs }},
	{spec: spec{name: "socket.request.max.bytes", typ: kmsg.ConfigTypeInt, valid: atLeast(1),
		doc: "Largest request the broker reads from a connection; a larger frame closes the connection before its body is read."},
		dflt: ptr("104857600"), field: func(b *Broker) any { return &b.SocketRequestMaxBytes }},
	{spec: spec{name: "tiercel.local.disk.max.used.ratio", typ: kmsg.ConfigTypeDouble, valid: ratio(0, 1, true),
		doc: "Tiercel only. Fraction of the data directory's file system that may be in use before produce requests are refused. It protects the disk while the object store is slow or down and offloaded segments cannot be freed; 1.0 disables the check."},
		dflt: ptr("0.9"), field: func(b *Broker) any { return &b.LocalDiskMaxUsedRatio }},
	{spec: spec{name: "tiercel.controller.lease.ttl.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(100),
		doc: "Tiercel only. How long the controller lease in the object store may go unrenewed, as measured on an observing broker's own clock, before that broker may take it over. It must cover several slow object-store writes in a row."},
		dflt: ptr("10000"), field: func(b *Broker) any { return &b.ControllerLeaseTTLMs }},
	{spec: spec{name: "tiercel.controller.lease.renew.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(10),
		doc: "Tiercel only. How often the controller renews its lease. Must be well below tiercel.controller.lease.ttl.ms: a controller that cannot renew for a TTL minus this interval steps down."},
		dflt: ptr("2000"), field: func(b *Broker) any { return &b.ControllerLeaseRenewMs }},
	{spec: spec{name: "tiercel.controller.lease.poll.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(10),
		doc: "Tiercel only. How often a broker that is not the controller reads the lease to notice an expired one."},
		dflt: ptr("1000"), field: func(b *Broker) any { return &b.ControllerLeasePollMs }},
	{spec: spec{name: "tiercel.metadata.refresh.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(10),
		doc: "Tiercel only. How often a broker rereads the cluster metadata document even without a gossip announcement, so a lost announcement only costs latency."},
		dflt: ptr("5000"), field: func(b *Broker) any { return &b.MetadataRefreshMs }},
	{spec: spec{name: "tiercel.gossip.probe.interval.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(10),
		doc: "Tiercel only. Interval between memberlist's failure-detection probes."},
		dflt: ptr("1000"), field: func(b *Broker) any { return &b.GossipProbeIntervalMs }},
	{spec: spec{name: "tiercel.gossip.suspicion.mult", typ: kmsg.ConfigTypeInt, valid: atLeast(1),
		doc: "Tiercel only. Multiplier of the probe interval a suspected broker has to refute the suspicion before it is declared dead."},
		dflt: ptr("4"), field: func(b *Broker) any { return &b.GossipSuspicionMult }},
	{spec: spec{name: "tiercel.leader.rebalance.interval.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(0),
		doc: "Tiercel only. How often the controller gives leadership back to each partition's preferred (first) replica when it is alive and in sync. 0 disables it."},
		dflt: ptr("60000"), field: func(b *Broker) any { return &b.LeaderRebalanceIntervalMs }},
	{spec: spec{name: "tiercel.remote.sweep.interval.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(1000),
		doc: "Tiercel only. How often the broker that leads a partition lists the object store for objects that no manifest names (left by uploads cut short, interrupted deletes, deleted topics) and deletes them."},
		dflt: ptr("3600000"), field: func(b *Broker) any { return &b.RemoteSweepIntervalMs }},
	{spec: spec{name: "tiercel.remote.orphan.grace.ms", typ: kmsg.ConfigTypeLong, valid: atLeast(0),
		doc: "Tiercel only. Minimum age of an unreferenced object before the sweeper deletes it. Uploads write their objects before the manifest names them, so this must exceed the longest upload."},
		dflt: ptr("3600000"), field: func(b *Broker) any { return &b.RemoteOrphanGraceMs }},
	{spec: spec{name: "tiercel.remote.cache.bytes", typ: kmsg.ConfigTypeLong, valid: atLeast(0),
		doc: "Tiercel only. Memory budget of the cache of remote segment chunks and remote indexes that serves reads below the local log start. 0 turns the cache off."},
		dflt: ptr("268435456"), field: func(b *Broker) any { return &b.RemoteCacheBytes }},
	{spec: spec{name: "tiercel.remote.fetch.chunk.bytes", typ: kmsg.ConfigTypeInt, valid: between(64<<10, 1<<30),
		doc: "Tiercel only. Size and alignment of the ranged reads of remote segments. Larger chunks mean fewer object store requests and more memory per read."},
		dflt: ptr("4194304"), field: func(b *Broker) any { return &b.RemoteFetchChunkBytes }},
	{spec: spec{name: "transactional.id.expiration.ms", typ: kmsg.ConfigTypeInt, valid: atLeast(1),
		doc: "A transactional id that has sent no transaction request for this long is forgotten."},
		dflt: ptr("604800000"), field: func(b *Broker) any { return &b.TransactionalIDExpirationMs }},
	{spec: spec{name: "unclean.leader.election.enable", typ: kmsg.ConfigTypeBoolean,
		doc: "Default unclean.leader.election.enable: allow a replica outside the ISR to become leader when no ISR member is alive, trading acknowledged data for availability."},
		dflt: ptr("false"), field: func(b *Broker) any { return &b.UncleanLeaderElectionEnable }},
})

// Kafka's synonym groups: the several names of one setting, highest
// precedence first.
var (
	retentionGroup = []string{"log.retention.ms", "log.retention.minutes", "log.retention.hours"}
	rollGroup      = []string{"log.roll.ms", "log.roll.hours"}
)

// minSegmentBytes is the smallest segment size Kafka 3.x accepts (the size
// of a version 0 record's overhead). Kafka 4.0 raised it to 1 MiB; Tiercel
// keeps 14 so that tests can roll and offload tiny segments.
const minSegmentBytes = 14

func sortedBrokerDefs(defs []brokerDef) []brokerDef {
	sort.Slice(defs, func(i, j int) bool { return defs[i].name < defs[j].name })
	return defs
}

// brokerIndex finds a broker definition by name.
var brokerIndex = func() map[string]*brokerDef {
	m := make(map[string]*brokerDef, len(brokerDefs))
	for i := range brokerDefs {
		m[brokerDefs[i].name] = &brokerDefs[i]
	}
	return m
}()

// DefaultBroker returns the settings a broker has when nothing is
// configured.
func DefaultBroker() Broker {
	var b Broker
	for i := range brokerDefs {
		d := &brokerDefs[i]
		setField(d.field(&b), d.defaultValue())
	}
	return b
}

// defaultValue parses the definition's default. The tables are checked by
// tests, so a failure here is a programming error.
func (d *brokerDef) defaultValue() value {
	if d.dflt == nil {
		return value{null: true}
	}
	v, err := d.parse(*d.dflt)
	if err != nil {
		panic("config: bad default: " + err.Error())
	}
	return v
}

// NewBroker applies server.properties-style settings over the defaults.
//
// Every key must be a setting Tiercel understands or a known Kafka setting
// that has no effect here; the latter are collected in Broker.Ignored.
// Unknown keys, bad values, known Kafka settings that Tiercel refuses to
// ignore (TLS, SASL, ACLs, remote storage plugins), and inconsistent
// combinations are all reported, joined in a deterministic order (keys
// sorted, then cross-setting checks), each as a *ConfigError naming the
// key.
func NewBroker(props map[string]string) (Broker, error) {
	b := DefaultBroker()
	b.explicit = make(map[string]bool)
	b.Ignored = make(map[string]string)
	var errs []error
	failed := make(map[string]bool)
	for _, name := range sortedKeys(props) {
		raw := props[name]
		if d, ok := brokerIndex[name]; ok {
			v, err := d.parse(raw)
			if err != nil {
				errs = append(errs, err)
				failed[name] = true
				continue
			}
			if err := d.check(raw, v); err != nil {
				errs = append(errs, err)
			}
			setField(d.field(&b), v)
			b.explicit[name] = true
			continue
		}
		if r := findRejected(name); r != nil && !r.harmless(raw) {
			errs = append(errs, invalidf(name, raw, "%s", r.reason))
			continue
		} else if r != nil || ignoredIndex[name] {
			b.Ignored[name] = raw
			continue
		}
		msg := name + ": unknown setting: neither a Tiercel setting nor a Kafka broker setting Tiercel knows"
		if hint := closest(name, knownBrokerNames()); hint != "" {
			msg += " (did you mean " + hint + "?)"
		}
		errs = append(errs, unknown(name, msg))
	}
	errs = append(errs, b.crossCheck(failed)...)
	if len(errs) > 0 {
		return Broker{}, errors.Join(errs...)
	}
	return b, nil
}

// crossCheck reports combinations of settings that are each valid but do
// not make sense together. Settings whose own value failed are skipped so
// that one typo does not cause a cascade of messages.
func (b *Broker) crossCheck(failed map[string]bool) []error {
	var errs []error
	anyFailed := func(names ...string) bool {
		for _, n := range names {
			if failed[n] {
				return true
			}
		}
		return false
	}
	// Kafka requires the two ids to agree when a KRaft file still has
	// both; Tiercel takes its id from a flag, but a file that contradicts
	// itself is a mistake worth reporting.
	if bid, ok := b.Ignored["broker.id"]; ok {
		if nid, ok := b.Ignored["node.id"]; ok && trimJava(bid) != trimJava(nid) {
			errs = append(errs, invalidf("node.id", nid, "%q differs from broker.id %q; when both are set they must be equal", trimJava(nid), trimJava(bid)))
		}
	}
	if !anyFailed("group.min.session.timeout.ms", "group.max.session.timeout.ms") && b.GroupMinSessionTimeoutMs > b.GroupMaxSessionTimeoutMs {
		errs = append(errs, invalidf("group.min.session.timeout.ms", strconv.Itoa(int(b.GroupMinSessionTimeoutMs)),
			"must not exceed group.max.session.timeout.ms (%d), got %d", b.GroupMaxSessionTimeoutMs, b.GroupMinSessionTimeoutMs))
	}
	if !anyFailed("replica.fetch.wait.max.ms", "replica.lag.time.max.ms") && int64(b.ReplicaFetchWaitMaxMs) > b.ReplicaLagTimeMaxMs {
		errs = append(errs, invalidf("replica.fetch.wait.max.ms", strconv.Itoa(int(b.ReplicaFetchWaitMaxMs)),
			"must not exceed replica.lag.time.max.ms (%d), got %d, or followers waiting on an idle leader would fall out of the ISR", b.ReplicaLagTimeMaxMs, b.ReplicaFetchWaitMaxMs))
	}
	if b.RemoteLogStorageSystemEnable && !anyFailed("remote.log.storage.system.enable") {
		if !anyFailed(append([]string{"log.local.retention.ms"}, retentionGroup...)...) {
			if err := checkLocalRetention("log.local.retention.ms", b.LogLocalRetentionMs, "log.retention.ms", b.RetentionMs()); err != nil {
				errs = append(errs, err)
			}
		}
		if !anyFailed("log.local.retention.bytes", "log.retention.bytes") {
			if err := checkLocalRetention("log.local.retention.bytes", b.LogLocalRetentionBytes, "log.retention.bytes", b.LogRetentionBytes); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

// checkLocalRetention enforces Kafka's rule that, for tiered data, the local
// limit (after -2 is resolved to the total) never exceeds the total limit:
// local data must not outlive the log it belongs to. With a finite total,
// -1 (local forever) is refused for the same reason.
func checkLocalRetention(localName string, local int64, totalName string, total int64) error {
	if local == -2 || total == -1 {
		return nil
	}
	raw := strconv.FormatInt(local, 10)
	if local == -1 {
		return invalidf(localName, raw, "-1 (keep forever) is not allowed while %s is limited (%d)", totalName, total)
	}
	if local > total {
		return invalidf(localName, raw, "%d exceeds %s (%d); local data cannot outlive the log", local, totalName, total)
	}
	return nil
}

// RetentionMs is the effective log.retention.ms after Kafka's precedence:
// log.retention.ms, else log.retention.minutes, else log.retention.hours.
// Any negative result is -1, meaning forever.
func (b Broker) RetentionMs() int64 {
	var ms int64
	switch {
	case b.LogRetentionMs != nil:
		ms = *b.LogRetentionMs
	case b.LogRetentionMinutes != nil:
		ms = int64(*b.LogRetentionMinutes) * 60_000
	default:
		ms = int64(b.LogRetentionHours) * 3_600_000
	}
	if ms < 0 {
		return -1
	}
	return ms
}

// RollMs is the effective segment roll age: log.roll.ms, else
// log.roll.hours.
func (b Broker) RollMs() int64 {
	if b.LogRollMs != nil {
		return *b.LogRollMs
	}
	return int64(b.LogRollHours) * 3_600_000
}

// FlushMs is the effective default flush.ms: log.flush.interval.ms, else
// log.flush.scheduler.interval.ms. math.MaxInt64 means never.
func (b Broker) FlushMs() int64 {
	if b.LogFlushIntervalMs != nil {
		return *b.LogFlushIntervalMs
	}
	return b.LogFlushSchedulerIntervalMs
}

// LocalRetentionMs is the effective default local retention time: -2 is
// resolved to RetentionMs.
func (b Broker) LocalRetentionMs() int64 {
	if b.LogLocalRetentionMs == -2 {
		return b.RetentionMs()
	}
	return b.LogLocalRetentionMs
}

// LocalRetentionBytes is the effective default local retention size: -2 is
// resolved to LogRetentionBytes.
func (b Broker) LocalRetentionBytes() int64 {
	if b.LogLocalRetentionBytes == -2 {
		return b.LogRetentionBytes
	}
	return b.LogLocalRetentionBytes
}

// IsSet reports whether the properties given to NewBroker set the named
// setting, even to its default value. It lets a caller tell "left at the
// default" from "asked for", e.g. for remote.log.storage.system.enable.
func (b Broker) IsSet(name string) bool { return b.explicit[name] }

// IgnoredNames returns the sorted names of the known Kafka settings that
// were given and have no effect, for one log line.
func (b Broker) IgnoredNames() []string { return sortedKeys(b.Ignored) }

// BrokerDefinitions returns the definitions of every broker setting
// Tiercel understands, sorted by name.
func BrokerDefinitions() []Definition {
	out := make([]Definition, 0, len(brokerDefs))
	for i := range brokerDefs {
		d := &brokerDefs[i]
		var dflt *string
		if d.dflt != nil {
			dflt = ptr(*d.dflt)
		}
		out = append(out, Definition{Name: d.name, Type: d.typ, Default: dflt, Doc: d.doc, ReadOnly: true,
			Sensitive: d.typ == kmsg.ConfigTypePassword})
	}
	return out
}

// get returns the current value of a setting as DescribeConfigs shows it.
func (b *Broker) get(d *brokerDef) *string {
	return formatValue(d.typ, getField(d.field(b)))
}

// isStatic reports whether a setting counts as configured rather than
// defaulted: set by the properties, or changed by the caller afterwards.
func (b *Broker) isStatic(d *brokerDef) bool {
	if b.explicit[d.name] {
		return true
	}
	cur := b.get(d)
	switch {
	case cur == nil || d.dflt == nil:
		return cur != d.dflt
	default:
		return *cur != *d.dflt
	}
}
