package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SyncGroup handles SyncGroup. In CompletingRebalance every member waits
// for the leader's assignment, which is stored in __consumer_offsets
// before anyone gets it and the group becomes Stable; in Stable a member
// gets its current assignment at once.
func (c *Coordinator) SyncGroup(in *kmsg.SyncGroupRequest, version int16) *Result[*kmsg.SyncGroupResponse] {
	fail := func(err *kerr.Error) *Result[*kmsg.SyncGroupResponse] {
		return resultOf(syncResponse(version, syncResult{err: err}))
	}
	if in.Group == "" {
		return fail(kerr.InvalidGroupID)
	}
	g, err := c.lockGroup(in.Group, false)
	if err != nil {
		return fail(kerrOf(err))
	}
	if g == nil {
		return fail(kerr.UnknownMemberID)
	}
	defer g.mu.Unlock()
	if err := g.validateMember(in.MemberID, in.InstanceID); err != nil {
		return fail(err)
	}
	if in.Generation != g.generation {
		return fail(kerr.IllegalGeneration)
	}
	if (in.ProtocolType != nil && *in.ProtocolType != g.protocolType) || (in.Protocol != nil && *in.Protocol != g.protocol) {
		return fail(kerr.InconsistentGroupProtocol)
	}
	m := g.members[in.MemberID]
	switch g.state {
	case PreparingRebalance:
		return fail(kerr.RebalanceInProgress)
	case Stable:
		delete(g.pendingSync, m.id)
		g.scheduleHeartbeat(m, time.Duration(m.sessionTimeout)*time.Millisecond)
		return resultOf(syncResponse(version, syncResult{protocolType: g.protocolType, protocol: g.protocol, assignment: m.assignment}))
	case CompletingRebalance:
	default: // Empty
		return fail(kerr.UnknownMemberID)
	}

	// A SyncGroup the client already gave up on is answered first.
	g.completeSync(m, syncResult{err: kerr.RebalanceInProgress})
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	m.sync, m.syncVersion = ch, version
	delete(g.pendingSync, m.id)
	if !g.isLeader(m.id) {
		return resultFrom(ch)
	}
	assignments := make(map[string][]byte, len(g.members))
	for _, a := range in.GroupAssignment {
		if g.has(a.MemberID) {
			assignments[a.MemberID] = a.MemberAssignment
		}
	}
	var missing int
	for id := range g.members {
		if _, ok := assignments[id]; !ok {
			assignments[id] = []byte{}
			missing++
		}
	}
	if missing > 0 {
		g.c.logger.Warn("leader's assignment leaves members without one; they get an empty assignment",
			"group", g.id, "generation", g.generation, "members.without", missing)
	}
	gen := g.generation
	g.storeGroup(assignments, func(err *kerr.Error) {
		// A member may have joined or left while the store was being
		// replicated; then the group has moved on and this is moot.
		if g.state != CompletingRebalance || g.generation != gen {
			return
		}
		if err != nil {
			g.resetAndPropagateAssignmentError(err)
			g.maybePrepareRebalance("storing the assignment of generation failed")
			return
		}
		for id, a := range assignments {
			if m := g.members[id]; m != nil {
				m.assignment = a
			}
		}
		g.propagateAssignment(nil)
		g.transition(Stable)
		g.c.logger.Info("group stable", "group", g.id, "generation", g.generation, "members", len(g.members))
	})
	return resultFrom(ch)
}

// Heartbeat handles Heartbeat: it restarts the member's session and tells
// it whether a rebalance is under way.
func (c *Coordinator) Heartbeat(in *kmsg.HeartbeatRequest, version int16) *kmsg.HeartbeatResponse {
	resp := kmsg.NewPtrHeartbeatResponse()
	resp.Version = version
	if err := c.heartbeat(in); err != nil {
		resp.ErrorCode = err.Code
	}
	return resp
}

func (c *Coordinator) heartbeat(in *kmsg.HeartbeatRequest) *kerr.Error {
	if in.Group == "" {
		return kerr.InvalidGroupID
	}
	g, err := c.lockGroup(in.Group, false)
	if err != nil {
		return kerrOf(err)
	}
	if g == nil {
		return kerr.UnknownMemberID
	}
	defer g.mu.Unlock()
	if err := g.validateMember(in.MemberID, in.InstanceID); err != nil {
		return err
	}
	if in.Generation != g.generation {
		return kerr.IllegalGeneration
	}
	m := g.members[in.MemberID]
	switch g.state {
	case CompletingRebalance, Stable:
		// Clients may heartbeat as soon as they have the JoinGroup answer.
		g.scheduleHeartbeat(m, time.Duration(m.sessionTimeout)*time.Millisecond)
		return nil
	case PreparingRebalance:
		g.scheduleHeartbeat(m, time.Duration(m.sessionTimeout)*time.Millisecond)
		return kerr.RebalanceInProgress
	}
	return kerr.UnknownMemberID // Empty
}

// LeaveGroup handles LeaveGroup: members leave (v3+: several at once,
// and by group.instance.id alone, which is how an administrator removes a
// static member), and the group rebalances without them.
func (c *Coordinator) LeaveGroup(in *kmsg.LeaveGroupRequest, version int16) *kmsg.LeaveGroupResponse {
	resp := kmsg.NewPtrLeaveGroupResponse()
	resp.Version = version
	leaving := in.Members
	if version < 3 {
		m := kmsg.NewLeaveGroupRequestMember()
		m.MemberID = in.MemberID
		leaving = []kmsg.LeaveGroupRequestMember{m}
	}
	codes, top := c.leave(in.Group, leaving)
	if version < 3 {
		// One member: its error is the answer.
		resp.ErrorCode = top
		if top == 0 && len(codes) > 0 {
			resp.ErrorCode = codes[0]
		}
		return resp
	}
	resp.ErrorCode = top
	if top != 0 {
		return resp
	}
	for i, lm := range leaving {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID, rm.ErrorCode = lm.MemberID, lm.InstanceID, codes[i]
		resp.Members = append(resp.Members, rm)
	}
	return resp
}

// leave removes members; it returns a code per member, or a group-level
// code.
func (c *Coordinator) leave(id string, leaving []kmsg.LeaveGroupRequestMember) ([]int16, int16) {
	if id == "" {
		return nil, kerr.InvalidGroupID.Code
	}
	codes := make([]int16, len(leaving))
	g, err := c.lockGroup(id, false)
	if err != nil {
		return nil, kerrOf(err).Code
	}
	if g == nil {
		for i := range codes {
			codes[i] = kerr.UnknownMemberID.Code
		}
		return codes, 0
	}
	defer g.mu.Unlock()
	for i, lm := range leaving {
		reason := "left the group"
		if lm.Reason != nil && *lm.Reason != "" {
			reason += ": " + *lm.Reason
		}
		switch {
		case lm.MemberID == "":
			// Removal of a static member by its instance id alone.
			cur, ok := "", false
			if lm.InstanceID != nil {
				cur, ok = g.static[*lm.InstanceID]
			}
			if !ok {
				codes[i] = kerr.UnknownMemberID.Code
				continue
			}
			g.c.logger.Info("static member removed by LeaveGroup", "group", g.id, "group.instance.id", *lm.InstanceID, "member", cur)
			g.removeMemberAndUpdate(g.members[cur], "static member "+cur+" "+reason)
		case g.pending[lm.MemberID] != nil:
			g.remove(lm.MemberID)
			if g.state == PreparingRebalance {
				g.tryCompleteJoin()
			}
		default:
			if err := g.validateMember(lm.MemberID, lm.InstanceID); err != nil {
				codes[i] = err.Code
				continue
			}
			g.c.logger.Info("member left the group", "group", g.id, "member", lm.MemberID)
			g.removeMemberAndUpdate(g.members[lm.MemberID], "member "+lm.MemberID+" "+reason)
		}
	}
	return codes, 0
}
