package config

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// brokerCases gives, for every supported broker setting, a good value with
// the value Describe should then show, and a bad value with a piece of the
// message. Every setting in the registry must have a case.
var brokerCases = map[string]struct {
	good, want, bad, msg string
}{
	"auto.create.topics.enable":               {"FALSE", "false", "yes", `"yes" is not a valid boolean`},
	"broker.rack":                             {" us-east-1a ", "us-east-1a", "", ""},
	"compression.type":                        {"producer", "producer", "gzip", `"gzip" is not supported: only "producer" is`},
	"default.replication.factor":              {"3", "3", "0", "must be >= 1, got 0"},
	"delete.topic.enable":                     {"false", "false", "1", `"1" is not a valid boolean`},
	"group.initial.rebalance.delay.ms":        {"0", "0", "-1", "must be >= 0, got -1"},
	"group.max.session.timeout.ms":            {"600000", "600000", "x", `"x" is not a valid int`},
	"group.min.session.timeout.ms":            {"1000", "1000", "0", "must be >= 1, got 0"},
	"log.cleanup.policy":                      {"delete", "delete", "compact", "log.cleanup.policy=compact is not supported yet"},
	"log.flush.interval.messages":             {"10000", "10000", "0", "must be >= 1, got 0"},
	"log.flush.interval.ms":                   {"1000", "1000", "-1", "must be >= 0, got -1"},
	"log.flush.scheduler.interval.ms":         {"3000", "3000", "-5", "must be >= 0, got -5"},
	"log.index.interval.bytes":                {"8192", "8192", "-1", "must be >= 0, got -1"},
	"log.index.size.max.bytes":                {"1048576", "1048576", "3", "must be >= 4, got 3"},
	"log.local.retention.bytes":               {"1073741824", "1073741824", "-3", "must be >= -2, got -3"},
	"log.local.retention.ms":                  {"3600000", "3600000", "-3", "must be >= -2, got -3"},
	"log.message.timestamp.after.max.ms":      {"3600000", "3600000", "-1", "must be >= 0, got -1"},
	"log.message.timestamp.before.max.ms":     {"3600000", "3600000", "-1", "must be >= 0, got -1"},
	"log.message.timestamp.difference.max.ms": {"3600000", "3600000", "1.5", `"1.5" is not a valid long`},
	"log.message.timestamp.type":              {"LogAppendTime", "LogAppendTime", "logappendtime", `"logappendtime" is not valid; must be one of CreateTime, LogAppendTime`},
	"log.retention.bytes":                     {"1073741824", "1073741824", "-2", "must be >= -1, got -2"},
	"log.retention.check.interval.ms":         {"60000", "60000", "0", "must be >= 1, got 0"},
	"log.retention.hours":                     {"24", "24", "-2", "must be >= -1, got -2"},
	"log.retention.minutes":                   {"60", "60", "2147483648", `"2147483648" is not a valid int`},
	"log.retention.ms":                        {"-1", "-1", "abc", `"abc" is not a valid long`},
	"log.roll.hours":                          {"1", "1", "0", "must be >= 1, got 0"},
	"log.roll.ms":                             {"60000", "60000", "0", "must be >= 1, got 0"},
	"log.segment.bytes":                       {"14", "14", "13", "must be >= 14, got 13"},
	"message.max.bytes":                       {"+2097152", "2097152", "-1", "must be >= 0, got -1"},
	"min.insync.replicas":                     {"2", "2", "0", "must be >= 1, got 0"},
	"num.partitions":                          {"3", "3", "0", "must be >= 1, got 0"},
	"offsets.load.buffer.size":                {"1024", "1024", "0", "must be >= 1, got 0"},
	"offsets.retention.check.interval.ms":     {"1000", "1000", "0", "must be >= 1, got 0"},
	"offsets.retention.minutes":               {"1440", "1440", "0", "must be >= 1, got 0"},
	"offsets.topic.num.partitions":            {"1", "1", "0", "must be >= 1, got 0"},
	"offsets.topic.replication.factor":        {"3", "3", "32768", `"32768" is not a valid short`},
	"producer.id.expiration.ms":               {"1000", "1000", "0", "must be >= 1, got 0"},
	"remote.log.manager.task.interval.ms":     {"1000", "1000", "0", "must be >= 1, got 0"},
	"remote.log.storage.system.enable":        {"false", "false", "no", `"no" is not a valid boolean`},
	"replica.fetch.backoff.ms":                {"100", "100", "-1", "must be >= 0, got -1"},
	"replica.fetch.max.bytes":                 {"10485760", "10485760", "-1", "must be >= 0, got -1"},
	"replica.fetch.min.bytes":                 {"1024", "1024", "-1", "must be >= 0, got -1"},
	"replica.fetch.wait.max.ms":               {"100", "100", "-1", "must be >= 0, got -1"},
	"replica.lag.time.max.ms":                 {"10000", "10000", "0", "must be >= 1, got 0"},
	"socket.request.max.bytes":                {"1048576", "1048576", "0", "must be >= 1, got 0"},
	"tiercel.local.disk.max.used.ratio":       {"0.95", "0.95", "0", "must be in (0.0, 1.0], got 0.0"},
	"tiercel.remote.cache.bytes":              {"0", "0", "-1", "must be >= 0, got -1"},
	"tiercel.remote.sweep.interval.ms":        {"60000", "60000", "999", "must be >= 1000, got 999"},
	"tiercel.controller.lease.ttl.ms":         {"2000", "2000", "99", "must be >= 100, got 99"},
	"tiercel.controller.lease.renew.ms":       {"200", "200", "9", "must be >= 10, got 9"},
	"tiercel.controller.lease.poll.ms":        {"100", "100", "9", "must be >= 10, got 9"},
	"tiercel.metadata.refresh.ms":             {"100", "100", "9", "must be >= 10, got 9"},
	"tiercel.gossip.probe.interval.ms":        {"100", "100", "9", "must be >= 10, got 9"},
	"tiercel.gossip.suspicion.mult":           {"2", "2", "0", "must be >= 1, got 0"},
	"tiercel.leader.rebalance.interval.ms":    {"0", "0", "-1", "must be >= 0, got -1"},
	"tiercel.remote.orphan.grace.ms":          {"0", "0", "-5", "must be >= 0, got -5"},
	"tiercel.remote.fetch.chunk.bytes":        {"1048576", "1048576", "1024", "must be between 65536 and 1073741824, got 1024"},
	"transactional.id.expiration.ms":          {"1000", "1000", "0", "must be >= 1, got 0"},
	"unclean.leader.election.enable":          {"true", "true", "maybe", `"maybe" is not a valid boolean`},
}

func TestBrokerEverySetting(t *testing.T) {
	for i := range brokerDefs {
		d := &brokerDefs[i]
		tc, ok := brokerCases[d.name]
		if !ok {
			t.Errorf("%s: no test case", d.name)
			continue
		}
		t.Run(d.name, func(t *testing.T) {
			b, err := NewBroker(map[string]string{d.name: tc.good})
			if err != nil {
				t.Fatalf("good value %q: %v", tc.good, err)
			}
			if got := b.get(d); got == nil || *got != tc.want {
				t.Errorf("value = %v, want %q", deref(got), tc.want)
			}
			if !b.IsSet(d.name) {
				t.Errorf("IsSet = false after setting it")
			}
			if tc.bad == "" {
				return
			}
			_, err = NewBroker(map[string]string{d.name: tc.bad})
			if err == nil {
				t.Fatalf("bad value %q accepted", tc.bad)
			}
			if !errors.Is(err, ErrInvalidConfig) || errors.Is(err, ErrUnknownConfig) {
				t.Errorf("error %v: want ErrInvalidConfig and not ErrUnknownConfig", err)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Name != d.name || ce.Value != tc.bad {
				t.Errorf("ConfigError = %+v, want Name %q Value %q", ce, d.name, tc.bad)
			}
			if !strings.HasPrefix(err.Error(), d.name) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q: want it to start with %q and contain %q", err, d.name, tc.msg)
			}
		})
	}
	for name := range brokerCases {
		if brokerIndex[name] == nil {
			t.Errorf("test case for %s, which is not a broker setting", name)
		}
	}
}

func TestBrokerMessagesExact(t *testing.T) {
	_, err := NewBroker(map[string]string{"log.segment.bytes": "abc", "num.partitions": "0"})
	want := "log.segment.bytes: \"abc\" is not a valid int\nnum.partitions: must be >= 1, got 0"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}

func TestDefaultBroker(t *testing.T) {
	b := DefaultBroker()
	checks := []struct {
		name      string
		got, want any
	}{
		{"num.partitions", b.NumPartitions, int32(1)},
		{"default.replication.factor", b.DefaultReplicationFactor, int32(1)},
		{"auto.create.topics.enable", b.AutoCreateTopicsEnable, true},
		{"log.segment.bytes", b.LogSegmentBytes, int32(1 << 30)},
		{"log.roll", b.RollMs(), int64(168 * 3600 * 1000)},
		{"log.retention", b.RetentionMs(), int64(168 * 3600 * 1000)},
		{"log.retention.bytes", b.LogRetentionBytes, int64(-1)},
		{"log.retention.check.interval.ms", b.LogRetentionCheckIntervalMs, int64(300000)},
		{"message.max.bytes", b.MessageMaxBytes, int32(1048588)},
		{"socket.request.max.bytes", b.SocketRequestMaxBytes, int32(104857600)},
		{"log.flush.interval.messages", b.LogFlushIntervalMessages, int64(math.MaxInt64)},
		{"flush ms", b.FlushMs(), int64(math.MaxInt64)},
		{"log.index.interval.bytes", b.LogIndexIntervalBytes, int32(4096)},
		{"log.index.size.max.bytes", b.LogIndexSizeMaxBytes, int32(10 << 20)},
		{"log.message.timestamp.type", b.LogMessageTimestampType, CreateTime},
		{"log.cleanup.policy", strings.Join(b.LogCleanupPolicy, ","), "delete"},
		{"min.insync.replicas", b.MinInsyncReplicas, int32(1)},
		{"unclean.leader.election.enable", b.UncleanLeaderElectionEnable, false},
		{"producer.id.expiration.ms", b.ProducerIDExpirationMs, int32(86400000)},
		{"transactional.id.expiration.ms", b.TransactionalIDExpirationMs, int32(604800000)},
		{"offsets.topic.num.partitions", b.OffsetsTopicNumPartitions, int32(50)},
		{"offsets.topic.replication.factor", b.OffsetsTopicReplicationFactor, int16(3)},
		{"offsets.retention.minutes", b.OffsetsRetentionMinutes, int32(10080)},
		{"group.min.session.timeout.ms", b.GroupMinSessionTimeoutMs, int32(6000)},
		{"group.max.session.timeout.ms", b.GroupMaxSessionTimeoutMs, int32(1800000)},
		{"group.initial.rebalance.delay.ms", b.GroupInitialRebalanceDelayMs, int32(3000)},
		{"broker.rack", b.BrokerRack, ""},
		{"replica.lag.time.max.ms", b.ReplicaLagTimeMaxMs, int64(30000)},
		{"delete.topic.enable", b.DeleteTopicEnable, true},
		{"compression.type", b.CompressionType, "producer"},
		{"remote.log.storage.system.enable", b.RemoteLogStorageSystemEnable, true},
		{"log.local.retention.ms", b.LogLocalRetentionMs, int64(-2)},
		{"log.local.retention.bytes", b.LogLocalRetentionBytes, int64(-2)},
		{"local retention resolved", b.LocalRetentionMs(), int64(168 * 3600 * 1000)},
		{"local bytes resolved", b.LocalRetentionBytes(), int64(-1)},
		{"remote.log.manager.task.interval.ms", b.RemoteLogManagerTaskIntervalMs, int64(30000)},
		{"tiercel.remote.fetch.chunk.bytes", b.RemoteFetchChunkBytes, int32(4 << 20)},
		{"tiercel.remote.cache.bytes", b.RemoteCacheBytes, int64(256 << 20)},
		{"tiercel.local.disk.max.used.ratio", b.LocalDiskMaxUsedRatio, 0.9},
		{"log.retention.ms unset", b.LogRetentionMs == nil, true},
		{"log.retention.minutes unset", b.LogRetentionMinutes == nil, true},
		{"log.roll.ms unset", b.LogRollMs == nil, true},
		{"log.flush.interval.ms unset", b.LogFlushIntervalMs == nil, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v (%T), want %v (%T)", c.name, c.got, c.got, c.want, c.want)
		}
	}
	nb, err := NewBroker(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(nb.Describe(true, false), b.Describe(true, false), equalEntry) {
		t.Error("NewBroker(nil) differs from DefaultBroker()")
	}
	for i := range brokerDefs {
		if nb.IsSet(brokerDefs[i].name) {
			t.Errorf("IsSet(%s) on defaults", brokerDefs[i].name)
		}
	}
}

func TestBrokerPrecedence(t *testing.T) {
	const hour = int64(3600 * 1000)
	tests := []struct {
		name  string
		props map[string]string
		get   func(Broker) int64
		want  int64
	}{
		{"retention default", nil, Broker.RetentionMs, 168 * hour},
		{"retention hours", map[string]string{"log.retention.hours": "24"}, Broker.RetentionMs, 24 * hour},
		{"retention minutes beat hours", map[string]string{"log.retention.minutes": "30", "log.retention.hours": "24"}, Broker.RetentionMs, 30 * 60 * 1000},
		{"retention ms beats all", map[string]string{"log.retention.ms": "1000", "log.retention.minutes": "30", "log.retention.hours": "24"}, Broker.RetentionMs, 1000},
		{"retention ms beats hours", map[string]string{"log.retention.ms": "1000", "log.retention.hours": "24"}, Broker.RetentionMs, 1000},
		{"retention hours unlimited", map[string]string{"log.retention.hours": "-1"}, Broker.RetentionMs, -1},
		{"retention minutes unlimited", map[string]string{"log.retention.minutes": "-1", "log.retention.hours": "24"}, Broker.RetentionMs, -1},
		{"retention ms unlimited", map[string]string{"log.retention.ms": "-1"}, Broker.RetentionMs, -1},
		{"retention ms zero", map[string]string{"log.retention.ms": "0", "log.retention.hours": "24"}, Broker.RetentionMs, 0},
		{"roll default", nil, Broker.RollMs, 168 * hour},
		{"roll hours", map[string]string{"log.roll.hours": "1"}, Broker.RollMs, hour},
		{"roll ms beats hours", map[string]string{"log.roll.ms": "5000", "log.roll.hours": "1"}, Broker.RollMs, 5000},
		{"flush default never", nil, Broker.FlushMs, math.MaxInt64},
		{"flush scheduler fallback", map[string]string{"log.flush.scheduler.interval.ms": "1000"}, Broker.FlushMs, 1000},
		{"flush interval beats scheduler", map[string]string{"log.flush.interval.ms": "500", "log.flush.scheduler.interval.ms": "1000"}, Broker.FlushMs, 500},
		{"local retention follows total", map[string]string{"log.retention.hours": "2"}, Broker.LocalRetentionMs, 2 * hour},
		{"local retention own value", map[string]string{"log.local.retention.ms": "1000"}, Broker.LocalRetentionMs, 1000},
		{"local bytes follows total", map[string]string{"log.retention.bytes": "5000"}, Broker.LocalRetentionBytes, 5000},
		{"local bytes own value", map[string]string{"log.retention.bytes": "5000", "log.local.retention.bytes": "10"}, Broker.LocalRetentionBytes, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := NewBroker(tt.props)
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.get(b); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestBrokerUnknownSetting(t *testing.T) {
	tests := []struct {
		name, key, msg string
	}{
		{"typo gets a hint", "log.retention.hour", "log.retention.hour: unknown setting: neither a Tiercel setting nor a Kafka broker setting Tiercel knows (did you mean log.retention.hours?)"},
		{"hint towards an ignored name", "listenrs", "(did you mean listeners?)"},
		{"nothing close", "foo.bar.baz", "foo.bar.baz: unknown setting: neither a Tiercel setting nor a Kafka broker setting Tiercel knows"},
		{"removed Kafka name", "host.name", "host.name: unknown setting"},
		{"unknown tiercel name", "tiercel.nope", "tiercel.nope: unknown setting"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewBroker(map[string]string{tt.key: "1"})
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrUnknownConfig) || !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("%v: want ErrUnknownConfig, which is also ErrInvalidConfig", err)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Name != tt.key {
				t.Errorf("ConfigError %+v, want Name %q", ce, tt.key)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("message %q does not contain %q", err, tt.msg)
			}
			if strings.Contains(tt.name, "nothing close") && strings.Contains(err.Error(), "did you mean") {
				t.Errorf("unexpected hint in %q", err)
			}
		})
	}
}

// kafkaServerProperties is the shape of the server.properties Kafka ships
// for KRaft, plus a few common additions.
const kafkaServerProperties = `
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=localhost:9093
listeners=PLAINTEXT://:9092,CONTROLLER://:9093
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs=/tmp/kraft-combined-logs
num.partitions=1
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
group.initial.rebalance.delay.ms=0
zookeeper.connect=localhost:2181
security.inter.broker.protocol=PLAINTEXT
ssl.keystore.location=
`

func TestBrokerKafkaFile(t *testing.T) {
	props, err := ParseProperties(strings.NewReader(kafkaServerProperties))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBroker(props)
	if err != nil {
		t.Fatalf("Kafka's own server.properties: %v", err)
	}
	want := []string{
		"advertised.listeners", "controller.listener.names", "controller.quorum.bootstrap.servers",
		"inter.broker.listener.name", "listener.security.protocol.map", "listeners", "log.dirs",
		"node.id", "num.io.threads", "num.network.threads", "num.recovery.threads.per.data.dir",
		"process.roles", "security.inter.broker.protocol", "share.coordinator.state.topic.min.isr",
		"share.coordinator.state.topic.replication.factor", "socket.receive.buffer.bytes",
		"socket.send.buffer.bytes", "ssl.keystore.location", "transaction.state.log.min.isr",
		"transaction.state.log.replication.factor", "zookeeper.connect",
	}
	if got := b.IgnoredNames(); !slices.Equal(got, want) {
		t.Errorf("IgnoredNames() =\n%q\nwant\n%q", got, want)
	}
	if b.Ignored["node.id"] != "1" {
		t.Errorf("Ignored[node.id] = %q", b.Ignored["node.id"])
	}
	if b.GroupInitialRebalanceDelayMs != 0 || !b.IsSet("log.retention.hours") || b.IsSet("log.retention.ms") {
		t.Errorf("supported settings from the file not applied")
	}
}

func TestBrokerRejectedSettings(t *testing.T) {
	tests := []struct {
		key, val string
		msg      string // empty: accepted and ignored
	}{
		{"ssl.keystore.location", "/etc/ks.jks", "TLS, SASL and ACLs are not implemented"},
		{"ssl.keystore.location", "  ", ""},
		{"sasl.enabled.mechanisms", "PLAIN", "TLS, SASL and ACLs"},
		{"listener.name.internal.ssl.client.auth", "required", "per-listener settings"},
		{"security.inter.broker.protocol", "plaintext", ""},
		{"security.inter.broker.protocol", "SASL_SSL", "TLS, SASL and ACLs"},
		{"authorizer.class.name", "org.apache.kafka.metadata.authorizer.StandardAuthorizer", "TLS, SASL and ACLs"},
		{"authorizer.class.name", "", ""},
		{"super.users", "User:admin", "TLS, SASL and ACLs"},
		{"config.providers", "file", "does not expand ${provider:path:key}"},
		{"remote.log.storage.manager.class.name", "io.aiven.RemoteStorageManager", "object store is built in"},
		{"rsm.config.s3.bucket.name", "b", "object store is built in"},
		{"rlmm.config.remote.log.metadata.topic.replication.factor", "1", "object store is built in"},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.val, func(t *testing.T) {
			b, err := NewBroker(map[string]string{tt.key: tt.val})
			if tt.msg == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if _, ok := b.Ignored[tt.key]; !ok {
					t.Errorf("not recorded as ignored")
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrInvalidConfig) || errors.Is(err, ErrUnknownConfig) {
				t.Errorf("%v: want ErrInvalidConfig only", err)
			}
			if !strings.HasPrefix(err.Error(), tt.key+": ") || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("message %q: want %q and %q", err, tt.key, tt.msg)
			}
		})
	}
}

func TestBrokerCrossChecks(t *testing.T) {
	tests := []struct {
		name  string
		props map[string]string
		msgs  []string // one per expected error, in order; none: valid
	}{
		{"ids agree", map[string]string{"broker.id": "1", "node.id": " 1"}, nil},
		{"ids differ", map[string]string{"broker.id": "1", "node.id": "2"}, []string{`node.id: "2" differs from broker.id "1"`}},
		{"session timeouts inverted", map[string]string{"group.min.session.timeout.ms": "7000", "group.max.session.timeout.ms": "6000"},
			[]string{"group.min.session.timeout.ms: must not exceed group.max.session.timeout.ms (6000), got 7000"}},
		{"fetch wait beyond lag", map[string]string{"replica.fetch.wait.max.ms": "40000"},
			[]string{"replica.fetch.wait.max.ms: must not exceed replica.lag.time.max.ms (30000), got 40000"}},
		{"local retention beyond total", map[string]string{"log.retention.hours": "1", "log.local.retention.ms": "3600001"},
			[]string{"log.local.retention.ms: 3600001 exceeds log.retention.ms (3600000)"}},
		{"local retention equal to total", map[string]string{"log.retention.hours": "1", "log.local.retention.ms": "3600000"}, nil},
		{"local retention forever with finite total", map[string]string{"log.local.retention.ms": "-1"},
			[]string{"log.local.retention.ms: -1 (keep forever) is not allowed while log.retention.ms is limited (604800000)"}},
		{"local retention forever with total forever", map[string]string{"log.local.retention.ms": "-1", "log.retention.ms": "-1"}, nil},
		{"local bigger than total with total forever", map[string]string{"log.local.retention.ms": "5", "log.retention.hours": "-1"}, nil},
		{"local rules off without tiering", map[string]string{"remote.log.storage.system.enable": "false", "log.local.retention.ms": "-1", "log.local.retention.bytes": "10", "log.retention.bytes": "5"}, nil},
		{"local bytes beyond total", map[string]string{"log.retention.bytes": "1000", "log.local.retention.bytes": "2000"},
			[]string{"log.local.retention.bytes: 2000 exceeds log.retention.bytes (1000)"}},
		{"local bytes forever with finite total", map[string]string{"log.retention.bytes": "1000", "log.local.retention.bytes": "-1"},
			[]string{"log.local.retention.bytes: -1 (keep forever) is not allowed while log.retention.bytes is limited (1000)"}},
		{"bad value does not cascade", map[string]string{"group.min.session.timeout.ms": "abc", "group.max.session.timeout.ms": "1"},
			[]string{`group.min.session.timeout.ms: "abc" is not a valid int`}},
		{"bad retention does not cascade", map[string]string{"log.retention.ms": "x", "log.local.retention.ms": "-1"},
			[]string{`log.retention.ms: "x" is not a valid long`}},
		{"all problems, keys then combinations", map[string]string{
			"zzz": "1", "num.partitions": "0", "log.segment.bytes": "abc",
			"replica.fetch.wait.max.ms": "40000", "broker.id": "1", "node.id": "2",
		}, []string{
			"log.segment.bytes:", "num.partitions:", "zzz:", "node.id:", "replica.fetch.wait.max.ms:",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewBroker(tt.props)
			checkErrs(t, err, tt.msgs)
		})
	}
}

// checkErrs asserts that err joins exactly one error per message, in order,
// each containing its message.
func checkErrs(t *testing.T, err error, msgs []string) {
	t.Helper()
	if len(msgs) == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want %q", msgs)
	}
	errs := unjoin(err)
	if len(errs) != len(msgs) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(msgs), err)
	}
	for i, e := range errs {
		if !strings.Contains(e.Error(), msgs[i]) {
			t.Errorf("error %d = %q, want it to contain %q", i, e, msgs[i])
		}
		var ce *ConfigError
		if !errors.As(e, &ce) {
			t.Errorf("error %d (%v) is not a *ConfigError", i, e)
		}
	}
}

func TestBrokerDeterministicErrors(t *testing.T) {
	props := map[string]string{}
	for i := range brokerDefs {
		if tc := brokerCases[brokerDefs[i].name]; tc.bad != "" {
			props[brokerDefs[i].name] = tc.bad
		}
	}
	props["unknown.one"] = "1"
	_, first := NewBroker(props)
	for range 20 {
		_, again := NewBroker(props)
		if again.Error() != first.Error() {
			t.Fatalf("errors differ between runs:\n%v\n---\n%v", first, again)
		}
	}
}

// TestBrokerRegistry checks the tables themselves: defaults parse and
// render back unchanged, field types match config types, names are unique,
// sorted and in exactly one of the supported, ignored and rejected groups.
func TestBrokerRegistry(t *testing.T) {
	var b Broker
	for i := range brokerDefs {
		d := &brokerDefs[i]
		if i > 0 && brokerDefs[i-1].name >= d.name {
			t.Errorf("%s: registry not sorted or has duplicates", d.name)
		}
		if d.doc == "" || !strings.HasSuffix(d.doc, ".") {
			t.Errorf("%s: doc missing or not a sentence", d.name)
		}
		if d.dflt != nil {
			v, err := d.parse(*d.dflt)
			if err != nil {
				t.Errorf("%s: default %q: %v", d.name, *d.dflt, err)
				continue
			}
			if got := formatValue(d.typ, v); *got != *d.dflt {
				t.Errorf("%s: default %q renders as %q", d.name, *d.dflt, *got)
			}
			if err := d.check(*d.dflt, v); err != nil {
				t.Errorf("%s: default violates policy: %v", d.name, err)
			}
		}
		checkFieldType(t, d.name, d.typ, d.field(&b), d.dflt == nil)
		if ignoredIndex[d.name] || findRejected(d.name) != nil {
			t.Errorf("%s: supported and also ignored or rejected", d.name)
		}
		for _, n := range d.group {
			if brokerIndex[n] == nil {
				t.Errorf("%s: synonym %s is not a setting", d.name, n)
			}
		}
	}
	seen := map[string]bool{}
	for _, n := range ignoredBrokerSettings {
		if seen[n] {
			t.Errorf("%s: listed twice as ignored", n)
		}
		seen[n] = true
		if findRejected(n) != nil {
			t.Errorf("%s: both ignored and rejected", n)
		}
		if strings.HasPrefix(n, "tiercel.") {
			t.Errorf("%s: ignored names must be Kafka's", n)
		}
	}
	if got := IgnoredBrokerSettings(); !slices.IsSorted(got) || len(got) != len(ignoredBrokerSettings) {
		t.Errorf("IgnoredBrokerSettings not sorted or incomplete")
	}
	defs := BrokerDefinitions()
	if len(defs) != len(brokerDefs) {
		t.Fatalf("BrokerDefinitions has %d entries, want %d", len(defs), len(brokerDefs))
	}
	for _, d := range defs {
		if !d.ReadOnly || d.NoEffect || len(d.Synonyms) != 0 {
			t.Errorf("%s: unexpected definition %+v", d.Name, d)
		}
	}
	if d := defs[slices.IndexFunc(defs, func(d Definition) bool { return d.Name == "log.retention.ms" })]; d.Default != nil || d.Type != kmsg.ConfigTypeLong {
		t.Errorf("log.retention.ms definition = %+v", d)
	}
}

// checkFieldType asserts that a field can hold values of the config type.
func checkFieldType(t *testing.T, name string, typ kmsg.ConfigType, p any, nullable bool) {
	t.Helper()
	var ok bool
	switch p.(type) {
	case *bool:
		ok = typ == kmsg.ConfigTypeBoolean && !nullable
	case *int16:
		ok = typ == kmsg.ConfigTypeShort && !nullable
	case *int32:
		ok = typ == kmsg.ConfigTypeInt && !nullable
	case *int64:
		ok = typ == kmsg.ConfigTypeLong && !nullable
	case **int32:
		ok = typ == kmsg.ConfigTypeInt && nullable
	case **int64:
		ok = typ == kmsg.ConfigTypeLong && nullable
	case *float64:
		ok = typ == kmsg.ConfigTypeDouble && !nullable
	case *string, *TimestampType:
		ok = typ == kmsg.ConfigTypeString && !nullable
	case *[]string:
		ok = typ == kmsg.ConfigTypeList && !nullable
	}
	if !ok {
		t.Errorf("%s: field %T does not fit type %s (nullable %v)", name, p, typeName(typ), nullable)
	}
}

func TestBrokerCopyIsIndependent(t *testing.T) {
	b, err := NewBroker(map[string]string{"log.retention.ms": "1000"})
	if err != nil {
		t.Fatal(err)
	}
	c := b
	c.LogCleanupPolicy = append(c.LogCleanupPolicy[:0:0], "delete")
	x := int64(5)
	c.LogRetentionMs = &x
	if b.RetentionMs() != 1000 {
		t.Errorf("changing a copy changed the original")
	}
}

func deref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}
