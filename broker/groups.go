package broker

// The broker's side of the group coordinator (package group): the
// internal topic __consumer_offsets (created on first use, as Kafka does;
// its settings; telling the coordinator which partitions this broker
// leads), the coordinator's access to those partitions (appends with
// acks=all semantics, replays from the start), and the cleaner that keeps
// the topic's logs from growing without bound.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/broker/config"
	"github.com/tiercel/tiercel/broker/controller"
	"github.com/tiercel/tiercel/broker/group"
	plog "github.com/tiercel/tiercel/broker/log"
	"github.com/tiercel/tiercel/wire"
	"github.com/tiercel/tiercel/wire/batch"
)

const (
	// offsetsTopic is Kafka's internal topic of committed offsets and
	// group metadata.
	offsetsTopic = "__consumer_offsets"
	// offsetsTopicSegmentBytes is offsets.topic.segment.bytes' default:
	// smaller segments than other topics', so that the cleaner can work
	// on them sooner.
	offsetsTopicSegmentBytes = 100 << 20
	// offsetsCommitTimeout is offsets.commit.timeout.ms' default: how long
	// a commit waits for the ISR before REQUEST_TIMED_OUT.
	offsetsCommitTimeout = 5 * time.Second
	// offsetsDeleteRetention is the default delete.retention.ms: how long
	// the cleaner keeps tombstones after a pass has seen them.
	offsetsDeleteRetention = 24 * time.Hour
	// offsetsCleanerInterval is log.cleaner.backoff.ms' default: how often
	// the cleaner looks at the partitions.
	offsetsCleanerInterval = 15 * time.Second
	// offsetsMinDirtyRatio is min.cleanable.dirty.ratio's default.
	offsetsMinDirtyRatio = 0.5
)

// offsetsTopicConfigs are the configs the topic is created with, as
// Kafka creates it, so DescribeConfigs shows what governs it.
func offsetsTopicConfigs() map[string]string {
	return map[string]string{
		"cleanup.policy":   "compact",
		"compression.type": "producer",
		"segment.bytes":    strconv.Itoa(offsetsTopicSegmentBytes),
	}
}

// groups is the broker's group coordinator state.
type groups struct {
	coord *group.Coordinator

	createMu sync.Mutex // one creation of the internal topic at a time

	cleanMu  sync.Mutex // one cleaner pass at a time
	cleaners map[*plog.Log]*plog.OffsetsCleaner
}

// newGroups creates the coordinator. The broker calls it before the first
// apply, which tells the coordinator what this broker leads.
func (b *Broker) newGroups() *groups {
	s := b.cfg.Settings
	g := &groups{cleaners: map[*plog.Log]*plog.OffsetsCleaner{}}
	g.coord = group.New(group.Config{
		Log:                           offsetsLog{b},
		MinSessionTimeout:             time.Duration(s.GroupMinSessionTimeoutMs) * time.Millisecond,
		MaxSessionTimeout:             time.Duration(s.GroupMaxSessionTimeoutMs) * time.Millisecond,
		InitialRebalanceDelay:         time.Duration(s.GroupInitialRebalanceDelayMs) * time.Millisecond,
		OffsetsRetention:              time.Duration(s.OffsetsRetentionMinutes) * time.Minute,
		OffsetsRetentionCheckInterval: time.Duration(s.OffsetsRetentionCheckIntervalMs) * time.Millisecond,
		MaxRecordBytes:                int(s.MessageMaxBytes),
		PartitionExists:               b.partitionExists,
		Logger:                        b.logger.With("component", "group-coordinator"),
		Now:                           b.now,
	})
	b.wg.Add(1)
	go b.offsetsCleanerLoop()
	return g
}

// closeGroups stops the coordinator: waiting group requests are answered
// NOT_COORDINATOR and its goroutines end.
func (b *Broker) closeGroups() {
	if b.groups != nil {
		b.groups.coord.Close()
	}
}

// groupsApplied tells the coordinator, after each metadata change, how
// many partitions __consumer_offsets has and which of them this broker
// leads: it loads those it became leader of and unloads those it lost.
func (b *Broker) groupsApplied(st *localState) {
	if b.groups == nil {
		return
	}
	c := b.groups.coord
	t := st.topics[offsetsTopic]
	if t == nil {
		c.SetPartitions(0)
		return
	}
	c.SetPartitions(len(t.meta.Partitions))
	for i, pa := range t.meta.Partitions {
		lead := t.partitions[i] != nil && pa.Leader == b.cfg.NodeID
		c.UpdatePartition(int32(i), lead, pa.LeaderEpoch)
	}
}

// isOffsetsTopic reports the internal topic the coordinator owns.
func isOffsetsTopic(t *controller.Topic) bool {
	return t.Name == offsetsTopic && t.Internal
}

// offsetsTopicSettings resolves the internal topic's settings. They are
// not those of a user topic: the topic is compacted (by the cleaner
// below) and never loses records to retention, and it is never tiered.
// config.ResolveTopic refuses cleanup.policy=compact, so they are built
// from the broker defaults here, with the few overrides the topic has.
func offsetsTopicSettings(b config.Broker, overrides map[string]string) *topicSettings {
	t, err := config.ResolveTopic(b, nil)
	if err != nil {
		// The broker defaults themselves do not resolve (they were
		// validated at start-up, so this is not expected); the fields
		// below are what matters for this topic.
		t = config.Topic{SegmentIndexBytes: 10 << 20, IndexIntervalBytes: 4096, MaxMessageBytes: b.MessageMaxBytes,
			MinInsyncReplicas: 1, FlushMessages: 1<<63 - 1, FlushMs: 1<<63 - 1, SegmentMs: 7 * 24 * 3600 * 1000}
	}
	t.CleanupPolicy = []string{"compact"}
	t.CompressionType = "producer"
	t.RetentionMs, t.RetentionBytes = -1, -1
	t.LocalRetentionMs, t.LocalRetentionBytes = -1, -1
	t.RemoteStorageEnable = false
	t.SegmentBytes = offsetsTopicSegmentBytes
	intOverride := func(name string, min int64, set func(int64)) {
		if v, ok := overrides[name]; ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= min {
				set(n)
			}
		}
	}
	intOverride("segment.bytes", 1024, func(n int64) { t.SegmentBytes = int32(min(n, 1<<31-1)) })
	intOverride("max.message.bytes", 0, func(n int64) { t.MaxMessageBytes = int32(min(n, 1<<31-1)) })
	intOverride("min.insync.replicas", 1, func(n int64) { t.MinInsyncReplicas = int32(min(n, 1<<31-1)) })
	intOverride("segment.ms", 1, func(n int64) { t.SegmentMs = n })
	return settingsFromTopic(t)
}

// offsetsDeleteRetentionOf is the topic's delete.retention.ms.
func offsetsDeleteRetentionOf(t *controller.Topic) time.Duration {
	if v, ok := t.Configs["delete.retention.ms"]; ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			return time.Duration(n) * time.Millisecond
		}
	}
	return offsetsDeleteRetention
}

// ensureOffsetsTopic creates __consumer_offsets if it does not exist, with
// offsets.topic.num.partitions partitions and
// offsets.topic.replication.factor replicas, and returns its partition
// count. Creation is synchronous: the partitions are open (and their loads
// started) when it returns.
func (b *Broker) ensureOffsetsTopic(ctx context.Context) (int, error) {
	if t := b.current().md.Topics[offsetsTopic]; t != nil {
		return len(t.Partitions), nil
	}
	b.groups.createMu.Lock()
	defer b.groups.createMu.Unlock()
	if t := b.current().md.Topics[offsetsTopic]; t != nil {
		return len(t.Partitions), nil
	}
	if !b.ctrl.Active() {
		return b.ensureOffsetsTopicViaController(ctx)
	}
	s := b.cfg.Settings
	// Like Kafka, ask for offsets.topic.replication.factor replicas; unlike
	// Kafka, settle for the live brokers when there are fewer, so that a
	// cluster still starting (or a lone broker) gets working groups.
	rf := min(s.OffsetsTopicReplicationFactor, int16(len(b.liveBrokers())))
	results, err := b.ctrl.CreateTopics(ctx, []controller.TopicSpec{{
		Name:              offsetsTopic,
		NumPartitions:     s.OffsetsTopicNumPartitions,
		ReplicationFactor: rf,
		Configs:           offsetsTopicConfigs(),
		Internal:          true,
	}}, false)
	if err == nil && len(results) == 1 && results[0].Err != nil && !errors.Is(results[0].Err, controller.ErrTopicExists) {
		err = results[0].Err
	}
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", offsetsTopic, err)
	}
	t := b.current().md.Topics[offsetsTopic]
	if t == nil {
		return 0, fmt.Errorf("create %s: not in the metadata after creation", offsetsTopic)
	}
	b.logger.Info("internal topic created", "topic", offsetsTopic, "partitions", len(t.Partitions))
	return len(t.Partitions), nil
}

// ensureOffsetsTopicViaController asks the controller to create the topic
// and rereads the document.
func (b *Broker) ensureOffsetsTopicViaController(ctx context.Context) (int, error) {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = offsetsTopic, -1, -1
	req.Topics = append(req.Topics, rt)
	raw, err := b.controllerRequest(ctx, req)
	if err != nil {
		return 0, fmt.Errorf("create %s through the controller: %w", offsetsTopic, err)
	}
	resp := raw.(*kmsg.CreateTopicsResponse)
	if len(resp.Topics) == 1 {
		if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return 0, fmt.Errorf("create %s through the controller: %w", offsetsTopic, err)
		}
	}
	if err := b.ctrl.Refresh(ctx); err != nil {
		return 0, err
	}
	t := b.current().md.Topics[offsetsTopic]
	if t == nil {
		return 0, fmt.Errorf("create %s: not in the metadata after creation", offsetsTopic)
	}
	return len(t.Partitions), nil
}

// partitionExists reports a topic partition in the cluster metadata.
func (b *Broker) partitionExists(topic string, partition int32) bool {
	t := b.current().md.Topics[topic]
	return t != nil && partition >= 0 && int(partition) < len(t.Partitions)
}

// clientHost is how Kafka shows a member's host: "/" and its IP address.
func clientHost(req *wire.Request) string {
	if req.Client == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(req.Client.Addr)
	if err != nil {
		host = req.Client.Addr
	}
	return "/" + host
}

// groupResponse turns a coordinator Result into a wire response: written
// at once when ready, else resolved by the connection's writer when the
// group operation completes.
func groupResponse[T kmsg.Response](r *group.Result[T]) wire.Response {
	if v, ok := r.Ready(); ok {
		return wire.Msg(v)
	}
	return wire.Deferred(func(ctx context.Context) (kmsg.Response, error) {
		v, err := r.Wait(ctx)
		if err != nil {
			return nil, err
		}
		return v, nil
	})
}

// offsetsLog gives the coordinator the partitions of __consumer_offsets.
type offsetsLog struct{ b *Broker }

// Append writes the records as one uncompressed batch (as Kafka does with
// offsets.topic.compression.codec's default) if this broker still leads
// the partition at epoch, like a produce with acks=all.
func (o offsetsLog) Append(part, epoch int32, recs []group.Record) (group.Appended, error) {
	b := o.b
	t, p := b.lookup(offsetsTopic, part)
	if t == nil {
		return group.Appended{}, kerr.UnknownTopicOrPartition
	}
	if p == nil {
		return group.Appended{}, kerr.NotLeaderForPartition
	}
	if isLeader, _, cur := p.leaderState(b.cfg.NodeID); !isLeader || cur != epoch {
		return group.Appended{}, kerr.NotLeaderForPartition
	}
	bl := batch.NewBuilder(batch.CompressionNone)
	for _, r := range recs {
		bl.Add(r.Timestamp, r.Key, r.Value)
	}
	raw, err := bl.Build(0)
	if err != nil {
		return group.Appended{}, fmt.Errorf("%s-%d: build batch: %w", offsetsTopic, part, err)
	}
	if max := p.settings().MaxMessageBytes; len(raw) > max {
		return group.Appended{}, fmt.Errorf("%w: %d bytes of group records exceed max.message.bytes %d of %s",
			kerr.MessageTooLarge, len(raw), max, offsetsTopic)
	}
	h, err := batch.ParseHeader(raw)
	if err != nil {
		return group.Appended{}, err
	}
	res, err := p.appendBatch(b.cfg.NodeID, raw, &h, -1)
	if err != nil {
		return group.Appended{}, err
	}
	p.wakeFollowers()
	target := res.lastOffset + 1
	return group.Appended{
		FirstOffset: res.baseOffset,
		Done:        p.HighWatermark() >= target && p.isrSize() >= p.settings().MinInsyncReplicas,
		Wait:        func(ctx context.Context) error { return b.awaitOffsetsCommit(ctx, p, target, epoch) },
	}, nil
}

// awaitOffsetsCommit waits until the high watermark reaches target
// (offsets.commit.timeout.ms at most), as long as this broker leads the
// partition at epoch.
func (b *Broker) awaitOffsetsCommit(ctx context.Context, p *partition, target int64, epoch int32) error {
	wake := make(chan struct{}, 1)
	p.addWaiter(wake)
	defer p.removeWaiter(wake)
	timer := time.NewTimer(offsetsCommitTimeout)
	defer timer.Stop()
	for {
		if isLeader, _, cur := p.leaderState(b.cfg.NodeID); !isLeader || cur != epoch {
			return kerr.NotLeaderForPartition
		}
		if p.HighWatermark() >= target {
			if p.isrSize() < p.settings().MinInsyncReplicas {
				return kerr.NotEnoughReplicasAfterAppend
			}
			return nil
		}
		select {
		case <-wake:
		case <-timer.C:
			return kerr.RequestTimedOut
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Read replays the partition from its start to its end. The cleaner may
// swap segments under the walk; the walk then resumes where it was.
func (o offsetsLog) Read(ctx context.Context, part int32, fn func(group.Record) error) error {
	_, p := o.b.lookup(offsetsTopic, part)
	if p == nil {
		return kerr.NotLeaderForPartition
	}
	from, end := p.log.StartOffset(), p.log.EndOffset()
	for attempt := 0; from < end; attempt++ {
		err := p.log.Batches(from, end, func(h batch.Header, raw []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if !h.IsControl() {
				err := batch.Records(raw, func(r batch.Record) error {
					off := h.BaseOffset + int64(r.OffsetDelta)
					if off < from {
						return nil
					}
					ts := h.BaseTimestamp + r.TimestampDelta
					if h.LogAppendTime() {
						ts = h.MaxTimestamp
					}
					// The batch buffer is reused: the coordinator keeps
					// what it decodes.
					rec := group.Record{Offset: off, Timestamp: ts, Key: bytes.Clone(r.Key)}
					if r.Value != nil {
						rec.Value = bytes.Clone(r.Value)
					}
					return fn(rec)
				})
				if err != nil {
					return err
				}
			}
			from = h.NextOffset()
			return nil
		})
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || !errors.Is(err, plog.ErrOffsetOutOfRange) || attempt >= 10 {
			return fmt.Errorf("read %s-%d at %d: %w", offsetsTopic, part, from, err)
		}
		// A segment went away under the walk (the cleaner merged it):
		// continue from where the walk was.
		from = max(from, p.log.StartOffset())
	}
	return nil
}

// offsetsCleanerLoop cleans the internal topic's logs every
// offsetsCleanerInterval until the broker closes.
func (b *Broker) offsetsCleanerLoop() {
	defer b.wg.Done()
	tick := time.NewTicker(offsetsCleanerInterval)
	defer tick.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-tick.C:
			b.cleanOffsetsTopic(b.ctx)
		}
	}
}

// cleanOffsetsTopic runs a cleaner pass on every hosted partition of
// __consumer_offsets (every replica cleans its own log, as in Kafka).
func (b *Broker) cleanOffsetsTopic(ctx context.Context) {
	g := b.groups
	g.cleanMu.Lock()
	defer g.cleanMu.Unlock()
	t := b.current().topics[offsetsTopic]
	if t == nil {
		return
	}
	retention := offsetsDeleteRetentionOf(t.meta)
	live := map[*plog.Log]bool{}
	for _, p := range t.partitions {
		if p == nil {
			continue
		}
		live[p.log] = true
		c := g.cleaners[p.log]
		if c == nil {
			c = plog.NewOffsetsCleaner(p.log)
			g.cleaners[p.log] = c
		}
		st, err := c.Clean(ctx, plog.OffsetsCleanOptions{
			UpTo:            p.HighWatermark(),
			DeleteRetention: retention,
			MinDirtyRatio:   offsetsMinDirtyRatio,
			Now:             b.now(),
		})
		if err != nil {
			if ctx.Err() == nil {
				p.logger.Warn("cleaning the log failed; will retry", "err", err)
			}
			continue
		}
		if st.Ran && (st.RecordsDropped > 0 || st.SegmentsAfter != st.SegmentsBefore) {
			p.logger.Info("log cleaned", "records.dropped", st.RecordsDropped, "tombstones.dropped", st.TombstonesDropped,
				"segments", fmt.Sprintf("%d->%d", st.SegmentsBefore, st.SegmentsAfter),
				"bytes", fmt.Sprintf("%d->%d", st.BytesBefore, st.BytesAfter))
		}
	}
	for l := range g.cleaners {
		if !live[l] {
			delete(g.cleaners, l)
		}
	}
}

// registerGroups adds the group coordinator's APIs. None may be declared
// BodyReusable: a group keeps slices of the requests that joined it
// (protocol metadata, assignments) for as long as the members stay.
func (b *Broker) registerGroups(m *wire.Mux) {
	m.Handle(int16(kmsg.FindCoordinator), findCoordinatorMinVersion, findCoordinatorMaxVersion, b.handleFindCoordinator)
	m.Handle(int16(kmsg.JoinGroup), joinGroupMinVersion, joinGroupMaxVersion, b.handleJoinGroup)
	m.Handle(int16(kmsg.SyncGroup), syncGroupMinVersion, syncGroupMaxVersion, b.handleSyncGroup)
	m.Handle(int16(kmsg.Heartbeat), heartbeatMinVersion, heartbeatMaxVersion, b.handleHeartbeat)
	m.Handle(int16(kmsg.LeaveGroup), leaveGroupMinVersion, leaveGroupMaxVersion, b.handleLeaveGroup)
	m.Handle(int16(kmsg.OffsetCommit), offsetCommitMinVersion, offsetCommitMaxVersion, b.handleOffsetCommit)
	m.Handle(int16(kmsg.OffsetFetch), offsetFetchMinVersion, offsetFetchMaxVersion, b.handleOffsetFetch)
	m.Handle(int16(kmsg.OffsetDelete), offsetDeleteMinVersion, offsetDeleteMaxVersion, b.handleOffsetDelete)
	m.Handle(int16(kmsg.DescribeGroups), describeGroupsMinVersion, describeGroupsMaxVersion, b.handleDescribeGroups)
	m.Handle(int16(kmsg.ListGroups), listGroupsMinVersion, listGroupsMaxVersion, b.handleListGroups)
	m.Handle(int16(kmsg.DeleteGroups), deleteGroupsMinVersion, deleteGroupsMaxVersion, b.handleDeleteGroups)
}
