package config

import (
	"sort"
	"strings"
)

// ignoredBrokerSettings are real Kafka broker settings that are accepted
// and ignored, because they have no meaning for Tiercel. Real
// server.properties files are full of them, and refusing them would make
// every migration start with a clean-up. NewBroker records them in
// Broker.Ignored so the caller can say so in one log line.
//
// Only names that Kafka (3.x or 4.x) really defines belong here: anything
// else is a typo or a setting from another product, and is an error.
var ignoredBrokerSettings = []string{
	// Identity, membership and metadata. Tiercel's flags set the broker's
	// id, gossip finds peers, and the controller lease replaces KRaft and
	// ZooKeeper.
	"broker.id",
	"node.id",
	"broker.id.generation.enable",
	"reserved.broker.max.id",
	"process.roles",
	"controller.listener.names",
	"controller.quorum.voters",
	"controller.quorum.bootstrap.servers",
	"controller.quorum.election.timeout.ms",
	"controller.quorum.election.backoff.max.ms",
	"controller.quorum.fetch.timeout.ms",
	"controller.quorum.append.linger.ms",
	"controller.quorum.request.timeout.ms",
	"controller.quorum.retry.backoff.ms",
	"controller.socket.timeout.ms",
	"broker.heartbeat.interval.ms",
	"broker.session.timeout.ms",
	"initial.broker.registration.timeout.ms",
	"metadata.log.dir",
	"metadata.log.segment.bytes",
	"metadata.log.segment.ms",
	"metadata.log.max.record.bytes.between.snapshots",
	"metadata.log.max.snapshot.interval.ms",
	"metadata.max.retention.bytes",
	"metadata.max.retention.ms",
	"metadata.max.idle.interval.ms",
	"inter.broker.protocol.version",
	"zookeeper.connect",
	"zookeeper.connection.timeout.ms",
	"zookeeper.session.timeout.ms",
	"zookeeper.max.in.flight.requests",
	"zookeeper.set.acl",
	"zookeeper.metadata.migration.enable",
	"auto.leader.rebalance.enable",
	"leader.imbalance.check.interval.seconds",
	"leader.imbalance.per.broker.percentage",
	"controlled.shutdown.enable",
	"controlled.shutdown.max.retries",
	"controlled.shutdown.retry.backoff.ms",

	// Network and threads. Tiercel's flags choose its listener; Go's
	// runtime schedules the work that Kafka spreads over thread pools.
	"listeners",
	"advertised.listeners",
	"listener.security.protocol.map",
	"inter.broker.listener.name",
	"control.plane.listener.name",
	"early.start.listeners",
	"num.network.threads",
	"num.io.threads",
	"background.threads",
	"queued.max.requests",
	"queued.max.request.bytes",
	"request.timeout.ms",
	"socket.send.buffer.bytes",
	"socket.receive.buffer.bytes",
	"socket.listen.backlog.size",
	"socket.connection.setup.timeout.ms",
	"socket.connection.setup.timeout.max.ms",
	"connections.max.idle.ms",
	"connections.max.reauth.ms",
	"max.connections",
	"max.connections.per.ip",
	"max.connections.per.ip.overrides",
	"max.connection.creation.rate",

	// Local log layout and the log cleaner. The data directory is a flag;
	// there is no compaction to tune; and these topic-default synonyms
	// belong to topic configs that have no effect in Tiercel either.
	"log.dir",
	"log.dirs",
	"num.recovery.threads.per.data.dir",
	"log.flush.offset.checkpoint.interval.ms",
	"log.flush.start.offset.checkpoint.interval.ms",
	"log.preallocate",
	"log.segment.delete.delay.ms",
	"log.roll.jitter.ms",
	"log.roll.jitter.hours",
	"log.message.downconversion.enable",
	"log.message.format.version",
	"log.cleaner.enable",
	"log.cleaner.threads",
	"log.cleaner.backoff.ms",
	"log.cleaner.dedupe.buffer.size",
	"log.cleaner.io.buffer.size",
	"log.cleaner.io.buffer.load.factor",
	"log.cleaner.io.max.bytes.per.second",
	"log.cleaner.min.cleanable.ratio",
	"log.cleaner.delete.retention.ms",
	"log.cleaner.min.compaction.lag.ms",
	"log.cleaner.max.compaction.lag.ms",
	"compression.gzip.level",
	"compression.lz4.level",
	"compression.zstd.level",

	// Replication and fetch tuning of Kafka's own machinery.
	"num.replica.fetchers",
	"num.replica.alter.log.dirs.threads",
	"replica.fetch.response.max.bytes",
	"replica.socket.timeout.ms",
	"replica.socket.receive.buffer.bytes",
	"replica.high.watermark.checkpoint.interval.ms",
	"replica.selector.class",
	"fetch.max.bytes",
	"max.incremental.fetch.session.cache.slots",
	"fetch.purgatory.purge.interval.requests",
	"producer.purgatory.purge.interval.requests",
	"delete.records.purgatory.purge.interval.requests",

	// Groups, offsets, transactions and share groups beyond what Tiercel
	// implements (the classic group protocol).
	"group.max.size",
	"group.coordinator.rebalance.protocols",
	"group.coordinator.threads",
	"group.consumer.session.timeout.ms",
	"group.consumer.min.session.timeout.ms",
	"group.consumer.max.session.timeout.ms",
	"group.consumer.heartbeat.interval.ms",
	"group.consumer.min.heartbeat.interval.ms",
	"group.consumer.max.heartbeat.interval.ms",
	"group.consumer.max.size",
	"group.consumer.assignors",
	"group.consumer.migration.policy",
	"offsets.commit.timeout.ms",
	"offsets.commit.required.acks",
	"offsets.topic.segment.bytes",
	"offsets.topic.compression.codec",
	"transaction.state.log.num.partitions",
	"transaction.state.log.replication.factor",
	"transaction.state.log.min.isr",
	"transaction.state.log.segment.bytes",
	"transaction.state.log.load.buffer.size",
	"transaction.max.timeout.ms",
	"transaction.abort.timed.out.transaction.cleanup.interval.ms",
	"transaction.remove.expired.transaction.cleanup.interval.ms",
	"transaction.partition.verification.enable",
	"share.coordinator.state.topic.replication.factor",
	"share.coordinator.state.topic.min.isr",

	// Quotas, metrics and plug-in policies. Tiercel exports its metrics
	// through OpenTelemetry and has no quota or policy plug-ins.
	"quota.window.num",
	"quota.window.size.seconds",
	"replication.quota.window.num",
	"replication.quota.window.size.seconds",
	"alter.log.dirs.replication.quota.window.num",
	"alter.log.dirs.replication.quota.window.size.seconds",
	"client.quota.callback.class",
	"metric.reporters",
	"metrics.num.samples",
	"metrics.sample.window.ms",
	"metrics.recording.level",
	"kafka.metrics.reporters",
	"kafka.metrics.polling.interval.secs",
	"auto.include.jmx.reporter",
	"telemetry.max.bytes",
	"create.topic.policy.class.name",
	"alter.config.policy.class.name",

	// Tuning of Kafka's tiered storage plumbing (thread pools, quotas,
	// retries, its index cache). Tiercel's offloader and remote reader are
	// built in and sized by their own settings.
	"remote.log.manager.thread.pool.size",
	"remote.log.manager.copier.thread.pool.size",
	"remote.log.manager.expiration.thread.pool.size",
	"remote.log.manager.task.retry.backoff.ms",
	"remote.log.manager.task.retry.backoff.max.ms",
	"remote.log.manager.task.retry.jitter",
	"remote.log.manager.copy.max.bytes.per.second",
	"remote.log.manager.copy.quota.window.num",
	"remote.log.manager.copy.quota.window.size.seconds",
	"remote.log.manager.fetch.max.bytes.per.second",
	"remote.log.manager.fetch.quota.window.num",
	"remote.log.manager.fetch.quota.window.size.seconds",
	"remote.log.reader.threads",
	"remote.log.reader.max.pending.tasks",
	"remote.log.index.file.cache.total.size.bytes",
	"remote.log.metadata.manager.listener.name",
	"remote.log.metadata.custom.metadata.max.bytes",
	"remote.fetch.max.wait.ms",
	"remote.list.offsets.request.timeout.ms",
}

var ignoredIndex = func() map[string]bool {
	m := make(map[string]bool, len(ignoredBrokerSettings))
	for _, n := range ignoredBrokerSettings {
		m[n] = true
	}
	return m
}()

// IgnoredBrokerSettings returns the sorted names of the Kafka broker
// settings that NewBroker accepts and ignores.
func IgnoredBrokerSettings() []string {
	out := append([]string(nil), ignoredBrokerSettings...)
	sort.Strings(out)
	return out
}

// rejectedSetting is a real Kafka setting (or family, by prefix) that
// Tiercel refuses rather than ignores, because ignoring it would silently
// drop something the operator relies on: security, or where the data goes.
// An empty value asks for nothing and is ignored instead.
type rejectedSetting struct {
	name   string // exact name, or a prefix ending in "."
	prefix bool
	reason string
	ok     func(v string) bool // other values that ask for nothing; may be nil
}

const (
	reasonSecurity = "TLS, SASL and ACLs are not implemented in Tiercel yet; refusing to start rather than run without the protection this setting asks for"
	reasonPlugins  = "Tiercel's object store is built in and configured with its own flags (such as --object-store), not with Kafka's remote storage plug-ins"
)

var rejectedBrokerSettings = []rejectedSetting{
	{name: "ssl.", prefix: true, reason: reasonSecurity},
	{name: "sasl.", prefix: true, reason: reasonSecurity},
	{name: "listener.name.", prefix: true, reason: "per-listener settings (mostly TLS and SASL) are not supported; Tiercel's listener comes from its flags"},
	{name: "security.inter.broker.protocol", reason: reasonSecurity,
		ok: func(v string) bool { return strings.EqualFold(v, "PLAINTEXT") }},
	{name: "authorizer.class.name", reason: reasonSecurity},
	{name: "super.users", reason: reasonSecurity},
	{name: "allow.everyone.if.no.acl.found", reason: reasonSecurity},
	{name: "principal.builder.class", reason: reasonSecurity},
	{name: "security.providers", reason: reasonSecurity},
	{name: "delegation.token.secret.key", reason: reasonSecurity},
	{name: "delegation.token.master.key", reason: reasonSecurity},
	{name: "delegation.token.max.lifetime.ms", reason: reasonSecurity},
	{name: "delegation.token.expiry.time.ms", reason: reasonSecurity},
	{name: "delegation.token.expiry.check.interval.ms", reason: reasonSecurity},
	{name: "config.providers", reason: "Tiercel does not expand ${provider:path:key} references, so values that use them would be taken literally"},
	{name: "remote.log.storage.manager.class.name", reason: reasonPlugins},
	{name: "remote.log.storage.manager.class.path", reason: reasonPlugins},
	{name: "remote.log.storage.manager.impl.prefix", reason: reasonPlugins},
	{name: "remote.log.metadata.manager.class.name", reason: reasonPlugins},
	{name: "remote.log.metadata.manager.class.path", reason: reasonPlugins},
	{name: "remote.log.metadata.manager.impl.prefix", reason: reasonPlugins},
	{name: "rsm.config.", prefix: true, reason: reasonPlugins},
	{name: "rlmm.config.", prefix: true, reason: reasonPlugins},
}

// findRejected returns the rejection rule that covers name, if any.
func findRejected(name string) *rejectedSetting {
	for i := range rejectedBrokerSettings {
		r := &rejectedBrokerSettings[i]
		if name == r.name || (r.prefix && strings.HasPrefix(name, r.name) && len(name) > len(r.name)) {
			return r
		}
	}
	return nil
}

// harmless reports whether the value asks for nothing Tiercel lacks.
func (r *rejectedSetting) harmless(raw string) bool {
	v := trimJava(raw)
	return v == "" || (r.ok != nil && r.ok(v))
}

// knownBrokerNames lists every exact name NewBroker accepts, for typo hints.
func knownBrokerNames() []string {
	names := make([]string, 0, len(brokerDefs)+len(ignoredBrokerSettings))
	for i := range brokerDefs {
		names = append(names, brokerDefs[i].name)
	}
	return append(names, ignoredBrokerSettings...)
}
