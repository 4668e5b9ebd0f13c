package group

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestPartitionForMatchesKafka(t *testing.T) {
	// Java's String.hashCode, then Kafka's Utils.abs (MIN_VALUE is 0),
	// modulo 50, computed independently.
	for _, c := range []struct {
		group string
		want  int32
	}{
		{"hello", 22},
		{"", 0},
		{"polygenelubricants", 0}, // hashCode is Integer.MIN_VALUE
		{"my-group", 12},          // negative hash
		{"consumer-group-1", 20},
		{"\U0001F600grp", 36}, // a surrogate pair counts as two UTF-16 units
		{"tiercel-e2e", 9},
	} {
		if got := PartitionFor(c.group, 50); got != c.want {
			t.Errorf("PartitionFor(%q, 50) = %d, want %d", c.group, got, c.want)
		}
	}
}

// TestJoinSyncLeave walks the classic protocol with two members: member
// ids on request (KIP-394), one join phase for both, the leader's
// assignment stored and handed out, heartbeats, a leave and the
// rebalance it causes.
func TestJoinSyncLeave(t *testing.T) {
	log := newMemLog()
	c := newTestCoordinator(t, testConfig(log), 1)

	idA, joinA := joinNew(t, c, "g", 10000, 10000)
	// Alone, A completes the join phase at once (no initial delay here).
	ra := wait(t, joinA)
	if ra.ErrorCode != 0 || ra.Generation != 1 || ra.LeaderID != idA || len(ra.Members) != 1 || *ra.Protocol != "range" {
		t.Fatalf("join A: %+v", ra)
	}
	sa := wait(t, c.SyncGroup(syncReq("g", idA, 1, map[string]string{idA: "all"}), 5))
	if sa.ErrorCode != 0 || string(sa.MemberAssignment) != "all" {
		t.Fatalf("sync A: %+v", sa)
	}
	if d := describe(t, c, "g"); d.State != "Stable" || len(d.Members) != 1 || string(d.Members[0].MemberAssignment) != "all" {
		t.Fatalf("describe: %+v", d)
	}

	// B joins: A is told to rejoin through its heartbeat.
	idB, joinB := joinNew(t, c, "g", 10000, 10000)
	notReady(t, joinB)
	if code := heartbeat(c, "g", idA, 1); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat during rebalance: %d", code)
	}
	joinA = c.JoinGroup(joinReq("g", idA, nil, 10000, 10000, "range"), 9, "client", "/127.0.0.1")
	ra, rb := wait(t, joinA), wait(t, joinB)
	if ra.Generation != 2 || rb.Generation != 2 || ra.LeaderID != idA || rb.LeaderID != idA {
		t.Fatalf("generation 2: A %+v, B %+v", ra, rb)
	}
	if len(ra.Members) != 2 || len(rb.Members) != 0 {
		t.Fatalf("only the leader learns the members: A %d, B %d", len(ra.Members), len(rb.Members))
	}
	// The follower's sync waits for the leader's.
	syncB := c.SyncGroup(syncReq("g", idB, 2, nil), 5)
	notReady(t, syncB)
	syncA := c.SyncGroup(syncReq("g", idA, 2, map[string]string{idA: "a", idB: "b"}), 5)
	if sa, sb := wait(t, syncA), wait(t, syncB); string(sa.MemberAssignment) != "a" || string(sb.MemberAssignment) != "b" {
		t.Fatalf("assignments: A %q B %q", sa.MemberAssignment, sb.MemberAssignment)
	}
	// The assignment is in the log before anyone got it.
	recs := log.records(0)
	v, err := decodeGroupValue(recs[len(recs)-1].Value)
	if err != nil || v.Generation != 2 || len(v.Members) != 2 {
		t.Fatalf("stored group: %+v %v", v, err)
	}
	if code := heartbeat(c, "g", idB, 2); code != 0 {
		t.Fatalf("heartbeat: %d", code)
	}
	if code := heartbeat(c, "g", idB, 1); code != kerr.IllegalGeneration.Code {
		t.Fatalf("stale heartbeat: %d", code)
	}

	// A leaves (v3+ batch form); B rebalances alone.
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group = "g"
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.MemberID = idA
	unknown := kmsg.NewLeaveGroupRequestMember()
	unknown.MemberID = "nobody"
	leave.Members = []kmsg.LeaveGroupRequestMember{lm, unknown}
	lr := c.LeaveGroup(leave, 5)
	if lr.ErrorCode != 0 || len(lr.Members) != 2 || lr.Members[0].ErrorCode != 0 || lr.Members[1].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave: %+v", lr)
	}
	if code := heartbeat(c, "g", idB, 2); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat after leave: %d", code)
	}
	rb = wait(t, c.JoinGroup(joinReq("g", idB, nil, 10000, 10000, "range"), 9, "client", "/127.0.0.1"))
	if rb.Generation != 3 || rb.LeaderID != idB {
		t.Fatalf("after leave: %+v", rb)
	}
	// v0-2 LeaveGroup: the member's error is the answer.
	leave0 := kmsg.NewPtrLeaveGroupRequest()
	leave0.Group, leave0.MemberID = "g", "nobody"
	if r := c.LeaveGroup(leave0, 1); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave v1 unknown: %d", r.ErrorCode)
	}
}

// TestJoinErrors checks the codes Kafka answers JoinGroup with.
func TestJoinErrors(t *testing.T) {
	c := newTestCoordinator(t, testConfig(newMemLog()), 1)
	code := func(in *kmsg.JoinGroupRequest, v int16) int16 {
		t.Helper()
		return wait(t, c.JoinGroup(in, v, "client", "/h")).ErrorCode
	}
	if got := code(joinReq("", "", nil, 10000, 10000, "range"), 9); got != kerr.InvalidGroupID.Code {
		t.Errorf("empty group id: %d", got)
	}
	if got := code(joinReq("g", "", nil, 10, 10000, "range"), 9); got != kerr.InvalidSessionTimeout.Code {
		t.Errorf("session below min: %d", got)
	}
	if got := code(joinReq("g", "", nil, 120000, 10000, "range"), 9); got != kerr.InvalidSessionTimeout.Code {
		t.Errorf("session above max: %d", got)
	}
	if got := code(joinReq("g", "", nil, 10000, 10000), 9); got != kerr.InconsistentGroupProtocol.Code {
		t.Errorf("no protocols: %d", got)
	}
	if got := code(joinReq("g", "ghost", nil, 10000, 10000, "range"), 9); got != kerr.UnknownMemberID.Code {
		t.Errorf("unknown member of unknown group: %d", got)
	}
	big := joinReq("g", "", nil, 10000, 10000, "range")
	big.Protocols[0].Metadata = make([]byte, 2<<20)
	if got := code(big, 9); got != kerr.UnknownServerError.Code {
		t.Errorf("oversized metadata: %d", got)
	}
	// v0-v3: no MEMBER_ID_REQUIRED; the member is in at once.
	r := wait(t, c.JoinGroup(joinReq("old", "", nil, 10000, 10000, "range"), 3, "client", "/h"))
	if r.ErrorCode != 0 || r.MemberID == "" || r.Generation != 1 {
		t.Fatalf("v3 join: %+v", r)
	}
	// A member of another protocol type, or with no common protocol.
	other := joinReq("old", "", nil, 10000, 10000, "range")
	other.ProtocolType = "connect"
	if got := code(other, 3); got != kerr.InconsistentGroupProtocol.Code {
		t.Errorf("other protocol type: %d", got)
	}
	if got := code(joinReq("old", "", nil, 10000, 10000, "roundrobin"), 3); got != kerr.InconsistentGroupProtocol.Code {
		t.Errorf("no common protocol: %d", got)
	}
	// The group is unharmed.
	if d := describe(t, c, "old"); d.State != "CompletingRebalance" || len(d.Members) != 1 {
		t.Fatalf("group after bad joins: %+v", d)
	}
}

// TestSyncAndCommitErrors checks SyncGroup and OffsetCommit codes.
func TestSyncAndCommitErrors(t *testing.T) {
	c := newTestCoordinator(t, testConfig(newMemLog()), 1)
	id, j := joinNew(t, c, "g", 10000, 10000)
	wait(t, j)
	sync := func(in *kmsg.SyncGroupRequest) int16 { return wait(t, c.SyncGroup(in, 5)).ErrorCode }
	if got := sync(syncReq("g", "ghost", 1, nil)); got != kerr.UnknownMemberID.Code {
		t.Errorf("sync unknown member: %d", got)
	}
	if got := sync(syncReq("nogroup", id, 1, nil)); got != kerr.UnknownMemberID.Code {
		t.Errorf("sync unknown group: %d", got)
	}
	if got := sync(syncReq("g", id, 7, nil)); got != kerr.IllegalGeneration.Code {
		t.Errorf("sync wrong generation: %d", got)
	}
	bad := syncReq("g", id, 1, nil)
	p := "roundrobin"
	bad.Protocol = &p
	if got := sync(bad); got != kerr.InconsistentGroupProtocol.Code {
		t.Errorf("sync other protocol: %d", got)
	}
	// A commit before the assignment is REBALANCE_IN_PROGRESS.
	if got := commitCodes(wait(t, c.OffsetCommit(commitReq("g", id, 1, "t", map[int32]int64{0: 5}), 8)))[0]; got != kerr.RebalanceInProgress.Code {
		t.Errorf("commit in CompletingRebalance: %d", got)
	}
	if got := sync(syncReq("g", id, 1, map[string]string{id: "x"})); got != 0 {
		t.Fatalf("sync: %d", got)
	}
	for _, cse := range []struct {
		name   string
		member string
		gen    int32
		want   *kerr.Error
	}{
		{"stale generation", id, 0, kerr.IllegalGeneration},
		{"unknown member", "ghost", 1, kerr.UnknownMemberID},
		{"no member, active group", "", -1, kerr.UnknownMemberID},
	} {
		got := commitCodes(wait(t, c.OffsetCommit(commitReq("g", cse.member, cse.gen, "t", map[int32]int64{0: 5}), 8)))[0]
		if got != cse.want.Code {
			t.Errorf("commit %s: %d, want %s", cse.name, got, cse.want)
		}
	}
	// None of it committed anything or disturbed the group.
	if offs := fetchOffsets(t, c, "g", "t"); len(offs) != 0 {
		t.Fatalf("offsets after refused commits: %v", offs)
	}
	if code := heartbeat(c, "g", id, 1); code != 0 {
		t.Fatalf("heartbeat: %d", code)
	}
	got := commitCodes(wait(t, c.OffsetCommit(commitReq("g", id, 1, "t", map[int32]int64{0: 5, 1: 6}), 8)))
	if got[0] != 0 || got[1] != 0 {
		t.Fatalf("good commit: %v", got)
	}
	if offs := fetchOffsets(t, c, "g", "t"); offs[0] != 5 || offs[1] != 6 {
		t.Fatalf("offsets: %v", offs)
	}
	// Metadata over offset.metadata.max.bytes.
	in := commitReq("g", id, 1, "t", map[int32]int64{2: 1})
	md := string(make([]byte, 5000))
	in.Topics[0].Partitions[0].Metadata = &md
	if got := commitCodes(wait(t, c.OffsetCommit(in, 8)))[2]; got != kerr.OffsetMetadataTooLarge.Code {
		t.Fatalf("large metadata: %d", got)
	}
}

// TestSessionTimeout removes a member that stops heartbeating; the other
// one is told to rejoin and gets the next generation alone.
func TestSessionTimeout(t *testing.T) {
	c := newTestCoordinator(t, testConfig(newMemLog()), 1)
	idA, jA := joinNew(t, c, "g", 200, 10000)
	wait(t, jA)
	wait(t, c.SyncGroup(syncReq("g", idA, 1, map[string]string{idA: "a"}), 5))
	idB, jB := joinNew(t, c, "g", 5000, 10000)
	wait(t, c.JoinGroup(joinReq("g", idA, nil, 200, 10000, "range"), 9, "c", "/h"))
	wait(t, jB)
	sb := c.SyncGroup(syncReq("g", idB, 2, nil), 5)
	wait(t, c.SyncGroup(syncReq("g", idA, 2, map[string]string{idA: "a", idB: "b"}), 5))
	wait(t, sb)
	// A goes silent; B keeps heartbeating.
	deadline := time.Now().Add(3 * time.Second)
	for {
		code := heartbeat(c, "g", idB, 2)
		if code == kerr.RebalanceInProgress.Code {
			break
		}
		if code != 0 || time.Now().After(deadline) {
			t.Fatalf("heartbeat B: %d", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
	rb := wait(t, c.JoinGroup(joinReq("g", idB, nil, 5000, 10000, "range"), 9, "c", "/h"))
	if rb.Generation != 3 || len(rb.Members) != 1 || rb.LeaderID != idB {
		t.Fatalf("B after A expired: %+v", rb)
	}
	if code := heartbeat(c, "g", idA, 2); code != kerr.UnknownMemberID.Code {
		t.Fatalf("expired member's heartbeat: %d", code)
	}
}

// TestRebalanceAndSyncTimeouts: a member that does not rejoin within the
// rebalance timeout is dropped from the generation; one that does not
// sync within it after the join phase is removed and the group
// rebalances.
func TestRebalanceAndSyncTimeouts(t *testing.T) {
	c := newTestCoordinator(t, testConfig(newMemLog()), 1)
	idA, jA := joinNew(t, c, "g", 10000, 300)
	wait(t, jA)
	wait(t, c.SyncGroup(syncReq("g", idA, 1, map[string]string{idA: "a"}), 5))
	// B joins; A never rejoins: after the rebalance timeout (A's 300ms)
	// the generation goes on without A.
	idB, jB := joinNew(t, c, "g", 10000, 300)
	rb := wait(t, jB)
	if rb.Generation != 2 || rb.LeaderID != idB || len(rb.Members) != 1 {
		t.Fatalf("B after A missed the join phase: %+v", rb)
	}
	if code := heartbeat(c, "g", idA, 1); code != kerr.UnknownMemberID.Code {
		t.Fatalf("A after missing the join phase: %d", code)
	}
	// B never syncs: it is removed and the group ends up empty.
	eventually(t, "B removed for not syncing", func() bool { return describe(t, c, "g").State == "Empty" })
	if code := heartbeat(c, "g", idB, 2); code != kerr.UnknownMemberID.Code {
		t.Fatalf("B after missing the sync: %d", code)
	}
}

// TestInitialRebalanceDelay: a new group's first join phase waits
// group.initial.rebalance.delay.ms, extended while members keep coming,
// so members starting together share one generation.
func TestInitialRebalanceDelay(t *testing.T) {
	cfg := testConfig(newMemLog())
	cfg.InitialRebalanceDelay = 300 * time.Millisecond
	c := newTestCoordinator(t, cfg, 1)
	start := time.Now()
	_, jA := joinNew(t, c, "g", 10000, 10000)
	time.Sleep(200 * time.Millisecond)
	_, jB := joinNew(t, c, "g", 10000, 10000)
	notReady(t, jA)
	ra, rb := wait(t, jA), wait(t, jB)
	if ra.Generation != 1 || rb.Generation != 1 {
		t.Fatalf("generations %d %d, want one generation for both", ra.Generation, rb.Generation)
	}
	if took := time.Since(start); took < 550*time.Millisecond {
		t.Fatalf("join phase ended after %v; the delay should have been extended to ~600ms", took)
	}
}

// TestStaticMembership: a static member that restarts (new JoinGroup
// without a member id) takes its old place with its assignment and no
// rebalance; its old incarnation is fenced.
func TestStaticMembership(t *testing.T) {
	log := newMemLog()
	c := newTestCoordinator(t, testConfig(log), 1)
	instA, instB := "a", "b"
	rA := wait(t, c.JoinGroup(joinReq("g", "", &instA, 10000, 10000, "range"), 9, "c", "/h"))
	if rA.ErrorCode != 0 {
		t.Fatalf("static members need no MEMBER_ID_REQUIRED: %+v", rA)
	}
	idA := rA.MemberID
	wait(t, c.SyncGroup(syncReq("g", idA, 1, map[string]string{idA: "a"}), 5))
	jB := c.JoinGroup(joinReq("g", "", &instB, 10000, 10000, "range"), 9, "c", "/h")
	wait(t, c.JoinGroup(joinReq("g", idA, &instA, 10000, 10000, "range"), 9, "c", "/h"))
	rB := wait(t, jB)
	idB := rB.MemberID
	sB := c.SyncGroup(syncReq("g", idB, 2, nil), 5)
	wait(t, c.SyncGroup(syncReq("g", idA, 2, map[string]string{idA: "pa", idB: "pb"}), 5))
	wait(t, sB)

	// B restarts: new JoinGroup without member id, same instance.
	r := wait(t, c.JoinGroup(joinReq("g", "", &instB, 10000, 10000, "range"), 9, "c", "/h"))
	if r.ErrorCode != 0 || r.Generation != 2 || r.MemberID == idB || r.LeaderID != idA {
		t.Fatalf("static rejoin: %+v", r)
	}
	newB := r.MemberID
	s := wait(t, c.SyncGroup(syncReq("g", newB, 2, nil), 5))
	if s.ErrorCode != 0 || string(s.MemberAssignment) != "pb" {
		t.Fatalf("static rejoin sync: %+v", s)
	}
	if d := describe(t, c, "g"); d.State != "Stable" {
		t.Fatalf("group rebalanced: %+v", d)
	}
	if code := heartbeat(c, "g", idA, 2); code != 0 {
		t.Fatalf("A saw a rebalance: %d", code)
	}
	// The old incarnation is fenced.
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation, hb.InstanceID = "g", idB, 2, &instB
	if code := c.Heartbeat(hb, 4).ErrorCode; code != kerr.FencedInstanceID.Code {
		t.Fatalf("old incarnation heartbeat: %d", code)
	}
	if got := commitCodes(wait(t, c.OffsetCommit(func() *kmsg.OffsetCommitRequest {
		in := commitReq("g", idB, 2, "t", map[int32]int64{0: 1})
		in.InstanceID = &instB
		return in
	}(), 8)))[0]; got != kerr.FencedInstanceID.Code {
		t.Fatalf("old incarnation commit: %d", got)
	}
	// The leader restarts too (v9): it learns the members but skips the
	// assignment.
	r = wait(t, c.JoinGroup(joinReq("g", "", &instA, 10000, 10000, "range"), 9, "c", "/h"))
	if r.ErrorCode != 0 || !r.SkipAssignment || len(r.Members) != 2 || r.Generation != 2 || r.LeaderID != r.MemberID {
		t.Fatalf("static leader rejoin (v9): %+v", r)
	}
	// Before v9 the answer names the leader as it was (its old id), as
	// Kafka's does; the client recognizes its instance id in it.
	leaderID := r.MemberID
	r = wait(t, c.JoinGroup(joinReq("g", "", &instA, 10000, 10000, "range"), 8, "c", "/h"))
	if r.ErrorCode != 0 || r.SkipAssignment || len(r.Members) != 0 || r.LeaderID != leaderID || r.MemberID == leaderID {
		t.Fatalf("static leader rejoin (v8): %+v", r)
	}
	// An administrator removes B by instance id: the group rebalances.
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group = "g"
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.InstanceID = &instB
	leave.Members = []kmsg.LeaveGroupRequestMember{lm}
	if lr := c.LeaveGroup(leave, 5); lr.Members[0].ErrorCode != 0 {
		t.Fatalf("remove by instance id: %+v", lr)
	}
	if d := describe(t, c, "g"); d.State != "PreparingRebalance" || len(d.Members) != 1 {
		t.Fatalf("after removal: %+v", d)
	}
}

// TestNonConsumerProtocolType: groups of other protocol types (Connect,
// Schema Registry) work the same, with their metadata untouched.
func TestNonConsumerProtocolType(t *testing.T) {
	c := newTestCoordinator(t, testConfig(newMemLog()), 1)
	in := joinReq("connect-cluster", "", nil, 10000, 10000, "default")
	in.ProtocolType = "connect"
	in.Protocols[0].Metadata = []byte{0xde, 0xad, 0xbe, 0xef}
	r := wait(t, c.JoinGroup(in, 3, "worker", "/h"))
	if r.ErrorCode != 0 || *r.ProtocolType != "connect" || string(r.Members[0].ProtocolMetadata) != "\xde\xad\xbe\xef" {
		t.Fatalf("connect join: %+v", r)
	}
	if s := wait(t, c.SyncGroup(syncReq("connect-cluster", r.MemberID, 1, map[string]string{r.MemberID: "x"}), 5)); s.ErrorCode != 0 {
		t.Fatalf("connect sync: %+v", s)
	}
	if d := describe(t, c, "connect-cluster"); d.ProtocolType != "connect" || d.State != "Stable" {
		t.Fatalf("describe: %+v", d)
	}
}

// TestAppendsWaitForReplication: commits and assignments are answered
// only once their records are committed (the high watermark passed
// them), and a failed store is reported with Kafka's codes.
func TestAppendsWaitForReplication(t *testing.T) {
	log := newMemLog()
	c := newTestCoordinator(t, testConfig(log), 1)
	id, j := joinNew(t, c, "g", 10000, 10000)
	wait(t, j)
	log.mu.Lock()
	log.hold = true
	log.mu.Unlock()
	s := c.SyncGroup(syncReq("g", id, 1, map[string]string{id: "a"}), 5)
	notReady(t, s)
	if d := describe(t, c, "g"); d.State != "CompletingRebalance" {
		t.Fatalf("stable before the assignment was replicated: %s", d.State)
	}
	close(log.release)
	if r := wait(t, s); r.ErrorCode != 0 || string(r.MemberAssignment) != "a" {
		t.Fatalf("sync: %+v", r)
	}

	log.mu.Lock()
	log.release = make(chan struct{})
	log.mu.Unlock()
	cm := c.OffsetCommit(commitReq("g", id, 1, "t", map[int32]int64{0: 42}), 8)
	notReady(t, cm)
	if offs := fetchOffsets(t, c, "g", "t"); len(offs) != 0 {
		t.Fatalf("offset visible before it was replicated: %v", offs)
	}
	close(log.release)
	if got := commitCodes(wait(t, cm))[0]; got != 0 {
		t.Fatalf("commit: %d", got)
	}
	if offs := fetchOffsets(t, c, "g", "t"); offs[0] != 42 {
		t.Fatalf("offset after replication: %v", offs)
	}

	log.mu.Lock()
	log.hold = false
	log.fail = kerr.NotLeaderForPartition
	log.mu.Unlock()
	if got := commitCodes(wait(t, c.OffsetCommit(commitReq("g", id, 1, "t", map[int32]int64{0: 43}), 8)))[0]; got != kerr.NotCoordinator.Code {
		t.Fatalf("commit on a lost leader: %d", got)
	}
	log.mu.Lock()
	log.fail = kerr.MessageTooLarge
	log.mu.Unlock()
	if got := commitCodes(wait(t, c.OffsetCommit(commitReq("g", id, 1, "t", map[int32]int64{0: 43}), 8)))[0]; got != kerr.InvalidCommitOffsetSize.Code {
		t.Fatalf("commit too large: %d", got)
	}
	if offs := fetchOffsets(t, c, "g", "t"); offs[0] != 42 {
		t.Fatalf("offset after failed commits: %v", offs)
	}
}

// TestLoadAndFailover: a coordinator that takes over a partition replays
// it; members carry on in their generation and the offsets are there.
// While loading it answers COORDINATOR_LOAD_IN_PROGRESS, and a broker that
// loses leadership answers waiting requests NOT_COORDINATOR.
func TestLoadAndFailover(t *testing.T) {
	log := newMemLog()
	c1 := newTestCoordinator(t, testConfig(log), 3)
	id, j := joinNew(t, c1, "g", 10000, 10000)
	wait(t, j)
	wait(t, c1.SyncGroup(syncReq("g", id, 1, map[string]string{id: "mine"}), 5))
	wait(t, c1.OffsetCommit(commitReq("g", id, 1, "t", map[int32]int64{0: 10, 1: 20}), 8))
	wait(t, c1.OffsetCommit(commitReq("g", id, 1, "t", map[int32]int64{0: 11}), 8))
	wait(t, c1.OffsetCommit(commitReq("simple", "", -1, "t", map[int32]int64{3: 7}), 8))
	// A second member waits in a join phase when the first broker
	// resigns: it is told NOT_COORDINATOR.
	_, j2 := joinNew(t, c1, "g", 10000, 10000)
	notReady(t, j2)
	p := PartitionFor("g", 3)
	c1.UpdatePartition(p, false, 0)
	if r := wait(t, j2); r.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("waiting join on resignation: %+v", r)
	}
	if code := heartbeat(c1, "g", id, 1); code != kerr.NotCoordinator.Code {
		t.Fatalf("heartbeat to the old coordinator: %d", code)
	}

	// The new coordinator loads slowly.
	log.mu.Lock()
	log.readGate = make(chan struct{})
	gate := log.readGate
	log.mu.Unlock()
	c2 := New(testConfig(log))
	t.Cleanup(c2.Close)
	c2.SetPartitions(3)
	for i := int32(0); i < 3; i++ {
		c2.UpdatePartition(i, true, 1)
	}
	if code := heartbeat(c2, "g", id, 1); code != kerr.CoordinatorLoadInProgress.Code {
		t.Fatalf("heartbeat while loading: %d", code)
	}
	// A new leader epoch (still this broker) while loading does not
	// throw the load away.
	for i := int32(0); i < 3; i++ {
		c2.UpdatePartition(i, true, 2)
	}
	close(gate)
	waitLoaded(t, c2)
	if code := heartbeat(c2, "g", id, 1); code != 0 {
		t.Fatalf("heartbeat after failover: %d", code)
	}
	d := describe(t, c2, "g")
	if d.State != "Stable" || len(d.Members) != 1 || d.Members[0].MemberID != id || string(d.Members[0].MemberAssignment) != "mine" {
		t.Fatalf("loaded group: %+v", d)
	}
	if offs := fetchOffsets(t, c2, "g", "t"); offs[0] != 11 || offs[1] != 20 {
		t.Fatalf("loaded offsets: %v", offs)
	}
	if offs := fetchOffsets(t, c2, "simple", "t"); offs[3] != 7 {
		t.Fatalf("loaded offsets of a group without metadata: %v", offs)
	}
	// A loaded member that stops heartbeating is removed as usual.
	s := wait(t, c2.SyncGroup(syncReq("g", id, 1, nil), 5))
	if string(s.MemberAssignment) != "mine" {
		t.Fatalf("sync after failover: %+v", s)
	}
}

// TestDeleteAndExpire: DeleteGroups and offset expiry write tombstones,
// and a reload agrees with memory.
func TestDeleteAndExpire(t *testing.T) {
	log := newMemLog()
	cfg := testConfig(log)
	cfg.OffsetsRetention = 300 * time.Millisecond
	now := time.Now()
	var clock = func() time.Time { return now }
	cfg.Now = func() time.Time { return clock() }
	c := newTestCoordinator(t, cfg, 1)

	// An active group cannot be deleted.
	id, j := joinNew(t, c, "active", 10000, 10000)
	wait(t, j)
	del := func(groups ...string) map[string]int16 {
		in := kmsg.NewPtrDeleteGroupsRequest()
		in.Groups = groups
		out := map[string]int16{}
		for _, g := range wait(t, c.DeleteGroups(in, 2)).Groups {
			out[g.Group] = g.ErrorCode
		}
		return out
	}
	wait(t, c.OffsetCommit(commitReq("gone", "", -1, "t", map[int32]int64{0: 1, 1: 2}), 8))
	codes := del("active", "gone", "never")
	if codes["active"] != kerr.NonEmptyGroup.Code || codes["gone"] != 0 || codes["never"] != kerr.GroupIDNotFound.Code {
		t.Fatalf("delete: %v", codes)
	}
	if offs := fetchOffsets(t, c, "gone", "t"); len(offs) != 0 {
		t.Fatalf("offsets of a deleted group: %v", offs)
	}

	// Offsets of a group without protocol expire from their commit; the
	// group goes with its last offset.
	wait(t, c.OffsetCommit(commitReq("simple", "", -1, "t", map[int32]int64{0: 5}), 8))
	now = now.Add(time.Second)
	wait(t, c.OffsetCommit(commitReq("simple", "", -1, "t", map[int32]int64{1: 6}), 8))
	c.ExpireOffsets()
	if offs := fetchOffsets(t, c, "simple", "t"); len(offs) != 1 || offs[1] != 6 {
		t.Fatalf("simple group after expiry: %v", offs)
	}
	now = now.Add(time.Second)
	c.ExpireOffsets()
	if d := describe(t, c, "simple"); d.State != "Dead" {
		t.Fatalf("simple group after all offsets expired: %+v", d)
	}

	// A consumer group's offsets do not expire while it is active, and
	// do once it has been empty for the retention.
	wait(t, c.SyncGroup(syncReq("active", id, 1, map[string]string{id: "x"}), 5))
	wait(t, c.OffsetCommit(commitReq("active", id, 1, "t", map[int32]int64{0: 9}), 8))
	now = now.Add(time.Hour)
	c.ExpireOffsets()
	if offs := fetchOffsets(t, c, "active", "t"); offs[0] != 9 {
		t.Fatalf("active group's offsets expired: %v", offs)
	}
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group, leave.MemberID = "active", id
	c.LeaveGroup(leave, 2)
	c.ExpireOffsets()
	if offs := fetchOffsets(t, c, "active", "t"); offs[0] != 9 {
		t.Fatalf("offsets expired as soon as the group emptied: %v", offs)
	}
	now = now.Add(time.Second)
	c.ExpireOffsets()
	if d := describe(t, c, "active"); d.State != "Dead" {
		t.Fatalf("empty group after retention: %+v", d)
	}

	// Replaying the log gives the same picture.
	c2 := newTestCoordinator(t, cfg, 1)
	for _, g := range []string{"active", "gone", "simple"} {
		if d := describe(t, c2, g); d.State != "Dead" {
			t.Errorf("group %s after reload: %s", g, d.State)
		}
		if offs := fetchOffsets(t, c2, g, "t"); len(offs) != 0 {
			t.Errorf("group %s offsets after reload: %v", g, offs)
		}
	}
}

// TestOffsetDelete follows KIP-496's rules.
func TestOffsetDelete(t *testing.T) {
	c := newTestCoordinator(t, testConfig(newMemLog()), 1)
	md := kmsg.NewConsumerMemberMetadata()
	md.Topics = []string{"subscribed"}
	in := joinReq("g", "", nil, 10000, 10000, "range")
	in.Protocols[0].Metadata = md.AppendTo(nil)
	r := wait(t, c.JoinGroup(in, 3, "c", "/h"))
	wait(t, c.SyncGroup(syncReq("g", r.MemberID, 1, map[string]string{r.MemberID: "x"}), 5))
	wait(t, c.OffsetCommit(commitReq("g", r.MemberID, 1, "subscribed", map[int32]int64{0: 1}), 8))
	wait(t, c.OffsetCommit(commitReq("g", r.MemberID, 1, "other", map[int32]int64{0: 2}), 8))
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "g"
	for _, topic := range []string{"subscribed", "other"} {
		rt := kmsg.NewOffsetDeleteRequestTopic()
		rt.Topic = topic
		rt.Partitions = []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}
		od.Topics = append(od.Topics, rt)
	}
	resp := wait(t, c.OffsetDelete(od, 0))
	if resp.ErrorCode != 0 || resp.Topics[0].Partitions[0].ErrorCode != kerr.GroupSubscribedToTopic.Code || resp.Topics[1].Partitions[0].ErrorCode != 0 {
		t.Fatalf("offset delete: %+v", resp)
	}
	if offs := fetchOffsets(t, c, "g", "other"); len(offs) != 0 {
		t.Fatalf("deleted offset still there: %v", offs)
	}
	od.Group = "nope"
	if resp := wait(t, c.OffsetDelete(od, 0)); resp.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("offset delete of unknown group: %d", resp.ErrorCode)
	}
}

// TestListGroupsFilters filters by state case-insensitively and by type.
func TestListGroupsFilters(t *testing.T) {
	c := newTestCoordinator(t, testConfig(newMemLog()), 2)
	wait(t, c.OffsetCommit(commitReq("empty", "", -1, "t", map[int32]int64{0: 1}), 8))
	r := wait(t, c.JoinGroup(joinReq("busy", "", nil, 10000, 10000, "range"), 3, "c", "/h"))
	wait(t, c.SyncGroup(syncReq("busy", r.MemberID, 1, nil), 5))
	list := func(states, types []string) []string {
		in := kmsg.NewPtrListGroupsRequest()
		in.StatesFilter, in.TypesFilter = states, types
		var out []string
		for _, g := range c.ListGroups(in, 5).Groups {
			out = append(out, g.Group+":"+g.GroupState+":"+g.GroupType)
		}
		return out
	}
	if got := list(nil, nil); len(got) != 2 || got[0] != "busy:Stable:classic" || got[1] != "empty:Empty:classic" {
		t.Fatalf("all: %v", got)
	}
	if got := list([]string{"stable"}, nil); len(got) != 1 || got[0] != "busy:Stable:classic" {
		t.Fatalf("stable: %v", got)
	}
	if got := list(nil, []string{"consumer"}); len(got) != 0 {
		t.Fatalf("consumer type: %v", got)
	}
}

// TestCloseAnswersWaiters: Close answers every waiting request and waits
// for the coordinator's goroutines.
func TestCloseAnswersWaiters(t *testing.T) {
	log := newMemLog()
	c := New(testConfig(log))
	c.SetPartitions(1)
	c.UpdatePartition(0, true, 0)
	waitLoaded(t, c)
	id, j := joinNew(t, c, "g", 10000, 10000)
	wait(t, j)
	_, j2 := joinNew(t, c, "g", 10000, 10000)
	notReady(t, j2)
	log.mu.Lock()
	log.hold = true
	log.mu.Unlock()
	cm := c.OffsetCommit(commitReq("g", id, 1, "t", map[int32]int64{0: 1}), 8)
	c.Close()
	if r := wait(t, j2); r.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("join at close: %d", r.ErrorCode)
	}
	if got := commitCodes(wait(t, cm))[0]; got == 0 {
		t.Fatalf("commit whose replication never finished succeeded")
	}
	if n := c.sched.pending(); n != 0 {
		// Timers may remain queued; they never run after Close.
		t.Logf("%d timers left queued", n)
	}
	if r := wait(t, c.JoinGroup(joinReq("g", "", nil, 10000, 10000, "range"), 9, "c", "/h")); r.ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("join after close: %d", r.ErrorCode)
	}
}

func TestAppendErrorMapping(t *testing.T) {
	for _, c := range []struct {
		in           error
		group, offst *kerr.Error
	}{
		{kerr.NotLeaderForPartition, kerr.NotCoordinator, kerr.NotCoordinator},
		{kerr.NotEnoughReplicas, kerr.CoordinatorNotAvailable, kerr.CoordinatorNotAvailable},
		{kerr.RequestTimedOut, kerr.CoordinatorNotAvailable, kerr.RequestTimedOut},
		{kerr.MessageTooLarge, kerr.UnknownServerError, kerr.InvalidCommitOffsetSize},
		{errors.New("disk on fire"), kerr.UnknownServerError, kerr.UnknownServerError},
	} {
		if got := appendGroupError(c.in); got != c.group {
			t.Errorf("group store error for %v: %v, want %v", c.in, got, c.group)
		}
		if got := appendOffsetError(c.in); got != c.offst {
			t.Errorf("offset store error for %v: %v, want %v", c.in, got, c.offst)
		}
	}
}
