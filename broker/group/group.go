package group

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// State is a group's state, named as Kafka names it in DescribeGroups and
// ListGroups.
type State int8

const (
	Empty State = iota
	PreparingRebalance
	CompletingRebalance
	Stable
	Dead
)

func (s State) String() string {
	switch s {
	case Empty:
		return "Empty"
	case PreparingRebalance:
		return "PreparingRebalance"
	case CompletingRebalance:
		return "CompletingRebalance"
	case Stable:
		return "Stable"
	case Dead:
		return "Dead"
	}
	return "Unknown"
}

// consumerProtocolType is the protocol type of Kafka consumers; only its
// member metadata is parsed (for subscribed topics).
const consumerProtocolType = "consumer"

// group is one group. Every field is guarded by mu.
type group struct {
	mu    sync.Mutex
	c     *Coordinator
	shard *shard
	id    string

	state State
	// stateTimestamp is when the group entered its state (ms), or -1 when
	// unknown; offsets of an Empty group expire counting from it.
	stateTimestamp int64
	// protocolType is set by the first member to join; "" means none (a
	// group used only to commit offsets).
	protocolType string
	// protocol is the protocol chosen for the generation; "" when Empty.
	protocol   string
	generation int32
	leader     string

	members map[string]*member
	order   []string // member ids in joining order, for stable answers
	// static maps group.instance.id to the current member id.
	static map[string]string
	// pending are member ids handed out with MEMBER_ID_REQUIRED that have
	// not joined yet (KIP-394), each with its session timer.
	pending map[string]*timer
	// supported counts, per protocol name, the members that support it.
	supported    map[string]int
	awaitingJoin int
	// newMemberAdded extends the initial rebalance delay.
	newMemberAdded bool
	// pendingSync are members that have not sent SyncGroup for the
	// generation yet.
	pendingSync map[string]bool

	// joinTimer ends the join phase: the rebalance timeout, or the
	// initial delay of a new group's first rebalance.
	joinTimer             *timer
	initialDelay          bool
	initialDelayRemaining time.Duration
	// syncTimer removes members that do not sync in time.
	syncTimer *timer

	offsets map[topicPartition]*offset
	// pendingCommits counts commits appended but not committed yet, per
	// partition, so that expiry and deletion do not race them.
	pendingCommits map[topicPartition]int
	// subscribed are the topics the members of a consumer group subscribe
	// to; nil when unknown.
	subscribed map[string]bool
}

// member is one member of a group.
type member struct {
	id               string
	instanceID       *string
	clientID         string
	clientHost       string
	sessionTimeout   int32 // ms
	rebalanceTimeout int32 // ms
	protocolType     string
	protocols        []protocol
	assignment       []byte

	// join receives the member's JoinGroup answer while it waits for the
	// join phase to end; sync its SyncGroup answer. Both have room for one
	// answer, so answering never blocks. The versions are those of the
	// waiting requests, which shape the answers.
	join        chan *kmsg.JoinGroupResponse
	joinVersion int16
	sync        chan *kmsg.SyncGroupResponse
	syncVersion int16
	// isNew: joined in the current join phase and not yet through it.
	isNew bool
	// hb is the session (or new-member) timer.
	hb *timer
}

type protocol struct {
	name     string
	metadata []byte
}

type topicPartition struct {
	topic     string
	partition int32
}

// offset is a committed offset.
type offset struct {
	offset          int64
	leaderEpoch     int32 // -1 when none
	metadata        string
	commitTimestamp int64
	expireTimestamp int64 // -1 unless the commit asked for a retention time
	// recordOffset is where the commit's record is in __consumer_offsets:
	// of two completions, the later record wins, as on reload.
	recordOffset int64
}

// joinResult is a JoinGroup answer.
type joinResult struct {
	err            *kerr.Error
	memberID       string
	generation     int32
	protocolType   string
	protocol       string
	leader         string
	members        []kmsg.JoinGroupResponseMember
	skipAssignment bool
}

// syncResult is a SyncGroup answer.
type syncResult struct {
	err          *kerr.Error
	protocolType string
	protocol     string
	assignment   []byte
}

func newGroup(c *Coordinator, s *shard, id string) *group {
	return &group{
		c:              c,
		shard:          s,
		id:             id,
		state:          Empty,
		stateTimestamp: c.cfg.Now().UnixMilli(),
		members:        map[string]*member{},
		static:         map[string]string{},
		pending:        map[string]*timer{},
		supported:      map[string]int{},
		pendingSync:    map[string]bool{},
		offsets:        map[topicPartition]*offset{},
		pendingCommits: map[topicPartition]int{},
	}
}

// newMemberID is Kafka's form: the client id (or the instance id of a
// static member), a dash and a random UUID.
func newMemberID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on Linux
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return prefix + "-" + h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (g *group) transition(s State) {
	g.state = s
	g.stateTimestamp = g.c.cfg.Now().UnixMilli()
}

func (g *group) has(id string) bool { _, ok := g.members[id]; return ok }

func (g *group) isLeader(id string) bool { return g.leader != "" && g.leader == id }

// supportsProtocols reports whether a member with these protocols may
// join: any non-empty set when the group is empty; otherwise the same
// protocol type and at least one protocol every current member supports.
func (g *group) supportsProtocols(protocolType string, ps []protocol) bool {
	if g.state == Empty {
		return protocolType != "" && len(ps) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range ps {
		if g.supported[p.name] == len(g.members) {
			return true
		}
	}
	return false
}

// selectProtocol lets every member vote for its most preferred protocol
// among those all members support, and picks the one with the most votes
// (ties go to the leader's preference order, for a deterministic answer).
func (g *group) selectProtocol() string {
	votes := map[string]int{}
	for _, id := range g.order {
		m := g.members[id]
		for _, p := range m.protocols {
			if g.supported[p.name] == len(g.members) {
				votes[p.name]++
				break
			}
		}
	}
	best, bestVotes := "", -1
	ref := g.order[0]
	if g.leader != "" {
		ref = g.leader
	}
	for _, p := range g.members[ref].protocols {
		if v, ok := votes[p.name]; ok && v > bestVotes {
			best, bestVotes = p.name, v
		}
	}
	return best
}

// metadataFor is the member's metadata for a protocol.
func (m *member) metadataFor(name string) []byte {
	for _, p := range m.protocols {
		if p.name == name {
			return p.metadata
		}
	}
	return nil
}

// matches reports whether the member's protocols are exactly ps.
func (m *member) matches(ps []protocol) bool {
	if len(ps) != len(m.protocols) {
		return false
	}
	for i := range ps {
		if ps[i].name != m.protocols[i].name || !bytes.Equal(ps[i].metadata, m.protocols[i].metadata) {
			return false
		}
	}
	return true
}

func (m *member) isStatic() bool { return m.instanceID != nil }

// waiter is a JoinGroup waiting for its answer.
type waiter struct {
	ch      chan *kmsg.JoinGroupResponse
	version int16
}

func newWaiter(version int16) waiter {
	return waiter{ch: make(chan *kmsg.JoinGroupResponse, 1), version: version}
}

// add puts a new member in the group, waiting to join on w.
func (g *group) add(m *member, w waiter) {
	if len(g.members) == 0 {
		g.protocolType = m.protocolType
	}
	g.members[m.id] = m
	g.order = append(g.order, m.id)
	for _, p := range m.protocols {
		g.supported[p.name]++
	}
	if g.leader == "" {
		g.leader = m.id
	}
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	if w.ch != nil {
		m.join, m.joinVersion = w.ch, w.version
		g.awaitingJoin++
	}
	if t, ok := g.pending[m.id]; ok {
		t.stop()
		delete(g.pending, m.id)
	}
}

// remove takes a member out of the group. Its waiting requests must have
// been answered by the caller.
func (g *group) remove(id string) {
	m := g.members[id]
	if m != nil {
		delete(g.members, id)
		g.order = slices.DeleteFunc(g.order, func(x string) bool { return x == id })
		for _, p := range m.protocols {
			if g.supported[p.name]--; g.supported[p.name] <= 0 {
				delete(g.supported, p.name)
			}
		}
		if m.join != nil {
			g.awaitingJoin--
			m.join = nil
		}
		m.sync = nil
		if m.instanceID != nil && g.static[*m.instanceID] == id {
			delete(g.static, *m.instanceID)
		}
		m.hb.stop()
		m.hb = nil
	}
	if g.leader == id {
		g.leader = ""
		if len(g.order) > 0 {
			g.leader = g.order[0]
		}
	}
	if t, ok := g.pending[id]; ok {
		t.stop()
		delete(g.pending, id)
	}
	delete(g.pendingSync, id)
}

// update replaces a member's protocols and timeouts and makes it wait to
// join on ch. A JoinGroup it had waiting already is answered
// REBALANCE_IN_PROGRESS: its client gave up on it and sent another (on
// Kafka it would never be answered).
func (g *group) update(m *member, ps []protocol, rebalanceMs, sessionMs int32, w waiter) {
	for _, p := range m.protocols {
		if g.supported[p.name]--; g.supported[p.name] <= 0 {
			delete(g.supported, p.name)
		}
	}
	for _, p := range ps {
		g.supported[p.name]++
	}
	m.protocols = ps
	m.rebalanceTimeout, m.sessionTimeout = rebalanceMs, sessionMs
	if m.join != nil {
		g.completeJoin(m, joinResult{err: kerr.RebalanceInProgress, memberID: m.id})
	}
	if w.ch != nil {
		m.join, m.joinVersion = w.ch, w.version
		g.awaitingJoin++
	}
}

// completeJoin answers the member's waiting JoinGroup, if any.
func (g *group) completeJoin(m *member, r joinResult) bool {
	if m.join == nil {
		return false
	}
	m.join <- joinResponse(m.joinVersion, r)
	m.join = nil
	g.awaitingJoin--
	return true
}

// completeSync answers the member's waiting SyncGroup, if any.
func (g *group) completeSync(m *member, r syncResult) bool {
	if m.sync == nil {
		return false
	}
	m.sync <- syncResponse(m.syncVersion, r)
	m.sync = nil
	return true
}

// joinResponse shapes a JoinGroup answer for the request's version.
func joinResponse(version int16, r joinResult) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Version = version
	resp.MemberID = r.memberID
	if r.err != nil {
		// Kafka's error answer: no generation, protocol or leader.
		resp.ErrorCode = r.err.Code
		return resp
	}
	resp.Generation = r.generation
	if r.protocolType != "" {
		pt := r.protocolType
		resp.ProtocolType = &pt
	}
	if r.protocol != "" {
		p := r.protocol
		resp.Protocol = &p
	}
	resp.LeaderID = r.leader
	resp.Members = r.members
	if resp.Members == nil {
		resp.Members = []kmsg.JoinGroupResponseMember{}
	}
	resp.SkipAssignment = r.skipAssignment && version >= 9
	return resp
}

// syncResponse shapes a SyncGroup answer for the request's version.
func syncResponse(version int16, r syncResult) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.Version = version
	resp.MemberAssignment = []byte{}
	if r.err != nil {
		resp.ErrorCode = r.err.Code
		return resp
	}
	if r.protocolType != "" {
		pt := r.protocolType
		resp.ProtocolType = &pt
	}
	if r.protocol != "" {
		p := r.protocol
		resp.Protocol = &p
	}
	if r.assignment != nil {
		resp.MemberAssignment = r.assignment
	}
	return resp
}

func (g *group) hasAllMembersJoined() bool {
	return len(g.members) == g.awaitingJoin && len(g.pending) == 0
}

// rebalanceTimeout is the largest rebalance timeout of the members.
func (g *group) rebalanceTimeout() time.Duration {
	var ms int32
	for _, m := range g.members {
		ms = max(ms, m.rebalanceTimeout)
	}
	return time.Duration(ms) * time.Millisecond
}

// memberMetadata lists the members with their metadata for the chosen
// protocol, for the leader's JoinGroup answer.
func (g *group) memberMetadata() []kmsg.JoinGroupResponseMember {
	out := make([]kmsg.JoinGroupResponseMember, 0, len(g.members))
	for _, id := range g.order {
		m := g.members[id]
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = m.id
		jm.InstanceID = m.instanceID
		jm.ProtocolMetadata = m.metadataFor(g.protocol)
		out = append(out, jm)
	}
	return out
}

// computeSubscribed parses the consumer protocol subscriptions of a
// consumer group, as Kafka does to decide which offsets may expire or be
// deleted while the group is active. Unknown (nil) for other protocol
// types or if any subscription does not parse.
func (g *group) computeSubscribed() {
	g.subscribed = nil
	if g.protocolType != consumerProtocolType {
		return
	}
	topics := map[string]bool{}
	for _, m := range g.members {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.metadataFor(g.protocol)); err != nil {
			return
		}
		for _, t := range md.Topics {
			topics[t] = true
		}
	}
	g.subscribed = topics
}

// hasOffsets reports committed or pending offsets.
func (g *group) hasOffsets() bool {
	return len(g.offsets) > 0 || len(g.pendingCommits) > 0
}

// unload makes the group Dead because this broker no longer coordinates
// it: waiting requests are answered NOT_COORDINATOR and timers stop.
func (g *group) unload() {
	prev := g.state
	g.state = Dead
	if prev != Dead {
		g.c.logger.Debug("group unloaded", "group", g.id, "state", prev, "generation", g.generation)
	}
	for _, m := range g.members {
		// Joins wait only in PreparingRebalance and syncs only after it,
		// but whatever waits is answered: no connection stays stuck.
		g.completeJoin(m, joinResult{err: kerr.NotCoordinator, memberID: m.id})
		g.completeSync(m, syncResult{err: kerr.NotCoordinator})
		m.hb.stop()
		m.hb = nil
	}
	for id, t := range g.pending {
		t.stop()
		delete(g.pending, id)
	}
	g.joinTimer.stop()
	g.joinTimer = nil
	g.syncTimer.stop()
	g.syncTimer = nil
}

// die makes an Empty group Dead (deleted, or its last offsets expired).
// The caller drops it from its shard afterwards (Coordinator.forget).
func (g *group) die() {
	g.unload()
	g.members = map[string]*member{}
	g.order = nil
	g.offsets = map[topicPartition]*offset{}
}

// groupMetadataValue is the group's record value, with the members'
// subscriptions for the chosen protocol and the given assignments.
func (g *group) metadataValue(assignments map[string][]byte) []byte {
	v := kmsg.NewGroupMetadataValue()
	v.Version = groupValueVersion
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	if g.protocol != "" {
		p := g.protocol
		v.Protocol = &p
	}
	if g.leader != "" {
		l := g.leader
		v.Leader = &l
	}
	v.CurrentStateTimestamp = g.stateTimestamp
	for _, id := range g.order {
		m := g.members[id]
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID = m.id
		vm.InstanceID = m.instanceID
		vm.ClientID = m.clientID
		vm.ClientHost = m.clientHost
		vm.RebalanceTimeoutMillis = m.rebalanceTimeout
		vm.SessionTimeoutMillis = m.sessionTimeout
		vm.Subscription = m.metadataFor(g.protocol)
		vm.Assignment = assignments[m.id]
		if vm.Subscription == nil {
			vm.Subscription = []byte{}
		}
		if vm.Assignment == nil {
			vm.Assignment = []byte{}
		}
		v.Members = append(v.Members, vm)
	}
	return v.AppendTo(nil)
}

// currentAssignments maps each member to its assignment.
func (g *group) currentAssignments() map[string][]byte {
	out := make(map[string][]byte, len(g.members))
	for id, m := range g.members {
		out[id] = m.assignment
	}
	return out
}

// appendRecords appends records to the group's partition and calls done
// with g.mu held once they are committed or failed: at once when the
// append is already committed (one broker), else from a goroutine that
// waits for the high watermark. The caller holds g.mu.
func (g *group) appendRecords(recs []Record, done func(first int64, err error)) {
	c := g.c
	ap, err := c.cfg.Log.Append(g.shard.index, g.shard.epoch.Load(), recs)
	if err != nil {
		done(-1, err)
		return
	}
	if ap.Done || ap.Wait == nil {
		done(ap.FirstOffset, nil)
		return
	}
	c.goAsync(func(ctx context.Context) {
		err := ap.Wait(ctx)
		g.mu.Lock()
		defer g.mu.Unlock()
		done(ap.FirstOffset, err)
	})
}
