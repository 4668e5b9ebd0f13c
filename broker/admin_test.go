package broker

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/tiercel/tiercel/broker/controller"
	"github.com/tiercel/tiercel/tiering/objstore"
)

// --- helpers ---------------------------------------------------------------

// versionClient returns a client that sends requests of key at exactly
// version v (the broker's minimum for key is at most v).
func (tb *testBroker) adminVersionClient(key kmsg.Key, v int16) *kgo.Client {
	vs := kversion.Stable()
	vs.SetMaxKeyVersion(int16(key), v)
	return tb.Client(kgo.MaxVersions(vs))
}

// adminRequest sends req to broker 1 as it is, without the client's
// sharding (which would split it by resource or partition and drop what
// it cannot route), and fails the test on a transport error. The
// response's version must be want (-1: do not check).
func adminRequest[R kmsg.Response](t *testing.T, cl *kgo.Client, req kmsg.Request, want int16) R {
	t.Helper()
	resp, err := cl.Broker(1).Request(testCtx(t), req)
	if err != nil {
		t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
	}
	if want >= 0 && resp.GetVersion() != want {
		t.Fatalf("%s answered at v%d, want v%d", kmsg.NameForKey(req.Key()), resp.GetVersion(), want)
	}
	return resp.(R)
}

func adminWantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	if want == nil {
		if got != 0 {
			t.Fatalf("%s: error %v, want none", what, kerr.ErrorForCode(got))
		}
		return
	}
	if got != want.Code {
		t.Fatalf("%s: error %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

func adminWantMsg(t *testing.T, what string, msg *string, substr string) {
	t.Helper()
	if msg == nil {
		t.Fatalf("%s: no error message, want one containing %q", what, substr)
	}
	if !strings.Contains(*msg, substr) {
		t.Fatalf("%s: error message %q does not contain %q", what, *msg, substr)
	}
}

func adminCreateTopic(t *testing.T, adm *kadm.Client, topic string, partitions int32, configs map[string]*string) kadm.CreateTopicResponse {
	t.Helper()
	r, err := adm.CreateTopic(testCtx(t), partitions, 1, configs, topic)
	if err != nil {
		t.Fatalf("create %s: %v (%s)", topic, err, r.ErrMessage)
	}
	return r
}

// topicConfigs describes a topic's configs by name.
func adminTopicConfigs(t *testing.T, adm *kadm.Client, topic string) map[string]kadm.Config {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe %s: %v %v %s", topic, err, rc.Err, rc.ErrMessage)
	}
	out := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		out[c.Key] = c
	}
	return out
}

func adminWantConfig(t *testing.T, cfgs map[string]kadm.Config, name, value string, source kmsg.ConfigSource) {
	t.Helper()
	c, ok := cfgs[name]
	if !ok {
		t.Fatalf("config %s not described", name)
	}
	if c.Value == nil || *c.Value != value || c.Source != source {
		got := "<nil>"
		if c.Value != nil {
			got = *c.Value
		}
		t.Fatalf("config %s = %q (%v), want %q (%v)", name, got, c.Source, value, source)
	}
}

// produce writes n records of size bytes each to one partition, one batch
// per record, and returns their offsets.
func adminProduce(t *testing.T, cl *kgo.Client, topic string, partition int32, n, size int) []int64 {
	t.Helper()
	var offsets []int64
	for i := 0; i < n; i++ {
		r := &kgo.Record{Topic: topic, Partition: partition, Value: bytes.Repeat([]byte{byte('a' + i%26)}, size)}
		if err := cl.ProduceSync(testCtx(t), r).FirstErr(); err != nil {
			t.Fatalf("produce to %s-%d: %v", topic, partition, err)
		}
		offsets = append(offsets, r.Offset)
	}
	return offsets
}

func adminProducer(tb *testBroker) *kgo.Client {
	return tb.Client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
}

func adminStartOffset(t *testing.T, adm *kadm.Client, topic string, partition int32) int64 {
	t.Helper()
	l, err := adm.ListStartOffsets(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := l.Lookup(topic, partition)
	if !ok || o.Err != nil {
		t.Fatalf("ListStartOffsets %s-%d: %v", topic, partition, o.Err)
	}
	return o.Offset
}

func adminEndOffset(t *testing.T, adm *kadm.Client, topic string, partition int32) int64 {
	t.Helper()
	l, err := adm.ListEndOffsets(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := l.Lookup(topic, partition)
	if !ok || o.Err != nil {
		t.Fatalf("ListEndOffsets %s-%d: %v", topic, partition, o.Err)
	}
	return o.Offset
}

// consume reads from one partition starting at offset until it has n
// records or an error.
func adminConsume(t *testing.T, tb *testBroker, topic string, partition int32, from int64, n int) ([]*kgo.Record, error) {
	t.Helper()
	cl := tb.Client(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(from)}}),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(testCtx(t), 15*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return recs, ctx.Err()
		}
		for _, e := range fs.Errors() {
			return recs, e.Err
		}
		recs = append(recs, fs.Records()...)
	}
	return recs, nil
}

func adminTopicNames(t *testing.T, adm *kadm.Client) []string {
	t.Helper()
	td, err := adm.ListTopics(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	return td.Names()
}

// --- CreateTopics ------------------------------------------------------------

func TestAdminCreateTopicsWithConfigs(t *testing.T) {
	tb := startBroker(t, withSetting("num.partitions", "3"), withSetting("message.max.bytes", "2000000"))
	adm := tb.Admin()

	r := adminCreateTopic(t, adm, "configured", 2, map[string]*string{
		"retention.ms":   kadm.StringPtr("3600000"),
		"segment.bytes":  kadm.StringPtr("1048576"),
		"cleanup.policy": kadm.StringPtr("delete"),
	})
	if r.NumPartitions != 2 || r.ReplicationFactor != 1 || r.ID == (kadm.TopicID{}) {
		t.Fatalf("create response: %d partitions, rf %d, id %v", r.NumPartitions, r.ReplicationFactor, r.ID)
	}
	// v5+: the resolved configs come back with the creation.
	if c := r.Configs["retention.ms"]; c.Value == nil || *c.Value != "3600000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("created retention.ms = %+v", c)
	}
	if c := r.Configs["max.message.bytes"]; c.Value == nil || *c.Value != "2000000" || c.Source != kmsg.ConfigSourceStaticBrokerConfig {
		t.Fatalf("created max.message.bytes = %+v", c)
	}
	if c := r.Configs["retention.bytes"]; c.Value == nil || *c.Value != "-1" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("created retention.bytes = %+v", c)
	}
	if id := tb.B.Controller().Current().Topics["configured"].ID; kadm.TopicID(id) != r.ID {
		t.Fatalf("response id %v, metadata id %v", r.ID, id)
	}

	cfgs := adminTopicConfigs(t, adm, "configured")
	adminWantConfig(t, cfgs, "retention.ms", "3600000", kmsg.ConfigSourceDynamicTopicConfig)
	adminWantConfig(t, cfgs, "segment.bytes", "1048576", kmsg.ConfigSourceDynamicTopicConfig)
	adminWantConfig(t, cfgs, "max.message.bytes", "2000000", kmsg.ConfigSourceStaticBrokerConfig)
	adminWantConfig(t, cfgs, "retention.bytes", "-1", kmsg.ConfigSourceDefaultConfig)
	// Synonyms, in Kafka's order: the override, then the broker settings.
	syn := cfgs["retention.ms"].Synonyms
	if len(syn) < 2 || syn[0].Key != "retention.ms" || syn[0].Source != kmsg.ConfigSourceDynamicTopicConfig ||
		!strings.HasPrefix(syn[1].Key, "log.retention.") || syn[len(syn)-1].Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("retention.ms synonyms: %+v", syn)
	}
	syn = cfgs["max.message.bytes"].Synonyms
	if len(syn) != 2 || syn[0].Key != "message.max.bytes" || syn[0].Source != kmsg.ConfigSourceStaticBrokerConfig ||
		syn[1].Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("max.message.bytes synonyms: %+v", syn)
	}

	// -1/-1: the broker's num.partitions and default.replication.factor.
	r, err := adm.CreateTopic(testCtx(t), -1, -1, nil, "defaults")
	if err != nil {
		t.Fatal(err)
	}
	if r.NumPartitions != 3 || r.ReplicationFactor != 1 {
		t.Fatalf("defaults: %d partitions, rf %d", r.NumPartitions, r.ReplicationFactor)
	}
	td, err := adm.ListTopics(testCtx(t), "defaults", "configured")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(td["defaults"].Partitions); n != 3 {
		t.Fatalf("defaults has %d partitions in metadata", n)
	}
	if n := len(td["configured"].Partitions); n != 2 {
		t.Fatalf("configured has %d partitions in metadata", n)
	}
	// The partitions are open at once: produce works without waiting.
	adminProduce(t, adminProducer(tb), "configured", 1, 3, 10)
	if _, err := os.Stat(filepath.Join(tb.DataDir, "configured-1")); err != nil {
		t.Fatal(err)
	}
}

func TestAdminCreateTopicsErrors(t *testing.T) {
	tb := startBroker(t)
	adm := tb.Admin()
	adminCreateTopic(t, adm, "exists", 1, nil)

	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10000
	add := func(name string, partitions int32, rf int16, configs map[string]*string, assignment ...[]int32) {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, rf
		for k, v := range configs {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name, c.Value = k, v
			rt.Configs = append(rt.Configs, c)
		}
		for i, replicas := range assignment {
			a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			a.Partition, a.Replicas = int32(i), replicas
			rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
		}
		req.Topics = append(req.Topics, rt)
	}
	add("dup", 1, 1, nil)
	add("dup", 1, 1, nil)
	add("bad name!", 1, 1, nil)
	add("__consumer_offsets", 1, 1, nil)
	add("__transaction_state", 1, 1, nil)
	add("exists", 1, 1, nil)
	add("zero-partitions", 0, 1, nil)
	add("negative-partitions", -5, 1, nil)
	add("zero-rf", 1, 0, nil)
	add("rf-too-large", 1, 3, nil)
	add("assigned-with-rf", -1, 1, nil, []int32{1})
	add("assigned-with-count", 1, -1, nil, []int32{1})
	add("assigned-dead-broker", -1, -1, nil, []int32{7})
	add("assigned-twice", -1, -1, nil, []int32{1, 1})
	add("bad-value", 1, 1, map[string]*string{"retention.ms": kadm.StringPtr("soon")})
	add("unknown-config", 1, 1, map[string]*string{"retention.msec": kadm.StringPtr("1")})
	add("compact", 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")})
	add("null-config", 1, 1, map[string]*string{"retention.ms": nil})
	add("good", 2, 1, map[string]*string{"retention.ms": kadm.StringPtr("1000")})
	add("good-assigned", -1, -1, nil, []int32{1}, []int32{1})
	// A gap in the partition indexes.
	gap := kmsg.NewCreateTopicsRequestTopic()
	gap.Topic, gap.NumPartitions, gap.ReplicationFactor = "assigned-gap", -1, -1
	for _, p := range []int32{0, 2} {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = p, []int32{1}
		gap.ReplicaAssignment = append(gap.ReplicaAssignment, a)
	}
	req.Topics = append(req.Topics, gap)

	resp := adminRequest[*kmsg.CreateTopicsResponse](t, tb.Client(), req, -1)
	if len(resp.Topics) != len(req.Topics) {
		t.Fatalf("%d answers for %d topics", len(resp.Topics), len(req.Topics))
	}
	want := []struct {
		code *kerr.Error
		msg  string
	}{
		{kerr.InvalidRequest, "Duplicate topic name."},
		{kerr.InvalidRequest, "Duplicate topic name."},
		{kerr.InvalidTopicException, "contains"},
		{kerr.InvalidRequest, "internal topic __consumer_offsets"},
		{kerr.InvalidRequest, "internal topic __transaction_state"},
		{kerr.TopicAlreadyExists, "Topic 'exists' already exists."},
		{kerr.InvalidPartitions, "Number of partitions was set to an invalid non-positive value."},
		{kerr.InvalidPartitions, "non-positive"},
		{kerr.InvalidReplicationFactor, "Replication factor must be larger than 0"},
		{kerr.InvalidReplicationFactor, "larger than the 1 available brokers"},
		{kerr.InvalidRequest, "replication factor was not set to -1"},
		{kerr.InvalidRequest, "numPartitions was not set to -1"},
		{kerr.InvalidReplicaAssignment, "broker 7"},
		{kerr.InvalidReplicaAssignment, "twice"},
		{kerr.InvalidConfig, "retention.ms"},
		{kerr.InvalidConfig, "Unknown topic config name: retention.msec"},
		{kerr.InvalidConfig, "cleanup.policy"},
		{kerr.InvalidConfig, "Null value not supported for topic configs: retention.ms"},
		{nil, ""},
		{nil, ""},
		{kerr.InvalidReplicaAssignment, "consecutive 0-based"},
	}
	for i, w := range want {
		rt := resp.Topics[i]
		what := "CreateTopics " + rt.Topic
		if rt.Topic != req.Topics[i].Topic {
			t.Fatalf("answer %d is for %q, want %q", i, rt.Topic, req.Topics[i].Topic)
		}
		adminWantCode(t, what, rt.ErrorCode, w.code)
		if w.code != nil {
			adminWantMsg(t, what, rt.ErrorMessage, w.msg)
			if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 || len(rt.Configs) != 0 {
				t.Fatalf("%s: failed topic described: %+v", what, rt)
			}
		}
	}
	names := adminTopicNames(t, adm)
	slices.Sort(names)
	if !slices.Equal(names, []string{"exists", "good", "good-assigned"}) {
		t.Fatalf("topics after the request: %v", names)
	}
	if md := tb.B.Controller().Current(); len(md.Topics["good-assigned"].Partitions) != 2 {
		t.Fatalf("good-assigned has %d partitions", len(md.Topics["good-assigned"].Partitions))
	}
}

func TestAdminCreateTopicsValidateOnly(t *testing.T) {
	tb := startBroker(t)
	adm := tb.Admin()
	before := tb.B.Controller().Current().Version
	r, err := adm.ValidateCreateTopics(testCtx(t), 4, 1, map[string]*string{"retention.ms": kadm.StringPtr("60000")}, "dry")
	if err != nil {
		t.Fatal(err)
	}
	dry := r["dry"]
	if dry.Err != nil || dry.NumPartitions != 4 || dry.ReplicationFactor != 1 {
		t.Fatalf("validate-only answer: %+v", dry)
	}
	if c := dry.Configs["retention.ms"]; c.Value == nil || *c.Value != "60000" {
		t.Fatalf("validate-only configs: %+v", c)
	}
	r, err = adm.ValidateCreateTopics(testCtx(t), 1, 1, map[string]*string{"segment.bytes": kadm.StringPtr("1")}, "dry-bad")
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(r["dry-bad"].Err, kerr.InvalidConfig) || !strings.Contains(r["dry-bad"].ErrMessage, "segment.bytes") {
		t.Fatalf("validate-only bad config: %v %q", r["dry-bad"].Err, r["dry-bad"].ErrMessage)
	}
	if after := tb.B.Controller().Current().Version; after != before {
		t.Fatalf("validate-only wrote the metadata: version %d -> %d", before, after)
	}
	if names := adminTopicNames(t, adm); len(names) != 0 {
		t.Fatalf("validate-only created %v", names)
	}
	if _, err := os.Stat(filepath.Join(tb.DataDir, "dry-0")); !os.IsNotExist(err) {
		t.Fatalf("validate-only created a partition directory: %v", err)
	}
}

// TimeoutMillis bounds the metadata write: a slow object store answers
// REQUEST_TIMED_OUT and creates nothing; zero means "do not wait for
// propagation", which for a synchronous creation is plain success.
func TestAdminCreateTopicsTimeout(t *testing.T) {
	fs, err := objstore.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	slow := objstore.NewFault(fs, objstore.FaultConfig{})
	tb := startBroker(t, withStore(slow))
	cl := tb.Client()

	create := func(name string, timeoutMillis int32) kmsg.CreateTopicsResponseTopic {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = timeoutMillis
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
		req.Topics = append(req.Topics, rt)
		return adminRequest[*kmsg.CreateTopicsResponse](t, cl, req, -1).Topics[0]
	}
	slow.SetLatency(2*time.Second, 0)
	r := create("slow", 100)
	adminWantCode(t, "slow store", r.ErrorCode, kerr.RequestTimedOut)
	slow.SetLatency(0, 0)
	if _, ok := tb.B.Controller().Current().Topics["slow"]; ok {
		t.Fatal("a timed-out creation created the topic")
	}
	r = create("no-wait", 0)
	adminWantCode(t, "timeout 0", r.ErrorCode, nil)
	if _, ok := tb.B.Controller().Current().Topics["no-wait"]; !ok {
		t.Fatal("no-wait was not created")
	}
}

// --- DeleteTopics ------------------------------------------------------------

func TestAdminDeleteTopicsAndRecreate(t *testing.T) {
	tb := startBroker(t)
	adm := tb.Admin()
	adminCreateTopic(t, adm, "doomed", 2, map[string]*string{"retention.ms": kadm.StringPtr("123456")})
	prod := adminProducer(tb)
	adminProduce(t, prod, "doomed", 0, 20, 100)

	rs, err := adm.DeleteTopics(testCtx(t), "doomed", "never-was")
	if err != nil {
		t.Fatal(err)
	}
	if rs["doomed"].Err != nil {
		t.Fatalf("delete: %v %s", rs["doomed"].Err, rs["doomed"].ErrMessage)
	}
	if !errors.Is(rs["never-was"].Err, kerr.UnknownTopicOrPartition) || !strings.Contains(rs["never-was"].ErrMessage, "never-was") {
		t.Fatalf("delete unknown: %v %q", rs["never-was"].Err, rs["never-was"].ErrMessage)
	}
	for _, p := range []string{"doomed-0", "doomed-1"} {
		if _, err := os.Stat(filepath.Join(tb.DataDir, p)); !os.IsNotExist(err) {
			t.Fatalf("%s still on disk after delete: %v", p, err)
		}
	}
	if names := adminTopicNames(t, adm); len(names) != 0 {
		t.Fatalf("topics after delete: %v", names)
	}
	rcs, err := adm.DescribeTopicConfigs(testCtx(t), "doomed")
	if err != nil {
		t.Fatal(err)
	}
	if rc, _ := rcs.On("doomed", nil); !errors.Is(rc.Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("describe deleted topic: %v", rc.Err)
	}

	// Recreated under the same name: empty, with default configs.
	adminCreateTopic(t, adm, "doomed", 1, nil)
	if s, e := adminStartOffset(t, adm, "doomed", 0), adminEndOffset(t, adm, "doomed", 0); s != 0 || e != 0 {
		t.Fatalf("recreated topic has offsets [%d, %d)", s, e)
	}
	adminWantConfig(t, adminTopicConfigs(t, adm, "doomed"), "retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig)
	// A new client: kgo, by design, fails a recreated topic for clients
	// that knew the old one (UNKNOWN_TOPIC_ID) until it is purged.
	offs := adminProduce(t, adminProducer(tb), "doomed", 0, 1, 10)
	if offs[0] != 0 {
		t.Fatalf("first record of the recreated topic at offset %d", offs[0])
	}
	recs, err := adminConsume(t, tb, "doomed", 0, 0, 1)
	if err != nil || len(recs) != 1 || len(recs[0].Value) != 10 {
		t.Fatalf("consume recreated topic: %v, %d records", err, len(recs))
	}
}

func TestAdminDeleteTopicsDisabled(t *testing.T) {
	tb := startBroker(t, withSetting("delete.topic.enable", "false"))
	adm := tb.Admin()
	adminCreateTopic(t, adm, "kept", 1, nil)
	rs, err := adm.DeleteTopics(testCtx(t), "kept", "unknown")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"kept", "unknown"} {
		if !errors.Is(rs[name].Err, kerr.TopicDeletionDisabled) {
			t.Fatalf("delete %s with deletion disabled: %v", name, rs[name].Err)
		}
	}
	// Before v3 the code did not exist: INVALID_REQUEST.
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TopicNames = []string{"kept"}
	req.TimeoutMillis = 5000
	resp := adminRequest[*kmsg.DeleteTopicsResponse](t, tb.adminVersionClient(kmsg.DeleteTopics, 2), req, 2)
	adminWantCode(t, "DeleteTopics v2", resp.Topics[0].ErrorCode, kerr.InvalidRequest)
	if names := adminTopicNames(t, adm); !slices.Equal(names, []string{"kept"}) {
		t.Fatalf("topics: %v", names)
	}
}

// createInternalTopic creates a topic as the group coordinator will: through
// the controller, marked internal.
func adminCreateInternalTopic(t *testing.T, tb *testBroker, name string) {
	t.Helper()
	rs, err := tb.B.Controller().CreateTopics(testCtx(t), []controller.TopicSpec{{Name: name, NumPartitions: 1, ReplicationFactor: 1, Internal: true}}, false)
	if err != nil || rs[0].Err != nil {
		t.Fatalf("create internal topic: %v %v", err, rs[0].Err)
	}
}

func TestAdminInternalTopicsAreProtected(t *testing.T) {
	tb := startBroker(t)
	adm := tb.Admin()
	adminCreateInternalTopic(t, tb, "__consumer_offsets")

	rs, err := adm.DeleteTopics(testCtx(t), "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	if r := rs["__consumer_offsets"]; !errors.Is(r.Err, kerr.InvalidRequest) || !strings.Contains(r.ErrMessage, "internal topic") {
		t.Fatalf("delete internal topic: %v %q", r.Err, r.ErrMessage)
	}
	cp, err := adm.UpdatePartitions(testCtx(t), 5, "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	if r := cp["__consumer_offsets"]; !errors.Is(r.Err, kerr.InvalidRequest) || !strings.Contains(r.ErrMessage, "internal topic") {
		t.Fatalf("grow internal topic: %v %q", r.Err, r.ErrMessage)
	}
	var offs kadm.Offsets
	offs.AddOffset("__consumer_offsets", 0, 0, -1)
	dr, err := adm.DeleteRecords(testCtx(t), offs)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := dr.On("__consumer_offsets", 0, nil); !errors.Is(r.Err, kerr.InvalidTopicException) {
		t.Fatalf("delete records of internal topic: %v", r.Err)
	}
	if md := tb.B.Controller().Current(); len(md.Topics["__consumer_offsets"].Partitions) != 1 {
		t.Fatal("internal topic changed")
	}
}

// --- CreatePartitions --------------------------------------------------------

func TestAdminCreatePartitions(t *testing.T) {
	tb := startBroker(t)
	adm := tb.Admin()
	adminCreateTopic(t, adm, "grow", 1, nil)

	rs, err := adm.UpdatePartitions(testCtx(t), 3, "grow")
	if err != nil || rs.Error() != nil {
		t.Fatalf("grow to 3: %v %v", err, rs.Error())
	}
	// The new partition takes records at once.
	prod := adminProducer(tb)
	offs := adminProduce(t, prod, "grow", 2, 5, 20)
	if offs[0] != 0 || offs[4] != 4 {
		t.Fatalf("offsets in the new partition: %v", offs)
	}
	recs, err := adminConsume(t, tb, "grow", 2, 0, 5)
	if err != nil || len(recs) != 5 {
		t.Fatalf("consume new partition: %v, %d records", err, len(recs))
	}

	check := func(what string, rs kadm.CreatePartitionsResponses, err error, topic string, code *kerr.Error, msg string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		r := rs[topic]
		if !errors.Is(r.Err, code) || !strings.Contains(r.ErrMessage, msg) {
			t.Fatalf("%s: %v %q, want %v with %q", what, r.Err, r.ErrMessage, code, msg)
		}
	}
	rs, err = adm.UpdatePartitions(testCtx(t), 3, "grow")
	check("same count", rs, err, "grow", kerr.InvalidPartitions, "Topic already has 3 partition(s).")
	rs, err = adm.UpdatePartitions(testCtx(t), 2, "grow")
	check("fewer", rs, err, "grow", kerr.InvalidPartitions, "currently has 3 partition(s); 2 would not be an increase")
	rs, err = adm.UpdatePartitions(testCtx(t), 4, "nope")
	check("unknown topic", rs, err, "nope", kerr.UnknownTopicOrPartition, "does not exist")

	// Validate-only checks and writes nothing.
	before := tb.B.Controller().Current().Version
	rs, err = adm.ValidateUpdatePartitions(testCtx(t), 10, "grow")
	if err != nil || rs.Error() != nil {
		t.Fatalf("validate grow: %v %v", err, rs.Error())
	}
	if tb.B.Controller().Current().Version != before || len(tb.B.Controller().Current().Topics["grow"].Partitions) != 3 {
		t.Fatal("validate-only CreatePartitions changed the topic")
	}

	// Manual assignments, through the raw request.
	raw := func(count int32, validate bool, assignment ...[]int32) *kmsg.CreatePartitionsResponseTopic {
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.TimeoutMillis, req.ValidateOnly = 5000, validate
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = "grow", count
		for _, r := range assignment {
			a := kmsg.NewCreatePartitionsRequestTopicAssignment()
			a.Replicas = r
			rt.Assignment = append(rt.Assignment, a)
		}
		req.Topics = append(req.Topics, rt)
		// A topic named twice is refused for each entry.
		resp := adminRequest[*kmsg.CreatePartitionsResponse](t, tb.Client(), req, -1)
		return &resp.Topics[0]
	}
	r := raw(5, false, []int32{1})
	adminWantCode(t, "assignment too short", r.ErrorCode, kerr.InvalidReplicaAssignment)
	adminWantMsg(t, "assignment too short", r.ErrorMessage, "Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified.")
	r = raw(4, false, []int32{9})
	adminWantCode(t, "dead broker", r.ErrorCode, kerr.InvalidReplicaAssignment)
	r = raw(4, false, []int32{1, 1})
	adminWantCode(t, "replication factor differs", r.ErrorCode, kerr.InvalidReplicaAssignment)
	adminWantMsg(t, "replication factor differs", r.ErrorMessage, "not consistent with previous partitions")
	r = raw(5, false, []int32{1}, []int32{1})
	adminWantCode(t, "assigned", r.ErrorCode, nil)
	if n := len(tb.B.Controller().Current().Topics["grow"].Partitions); n != 5 {
		t.Fatalf("after manual assignment: %d partitions", n)
	}
	adminProduce(t, adminProducer(tb), "grow", 4, 1, 10) // a client that learns the new count

	req := kmsg.NewPtrCreatePartitionsRequest()
	req.TimeoutMillis = 5000
	for range 2 {
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = "grow", 9
		req.Topics = append(req.Topics, rt)
	}
	resp := adminRequest[*kmsg.CreatePartitionsResponse](t, tb.Client(), req, -1)
	for _, rt := range resp.Topics {
		adminWantCode(t, "duplicate topic", rt.ErrorCode, kerr.InvalidRequest)
		adminWantMsg(t, "duplicate topic", rt.ErrorMessage, "Duplicate topic name.")
	}
}

// --- DescribeConfigs ---------------------------------------------------------

func TestAdminDescribeConfigs(t *testing.T) {
	tb := startBroker(t, withSetting("num.partitions", "4"))
	adm := tb.Admin()
	adminCreateTopic(t, adm, "described", 1, map[string]*string{"max.message.bytes": kadm.StringPtr("5000")})
	cl := tb.Client()

	resource := func(typ kmsg.ConfigResourceType, name string, names ...string) kmsg.DescribeConfigsRequestResource {
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType, r.ResourceName, r.ConfigNames = typ, name, names
		return r
	}
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.IncludeSynonyms, req.IncludeDocumentation = true, true
	req.Resources = []kmsg.DescribeConfigsRequestResource{
		resource(kmsg.ConfigResourceTypeTopic, "described"),
		resource(kmsg.ConfigResourceTypeTopic, "described", "max.message.bytes", "retention.ms", "no.such.config"),
		resource(kmsg.ConfigResourceTypeTopic, "missing"),
		resource(kmsg.ConfigResourceTypeTopic, "bad/name"),
		resource(kmsg.ConfigResourceTypeBroker, "1"),
		resource(kmsg.ConfigResourceTypeBroker, "1", "num.partitions"),
		resource(kmsg.ConfigResourceTypeBroker, ""),
		resource(kmsg.ConfigResourceTypeBroker, "2"),
		resource(kmsg.ConfigResourceTypeBroker, "one"),
		resource(kmsg.ConfigResourceTypeBrokerLogger, "1"),
		resource(kmsg.ConfigResourceType(99), "x"),
	}
	resp := adminRequest[*kmsg.DescribeConfigsResponse](t, cl, req, describeConfigsMaxVersion)
	if len(resp.Resources) != len(req.Resources) {
		t.Fatalf("%d answers for %d resources", len(resp.Resources), len(req.Resources))
	}
	rs := resp.Resources

	// All topic configs, with documentation and types (v3+).
	all := rs[0]
	adminWantCode(t, "topic", all.ErrorCode, nil)
	if len(all.Configs) < 20 {
		t.Fatalf("topic described with %d configs", len(all.Configs))
	}
	for _, c := range all.Configs {
		if c.Documentation == nil || *c.Documentation == "" || c.ConfigType == 0 || c.ReadOnly {
			t.Fatalf("topic config %s: doc %v, type %v, read-only %v", c.Name, c.Documentation, c.ConfigType, c.ReadOnly)
		}
		if c.Name == "max.message.bytes" && (c.Value == nil || *c.Value != "5000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig || c.IsDefault) {
			t.Fatalf("max.message.bytes: %+v", c)
		}
	}
	// The ConfigNames filter.
	var got []string
	for _, c := range rs[1].Configs {
		got = append(got, c.Name)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"max.message.bytes", "retention.ms"}) {
		t.Fatalf("filtered configs: %v", got)
	}
	adminWantCode(t, "unknown topic", rs[2].ErrorCode, kerr.UnknownTopicOrPartition)
	adminWantMsg(t, "unknown topic", rs[2].ErrorMessage, "The topic 'missing' does not exist.")
	adminWantCode(t, "bad topic name", rs[3].ErrorCode, kerr.InvalidTopicException)

	// This broker: every setting, read-only; num.partitions was configured.
	adminWantCode(t, "broker", rs[4].ErrorCode, nil)
	if len(rs[4].Configs) < 20 {
		t.Fatalf("broker described with %d settings", len(rs[4].Configs))
	}
	for _, c := range rs[4].Configs {
		if !c.ReadOnly {
			t.Fatalf("broker setting %s is not read-only", c.Name)
		}
	}
	if len(rs[5].Configs) != 1 {
		t.Fatalf("filtered broker settings: %+v", rs[5].Configs)
	}
	np := rs[5].Configs[0]
	if np.Name != "num.partitions" || np.Value == nil || *np.Value != "4" || np.Source != kmsg.ConfigSourceStaticBrokerConfig ||
		len(np.ConfigSynonyms) != 2 || np.ConfigSynonyms[1].Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("num.partitions: %+v", np)
	}
	// The empty name is the cluster-wide dynamic defaults: none.
	adminWantCode(t, "broker defaults", rs[6].ErrorCode, nil)
	if len(rs[6].Configs) != 0 {
		t.Fatalf("dynamic broker defaults: %d", len(rs[6].Configs))
	}
	adminWantCode(t, "other broker", rs[7].ErrorCode, kerr.InvalidRequest)
	adminWantMsg(t, "other broker", rs[7].ErrorMessage, "Unexpected broker id, expected 1 or empty string, but received 2")
	adminWantCode(t, "broker name", rs[8].ErrorCode, kerr.InvalidRequest)
	adminWantMsg(t, "broker name", rs[8].ErrorMessage, "Broker id must be an integer, but it is: one")
	adminWantCode(t, "broker logger", rs[9].ErrorCode, kerr.InvalidRequest)
	adminWantCode(t, "unknown type", rs[10].ErrorCode, kerr.InvalidRequest)
	for i := range rs {
		if rs[i].ResourceType != req.Resources[i].ResourceType || rs[i].ResourceName != req.Resources[i].ResourceName {
			t.Fatalf("answer %d is for %v %q", i, rs[i].ResourceType, rs[i].ResourceName)
		}
	}

	// Without IncludeSynonyms/IncludeDocumentation, neither comes back.
	req.IncludeSynonyms, req.IncludeDocumentation = false, false
	req.Resources = req.Resources[:1]
	resp = adminRequest[*kmsg.DescribeConfigsResponse](t, cl, req, describeConfigsMaxVersion)
	for _, c := range resp.Resources[0].Configs {
		if len(c.ConfigSynonyms) != 0 || c.Documentation != nil {
			t.Fatalf("%s: synonyms or documentation not asked for: %+v", c.Name, c)
		}
	}
}

// --- IncrementalAlterConfigs and AlterConfigs ----------------------------------

func TestAdminIncrementalAlterConfigs(t *testing.T) {
	tb := startBroker(t)
	adm := tb.Admin()
	adminCreateTopic(t, adm, "alter", 1, map[string]*string{"retention.ms": kadm.StringPtr("100000")})

	alter := func(ops ...kadm.AlterConfig) kadm.AlterConfigsResponse {
		t.Helper()
		rs, err := adm.AlterTopicConfigs(testCtx(t), ops, "alter")
		if err != nil {
			t.Fatal(err)
		}
		r, err := rs.On("alter", nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	set := func(name, value string) kadm.AlterConfig {
		return kadm.AlterConfig{Op: kadm.SetConfig, Name: name, Value: kadm.StringPtr(value)}
	}

	if r := alter(set("retention.bytes", "1000000"), set("segment.ms", "60000")); r.Err != nil {
		t.Fatalf("SET: %v %s", r.Err, r.ErrMessage)
	}
	cfgs := adminTopicConfigs(t, adm, "alter")
	adminWantConfig(t, cfgs, "retention.bytes", "1000000", kmsg.ConfigSourceDynamicTopicConfig)
	adminWantConfig(t, cfgs, "segment.ms", "60000", kmsg.ConfigSourceDynamicTopicConfig)
	adminWantConfig(t, cfgs, "retention.ms", "100000", kmsg.ConfigSourceDynamicTopicConfig) // untouched

	if r := alter(kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "retention.ms"}); r.Err != nil {
		t.Fatalf("DELETE: %v %s", r.Err, r.ErrMessage)
	}
	adminWantConfig(t, adminTopicConfigs(t, adm, "alter"), "retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig)

	// APPEND and SUBTRACT on a list config.
	app := func(v string) kadm.AlterConfig {
		return kadm.AlterConfig{Op: kadm.AppendConfig, Name: "follower.replication.throttled.replicas", Value: kadm.StringPtr(v)}
	}
	if r := alter(app("0:1")); r.Err != nil {
		t.Fatalf("APPEND: %v %s", r.Err, r.ErrMessage)
	}
	if r := alter(app("1:1")); r.Err != nil {
		t.Fatalf("APPEND: %v %s", r.Err, r.ErrMessage)
	}
	adminWantConfig(t, adminTopicConfigs(t, adm, "alter"), "follower.replication.throttled.replicas", "0:1,1:1", kmsg.ConfigSourceDynamicTopicConfig)
	if r := alter(kadm.AlterConfig{Op: kadm.SubtractConfig, Name: "follower.replication.throttled.replicas", Value: kadm.StringPtr("0:1")}); r.Err != nil {
		t.Fatalf("SUBTRACT: %v %s", r.Err, r.ErrMessage)
	}
	adminWantConfig(t, adminTopicConfigs(t, adm, "alter"), "follower.replication.throttled.replicas", "1:1", kmsg.ConfigSourceDynamicTopicConfig)

	// Errors; none of them changes anything.
	before := tb.B.Controller().Current().Topics["alter"].Configs
	for _, c := range []struct {
		what string
		ops  []kadm.AlterConfig
		code *kerr.Error
		msg  string
	}{
		{"unknown name", []kadm.AlterConfig{set("retention.msec", "1")}, kerr.InvalidConfig, "Unknown topic config name: retention.msec"},
		{"bad value", []kadm.AlterConfig{set("retention.bytes", "lots")}, kerr.InvalidConfig, "retention.bytes"},
		{"compact", []kadm.AlterConfig{set("cleanup.policy", "compact")}, kerr.InvalidConfig, "cleanup.policy"},
		{"append to a non-list", []kadm.AlterConfig{{Op: kadm.AppendConfig, Name: "retention.ms", Value: kadm.StringPtr("1")}}, kerr.InvalidConfig, "because its type is not LIST"},
		{"duplicate key", []kadm.AlterConfig{set("retention.ms", "1"), set("retention.ms", "2")}, kerr.InvalidRequest, "Error due to duplicate config keys"},
		{"null value", []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms"}}, kerr.InvalidRequest, "Null value not supported for : retention.ms"},
		{"one good, one bad", []kadm.AlterConfig{set("retention.ms", "5"), set("segment.bytes", "1")}, kerr.InvalidConfig, "segment.bytes"},
	} {
		r := alter(c.ops...)
		if !errors.Is(r.Err, c.code) || !strings.Contains(r.ErrMessage, c.msg) {
			t.Fatalf("%s: %v %q, want %v with %q", c.what, r.Err, r.ErrMessage, c.code, c.msg)
		}
	}
	if after := tb.B.Controller().Current().Topics["alter"].Configs; !maps.Equal(before, after) {
		t.Fatalf("failed alterations changed configs: %v -> %v", before, after)
	}

	// Validate-only.
	version := tb.B.Controller().Current().Version
	rs, err := adm.ValidateAlterTopicConfigs(testCtx(t), []kadm.AlterConfig{set("retention.ms", "42")}, "alter")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("validate-only: %v %v", err, rs[0].Err)
	}
	if tb.B.Controller().Current().Version != version {
		t.Fatal("validate-only IncrementalAlterConfigs wrote the metadata")
	}
	adminWantConfig(t, adminTopicConfigs(t, adm, "alter"), "retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig)

	// Raw: unknown topic, an unknown operation, a resource twice, a broker.
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := func(typ kmsg.ConfigResourceType, name string, op kmsg.IncrementalAlterConfigOp, cfg, value string) {
		r := kmsg.NewIncrementalAlterConfigsRequestResource()
		r.ResourceType, r.ResourceName = typ, name
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op, c.Value = cfg, op, kmsg.StringPtr(value)
		r.Configs = append(r.Configs, c)
		req.Resources = append(req.Resources, r)
	}
	res(kmsg.ConfigResourceTypeTopic, "missing", kmsg.IncrementalAlterConfigOpSet, "retention.ms", "1")
	res(kmsg.ConfigResourceTypeTopic, "alter", kmsg.IncrementalAlterConfigOp(9), "retention.ms", "1")
	res(kmsg.ConfigResourceTypeTopic, "twice", kmsg.IncrementalAlterConfigOpSet, "retention.ms", "1")
	res(kmsg.ConfigResourceTypeTopic, "twice", kmsg.IncrementalAlterConfigOpSet, "retention.ms", "1")
	res(kmsg.ConfigResourceTypeBroker, "1", kmsg.IncrementalAlterConfigOpSet, "num.partitions", "7")
	res(kmsg.ConfigResourceTypeBroker, "5", kmsg.IncrementalAlterConfigOpSet, "num.partitions", "7")
	res(kmsg.ConfigResourceTypeBrokerLogger, "1", kmsg.IncrementalAlterConfigOpSet, "root", "DEBUG")
	resp := adminRequest[*kmsg.IncrementalAlterConfigsResponse](t, tb.Client(), req, -1)
	want := []struct {
		code *kerr.Error
		msg  string
	}{
		{kerr.UnknownTopicOrPartition, "The topic 'missing' does not exist."},
		{kerr.InvalidRequest, "Unknown alter configs op type 9"},
		{kerr.InvalidRequest, "Each resource must appear at most once."},
		{kerr.InvalidRequest, "Each resource must appear at most once."},
		{kerr.InvalidRequest, "Cannot update these configs dynamically: [num.partitions]"},
		{kerr.InvalidRequest, "Unexpected broker id"},
		{kerr.InvalidRequest, "BROKER_LOGGER"},
	}
	for i, w := range want {
		adminWantCode(t, "raw "+resp.Resources[i].ResourceName, resp.Resources[i].ErrorCode, w.code)
		adminWantMsg(t, "raw "+resp.Resources[i].ResourceName, resp.Resources[i].ErrorMessage, w.msg)
	}

	// kadm's broker path says the same.
	brs, err := adm.AlterBrokerConfigs(testCtx(t), []kadm.AlterConfig{set("log.retention.ms", "1")}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(brs[0].Err, kerr.InvalidRequest) {
		t.Fatalf("alter broker config: %v", brs[0].Err)
	}
}

func TestAdminAlterConfigsReplacesAll(t *testing.T) {
	tb := startBroker(t)
	adm := tb.Admin()
	adminCreateTopic(t, adm, "legacy", 1, map[string]*string{"retention.ms": kadm.StringPtr("100000"), "segment.bytes": kadm.StringPtr("100000")})

	rs, err := adm.AlterTopicConfigsState(testCtx(t), []kadm.AlterConfig{{Name: "max.message.bytes", Value: kadm.StringPtr("4096")}}, "legacy")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("legacy alter: %v %v", err, rs[0].Err)
	}
	cfgs := adminTopicConfigs(t, adm, "legacy")
	adminWantConfig(t, cfgs, "max.message.bytes", "4096", kmsg.ConfigSourceDynamicTopicConfig)
	adminWantConfig(t, cfgs, "retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig)
	adminWantConfig(t, cfgs, "segment.bytes", "1073741824", kmsg.ConfigSourceDefaultConfig)
	if got := tb.B.Controller().Current().Topics["legacy"].Configs; !maps.Equal(got, map[string]string{"max.message.bytes": "4096"}) {
		t.Fatalf("stored overrides: %v", got)
	}

	// Validate-only writes nothing; a bad value writes nothing either.
	version := tb.B.Controller().Current().Version
	rs, err = adm.ValidateAlterTopicConfigsState(testCtx(t), []kadm.AlterConfig{{Name: "retention.ms", Value: kadm.StringPtr("1")}}, "legacy")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("validate-only legacy alter: %v %v", err, rs[0].Err)
	}
	rs, err = adm.AlterTopicConfigsState(testCtx(t), []kadm.AlterConfig{{Name: "retention.ms", Value: kadm.StringPtr("-7")}}, "legacy")
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(rs[0].Err, kerr.InvalidConfig) || !strings.Contains(rs[0].ErrMessage, "retention.ms") {
		t.Fatalf("bad legacy alter: %v %q", rs[0].Err, rs[0].ErrMessage)
	}
	if tb.B.Controller().Current().Version != version {
		t.Fatal("validate-only or failed AlterConfigs wrote the metadata")
	}

	// Raw: null value, duplicate key, unknown topic, broker, empty broker list.
	req := kmsg.NewPtrAlterConfigsRequest()
	res := func(typ kmsg.ConfigResourceType, name string, kv ...*string) {
		r := kmsg.NewAlterConfigsRequestResource()
		r.ResourceType, r.ResourceName = typ, name
		for i := 0; i+1 < len(kv); i += 2 {
			c := kmsg.NewAlterConfigsRequestResourceConfig()
			c.Name, c.Value = *kv[i], kv[i+1]
			r.Configs = append(r.Configs, c)
		}
		req.Resources = append(req.Resources, r)
	}
	s := kmsg.StringPtr
	res(kmsg.ConfigResourceTypeTopic, "legacy", s("retention.ms"), nil)
	res(kmsg.ConfigResourceTypeTopic, "legacy", s("retention.ms"), s("1"), s("retention.ms"), s("2"))
	res(kmsg.ConfigResourceTypeTopic, "missing", s("retention.ms"), s("1"))
	res(kmsg.ConfigResourceTypeBroker, "1", s("num.partitions"), s("9"))
	res(kmsg.ConfigResourceTypeBroker, "")
	resp := adminRequest[*kmsg.AlterConfigsResponse](t, tb.Client(), req, -1)
	want := []struct {
		code *kerr.Error
		msg  string
	}{
		{kerr.InvalidRequest, "Each resource must appear at most once."},
		{kerr.InvalidRequest, "Each resource must appear at most once."},
		{kerr.UnknownTopicOrPartition, "does not exist"},
		{kerr.InvalidRequest, "Cannot update these configs dynamically"},
		{nil, ""},
	}
	for i, w := range want {
		adminWantCode(t, "raw legacy "+resp.Resources[i].ResourceName, resp.Resources[i].ErrorCode, w.code)
		if w.code != nil {
			adminWantMsg(t, "raw legacy", resp.Resources[i].ErrorMessage, w.msg)
		}
	}
	req.Resources = req.Resources[:1]
	resp = adminRequest[*kmsg.AlterConfigsResponse](t, tb.Client(), req, -1)
	adminWantCode(t, "null value", resp.Resources[0].ErrorCode, kerr.InvalidRequest)
	adminWantMsg(t, "null value", resp.Resources[0].ErrorMessage, "Null value not supported for : retention.ms")
	req.Resources = nil
	res(kmsg.ConfigResourceTypeTopic, "legacy", s("retention.ms"), s("1"), s("retention.ms"), s("2"))
	resp = adminRequest[*kmsg.AlterConfigsResponse](t, tb.Client(), req, -1)
	adminWantCode(t, "duplicate key", resp.Resources[0].ErrorCode, kerr.InvalidRequest)
	adminWantMsg(t, "duplicate key", resp.Resources[0].ErrorMessage, "duplicate config keys")
}

// Changed configs apply to the running partitions at once.
func TestAdminAlterConfigsTakeEffect(t *testing.T) {
	// The topic is tiered (the default): local segments go only once
	// offloaded, so offload runs often too.
	tb := startBroker(t, withSetting("log.retention.check.interval.ms", "100"),
		withSetting("remote.log.manager.task.interval.ms", "100"))
	adm := tb.Admin()
	adminCreateTopic(t, adm, "live", 1, map[string]*string{"segment.bytes": kadm.StringPtr("1024")})
	prod := adminProducer(tb)
	adminProduce(t, prod, "live", 0, 30, 300) // ~one segment per batch

	// max.message.bytes: the next produce is checked against the new limit.
	rs, err := adm.AlterTopicConfigs(testCtx(t), []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "max.message.bytes", Value: kadm.StringPtr("200")}}, "live")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("set max.message.bytes: %v %v", err, rs[0].Err)
	}
	err = prod.ProduceSync(testCtx(t), &kgo.Record{Topic: "live", Partition: 0, Value: bytes.Repeat([]byte("x"), 300)}).FirstErr()
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("produce over the new max.message.bytes: %v", err)
	}

	// retention.bytes: the next retention check deletes old segments.
	if s := adminStartOffset(t, adm, "live", 0); s != 0 {
		t.Fatalf("start offset %d before retention", s)
	}
	rs, err = adm.AlterTopicConfigs(testCtx(t), []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.bytes", Value: kadm.StringPtr("2000")}}, "live")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("set retention.bytes: %v %v", err, rs[0].Err)
	}
	// The start offset moves with the first deleted segment; a check may
	// still be deleting the next ones, so wait for the size as well.
	_, p := tb.B.lookup("live", 0)
	deadline := time.Now().Add(10 * time.Second)
	for adminStartOffset(t, adm, "live", 0) == 0 || p.log.Size() > 2000+1024 {
		if time.Now().After(deadline) {
			t.Fatalf("retention.bytes=2000: start offset %d, log %d bytes after 10 s",
				adminStartOffset(t, adm, "live", 0), p.log.Size())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAdminConfigsSurviveRestart(t *testing.T) {
	tb := startBroker(t)
	adm := tb.Admin()
	adminCreateTopic(t, adm, "durable", 2, map[string]*string{"retention.ms": kadm.StringPtr("777000")})
	rs, err := adm.AlterTopicConfigs(testCtx(t), []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "max.message.bytes", Value: kadm.StringPtr("300")}}, "durable")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("alter: %v %v", err, rs[0].Err)
	}
	id := tb.B.Controller().Current().Topics["durable"].ID

	tb.Restart()
	adm = tb.Admin()
	cfgs := adminTopicConfigs(t, adm, "durable")
	adminWantConfig(t, cfgs, "retention.ms", "777000", kmsg.ConfigSourceDynamicTopicConfig)
	adminWantConfig(t, cfgs, "max.message.bytes", "300", kmsg.ConfigSourceDynamicTopicConfig)
	if got := tb.B.Controller().Current().Topics["durable"].ID; got != id {
		t.Fatalf("topic id changed across restart: %v -> %v", id, got)
	}
	// And in force.
	err = adminProducer(tb).ProduceSync(testCtx(t), &kgo.Record{Topic: "durable", Partition: 1, Value: bytes.Repeat([]byte("x"), 400)}).FirstErr()
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("produce over max.message.bytes after restart: %v", err)
	}
}

// --- DescribeCluster ---------------------------------------------------------

func TestAdminDescribeCluster(t *testing.T) {
	tb := startBroker(t)
	clusterID := tb.B.Controller().ClusterID()
	for _, v := range []int16{0, 1} {
		cl := tb.adminVersionClient(kmsg.DescribeCluster, v)
		req := kmsg.NewPtrDescribeClusterRequest()
		req.IncludeClusterAuthorizedOperations = true
		resp := adminRequest[*kmsg.DescribeClusterResponse](t, cl, req, v)
		adminWantCode(t, "DescribeCluster", resp.ErrorCode, nil)
		if resp.ClusterID != clusterID || resp.ControllerID != 1 || len(resp.Brokers) != 1 {
			t.Fatalf("v%d: cluster %q controller %d brokers %+v", v, resp.ClusterID, resp.ControllerID, resp.Brokers)
		}
		br := resp.Brokers[0]
		if br.NodeID != 1 || tb.Addr != br.Host+":"+strconv.Itoa(int(br.Port)) {
			t.Fatalf("v%d: broker %+v, want %s", v, br, tb.Addr)
		}
		// CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE.
		if resp.ClusterAuthorizedOperations != 0b1_1111_1010_0000 {
			t.Fatalf("v%d: authorized operations %b", v, resp.ClusterAuthorizedOperations)
		}
		req.IncludeClusterAuthorizedOperations = false
		resp = adminRequest[*kmsg.DescribeClusterResponse](t, cl, req, v)
		if resp.ClusterAuthorizedOperations != -2147483648 {
			t.Fatalf("v%d: authorized operations not asked for: %d", v, resp.ClusterAuthorizedOperations)
		}
	}

	cl := tb.adminVersionClient(kmsg.DescribeCluster, 1)
	for _, c := range []struct {
		typ  int8
		code *kerr.Error
		msg  string
	}{
		{2, kerr.MismatchedEndpointType, "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER"},
		{3, kerr.UnsupportedEndpointType, "Unsupported endpoint type 3"},
		{0, kerr.UnsupportedEndpointType, "Unsupported endpoint type 0"},
	} {
		req := kmsg.NewPtrDescribeClusterRequest()
		req.EndpointType = c.typ
		resp := adminRequest[*kmsg.DescribeClusterResponse](t, cl, req, 1)
		adminWantCode(t, "endpoint type", resp.ErrorCode, c.code)
		adminWantMsg(t, "endpoint type", resp.ErrorMessage, c.msg)
		if resp.ClusterID != "" || len(resp.Brokers) != 0 {
			t.Fatalf("refused DescribeCluster describes the cluster: %+v", resp)
		}
	}
}

// --- DeleteRecords -----------------------------------------------------------

func TestAdminDeleteRecords(t *testing.T) {
	tb := startBroker(t)
	adm := tb.Admin()
	adminCreateTopic(t, adm, "trim", 2, map[string]*string{"segment.bytes": kadm.StringPtr("2048")})
	adminProduce(t, adminProducer(tb), "trim", 0, 100, 100)

	deleteTo := func(topic string, partition int32, offset int64) kadm.DeleteRecordsResponse {
		t.Helper()
		var offs kadm.Offsets
		offs.AddOffset(topic, partition, offset, -1)
		rs, err := adm.DeleteRecords(testCtx(t), offs)
		if err != nil {
			t.Fatal(err)
		}
		r, err := rs.On(topic, partition, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	segmentsBefore := len(tb.B.current().topics["trim"].partitions[0].log.Segments())
	if r := deleteTo("trim", 0, 40); r.Err != nil || r.LowWatermark != 40 {
		t.Fatalf("delete to 40: %v, low watermark %d", r.Err, r.LowWatermark)
	}
	if s := adminStartOffset(t, adm, "trim", 0); s != 40 {
		t.Fatalf("ListOffsets earliest after DeleteRecords: %d", s)
	}
	if after := len(tb.B.current().topics["trim"].partitions[0].log.Segments()); after >= segmentsBefore {
		t.Fatalf("no segment deleted: %d -> %d", segmentsBefore, after)
	}

	// Below the start: OFFSET_OUT_OF_RANGE for a consumer that does not reset.
	if _, err := adminConsume(t, tb, "trim", 0, 10, 1); !errors.Is(err, kerr.OffsetOutOfRange) {
		t.Fatalf("consume below the log start: %v", err)
	}
	recs, err := adminConsume(t, tb, "trim", 0, 40, 60)
	if err != nil || len(recs) < 60 || recs[0].Offset != 40 || recs[59].Offset != 99 {
		t.Fatalf("consume from the log start: %v, %d records", err, len(recs))
	}

	// An offset below the current start is a no-op.
	if r := deleteTo("trim", 0, 20); r.Err != nil || r.LowWatermark != 40 {
		t.Fatalf("delete to 20: %v, low watermark %d", r.Err, r.LowWatermark)
	}
	// Past the high watermark, or negative: OFFSET_OUT_OF_RANGE.
	if r := deleteTo("trim", 0, 101); !errors.Is(r.Err, kerr.OffsetOutOfRange) {
		t.Fatalf("delete past the high watermark: %v", r.Err)
	}
	if r := deleteTo("trim", 0, -7); !errors.Is(r.Err, kerr.OffsetOutOfRange) {
		t.Fatalf("delete to -7: %v", r.Err)
	}
	// An empty partition: -1 is its high watermark, 0.
	if r := deleteTo("trim", 1, -1); r.Err != nil || r.LowWatermark != 0 {
		t.Fatalf("delete an empty partition: %v %d", r.Err, r.LowWatermark)
	}
	// -1: everything up to the high watermark.
	if r := deleteTo("trim", 0, -1); r.Err != nil || r.LowWatermark != 100 {
		t.Fatalf("delete to the high watermark: %v, low watermark %d", r.Err, r.LowWatermark)
	}
	offs := adminProduce(t, adminProducer(tb), "trim", 0, 1, 10)
	if offs[0] != 100 {
		t.Fatalf("produce after deleting everything: offset %d", offs[0])
	}

	// Raw: an unknown topic, a partition that does not exist, one this
	// broker does not lead.
	_, p := tb.B.lookup("trim", 1)
	p.mu.Lock()
	p.leader = 2
	p.mu.Unlock()
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.TimeoutMillis = 5000
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = "trim"
	for _, part := range []int32{7, 1} {
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Partition, rp.Offset = part, 0
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	rt = kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = "missing"
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := adminRequest[*kmsg.DeleteRecordsResponse](t, tb.Client(), req, -1)
	adminWantCode(t, "partition 7", resp.Topics[0].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)
	adminWantCode(t, "not leader", resp.Topics[0].Partitions[1].ErrorCode, kerr.NotLeaderForPartition)
	adminWantCode(t, "unknown topic", resp.Topics[1].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)
	if resp.Topics[0].Partitions[1].LowWatermark != -1 {
		t.Fatalf("low watermark with an error: %d", resp.Topics[0].Partitions[1].LowWatermark)
	}
	p.mu.Lock()
	p.leader = 1
	p.mu.Unlock()

	// The new start survives a restart.
	tb.Restart()
	if s := adminStartOffset(t, tb.Admin(), "trim", 0); s != 100 {
		t.Fatalf("log start after restart: %d", s)
	}
}

// --- DescribeLogDirs ---------------------------------------------------------

func TestAdminDescribeLogDirs(t *testing.T) {
	tb := startBroker(t)
	adm := tb.Admin()
	adminCreateTopic(t, adm, "dirs-a", 2, nil)
	adminCreateTopic(t, adm, "dirs-b", 1, nil)
	adminProduce(t, adminProducer(tb), "dirs-a", 1, 10, 100)

	abs, err := filepath.Abs(tb.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	all, err := adm.DescribeAllLogDirs(testCtx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	dirs := all[1]
	if len(dirs) != 1 {
		t.Fatalf("log dirs: %+v", all)
	}
	d, ok := dirs[abs]
	if !ok || d.Err != nil {
		t.Fatalf("log dir %s: %+v", abs, dirs)
	}
	if d.TotalBytes <= 0 || d.UsableBytes <= 0 || d.UsableBytes > d.TotalBytes {
		t.Fatalf("volume sizes: total %d usable %d", d.TotalBytes, d.UsableBytes)
	}
	_, p := tb.B.lookup("dirs-a", 1)
	for _, c := range []struct {
		topic     string
		partition int32
		size      int64
	}{{"dirs-a", 0, 0}, {"dirs-a", 1, p.log.Size()}, {"dirs-b", 0, 0}} {
		dp, ok := d.Topics.Lookup(c.topic, c.partition)
		if !ok || dp.Size != c.size || dp.OffsetLag != 0 || dp.IsFuture {
			t.Fatalf("%s-%d: %+v, want size %d", c.topic, c.partition, dp, c.size)
		}
	}
	if p.log.Size() < 1000 {
		t.Fatalf("dirs-a-1 is only %d bytes", p.log.Size())
	}

	// Only what is asked for.
	set := kadm.TopicsSet{}
	set.Add("dirs-a", 1)
	some, err := adm.DescribeAllLogDirs(testCtx(t), set)
	if err != nil {
		t.Fatal(err)
	}
	d = some[1][abs]
	if _, ok := d.Topics.Lookup("dirs-a", 1); !ok || len(d.Topics) != 1 || len(d.Topics["dirs-a"]) != 1 {
		t.Fatalf("filtered log dirs: %+v", d.Topics)
	}
	// Raw, as kgo would not route them: nothing for partitions and topics
	// this broker does not host.
	req := kmsg.NewPtrDescribeLogDirsRequest()
	for _, tp := range []struct {
		topic string
		parts []int32
	}{{"dirs-a", []int32{1, 5}}, {"nope", []int32{0}}} {
		rt := kmsg.NewDescribeLogDirsRequestTopic()
		rt.Topic, rt.Partitions = tp.topic, tp.parts
		req.Topics = append(req.Topics, rt)
	}
	resp := adminRequest[*kmsg.DescribeLogDirsResponse](t, tb.Client(), req, describeLogDirsMaxVersion)
	if len(resp.Dirs) != 1 || len(resp.Dirs[0].Topics) != 1 || resp.Dirs[0].Topics[0].Topic != "dirs-a" ||
		len(resp.Dirs[0].Topics[0].Partitions) != 1 || resp.Dirs[0].Topics[0].Partitions[0].Partition != 1 {
		t.Fatalf("raw filtered log dirs: %+v", resp.Dirs)
	}

	// v0 has no sizes for the volume but describes the same.
	req = kmsg.NewPtrDescribeLogDirsRequest()
	resp = adminRequest[*kmsg.DescribeLogDirsResponse](t, tb.adminVersionClient(kmsg.DescribeLogDirs, 0), req, 0)
	if len(resp.Dirs) != 1 || resp.Dirs[0].Dir != abs || len(resp.Dirs[0].Topics) != 2 {
		t.Fatalf("v0: %+v", resp.Dirs)
	}
	if local, remote := p.logSizes(); local != p.log.Size() || remote != 0 {
		t.Fatalf("logSizes: %d, %d", local, remote)
	}
}

// --- Versions kadm does not send -------------------------------------------

func TestAdminOldAndRawVersions(t *testing.T) {
	tb := startBroker(t, withSetting("num.partitions", "2"))

	// CreateTopics v0: explicit counts, no messages, no configs back.
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 5000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "v0", 3, 1
	req.Topics = append(req.Topics, rt)
	rt.Topic, rt.NumPartitions = "v0-bad", 0
	req.Topics = append(req.Topics, rt)
	resp := adminRequest[*kmsg.CreateTopicsResponse](t, tb.adminVersionClient(kmsg.CreateTopics, 0), req, 0)
	adminWantCode(t, "CreateTopics v0", resp.Topics[0].ErrorCode, nil)
	adminWantCode(t, "CreateTopics v0 bad", resp.Topics[1].ErrorCode, kerr.InvalidPartitions)
	if n := len(tb.B.Controller().Current().Topics["v0"].Partitions); n != 3 {
		t.Fatalf("v0 topic has %d partitions", n)
	}

	// CreateTopics v4: -1 for the broker defaults, message on errors.
	req = kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 5000
	rt = kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "v4", -1, -1
	req.Topics = append(req.Topics, rt)
	rt.Topic = "v0" // exists
	req.Topics = append(req.Topics, rt)
	resp = adminRequest[*kmsg.CreateTopicsResponse](t, tb.adminVersionClient(kmsg.CreateTopics, 4), req, 4)
	adminWantCode(t, "CreateTopics v4", resp.Topics[0].ErrorCode, nil)
	adminWantCode(t, "CreateTopics v4 exists", resp.Topics[1].ErrorCode, kerr.TopicAlreadyExists)
	adminWantMsg(t, "CreateTopics v4 exists", resp.Topics[1].ErrorMessage, "Topic 'v0' already exists.")
	v4 := tb.B.Controller().Current().Topics["v4"]
	if len(v4.Partitions) != 2 || len(v4.Partitions[0].Replicas) != 1 {
		t.Fatalf("v4 topic: %+v", v4)
	}

	// DescribeConfigs v0: IsDefault instead of the source.
	adm := tb.Admin()
	if rs, err := adm.AlterTopicConfigs(testCtx(t), []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("1000")}}, "v4"); err != nil || rs[0].Err != nil {
		t.Fatalf("alter: %v %v", err, rs[0].Err)
	}
	dreq := kmsg.NewPtrDescribeConfigsRequest()
	r := kmsg.NewDescribeConfigsRequestResource()
	r.ResourceType, r.ResourceName, r.ConfigNames = kmsg.ConfigResourceTypeTopic, "v4", []string{"retention.ms", "retention.bytes"}
	dreq.Resources = append(dreq.Resources, r)
	dresp := adminRequest[*kmsg.DescribeConfigsResponse](t, tb.adminVersionClient(kmsg.DescribeConfigs, 0), dreq, 0)
	adminWantCode(t, "DescribeConfigs v0", dresp.Resources[0].ErrorCode, nil)
	for _, c := range dresp.Resources[0].Configs {
		switch c.Name {
		case "retention.ms":
			if c.IsDefault || c.Value == nil || *c.Value != "1000" {
				t.Fatalf("v0 retention.ms: %+v", c)
			}
		case "retention.bytes":
			if !c.IsDefault || c.Value == nil || *c.Value != "-1" {
				t.Fatalf("v0 retention.bytes: %+v", c)
			}
		default:
			t.Fatalf("v0 unexpected config %s", c.Name)
		}
		if c.Source != -1 || len(c.ConfigSynonyms) != 0 {
			t.Fatalf("v0 config %s carries v1 fields: %+v", c.Name, c)
		}
	}
	if len(dresp.Resources[0].Configs) != 2 {
		t.Fatalf("v0 configs: %+v", dresp.Resources[0].Configs)
	}

	// DeleteTopics v6, by id.
	id := tb.B.Controller().Current().Topics["v0"].ID
	unknown := controller.NewTopicID()
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.TimeoutMillis = 5000
	entry := func(name *string, id controller.TopicID) {
		e := kmsg.NewDeleteTopicsRequestTopic()
		e.Topic, e.TopicID = name, id
		del.Topics = append(del.Topics, e)
	}
	entry(nil, id)
	entry(nil, unknown)
	entry(kmsg.StringPtr("v4"), id)
	entry(nil, controller.TopicID{})
	dtresp := adminRequest[*kmsg.DeleteTopicsResponse](t, tb.adminVersionClient(kmsg.DeleteTopics, 6), del, 6)
	ts := dtresp.Topics
	adminWantCode(t, "delete by id", ts[0].ErrorCode, nil)
	if ts[0].Topic == nil || *ts[0].Topic != "v0" || ts[0].TopicID != id {
		t.Fatalf("delete by id answer: %+v", ts[0])
	}
	adminWantCode(t, "delete unknown id", ts[1].ErrorCode, kerr.UnknownTopicID)
	if ts[1].Topic != nil || ts[1].TopicID != unknown {
		t.Fatalf("delete unknown id answer: %+v", ts[1])
	}
	adminWantCode(t, "name and id", ts[2].ErrorCode, kerr.InvalidRequest)
	adminWantMsg(t, "name and id", ts[2].ErrorMessage, "You may not specify both topic name and topic id.")
	adminWantCode(t, "neither", ts[3].ErrorCode, kerr.InvalidRequest)
	adminWantMsg(t, "neither", ts[3].ErrorMessage, "Neither topic name nor id were specified.")
	if _, ok := tb.B.Controller().Current().Topics["v0"]; ok {
		t.Fatal("v0 still exists")
	}
	if _, err := os.Stat(filepath.Join(tb.DataDir, "v0-0")); !os.IsNotExist(err) {
		t.Fatalf("v0-0 still on disk: %v", err)
	}

	// One topic twice: by id twice, and by name and by id.
	id = tb.B.Controller().Current().Topics["v4"].ID
	del.Topics = nil
	entry(nil, id)
	entry(nil, id)
	entry(kmsg.StringPtr("v4"), controller.TopicID{})
	dtresp = adminRequest[*kmsg.DeleteTopicsResponse](t, tb.adminVersionClient(kmsg.DeleteTopics, 6), del, 6)
	for i, rt := range dtresp.Topics {
		adminWantCode(t, "duplicate", rt.ErrorCode, kerr.InvalidRequest)
		msg := "The provided topic name maps to an ID that was already supplied."
		adminWantMsg(t, "duplicate "+strconv.Itoa(i), rt.ErrorMessage, msg)
	}
	if _, ok := tb.B.Controller().Current().Topics["v4"]; !ok {
		t.Fatal("v4 deleted by a refused request")
	}
}
