package broker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/tiercel/tiercel/broker/controller"
)

// TestGroupAdmin drives the group admin APIs through kadm: list (with the
// state filter), describe, committed offsets and lag, offset deletion and
// group deletion; and checks that deletions are durable.
func TestGroupAdmin(t *testing.T) {
	const topic = "lagged"
	tb := startBroker(t, groupSettings()...)
	createTopic(t, tb, topic, 3, nil)
	produceSpread(t, tb, topic, 3, 100)
	adm := tb.Admin()
	ctx := testCtx(t)

	// A group that only stores offsets, as tools and standalone
	// consumers use them.
	var offs kadm.Offsets
	offs.AddOffset(topic, 0, 30, -1)
	offs.AddOffset(topic, 1, 40, -1)
	offs.AddOffset(topic, 2, 50, -1)
	if err := adm.CommitAllOffsets(ctx, "stored", offs); err != nil {
		t.Fatal(err)
	}
	// An active group with one member.
	seen := newConsumed()
	m := startGroupConsumer(t, tb, "admin-member", "active", topic, seen, consumerOpt{balancer: kgo.RangeBalancer()})
	waitStable(t, adm, "active", topic, 3, "admin-member")
	waitConsumed(t, seen, 300, 20*time.Second)

	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if listed["stored"].State != "Empty" || listed["active"].State != "Stable" || listed["active"].ProtocolType != "consumer" || listed["stored"].ProtocolType != "" {
		t.Fatalf("list groups: %+v", listed)
	}
	if stable, err := adm.ListGroups(ctx, "Stable"); err != nil || len(stable) != 1 || stable["active"].Group != "active" {
		t.Fatalf("list stable groups: %+v %v", stable, err)
	}

	ds, err := adm.DescribeGroups(ctx, "active", "stored", "never-seen")
	if err != nil {
		t.Fatal(err)
	}
	a := ds["active"]
	if a.State != "Stable" || a.Protocol != "range" || a.ProtocolType != "consumer" || len(a.Members) != 1 {
		t.Fatalf("describe active: %+v", a)
	}
	mem := a.Members[0]
	if mem.ClientID != "admin-member" || mem.ClientHost != "/127.0.0.1" {
		t.Fatalf("member: client %q host %q", mem.ClientID, mem.ClientHost)
	}
	if as, ok := mem.Assigned.AsConsumer(); !ok || len(as.Topics) != 1 || len(as.Topics[0].Partitions) != 3 {
		t.Fatalf("member assignment: %+v", mem.Assigned)
	}
	if ds["stored"].State != "Empty" || ds["never-seen"].State != "Dead" || ds["never-seen"].Err != nil {
		t.Fatalf("describe stored/unknown: %+v / %+v", ds["stored"], ds["never-seen"])
	}

	// Committed offsets and lag.
	if got := committed(t, adm, "stored", topic); !mapsEqual(got, map[int32]int64{0: 30, 1: 40, 2: 50}) {
		t.Fatalf("stored offsets: %v", got)
	}
	lags, err := adm.Lag(ctx, "stored", "active")
	if err != nil {
		t.Fatal(err)
	}
	if l := lags["stored"]; l.Error() != nil || l.Lag.Total() != 70+60+50 {
		t.Fatalf("lag of stored: %d (%v)", l.Lag.Total(), l.Error())
	}
	waitCommitted(t, adm, "active", topic, map[int32]int64{0: 100, 1: 100, 2: 100})
	lags, err = adm.Lag(ctx, "active")
	if err != nil || lags["active"].Lag.Total() != 0 {
		t.Fatalf("lag of a caught-up group: %v %v", lags["active"].Lag, err)
	}

	// OffsetDelete: allowed for an empty group; an active consumer
	// group's subscribed topic is protected.
	del := kadm.TopicsSet{}
	del.Add(topic, 1)
	dr, err := adm.DeleteOffsets(ctx, "stored", del)
	if err != nil || dr.Error() != nil {
		t.Fatalf("delete offsets: %v %v", err, dr.Error())
	}
	if got := committed(t, adm, "stored", topic); !mapsEqual(got, map[int32]int64{0: 30, 2: 50}) {
		t.Fatalf("after delete offsets: %v", got)
	}
	dr, err = adm.DeleteOffsets(ctx, "active", del)
	if err != nil {
		t.Fatal(err)
	}
	if e := dr[topic][1]; !errors.Is(e, kerr.GroupSubscribedToTopic) {
		t.Fatalf("delete offsets of a subscribed topic: %v", e)
	}

	// DeleteGroups: an active group is refused, an empty one goes.
	gr, err := adm.DeleteGroups(ctx, "active", "stored", "never-seen")
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(gr["active"].Err, kerr.NonEmptyGroup) || gr["stored"].Err != nil || !errors.Is(gr["never-seen"].Err, kerr.GroupIDNotFound) {
		t.Fatalf("delete groups: %+v", gr)
	}
	if got := committed(t, adm, "stored", topic); len(got) != 0 {
		t.Fatalf("offsets of a deleted group: %v", got)
	}
	m.stop(true)

	// What was deleted stays deleted across a restart (tombstones).
	tb.Restart()
	adm = tb.Admin()
	if got := committed(t, adm, "stored", topic); len(got) != 0 {
		t.Fatalf("deleted group's offsets came back after a restart: %v", got)
	}
	if got := committed(t, adm, "active", topic); !mapsEqual(got, map[int32]int64{0: 100, 1: 100, 2: 100}) {
		t.Fatalf("active group's offsets after a restart: %v", got)
	}
	listed, err = adm.ListGroups(testCtx(t))
	if err != nil || len(listed) != 1 || listed["active"].State != "Empty" {
		t.Fatalf("groups after restart: %+v %v", listed, err)
	}
}

// TestGroupInternalTopic: __consumer_offsets is created on first use with
// offsets.topic.num.partitions partitions, is internal in Metadata (kcat
// -L shows it so), is described as compacted, and clients cannot produce
// to it.
func TestGroupInternalTopic(t *testing.T) {
	tb := startBroker(t, withSetting("offsets.topic.num.partitions", "7"))
	cl := tb.Client()
	ctx := testCtx(t)
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey = "first-group"
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || resp.ErrorCode != 0 || resp.NodeID != 1 {
		t.Fatalf("find coordinator: %+v %v", resp, err)
	}
	md := kmsg.NewPtrMetadataRequest()
	mr, err := md.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mt := range mr.Topics {
		if mt.Topic != nil && *mt.Topic == offsetsTopic {
			found = true
			if !mt.IsInternal || len(mt.Partitions) != 7 {
				t.Fatalf("%s in Metadata: internal %v, %d partitions", offsetsTopic, mt.IsInternal, len(mt.Partitions))
			}
		}
	}
	if !found {
		t.Fatalf("%s not in Metadata", offsetsTopic)
	}
	adm := kadm.NewClient(cl)
	rc, err := adm.DescribeTopicConfigs(ctx, offsetsTopic)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := rc.On(offsetsTopic, nil)
	if err != nil || cfg.Err != nil {
		t.Fatalf("describe configs: %v %v", err, cfg.Err)
	}
	for _, c := range cfg.Configs {
		if c.Key == "cleanup.policy" && (c.Value == nil || *c.Value != "compact") {
			t.Fatalf("cleanup.policy = %v", c.Value)
		}
	}
	settings := tb.B.current().topics[offsetsTopic].partitions[0].settings()
	if settings.RetentionMs != -1 || settings.RetentionBytes != -1 || settings.topic.RemoteStorageEnable {
		t.Fatalf("internal topic settings: retention %d/%d, remote %v", settings.RetentionMs, settings.RetentionBytes, settings.topic.RemoteStorageEnable)
	}
	prod := tb.Client(kgo.DefaultProduceTopic(offsetsTopic), kgo.RecordRetries(1))
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.InvalidTopicException) {
		t.Fatalf("produce to the internal topic: %v", err)
	}
}

// TestFindCoordinatorKeyTypes checks FindCoordinator's answers by key type
// and version, and the batched form.
func TestFindCoordinatorKeyTypes(t *testing.T) {
	tb := startBroker(t)
	ctx := testCtx(t)
	find := func(version int16, keyType int8, keys ...string) *kmsg.FindCoordinatorResponse {
		t.Helper()
		// A client pinned to the version, so that kgo sends exactly it.
		vs := kversion.Stable()
		vs.SetMaxKeyVersion(int16(kmsg.FindCoordinator), version)
		cl := tb.Client(kgo.MaxVersions(vs))
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorType = keyType
		if version >= 4 {
			req.CoordinatorKeys = keys
		} else {
			req.CoordinatorKey = keys[0]
		}
		resp := rawRequest(t, ctx, cl, req).(*kmsg.FindCoordinatorResponse)
		if resp.Version != version {
			t.Fatalf("sent v%d, want v%d", resp.Version, version)
		}
		return resp
	}
	r := find(4, 0, "a", "b", "c")
	if len(r.Coordinators) != 3 {
		t.Fatalf("batched: %+v", r)
	}
	for _, c := range r.Coordinators {
		if c.ErrorCode != 0 || c.NodeID != 1 || c.Port == 0 {
			t.Fatalf("batched coordinator %+v", c)
		}
	}
	if r := find(0, 0, "g"); r.ErrorCode != 0 || r.NodeID != 1 {
		t.Fatalf("v0: %+v", r)
	}
	if r := find(3, 1, "txn"); r.ErrorCode != kerr.InvalidRequest.Code || r.ErrorMessage == nil || r.NodeID != -1 {
		t.Fatalf("transaction key: %+v", r)
	}
	if r := find(6, 2, "g:topic:0"); r.Coordinators[0].ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("share key v6: %+v", r)
	}
	if r := find(5, 2, "g:topic:0"); r.Coordinators[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("share key v5: %+v", r)
	}
	if r := find(4, 9, "x"); r.Coordinators[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("unknown key type: %+v", r)
	}
}

// TestGroupBadInput sends what a broken client might: a JoinGroup with no
// protocols, a SyncGroup from an unknown member, a commit from a stale
// generation, member metadata too large to store. Each gets Kafka's code,
// and the group they aim at carries on untouched.
func TestGroupBadInput(t *testing.T) {
	const (
		topic = "bad-input"
		group = "steady"
	)
	tb := startBroker(t, groupSettings()...)
	createTopic(t, tb, topic, 2, nil)
	ends := produceSpread(t, tb, topic, 2, 50)
	adm := tb.Admin()
	seen := newConsumed()
	m := startGroupConsumer(t, tb, "steady-member", group, topic, seen, consumerOpt{balancer: kgo.RangeBalancer()})
	before := waitStable(t, adm, group, topic, 2, "steady-member")
	waitAll(t, seen, ends, 20*time.Second)
	memberID, gen := m.cl.GroupMetadata()

	cl := tb.Client()
	ctx := testCtx(t)
	join := func(protocols []kmsg.JoinGroupRequestProtocol) int16 {
		t.Helper()
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = group, 10000, 10000
		req.ProtocolType, req.Protocols = "consumer", protocols
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.ErrorCode
	}
	if code := join(nil); code != kerr.InconsistentGroupProtocol.Code {
		t.Errorf("JoinGroup without protocols: %v", kerr.ErrorForCode(code))
	}
	huge := kmsg.NewJoinGroupRequestProtocol()
	huge.Name, huge.Metadata = "range", make([]byte, 2<<20)
	if code := join([]kmsg.JoinGroupRequestProtocol{huge}); code != kerr.UnknownServerError.Code {
		t.Errorf("JoinGroup with oversized metadata: %v", kerr.ErrorForCode(code))
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.MemberID, sync.Generation = group, "nobody-1234", gen
	if resp, err := sync.RequestWith(ctx, cl); err != nil || resp.ErrorCode != kerr.UnknownMemberID.Code {
		t.Errorf("SyncGroup from an unknown member: %v %v", resp, err)
	}
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group, commit.MemberID, commit.Generation = group, memberID, gen-1
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic = topic
	cp := kmsg.NewOffsetCommitRequestTopicPartition()
	cp.Partition, cp.Offset = 0, 1
	ct.Partitions = append(ct.Partitions, cp)
	commit.Topics = append(commit.Topics, ct)
	if resp, err := commit.RequestWith(ctx, cl); err != nil || resp.Topics[0].Partitions[0].ErrorCode != kerr.IllegalGeneration.Code {
		t.Errorf("commit from a stale generation: %+v %v", resp, err)
	}

	// The group is unharmed: same member, same generation, same
	// assignment, the commit did not land, and it consumes on.
	after := waitStable(t, adm, group, topic, 2, "steady-member")
	if id, g := m.cl.GroupMetadata(); id != memberID || g != gen {
		t.Fatalf("member moved from %s/%d to %s/%d", memberID, gen, id, g)
	}
	if len(after.byMember[memberID]) != len(before.byMember[memberID]) {
		t.Fatalf("assignment changed: %v -> %v", before.byMember, after.byMember)
	}
	if got := committed(t, adm, group, topic); got[0] != ends[0] {
		t.Fatalf("committed offset of partition 0 is %d, want %d", got[0], ends[0])
	}
	ends = produceSpread(t, tb, topic, 2, 50)
	waitAll(t, seen, ends, 20*time.Second)
}

// TestOffsetsTopicStaysSmall commits 100,000 times to a few keys through
// the broker and checks that the cleaner keeps __consumer_offsets from
// growing with them, and that every last commit survives cleaning and a
// restart.
func TestOffsetsTopicStaysSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("100k commits")
	}
	const (
		commits  = 100_000
		workers  = 16
		segBytes = 64 << 10
	)
	tb := startBroker(t)
	// The topic as the broker would create it, with small segments.
	rs, err := tb.B.Controller().CreateTopics(testCtx(t), []controller.TopicSpec{{
		Name: offsetsTopic, NumPartitions: 1, ReplicationFactor: 1, Internal: true,
		Configs: map[string]string{"cleanup.policy": "compact", "segment.bytes": "65536"},
	}}, false)
	if err != nil || rs[0].Err != nil {
		t.Fatalf("create %s: %v %v", offsetsTopic, err, rs)
	}
	createTopic(t, tb, "committed", 4, nil)
	cl := tb.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, p := tb.B.lookup(offsetsTopic, 0)
	errs := make(chan error, workers)
	var maxSize int64
	last := make([]map[int32]int64, workers) // per worker: partition -> last offset it committed
	for w := 0; w < workers; w++ {
		last[w] = map[int32]int64{}
		go func(w int) {
			group := []string{"g0", "g1", "g2", "g3"}[w%4]
			for i := w; i < commits; i += workers {
				req := kmsg.NewPtrOffsetCommitRequest()
				req.Group, req.Generation = group, -1
				rt := kmsg.NewOffsetCommitRequestTopic()
				rt.Topic = "committed"
				rp := kmsg.NewOffsetCommitRequestTopicPartition()
				rp.Partition, rp.Offset = int32(w/4), int64(i)
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
				resp, err := req.RequestWith(ctx, cl)
				if err == nil {
					err = kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
				}
				if err != nil {
					errs <- err
					return
				}
				last[w][int32(w/4)] = int64(i)
			}
			errs <- nil
		}(w)
	}
	done := 0
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for done < workers {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
			done++
		case <-tick.C:
			tb.B.cleanOffsetsTopic(ctx)
			maxSize = max(maxSize, p.log.Size())
		}
	}
	tb.B.cleanOffsetsTopic(ctx)
	t.Logf("%d commits; __consumer_offsets at most %d bytes in %d-byte segments, %d bytes at the end",
		commits, maxSize, segBytes, p.log.Size())
	if maxSize > 64*segBytes {
		t.Fatalf("__consumer_offsets grew to %d bytes", maxSize)
	}
	// The last commit of every group and partition survives cleaning
	// and a restart.
	want := map[string]map[int32]int64{}
	for w := 0; w < workers; w++ {
		g := []string{"g0", "g1", "g2", "g3"}[w%4]
		if want[g] == nil {
			want[g] = map[int32]int64{}
		}
		for part, off := range last[w] {
			want[g][part] = off
		}
	}
	tb.Restart()
	adm := tb.Admin()
	for g, parts := range want {
		if got := committed(t, adm, g, "committed"); !mapsEqual(got, parts) {
			t.Fatalf("group %s after cleaning and a restart: %v, want %v", g, got, parts)
		}
	}
}
