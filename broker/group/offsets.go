package group

import (
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit handles OffsetCommit. A member of an active group must
// name its current generation; anyone may commit for an empty group (or
// create one, with generation -1: standalone consumers and admin tools
// use groups only to store offsets). The commit is answered, and visible
// to OffsetFetch, once its records are committed in __consumer_offsets.
func (c *Coordinator) OffsetCommit(in *kmsg.OffsetCommitRequest, version int16) *Result[*kmsg.OffsetCommitResponse] {
	resp := kmsg.NewPtrOffsetCommitResponse()
	resp.Version = version
	resp.Topics = make([]kmsg.OffsetCommitResponseTopic, len(in.Topics))
	for i, t := range in.Topics {
		rt := &resp.Topics[i]
		rt.Default()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		rt.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, len(t.Partitions))
		for j, p := range t.Partitions {
			rt.Partitions[j].Default()
			rt.Partitions[j].Partition = p.Partition
		}
	}
	all := func(err *kerr.Error) *Result[*kmsg.OffsetCommitResponse] {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = err.Code
			}
		}
		return resultOf(resp)
	}

	generation, memberID := in.Generation, in.MemberID
	if version == 0 {
		generation, memberID = -1, ""
	}
	if err := c.checkShard(in.Group); err != nil {
		return all(kerrOf(err))
	}
	// Only a commit outside group management may create the group; one
	// naming a generation is from a member of a group that is gone.
	g, err := c.lockGroup(in.Group, generation < 0)
	if err != nil {
		return all(kerrOf(err))
	}
	if g == nil {
		return all(kerr.IllegalGeneration)
	}
	defer g.mu.Unlock()
	if generation >= 0 || memberID != "" || in.InstanceID != nil {
		if err := g.validateMember(memberID, in.InstanceID); err != nil {
			return all(err)
		}
		if generation != g.generation {
			return all(kerr.IllegalGeneration)
		}
	} else if g.state != Empty {
		// Only members commit for an active group.
		return all(kerr.UnknownMemberID)
	}
	switch g.state {
	case CompletingRebalance:
		// The member has its JoinGroup answer but not its assignment.
		return all(kerr.RebalanceInProgress)
	case Stable, PreparingRebalance:
		// A commit counts as a heartbeat; during PreparingRebalance the
		// next heartbeat tells the member to rejoin.
		m := g.members[memberID]
		g.scheduleHeartbeat(m, time.Duration(m.sessionTimeout)*time.Millisecond)
	}

	now := c.cfg.Now().UnixMilli()
	var (
		recs    []Record
		entries []*offset
		tps     []topicPartition
		codes   []*int16
	)
	for i, t := range in.Topics {
		for j, p := range t.Partitions {
			code := &resp.Topics[i].Partitions[j].ErrorCode
			if c.cfg.PartitionExists != nil && !c.cfg.PartitionExists(t.Topic, p.Partition) {
				*code = kerr.UnknownTopicOrPartition.Code
				continue
			}
			md := ""
			if p.Metadata != nil {
				md = *p.Metadata
			}
			if len(md) > c.cfg.MaxOffsetMetadataBytes {
				*code = kerr.OffsetMetadataTooLarge.Code
				continue
			}
			o := &offset{offset: p.Offset, leaderEpoch: -1, metadata: md, commitTimestamp: now, expireTimestamp: -1}
			if version >= 6 && p.LeaderEpoch >= 0 {
				o.leaderEpoch = p.LeaderEpoch
			}
			if version == 1 && p.Timestamp != -1 {
				o.commitTimestamp = p.Timestamp
			}
			if version >= 2 && version <= 4 && in.RetentionTimeMillis != -1 {
				o.expireTimestamp = now + in.RetentionTimeMillis
			}
			tp := topicPartition{t.Topic, p.Partition}
			recs = append(recs, Record{Timestamp: now, Key: offsetKey(g.id, t.Topic, p.Partition), Value: offsetValue(o)})
			entries, tps, codes = append(entries, o), append(tps, tp), append(codes, code)
		}
	}
	if len(recs) == 0 {
		return resultOf(resp)
	}
	for _, tp := range tps {
		g.pendingCommits[tp]++
	}
	ch := make(chan *kmsg.OffsetCommitResponse, 1)
	g.appendRecords(recs, func(first int64, err error) {
		for _, tp := range tps {
			if g.pendingCommits[tp]--; g.pendingCommits[tp] <= 0 {
				delete(g.pendingCommits, tp)
			}
		}
		if err != nil {
			code := appendOffsetError(err).Code
			for _, c := range codes {
				*c = code
			}
		} else if g.state != Dead {
			for i, o := range entries {
				o.recordOffset = first + int64(i)
				if cur := g.offsets[tps[i]]; cur == nil || cur.recordOffset < o.recordOffset {
					g.offsets[tps[i]] = o
				}
			}
		}
		ch <- resp
	})
	return resultFrom(ch)
}

// fetchTopic is what OffsetFetch asks for in one topic; partitions nil
// means every committed partition of the topic.
type fetchTopic struct {
	topic      string
	partitions []int32
}

// fetchedPartition is one partition of an OffsetFetch answer.
type fetchedPartition struct {
	partition   int32
	offset      int64
	leaderEpoch int32
	metadata    string
}

type fetchedTopic struct {
	topic      string
	partitions []fetchedPartition
}

// OffsetFetch handles OffsetFetch: one group up to v7, several from v8.
// Topics not given (v2+) means every committed offset of the group. A
// partition without a committed offset answers -1 with no error, as does
// an unknown group.
func (c *Coordinator) OffsetFetch(in *kmsg.OffsetFetchRequest, version int16) *kmsg.OffsetFetchResponse {
	resp := kmsg.NewPtrOffsetFetchResponse()
	resp.Version = version
	if version >= 8 {
		for _, rg := range in.Groups {
			var topics []fetchTopic
			if rg.Topics != nil {
				topics = make([]fetchTopic, 0, len(rg.Topics))
				for _, t := range rg.Topics {
					topics = append(topics, fetchTopic{topic: t.Topic, partitions: nonNil(t.Partitions)})
				}
			}
			g := kmsg.NewOffsetFetchResponseGroup()
			g.Group = rg.Group
			code, fetched := c.fetchOffsets(rg.Group, topics)
			g.ErrorCode = code
			for _, ft := range fetched {
				t := kmsg.NewOffsetFetchResponseGroupTopic()
				t.Topic = ft.topic
				for _, fp := range ft.partitions {
					p := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					p.Partition, p.Offset, p.LeaderEpoch = fp.partition, fp.offset, fp.leaderEpoch
					md := fp.metadata
					p.Metadata = &md
					t.Partitions = append(t.Partitions, p)
				}
				g.Topics = append(g.Topics, t)
			}
			if g.Topics == nil {
				g.Topics = []kmsg.OffsetFetchResponseGroupTopic{}
			}
			resp.Groups = append(resp.Groups, g)
		}
		return resp
	}
	var topics []fetchTopic
	if in.Topics != nil || version < 2 {
		topics = make([]fetchTopic, 0, len(in.Topics))
		for _, t := range in.Topics {
			topics = append(topics, fetchTopic{topic: t.Topic, partitions: nonNil(t.Partitions)})
		}
	}
	code, fetched := c.fetchOffsets(in.Group, topics)
	if code != 0 && version < 2 {
		// v0-v1 have no group-level error: every partition carries it.
		for _, t := range topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.topic
			for _, p := range t.partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.ErrorCode = p, -1, code
				md := ""
				rp.Metadata = &md
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	resp.ErrorCode = code
	for _, ft := range fetched {
		t := kmsg.NewOffsetFetchResponseTopic()
		t.Topic = ft.topic
		for _, fp := range ft.partitions {
			p := kmsg.NewOffsetFetchResponseTopicPartition()
			p.Partition, p.Offset, p.LeaderEpoch = fp.partition, fp.offset, fp.leaderEpoch
			md := fp.metadata
			p.Metadata = &md
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	if resp.Topics == nil {
		resp.Topics = []kmsg.OffsetFetchResponseTopic{}
	}
	return resp
}

func nonNil(ps []int32) []int32 {
	if ps == nil {
		return []int32{}
	}
	return ps
}

// fetchOffsets reads a group's committed offsets: those asked for, or all
// when topics is nil. It returns a group-level error code instead when the
// group cannot be served here.
func (c *Coordinator) fetchOffsets(id string, topics []fetchTopic) (int16, []fetchedTopic) {
	g, err := c.lockGroup(id, false)
	if err != nil {
		return kerrOf(err).Code, nil
	}
	var offsets map[topicPartition]*offset
	if g != nil {
		defer g.mu.Unlock()
		offsets = g.offsets
	}
	get := func(tp topicPartition) fetchedPartition {
		if o := offsets[tp]; o != nil {
			return fetchedPartition{partition: tp.partition, offset: o.offset, leaderEpoch: o.leaderEpoch, metadata: o.metadata}
		}
		return fetchedPartition{partition: tp.partition, offset: -1, leaderEpoch: -1}
	}
	var out []fetchedTopic
	if topics == nil {
		byTopic := map[string][]int32{}
		for tp := range offsets {
			byTopic[tp.topic] = append(byTopic[tp.topic], tp.partition)
		}
		names := make([]string, 0, len(byTopic))
		for t := range byTopic {
			names = append(names, t)
		}
		sort.Strings(names)
		for _, t := range names {
			ps := byTopic[t]
			slices.Sort(ps)
			ft := fetchedTopic{topic: t}
			for _, p := range ps {
				ft.partitions = append(ft.partitions, get(topicPartition{t, p}))
			}
			out = append(out, ft)
		}
		return 0, out
	}
	for _, t := range topics {
		ft := fetchedTopic{topic: t.topic, partitions: []fetchedPartition{}}
		for _, p := range t.partitions {
			ft.partitions = append(ft.partitions, get(topicPartition{t.topic, p}))
		}
		out = append(out, ft)
	}
	return 0, out
}

// OffsetDelete handles OffsetDelete (KIP-496): an empty group's offsets
// may all be deleted; an active consumer group's only for topics it does
// not subscribe to (GROUP_SUBSCRIBED_TO_TOPIC otherwise); an active group
// of another protocol type not at all (NON_EMPTY_GROUP). Tombstones are
// written for the deleted offsets.
func (c *Coordinator) OffsetDelete(in *kmsg.OffsetDeleteRequest, version int16) *Result[*kmsg.OffsetDeleteResponse] {
	resp := kmsg.NewPtrOffsetDeleteResponse()
	resp.Version = version
	top := func(err *kerr.Error) *Result[*kmsg.OffsetDeleteResponse] {
		resp.ErrorCode = err.Code
		return resultOf(resp)
	}
	if in.Group == "" {
		return top(kerr.InvalidGroupID)
	}
	g, err := c.lockGroup(in.Group, false)
	if err != nil {
		return top(kerrOf(err))
	}
	if g == nil {
		return top(kerr.GroupIDNotFound)
	}
	defer g.mu.Unlock()
	consumerActive := false
	switch g.state {
	case Empty:
	case PreparingRebalance, CompletingRebalance, Stable:
		if g.protocolType != consumerProtocolType {
			return top(kerr.NonEmptyGroup)
		}
		consumerActive = true
	}
	now := c.cfg.Now().UnixMilli()
	var (
		recs  []Record
		codes []*int16
	)
	resp.Topics = make([]kmsg.OffsetDeleteResponseTopic, len(in.Topics))
	for i, t := range in.Topics {
		rt := &resp.Topics[i]
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.OffsetDeleteResponseTopicPartition, len(t.Partitions))
		for j, p := range t.Partitions {
			rp := &rt.Partitions[j]
			rp.Partition = p.Partition
			if consumerActive && g.subscribed[t.Topic] {
				rp.ErrorCode = kerr.GroupSubscribedToTopic.Code
				continue
			}
			tp := topicPartition{t.Topic, p.Partition}
			if _, ok := g.offsets[tp]; ok {
				delete(g.offsets, tp)
				recs = append(recs, Record{Timestamp: now, Key: offsetKey(g.id, t.Topic, p.Partition)})
				codes = append(codes, &rp.ErrorCode)
			}
		}
	}
	if len(recs) == 0 {
		return resultOf(resp)
	}
	c.logger.Info("offsets deleted", "group", g.id, "partitions", len(recs))
	ch := make(chan *kmsg.OffsetDeleteResponse, 1)
	g.appendRecords(recs, func(_ int64, err error) {
		if err != nil {
			code := appendOffsetError(err).Code
			for _, c := range codes {
				*c = code
			}
		}
		ch <- resp
	})
	return resultFrom(ch)
}

// expireTick runs offset expiry every offsets.retention.check.interval.ms.
func (c *Coordinator) expireTick(*timer) {
	if c.closed.Load() {
		return
	}
	defer c.sched.after(c.cfg.OffsetsRetentionCheckInterval, c.expireTick)
	c.ExpireOffsets()
}

// ExpireOffsets removes offsets past offsets.retention.minutes (KIP-211):
// those of an empty group once the retention has passed since it became
// empty; those of a stable consumer group for topics it no longer
// subscribes to, counting from their commit; those of a group with no
// protocol (offsets only), counting from their commit. A commit that asked
// for its own retention (OffsetCommit v2-v4) expires at its expire
// timestamp. An empty group left without offsets is deleted. Tombstones are
// written for both.
func (c *Coordinator) ExpireOffsets() {
	gs, _ := c.loadedGroups()
	now := c.cfg.Now().UnixMilli()
	var dead []*group
	for _, g := range gs {
		g.mu.Lock()
		if g.expireOffsets(now) {
			dead = append(dead, g)
		}
		g.mu.Unlock()
	}
	for _, g := range dead {
		c.forget(g)
	}
}

// expireOffsets expires the group's offsets and reports whether the group
// died. The caller holds g.mu.
func (g *group) expireOffsets(now int64) bool {
	if g.state == Dead {
		return false
	}
	retention := g.c.cfg.OffsetsRetention.Milliseconds()
	var expired []topicPartition
	collect := func(base func(*offset) int64, keep map[string]bool) {
		for tp, o := range g.offsets {
			if g.pendingCommits[tp] > 0 || keep[tp.topic] {
				continue
			}
			if o.expireTimestamp >= 0 {
				if now >= o.expireTimestamp {
					expired = append(expired, tp)
				}
			} else if now-base(o) >= retention {
				expired = append(expired, tp)
			}
		}
	}
	committed := func(o *offset) int64 { return o.commitTimestamp }
	switch {
	case g.protocolType != "" && g.state == Empty:
		collect(func(o *offset) int64 {
			if g.stateTimestamp >= 0 {
				return g.stateTimestamp
			}
			return o.commitTimestamp
		}, nil)
	case g.protocolType == consumerProtocolType && g.subscribed != nil && g.state == Stable:
		collect(committed, g.subscribed)
	case g.protocolType == "":
		collect(committed, nil)
	}
	sort.Slice(expired, func(i, j int) bool {
		if expired[i].topic != expired[j].topic {
			return strings.Compare(expired[i].topic, expired[j].topic) < 0
		}
		return expired[i].partition < expired[j].partition
	})
	ts := g.c.cfg.Now().UnixMilli()
	var recs []Record
	for _, tp := range expired {
		delete(g.offsets, tp)
		recs = append(recs, Record{Timestamp: ts, Key: offsetKey(g.id, tp.topic, tp.partition)})
	}
	died := g.state == Empty && !g.hasOffsets() && len(g.pending) == 0
	if died {
		g.die()
		recs = append(recs, Record{Timestamp: ts, Key: groupKey(g.id)})
	}
	if len(recs) == 0 {
		return false
	}
	if len(expired) > 0 {
		g.c.logger.Info("expired committed offsets", "group", g.id, "partitions", len(expired), "group.deleted", died)
	}
	g.appendRecords(recs, func(_ int64, err error) {
		if err != nil {
			g.c.logger.Warn("writing tombstones for expired offsets failed", "group", g.id, "err", err)
		}
	})
	return died
}
