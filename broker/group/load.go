package group

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// loadRetryBackoff is the pause before retrying a load whose read failed.
const loadRetryBackoff = time.Second

// loadedGroup is a group as the partition's records describe it.
type loadedGroup struct {
	meta    *kmsg.GroupMetadataValue // nil: no metadata (offsets only) or deleted
	offsets map[topicPartition]*offset
}

// load replays a partition of __consumer_offsets into groups, then serves
// them. Until it is done, requests for the partition's groups are answered
// COORDINATOR_LOAD_IN_PROGRESS. A read error is retried; losing
// leadership (ctx) ends the load.
func (c *Coordinator) load(ctx context.Context, s *shard, seq uint64) {
	for {
		began := time.Now()
		groups, records, err := c.replay(ctx, s.index)
		if err == nil {
			c.install(s, seq, groups, records, time.Since(began))
			return
		}
		if ctx.Err() != nil {
			return
		}
		c.logger.Error("loading __consumer_offsets partition failed; retrying", "partition", s.index, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(loadRetryBackoff):
		}
	}
}

// replay reads the partition: the last record for each key wins, and a
// tombstone deletes. Records it does not understand (KIP-848 record types,
// a corrupt key) are skipped with a warning rather than failing the
// partition, so one bad record cannot make every group of it unavailable.
func (c *Coordinator) replay(ctx context.Context, p int32) (map[string]*loadedGroup, int, error) {
	groups := map[string]*loadedGroup{}
	get := func(id string) *loadedGroup {
		lg := groups[id]
		if lg == nil {
			lg = &loadedGroup{offsets: map[topicPartition]*offset{}}
			groups[id] = lg
		}
		return lg
	}
	records, skipped := 0, 0
	err := c.cfg.Log.Read(ctx, p, func(r Record) error {
		records++
		k, err := decodeKey(r.Key)
		if err != nil {
			skipped++
			c.logger.Warn("skipping undecodable __consumer_offsets record", "partition", p, "offset", r.Offset, "err", err)
			return nil
		}
		switch k.kind {
		case keyOffset:
			lg := get(k.group)
			tp := topicPartition{k.topic, k.partition}
			if r.Value == nil {
				delete(lg.offsets, tp)
				return nil
			}
			o, err := decodeOffsetValue(r.Value)
			if err != nil {
				skipped++
				c.logger.Warn("skipping undecodable committed offset", "partition", p, "offset", r.Offset, "group", k.group, "err", err)
				return nil
			}
			o.recordOffset = r.Offset
			lg.offsets[tp] = o
		case keyGroup:
			lg := get(k.group)
			if r.Value == nil {
				lg.meta = nil
				return nil
			}
			v, err := decodeGroupValue(r.Value)
			if err != nil {
				skipped++
				c.logger.Warn("skipping undecodable group metadata", "partition", p, "offset", r.Offset, "group", k.group, "err", err)
				return nil
			}
			lg.meta = v
		default:
			skipped++
		}
		return nil
	})
	if skipped > 0 {
		c.logger.Info("skipped __consumer_offsets records of other kinds", "partition", p, "records", skipped)
	}
	return groups, records, err
}

// install builds the groups and makes the shard serve them, unless this
// broker lost leadership while loading (a newer load, or none, is then
// wanted). A new leader epoch while still leader does not matter: the log
// loaded is the one led.
func (c *Coordinator) install(s *shard, seq uint64, loaded map[string]*loadedGroup, records int, took time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != shardLoading || s.loadSeq != seq {
		return
	}
	epoch := s.epoch.Load()
	offsets := 0
	for id, lg := range loaded {
		if lg.meta == nil && len(lg.offsets) == 0 {
			continue // deleted
		}
		g := newGroup(c, s, id)
		g.offsets = lg.offsets
		offsets += len(lg.offsets)
		if lg.meta != nil {
			g.restore(lg.meta)
		}
		s.groups[id] = g
	}
	s.state = shardLoaded
	s.loadCancel = nil
	log := c.logger.Info
	if records == 0 {
		log = c.logger.Debug // fifty empty partitions are not news
	}
	log("loaded __consumer_offsets partition", "partition", s.index, "epoch", epoch,
		"groups", len(s.groups), "offsets", offsets, "records", records, "took", took.Round(time.Millisecond))
	for _, g := range s.groups {
		g.mu.Lock()
		// Members of a loaded group carry on in their generation; each
		// must heartbeat within its session, as after any failover.
		for _, m := range g.members {
			g.scheduleHeartbeat(m, time.Duration(m.sessionTimeout)*time.Millisecond)
		}
		g.mu.Unlock()
	}
}

// restore sets the group from its stored metadata: Stable with its
// members and their assignments, or Empty.
func (g *group) restore(v *kmsg.GroupMetadataValue) {
	g.protocolType = v.ProtocolType
	g.generation = v.Generation
	if v.Protocol != nil {
		g.protocol = *v.Protocol
	}
	if v.Version >= 2 {
		g.stateTimestamp = v.CurrentStateTimestamp
	} else {
		g.stateTimestamp = -1
	}
	if g.protocol == "" {
		// No generation in progress can have members without a protocol;
		// such a record is from a broken writer. Keep the group, empty.
		v.Members = nil
	}
	for _, vm := range v.Members {
		m := &member{
			id:               vm.MemberID,
			instanceID:       vm.InstanceID,
			clientID:         vm.ClientID,
			clientHost:       vm.ClientHost,
			sessionTimeout:   vm.SessionTimeoutMillis,
			rebalanceTimeout: vm.RebalanceTimeoutMillis,
			protocolType:     v.ProtocolType,
			protocols:        []protocol{{name: g.protocol, metadata: vm.Subscription}},
			assignment:       vm.Assignment,
		}
		if v.Version == 0 {
			m.rebalanceTimeout = m.sessionTimeout
		}
		g.add(m, waiter{})
	}
	if v.Leader != nil && g.has(*v.Leader) {
		g.leader = *v.Leader
	}
	if len(g.members) > 0 {
		g.state = Stable
	} else {
		g.state = Empty
	}
	g.computeSubscribed()
}
