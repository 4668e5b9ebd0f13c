package group

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// joinRequest is a JoinGroup request, version-normalized.
type joinRequest struct {
	version          int16
	memberID         string
	instanceID       *string
	clientID         string
	clientHost       string
	sessionTimeout   int32
	rebalanceTimeout int32
	protocolType     string
	protocols        []protocol
	reason           string
}

// recordOverhead bounds what a group metadata record adds to a member's
// protocol metadata (batch and record headers, key, the member's ids and
// timeouts), for the oversized-metadata check.
const recordOverhead = 1024

// JoinGroup handles JoinGroup, following Kafka's GroupCoordinator: the
// coordinator checks, then the session timeout, then the group (created
// for a member without an id), then the new-member or known-member path.
// The answer comes when the join phase ends (or at once for an error, for
// MEMBER_ID_REQUIRED, or for a member that is already in the current
// generation).
func (c *Coordinator) JoinGroup(in *kmsg.JoinGroupRequest, version int16, clientID, clientHost string) *Result[*kmsg.JoinGroupResponse] {
	fail := func(err *kerr.Error) *Result[*kmsg.JoinGroupResponse] {
		return resultOf(joinResponse(version, joinResult{err: err, memberID: in.MemberID}))
	}
	if in.Group == "" {
		return fail(kerr.InvalidGroupID)
	}
	if err := c.checkShard(in.Group); err != nil {
		return fail(kerrOf(err))
	}
	lo, hi := c.cfg.MinSessionTimeout.Milliseconds(), c.cfg.MaxSessionTimeout.Milliseconds()
	if s := int64(in.SessionTimeoutMillis); s < lo || s > hi {
		return fail(kerr.InvalidSessionTimeout)
	}
	req := joinRequest{
		version:          version,
		memberID:         in.MemberID,
		instanceID:       in.InstanceID,
		clientID:         clientID,
		clientHost:       clientHost,
		sessionTimeout:   in.SessionTimeoutMillis,
		rebalanceTimeout: in.RebalanceTimeoutMillis,
		protocolType:     in.ProtocolType,
	}
	if version == 0 {
		// v0 has no rebalance timeout; Kafka uses the session timeout.
		req.rebalanceTimeout = in.SessionTimeoutMillis
	}
	if in.Reason != nil {
		req.reason = *in.Reason
	}
	for _, p := range in.Protocols {
		if c.cfg.MaxRecordBytes > 0 && len(p.Metadata)+len(in.Group)+2*len(clientID)+recordOverhead > c.cfg.MaxRecordBytes {
			// Kafka accepts such a member and fails every SyncGroup of the
			// group with UNKNOWN_SERVER_ERROR when the assignment cannot be
			// stored, rebalancing forever. Refusing the member alone, with
			// the code Kafka gives for an unstorable group record, leaves
			// the group unharmed.
			c.logger.Warn("JoinGroup refused: member metadata too large to store",
				"group", in.Group, "client", clientID, "protocol", p.Name, "bytes", len(p.Metadata), "max.message.bytes", c.cfg.MaxRecordBytes)
			return fail(kerr.UnknownServerError)
		}
		req.protocols = append(req.protocols, protocol{name: p.Name, metadata: p.Metadata})
	}

	unknown := in.MemberID == ""
	g, err := c.lockGroup(in.Group, unknown)
	if err != nil {
		return fail(kerrOf(err))
	}
	if g == nil {
		return fail(kerr.UnknownMemberID)
	}
	defer g.mu.Unlock()
	w := newWaiter(version)
	if unknown {
		g.joinNew(&req, w)
	} else {
		g.joinKnown(&req, w)
	}
	if g.state == PreparingRebalance {
		g.tryCompleteJoin()
	}
	return resultFrom(w.ch)
}

// reply answers a JoinGroup that does not wait.
func (w waiter) reply(r joinResult) { w.ch <- joinResponse(w.version, r) }

// joinNew is a member without an id: it gets one, and (v4+, dynamic
// members) must come back with it before it joins (KIP-394).
func (g *group) joinNew(req *joinRequest, w waiter) {
	if g.state == Dead {
		w.reply(joinResult{err: kerr.CoordinatorNotAvailable})
		return
	}
	if !g.supportsProtocols(req.protocolType, req.protocols) {
		w.reply(joinResult{err: kerr.InconsistentGroupProtocol})
		return
	}
	if req.instanceID != nil {
		id := newMemberID(*req.instanceID)
		if oldID, ok := g.static[*req.instanceID]; ok {
			g.replaceStaticMember(req, oldID, id, w)
		} else {
			g.addMemberAndRebalance(req, id, w)
		}
		return
	}
	id := newMemberID(req.clientID)
	if req.version >= 4 {
		g.pending[id] = g.c.sched.after(time.Duration(req.sessionTimeout)*time.Millisecond, func(t *timer) { g.onPendingExpired(id, t) })
		w.reply(joinResult{err: kerr.MemberIDRequired, memberID: id})
		return
	}
	g.addMemberAndRebalance(req, id, w)
}

// joinKnown is a member that names its id.
func (g *group) joinKnown(req *joinRequest, w waiter) {
	id := req.memberID
	if g.state == Dead {
		w.reply(joinResult{err: kerr.CoordinatorNotAvailable, memberID: id})
		return
	}
	if !g.supportsProtocols(req.protocolType, req.protocols) {
		w.reply(joinResult{err: kerr.InconsistentGroupProtocol, memberID: id})
		return
	}
	if _, ok := g.pending[id]; ok {
		if req.instanceID != nil {
			// Pending ids are only handed to dynamic members.
			w.reply(joinResult{err: kerr.UnknownMemberID, memberID: id})
			return
		}
		g.addMemberAndRebalance(req, id, w)
		return
	}
	if err := g.validateMember(id, req.instanceID); err != nil {
		w.reply(joinResult{err: err, memberID: id})
		return
	}
	m := g.members[id]
	switch g.state {
	case PreparingRebalance:
		g.updateMemberAndRebalance(m, req, w, "member "+id+" rejoined during PreparingRebalance")
	case CompletingRebalance:
		if m.matches(req.protocols) {
			// It lost the answer to its JoinGroup: give it again.
			w.reply(g.currentJoinResult(m, g.isLeader(id)))
		} else {
			g.updateMemberAndRebalance(m, req, w, "member "+id+" changed its metadata during CompletingRebalance")
		}
	case Stable:
		switch {
		case g.isLeader(id):
			// A leader's JoinGroup is how a client asks for a rebalance
			// its metadata does not show (topics changed, for consumers).
			g.updateMemberAndRebalance(m, req, w, "leader "+id+" rejoined during Stable")
		case !m.matches(req.protocols):
			g.updateMemberAndRebalance(m, req, w, "member "+id+" changed its metadata during Stable")
		default:
			w.reply(g.currentJoinResult(m, false))
		}
	default: // Empty: a known id cannot be in an empty group.
		w.reply(joinResult{err: kerr.UnknownMemberID, memberID: id})
	}
}

// currentJoinResult is the answer for the current generation.
func (g *group) currentJoinResult(m *member, withMembers bool) joinResult {
	r := joinResult{
		memberID:     m.id,
		generation:   g.generation,
		protocolType: g.protocolType,
		protocol:     g.protocol,
		leader:       g.leader,
	}
	if withMembers {
		r.members = g.memberMetadata()
	}
	return r
}

// validateMember checks that a member id is in the group and, for a
// static member, that its instance id maps to it (else the member is a
// stale incarnation: FENCED_INSTANCE_ID).
func (g *group) validateMember(id string, instanceID *string) *kerr.Error {
	if instanceID != nil {
		cur, ok := g.static[*instanceID]
		switch {
		case !ok:
			return kerr.UnknownMemberID
		case cur != id:
			g.c.logger.Info("fenced a stale static member", "group", g.id, "group.instance.id", *instanceID, "member", id, "current", cur)
			return kerr.FencedInstanceID
		}
		return nil
	}
	if !g.has(id) {
		return kerr.UnknownMemberID
	}
	return nil
}

// addMemberAndRebalance adds a member that waits for the join phase.
func (g *group) addMemberAndRebalance(req *joinRequest, id string, w waiter) {
	m := &member{
		id:               id,
		instanceID:       req.instanceID,
		clientID:         req.clientID,
		clientHost:       req.clientHost,
		sessionTimeout:   req.sessionTimeout,
		rebalanceTimeout: req.rebalanceTimeout,
		protocolType:     req.protocolType,
		protocols:        req.protocols,
		isNew:            true,
	}
	g.add(m, w)
	if g.state == PreparingRebalance && g.generation == 0 {
		g.newMemberAdded = true
	}
	// A new member has no id to heartbeat with until the join phase ends,
	// and its waiting JoinGroup keeps its connection from telling us it is
	// gone; a client that timed out and retried would leave it behind. It
	// expires unless the join phase ends within NewMemberJoinTimeout.
	g.scheduleHeartbeat(m, g.c.cfg.NewMemberJoinTimeout)
	reason := "adding new member " + id
	if req.reason != "" {
		reason += " with reason: " + req.reason
	}
	g.maybePrepareRebalance(reason)
}

// updateMemberAndRebalance makes a known member wait for a (new) join
// phase with its new protocols.
func (g *group) updateMemberAndRebalance(m *member, req *joinRequest, w waiter, reason string) {
	g.update(m, req.protocols, req.rebalanceTimeout, req.sessionTimeout, w)
	if req.reason != "" {
		reason += " with reason: " + req.reason
	}
	g.maybePrepareRebalance(reason)
}

// replaceStaticMember lets a restarted static member take over its old
// member id's place (KIP-345). In Stable, when the protocol the group
// uses does not change, it gets the current generation and its old
// assignment without a rebalance; the old incarnation is fenced.
func (g *group) replaceStaticMember(req *joinRequest, oldID, newID string, w waiter) {
	m := g.members[oldID]
	currentLeader := g.leader
	// Fence whatever the old incarnation still has waiting.
	g.completeJoin(m, joinResult{err: kerr.FencedInstanceID, memberID: oldID})
	g.completeSync(m, syncResult{err: kerr.FencedInstanceID})
	g.renameMember(m, newID)
	m.clientID, m.clientHost = req.clientID, req.clientHost
	g.scheduleHeartbeat(m, time.Duration(m.sessionTimeout)*time.Millisecond)
	oldProtocols := m.protocols
	// As Kafka does, the member keeps its previous timeouts until the
	// next rebalance.
	g.update(m, req.protocols, m.rebalanceTimeout, m.sessionTimeout, w)
	g.c.logger.Info("static member rejoined", "group", g.id, "group.instance.id", *req.instanceID,
		"old.member", oldID, "member", newID, "state", g.state)

	switch g.state {
	case Stable:
		if g.selectProtocol() != g.protocol {
			g.maybePrepareRebalance("static member " + newID + " rejoined with a change of protocol")
			return
		}
		gen := g.generation
		g.storeGroup(g.currentAssignments(), func(err *kerr.Error) {
			if g.members[newID] != m {
				return // gone since; whoever removed it answered it
			}
			if err != nil {
				// Put the old incarnation back, as Kafka does.
				g.completeJoin(m, joinResult{err: err, memberID: newID})
				g.renameMember(m, oldID)
				g.update(m, oldProtocols, m.rebalanceTimeout, m.sessionTimeout, waiter{})
				return
			}
			if g.generation != gen {
				return // a rebalance started meanwhile and will answer it
			}
			r := joinResult{
				memberID:     newID,
				generation:   g.generation,
				protocolType: g.protocolType,
				protocol:     g.protocol,
				// Before v9 the leader as it was before the rejoin, as
				// Kafka answers (a restarted static leader finds itself
				// named by its old id; clients know that).
				leader: currentLeader,
			}
			if g.isLeader(newID) && m.joinVersion >= 9 {
				// KIP-814: the leader is told it leads, learns the
				// members, and need not assign: its SyncGroup gets the
				// current assignment.
				r.leader = newID
				r.members = g.memberMetadata()
				r.skipAssignment = true
			}
			g.completeJoin(m, r)
		})
	case CompletingRebalance:
		g.maybePrepareRebalance("static member " + newID + " rejoined during CompletingRebalance")
	case PreparingRebalance:
		// It waits for the join phase with everyone else.
	}
}

// renameMember moves a member to a new id, keeping its place, leadership,
// instance id and pending sync.
func (g *group) renameMember(m *member, id string) {
	old := m.id
	delete(g.members, old)
	m.id = id
	g.members[id] = m
	if i := slices.Index(g.order, old); i >= 0 {
		g.order[i] = id
	}
	if g.leader == old {
		g.leader = id
	}
	if m.instanceID != nil {
		g.static[*m.instanceID] = id
	}
	if g.pendingSync[old] {
		delete(g.pendingSync, old)
		g.pendingSync[id] = true
	}
}

// maybePrepareRebalance starts a rebalance from a state that allows one.
func (g *group) maybePrepareRebalance(reason string) {
	switch g.state {
	case Stable, CompletingRebalance, Empty:
		g.prepareRebalance(reason)
	}
}

// prepareRebalance moves the group to PreparingRebalance: members waiting
// for an assignment are told REBALANCE_IN_PROGRESS, and the join phase
// ends when every member has rejoined or the rebalance timeout passes. A
// group that was empty first waits group.initial.rebalance.delay.ms so
// that members starting together land in one generation.
func (g *group) prepareRebalance(reason string) {
	if g.state == CompletingRebalance {
		g.resetAndPropagateAssignmentError(kerr.RebalanceInProgress)
	}
	g.syncTimer.stop()
	g.syncTimer = nil
	clear(g.pendingSync)
	wasEmpty := g.state == Empty
	timeout := g.rebalanceTimeout()
	g.transition(PreparingRebalance)
	g.c.logger.Info("preparing to rebalance group", "group", g.id, "generation", g.generation, "members", len(g.members), "reason", reason)
	g.joinTimer.stop()
	if wasEmpty {
		delay := g.c.cfg.InitialRebalanceDelay
		g.initialDelay = true
		g.initialDelayRemaining = max(timeout-delay, 0)
		g.joinTimer = g.c.sched.after(delay, func(t *timer) { g.onInitialDelay(t, delay) })
		return
	}
	g.initialDelay = false
	g.joinTimer = g.c.sched.after(timeout, g.onJoinTimeout)
	g.tryCompleteJoin()
}

// tryCompleteJoin ends the join phase once every member has rejoined and
// no pending member is outstanding. The initial delay is never cut short.
func (g *group) tryCompleteJoin() {
	if g.state != PreparingRebalance || g.initialDelay || !g.hasAllMembersJoined() {
		return
	}
	g.joinTimer.stop()
	g.joinTimer = nil
	g.completeJoinPhase()
}

func (g *group) onJoinTimeout(t *timer) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.joinTimer != t || g.state != PreparingRebalance {
		return
	}
	g.joinTimer = nil
	g.completeJoinPhase()
}

// onInitialDelay ends an initial delay, or extends it by another delay
// (within the rebalance timeout) when members kept arriving, as Kafka's
// InitialDelayedJoin does.
func (g *group) onInitialDelay(t *timer, delay time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.joinTimer != t || g.state != PreparingRebalance {
		return
	}
	if g.newMemberAdded && g.initialDelayRemaining > 0 {
		g.newMemberAdded = false
		next := min(g.c.cfg.InitialRebalanceDelay, g.initialDelayRemaining)
		g.initialDelayRemaining = max(g.initialDelayRemaining-delay, 0)
		g.joinTimer = g.c.sched.after(next, func(t *timer) { g.onInitialDelay(t, next) })
		return
	}
	g.joinTimer = nil
	g.initialDelay = false
	g.completeJoinPhase()
}

// completeJoinPhase ends the join phase: dynamic members that did not
// rejoin are removed, a leader that did not rejoin is replaced by one that
// did, and the next generation starts (CompletingRebalance, answering every
// JoinGroup, or Empty with the empty group stored).
func (g *group) completeJoinPhase() {
	g.initialDelay = false
	for _, id := range slices.Clone(g.order) {
		if m := g.members[id]; m.join == nil && !m.isStatic() {
			g.c.logger.Info("member did not rejoin in time; removing it", "group", g.id, "member", id)
			g.completeSync(m, syncResult{err: kerr.UnknownMemberID})
			g.remove(id)
		}
	}
	if g.state == Dead {
		return
	}
	if !g.electJoinedLeader() && len(g.members) > 0 {
		// Only static members that have not rejoined remain: wait for
		// them, or for their sessions to end.
		g.c.logger.Warn("group could not complete rebalance because no members rejoined", "group", g.id)
		g.joinTimer = g.c.sched.after(g.rebalanceTimeout(), g.onJoinTimeout)
		return
	}
	g.initNextGeneration()
	if g.state == Empty {
		g.c.logger.Info("group is empty", "group", g.id, "generation", g.generation)
		gen := g.generation
		g.storeGroup(nil, func(err *kerr.Error) {
			if err != nil {
				g.c.logger.Warn("storing empty group failed", "group", g.id, "generation", gen, "err", err)
			}
		})
		return
	}
	g.c.logger.Info("group rebalanced", "group", g.id, "generation", g.generation, "protocol", g.protocol,
		"members", len(g.members), "leader", g.leader)
	members := g.memberMetadata()
	for _, id := range g.order {
		m := g.members[id]
		r := joinResult{
			memberID:     id,
			generation:   g.generation,
			protocolType: g.protocolType,
			protocol:     g.protocol,
			leader:       g.leader,
		}
		if g.isLeader(id) {
			r.members = members
		}
		g.completeJoin(m, r)
		g.scheduleHeartbeat(m, time.Duration(m.sessionTimeout)*time.Millisecond)
		m.isNew = false
		g.pendingSync[id] = true
	}
	gen := g.generation
	g.syncTimer = g.c.sched.after(g.rebalanceTimeout(), func(t *timer) { g.onSyncTimeout(t, gen) })
}

// electJoinedLeader keeps the leader if it rejoined, else picks a member
// that did. It reports false when no member rejoined.
func (g *group) electJoinedLeader() bool {
	if g.leader == "" {
		return false
	}
	if g.members[g.leader].join != nil {
		return true
	}
	for _, id := range g.order {
		if g.members[id].join != nil {
			g.leader = id
			return true
		}
	}
	return false
}

// initNextGeneration bumps the generation and picks the protocol.
func (g *group) initNextGeneration() {
	g.generation++
	if len(g.members) > 0 {
		g.protocol = g.selectProtocol()
		g.transition(CompletingRebalance)
	} else {
		g.protocol = ""
		g.transition(Empty)
	}
	g.computeSubscribed()
	clear(g.pendingSync)
}

// onSyncTimeout removes the members that have not sent SyncGroup within
// the rebalance timeout after the join phase, and rebalances without them.
func (g *group) onSyncTimeout(t *timer, gen int32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.syncTimer != t {
		return
	}
	g.syncTimer = nil
	if gen != g.generation || (g.state != CompletingRebalance && g.state != Stable) || len(g.pendingSync) == 0 {
		return
	}
	var ids []string
	for id := range g.pendingSync {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if m := g.members[id]; m != nil {
			g.completeJoin(m, joinResult{err: kerr.UnknownMemberID})
			g.completeSync(m, syncResult{err: kerr.UnknownMemberID})
		}
		g.remove(id)
	}
	g.prepareRebalance("members " + joinIDs(ids) + " did not send SyncGroup in time")
}

func joinIDs(ids []string) string {
	s := ""
	for i, id := range ids {
		if i > 0 {
			s += ", "
		}
		s += id
	}
	return s
}

// scheduleHeartbeat (re)starts a member's session timer.
func (g *group) scheduleHeartbeat(m *member, d time.Duration) {
	m.hb.stop()
	m.hb = g.c.sched.after(d, func(t *timer) { g.onHeartbeatExpired(m, t) })
}

// onHeartbeatExpired removes a member whose session ended without a
// heartbeat. Members waiting in JoinGroup or SyncGroup are exempt (the
// rebalance and sync timeouts cover them), except new members, whose
// timer is the new-member join timeout.
func (g *group) onHeartbeatExpired(m *member, t *timer) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if m.hb != t || g.members[m.id] != m || g.state == Dead {
		return
	}
	m.hb = nil
	if !m.isNew && (m.join != nil || m.sync != nil) {
		return
	}
	g.c.logger.Info("member session expired; removing it from the group", "group", g.id, "member", m.id,
		"session.timeout.ms", m.sessionTimeout, "state", g.state)
	g.removeMemberAndUpdate(m, "member "+m.id+" expired")
}

// onPendingExpired forgets a member id handed out with MEMBER_ID_REQUIRED
// that never came back.
func (g *group) onPendingExpired(id string, t *timer) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.pending[id] != t {
		return
	}
	delete(g.pending, id)
	g.c.logger.Debug("pending member expired", "group", g.id, "member", id)
	if g.state == PreparingRebalance {
		g.tryCompleteJoin()
	}
}

// removeMemberAndUpdate removes a member (it left, or its session
// expired) and moves the group on: a rebalance from Stable or
// CompletingRebalance, perhaps the end of the join phase from
// PreparingRebalance.
func (g *group) removeMemberAndUpdate(m *member, reason string) {
	g.completeJoin(m, joinResult{err: kerr.UnknownMemberID})
	g.completeSync(m, syncResult{err: kerr.UnknownMemberID})
	g.remove(m.id)
	switch g.state {
	case Stable, CompletingRebalance:
		g.maybePrepareRebalance(reason)
	case PreparingRebalance:
		g.tryCompleteJoin()
	}
}

// storeGroup appends the group's metadata with these assignments and
// calls done (with g.mu held) once it is committed or failed, with the
// code Kafka answers a failed store with.
func (g *group) storeGroup(assignments map[string][]byte, done func(err *kerr.Error)) {
	rec := Record{Timestamp: g.c.cfg.Now().UnixMilli(), Key: groupKey(g.id), Value: g.metadataValue(assignments)}
	g.appendRecords([]Record{rec}, func(_ int64, err error) {
		if err != nil {
			g.c.logger.Warn("storing group metadata failed", "group", g.id, "generation", g.generation, "err", err)
			done(appendGroupError(err))
			return
		}
		done(nil)
	})
}

// resetAndPropagateAssignmentError clears assignments and answers every
// waiting SyncGroup with err.
func (g *group) resetAndPropagateAssignmentError(err *kerr.Error) {
	for _, m := range g.members {
		m.assignment = nil
	}
	g.propagateAssignment(err)
}

// propagateAssignment answers every waiting SyncGroup, with the member's
// assignment when err is nil, and restarts the session of those answered.
func (g *group) propagateAssignment(err *kerr.Error) {
	for _, id := range g.order {
		m := g.members[id]
		r := syncResult{err: err}
		if err == nil {
			r.protocolType, r.protocol, r.assignment = g.protocolType, g.protocol, m.assignment
		}
		if g.completeSync(m, r) {
			g.scheduleHeartbeat(m, time.Duration(m.sessionTimeout)*time.Millisecond)
		}
	}
}
