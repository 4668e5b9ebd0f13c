package group

import (
	"sort"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupOperations is the authorized-operations bit set DescribeGroups v3+
// reports when asked: READ, DELETE and DESCRIBE, the ACL operations Kafka
// defines on a group (there are no ACLs here, so every one is allowed).
const groupOperations = 1<<3 | 1<<6 | 1<<8

// classicGroupType is the group type ListGroups v5 reports; KIP-848
// consumer groups do not exist here.
const classicGroupType = "classic"

// DescribeGroups handles DescribeGroups. An unknown group is described as
// Dead with no error, as Kafka does. Member metadata and assignments are
// only given in Stable, when they are settled.
func (c *Coordinator) DescribeGroups(in *kmsg.DescribeGroupsRequest, version int16) *kmsg.DescribeGroupsResponse {
	resp := kmsg.NewPtrDescribeGroupsResponse()
	resp.Version = version
	for _, id := range in.Groups {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group = id
		rg.Members = []kmsg.DescribeGroupsResponseGroupMember{}
		if in.IncludeAuthorizedOperations {
			rg.AuthorizedOperations = groupOperations
		}
		g, err := c.lockGroup(id, false)
		switch {
		case err != nil:
			rg.ErrorCode = kerrOf(err).Code
		case g == nil:
			rg.State = Dead.String()
		default:
			g.describe(&rg)
			g.mu.Unlock()
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

func (g *group) describe(rg *kmsg.DescribeGroupsResponseGroup) {
	rg.State = g.state.String()
	rg.ProtocolType = g.protocolType
	stable := g.state == Stable
	if stable {
		rg.Protocol = g.protocol
	}
	for _, id := range g.order {
		m := g.members[id]
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID, dm.InstanceID, dm.ClientID, dm.ClientHost = m.id, m.instanceID, m.clientID, m.clientHost
		dm.ProtocolMetadata, dm.MemberAssignment = []byte{}, []byte{}
		if stable {
			if md := m.metadataFor(g.protocol); md != nil {
				dm.ProtocolMetadata = md
			}
			if m.assignment != nil {
				dm.MemberAssignment = m.assignment
			}
		}
		rg.Members = append(rg.Members, dm)
	}
}

// ListGroups handles ListGroups: every group this broker coordinates,
// filtered by state (v4+, case-insensitive, as Kafka) and type (v5+).
// While a partition is loading the answer says COORDINATOR_LOAD_IN_PROGRESS
// and lists what is loaded.
func (c *Coordinator) ListGroups(in *kmsg.ListGroupsRequest, version int16) *kmsg.ListGroupsResponse {
	resp := kmsg.NewPtrListGroupsResponse()
	resp.Version = version
	resp.Groups = []kmsg.ListGroupsResponseGroup{}
	if c.closed.Load() {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp
	}
	gs, loading := c.loadedGroups()
	if loading {
		resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
	}
	states := map[string]bool{}
	for _, s := range in.StatesFilter {
		states[strings.ToLower(s)] = true
	}
	if len(in.TypesFilter) > 0 {
		classic := false
		for _, t := range in.TypesFilter {
			classic = classic || strings.EqualFold(t, classicGroupType)
		}
		if !classic {
			return resp
		}
	}
	for _, g := range gs {
		g.mu.Lock()
		state, pt := g.state, g.protocolType
		g.mu.Unlock()
		if state == Dead || (len(states) > 0 && !states[strings.ToLower(state.String())]) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = g.id, pt, state.String(), classicGroupType
		resp.Groups = append(resp.Groups, lg)
	}
	sort.Slice(resp.Groups, func(i, j int) bool { return resp.Groups[i].Group < resp.Groups[j].Group })
	return resp
}

// DeleteGroups handles DeleteGroups: an empty group is deleted with all its
// offsets (tombstones for each and for the group); a group with members is
// NON_EMPTY_GROUP; an unknown one GROUP_ID_NOT_FOUND. The answer comes once
// the tombstones are committed.
func (c *Coordinator) DeleteGroups(in *kmsg.DeleteGroupsRequest, version int16) *Result[*kmsg.DeleteGroupsResponse] {
	resp := kmsg.NewPtrDeleteGroupsResponse()
	resp.Version = version
	resp.Groups = make([]kmsg.DeleteGroupsResponseGroup, len(in.Groups))
	var (
		mu      sync.Mutex
		waiting = 1 // released below, once every append is issued
		ch      = make(chan *kmsg.DeleteGroupsResponse, 1)
	)
	release := func() {
		mu.Lock()
		waiting--
		last := waiting == 0
		mu.Unlock()
		if last {
			ch <- resp
		}
	}
	for i, id := range in.Groups {
		rg := &resp.Groups[i]
		rg.Default()
		rg.Group = id
		g, err := c.lockGroup(id, false)
		switch {
		case err != nil:
			rg.ErrorCode = kerrOf(err).Code
			continue
		case g == nil:
			rg.ErrorCode = kerr.GroupIDNotFound.Code
			continue
		case g.state != Empty:
			rg.ErrorCode = kerr.NonEmptyGroup.Code
			g.mu.Unlock()
			continue
		}
		now := c.cfg.Now().UnixMilli()
		var recs []Record
		tps := make([]topicPartition, 0, len(g.offsets))
		for tp := range g.offsets {
			tps = append(tps, tp)
		}
		sort.Slice(tps, func(i, j int) bool {
			if tps[i].topic != tps[j].topic {
				return tps[i].topic < tps[j].topic
			}
			return tps[i].partition < tps[j].partition
		})
		for _, tp := range tps {
			recs = append(recs, Record{Timestamp: now, Key: offsetKey(g.id, tp.topic, tp.partition)})
		}
		recs = append(recs, Record{Timestamp: now, Key: groupKey(g.id)})
		c.logger.Info("group deleted", "group", g.id, "offsets", len(tps))
		g.die()
		mu.Lock()
		waiting++
		mu.Unlock()
		g.appendRecords(recs, func(_ int64, err error) {
			if err != nil {
				rg.ErrorCode = appendGroupError(err).Code
			}
			release()
		})
		g.mu.Unlock()
		c.forget(g)
	}
	release()
	return resultFrom(ch)
}
