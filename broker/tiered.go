package broker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sys/unix"

	"github.com/tiercel/tiercel/broker/controller"
	plog "github.com/tiercel/tiercel/broker/log"
	"github.com/tiercel/tiercel/cache"
	"github.com/tiercel/tiercel/tiering"
)

// The remote tier, seen from the broker: the offload and remote retention
// loop, restoring a partition from the bucket, and the helpers the fetch,
// ListOffsets and DeleteRecords paths use to span both tiers.

// offloadParallelism bounds the partitions uploading at once.
const offloadParallelism = 4

// newTier builds the chunk cache and the tier, or returns nil when the
// broker does not tier.
func newTier(cfg Config) (*tiering.Tier, *cache.Cache, error) {
	if !cfg.Settings.RemoteLogStorageSystemEnable || cfg.Store == nil {
		return nil, nil, nil
	}
	c, err := cache.New(cache.Config{MaxBytes: cfg.Settings.RemoteCacheBytes, PrefetchWorkers: 4})
	if err != nil {
		return nil, nil, err
	}
	tcfg := tiering.DefaultConfig()
	tcfg.ChunkBytes = int64(cfg.Settings.RemoteFetchChunkBytes)
	return tiering.New(cfg.Store, c, tcfg, cfg.Logger.With("component", "tiering")), c, nil
}

func partitionID(t *controller.Topic, index int32) tiering.PartitionID {
	return tiering.PartitionID{Topic: t.Name, TopicID: t.ID.String(), Partition: index}
}

// tiered reports whether the partition offloads.
func (p *partition) tiered() bool {
	return p.remote != nil && p.settings().topic.RemoteStorageEnable
}

// logStartOffset is the first offset of the whole log, remote included.
func (p *partition) logStartOffset() int64 {
	local := p.log.StartOffset()
	if p.remote == nil {
		return local
	}
	if m := p.remote.Manifest(); !m.Empty() && m.StartOffset() < local {
		return m.StartOffset()
	}
	return local
}

// remoteNext is one past the last offloaded offset, or -1.
func (p *partition) remoteNext() int64 {
	if p.remote == nil {
		return -1
	}
	return p.remote.Manifest().NextOffset()
}

// restoreFromRemote makes a partition whose local log ends before its
// remote copy continue from the remote end: the local disk was lost or
// wiped. Only the unsealed tail, which lived on that disk alone, is gone.
func (p *partition) restoreFromRemote(ctx context.Context) error {
	m, err := p.remote.Load(ctx)
	if err != nil {
		return err
	}
	if m.Empty() {
		// Retention or DeleteRecords removed every remote segment. The
		// log still never restarts below the remote log start: offsets
		// are not reused.
		if localEnd := p.log.EndOffset(); localEnd < m.LogStartOffset {
			if err := p.log.TruncateFullyAndStartAt(m.LogStartOffset); err != nil {
				return fmt.Errorf("restart the local log at %d: %w", m.LogStartOffset, err)
			}
			p.logger.Warn("local log restarted at the log start of the empty remote tier",
				"log.end.offset", m.LogStartOffset, "local.end.before", localEnd,
				"offsets.lost.at.least", max(m.HighWatermark-m.LogStartOffset, 0), "high.watermark.recorded", m.HighWatermark)
		}
		return nil
	}
	if p.log.EndOffset() >= m.NextOffset() {
		return nil
	}
	localEnd := p.log.EndOffset()
	next := m.NextOffset()
	if err := p.log.TruncateFullyAndStartAt(next); err != nil {
		return fmt.Errorf("restart the local log at %d: %w", next, err)
	}
	for _, e := range m.Epochs() {
		if err := p.log.AssignEpoch(e.Epoch, e.StartOffset); err != nil {
			return fmt.Errorf("restore leader epoch %d: %w", e.Epoch, err)
		}
	}
	last := &m.Segments[len(m.Segments)-1]
	if snap, err := p.remote.Snapshot(ctx, last); err != nil {
		p.logger.Warn("remote producer snapshot unreadable; idempotence state starts empty", "err", err)
	} else if snap != nil {
		if err := p.log.WriteSnapshot(next, snap); err != nil {
			return err
		}
	}
	lost := max(m.HighWatermark-next, 0)
	p.logger.Warn("local log restored from the remote tier",
		"remote.start", m.StartOffset(), "log.end.offset", next, "local.end.before", localEnd,
		"offsets.lost.at.least", lost, "high.watermark.recorded", m.HighWatermark)
	return nil
}

// remoteLoop runs offload and remote retention every
// remote.log.manager.task.interval.ms, and the sweeper on its own
// interval. It ends when the broker closes.
func (b *Broker) remoteLoop() {
	defer b.wg.Done()
	interval := time.Duration(b.cfg.Settings.RemoteLogManagerTaskIntervalMs) * time.Millisecond
	tick := time.NewTicker(interval)
	defer tick.Stop()
	sweepEvery := time.Duration(b.cfg.Settings.RemoteSweepIntervalMs) * time.Millisecond
	lastSweep := b.now()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-tick.C:
		}
		b.runRemoteTasks(b.ctx)
		if b.now().Sub(lastSweep) >= sweepEvery {
			lastSweep = b.now()
			b.sweep(b.ctx)
		}
	}
}

// runRemoteTasks offloads and applies remote retention on every tiered
// partition this broker leads, a few partitions at a time.
func (b *Broker) runRemoteTasks(ctx context.Context) {
	b.forEachPartition(func(_ *topicState, p *partition) {
		if !p.tiered() {
			return
		}
		// A partition still busy from an earlier round (a large backlog,
		// a slow store) is skipped, not waited for: one slow partition
		// must not hold up the others.
		if !p.remoteBusy.CompareAndSwap(false, true) {
			return
		}
		select {
		case b.offloadSem <- struct{}{}:
		default:
			p.remoteBusy.Store(false) // every worker busy: next round
			return
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer func() {
				<-b.offloadSem
				p.remoteBusy.Store(false)
			}()
			b.remoteTask(ctx, p)
		}()
	})
}

// remoteTask is one round of remote work on one partition: followers
// reread the manifest (their local retention needs to know what was
// offloaded); the leader offloads and applies remote retention.
func (b *Broker) remoteTask(ctx context.Context, p *partition) {
	isLeader, _, epoch := p.leaderState(b.cfg.NodeID)
	if !isLeader {
		if _, err := p.remote.Load(ctx); err != nil && ctx.Err() == nil {
			p.logger.Debug("cannot reread the remote manifest", "err", err)
		}
		return
	}
	if p.remoteLoadedEpoch.Load() != epoch {
		// A new leader continues from the manifest as it is in the
		// bucket, not as it last saw it.
		if _, err := p.remote.Load(ctx); err != nil {
			if ctx.Err() == nil {
				p.logger.Warn("cannot read the remote manifest; offload waits", "err", err)
			}
			return
		}
		p.remoteLoadedEpoch.Store(epoch)
	}
	if err := b.offload(ctx, p); err != nil && ctx.Err() == nil {
		b.metrics.remoteCopyErrors.Add(ctx, 1, metric.WithAttributes(attribute.String("topic", p.topic)))
		p.logger.Warn("offload failed; will retry", "err", err)
	}
	if err := b.remoteRetention(ctx, p); err != nil && ctx.Err() == nil {
		p.logger.Warn("remote retention failed; will retry", "err", err)
	}
}

// offload uploads every sealed segment below the high watermark that the
// remote log does not have yet, oldest first, each recorded in the
// manifest before the next starts.
func (b *Broker) offload(ctx context.Context, p *partition) error {
	if m := p.remote.Manifest(); m.Version == 0 && m.Empty() {
		if _, err := p.remote.Load(ctx); err != nil {
			return err
		}
	}
	for ctx.Err() == nil {
		_, _, epoch := p.leaderState(b.cfg.NodeID)
		hw := p.HighWatermark()
		from := p.remoteNext()
		if from < 0 {
			// Nothing remote (yet, or any more: retention or DeleteRecords
			// emptied the manifest). Never upload below its log start.
			from = max(p.log.StartOffset(), p.remote.Manifest().LogStartOffset)
		}
		var seg *plog.SegmentInfo
		for _, si := range p.log.Segments() {
			if !si.Active && si.NextOffset <= hw && si.NextOffset > from {
				seg = &si
				break
			}
		}
		if seg == nil {
			return nil
		}
		if seg.BaseOffset > from && p.remoteNext() >= 0 {
			return fmt.Errorf("local log has a gap: remote log ends at %d, next local segment starts at %d", from, seg.BaseOffset)
		}
		start := max(from, seg.BaseOffset)
		r, err := p.log.Read(start, math.MaxInt32, seg.NextOffset, true)
		if err != nil {
			return fmt.Errorf("read segment %d: %w", seg.BaseOffset, err)
		}
		logStart := int64(-1)
		if p.remoteNext() < 0 && r.FirstOffset < start && r.FirstOffset >= seg.BaseOffset {
			// The local log starts inside a batch (DeleteRecords): offload
			// that whole batch, and keep the log start where it is.
			logStart, start = start, r.FirstOffset
		}
		if r.FirstOffset != start || r.NextOffset != seg.NextOffset {
			r.Release()
			return fmt.Errorf("segment %d: read [%d, %d), want [%d, %d)", seg.BaseOffset, r.FirstOffset, r.NextOffset, start, seg.NextOffset)
		}
		snap, _, err := p.log.SnapshotAt(seg.NextOffset)
		if err != nil {
			p.logger.Warn("producer snapshot unreadable; offloading without it", "offset", seg.NextOffset, "err", err)
		}
		began := time.Now()
		sctx, span := b.tracer.Start(ctx, "offload.segment", trace.WithAttributes(
			attribute.String("topic", p.topic), attribute.Int("partition", int(p.index)),
			attribute.Int64("base", start), attribute.Int64("bytes", r.Size)))
		up, err := p.remote.Offload(sctx, tiering.SegmentSource{
			File: r.File, Position: r.Position, Size: r.Size,
			BaseOffset: start, NextOffset: seg.NextOffset,
			Epochs:         epochSlice(p.log.Epochs(), start, seg.NextOffset),
			Snapshot:       snap,
			LogStartOffset: logStart,
		}, epoch, hw)
		r.Release()
		if err != nil {
			span.RecordError(err)
			span.End()
			return err
		}
		span.End()
		b.metrics.remoteCopyBytes.Add(ctx, up.Size, metric.WithAttributes(attribute.String("topic", p.topic)))
		p.logger.Info("segment offloaded", "base", up.BaseOffset, "next", up.NextOffset, "bytes", up.Size,
			"took", time.Since(began).Round(time.Millisecond))
	}
	return ctx.Err()
}

// epochSlice is the part of the leader-epoch history that covers
// [start, next): the epoch in force at start and those that begin inside.
func epochSlice(all []plog.EpochEntry, start, next int64) []tiering.EpochEntry {
	var out []tiering.EpochEntry
	for i, e := range all {
		inForce := e.StartOffset <= start && (i+1 == len(all) || all[i+1].StartOffset > start)
		if inForce || (e.StartOffset > start && e.StartOffset < next) {
			out = append(out, tiering.EpochEntry{Epoch: e.Epoch, StartOffset: e.StartOffset})
		}
	}
	return out
}

// remoteRetention applies retention.ms and retention.bytes to the whole
// log: the oldest remote segments leave the manifest first, then their
// objects are deleted.
func (b *Broker) remoteRetention(ctx context.Context, p *partition) error {
	s := p.settings()
	if s.RetentionMs < 0 && s.RetentionBytes < 0 {
		return nil
	}
	m := p.remote.Manifest()
	if m.Empty() {
		return nil
	}
	nowMs := b.now().UnixMilli()
	// The size of the whole log: remote segments plus the local bytes not
	// offloaded yet.
	total := m.Size()
	for _, si := range p.log.Segments() {
		if si.BaseOffset >= m.NextOffset() {
			total += si.Size
		}
	}
	_, _, epoch := p.leaderState(b.cfg.NodeID)
	reason := ""
	dropped, err := p.remote.DropSegments(ctx, epoch, func(seg tiering.Segment) bool {
		if s.RetentionMs >= 0 && seg.MaxTimestamp >= 0 && nowMs-seg.MaxTimestamp > s.RetentionMs {
			reason = "retention.ms"
			total -= seg.Size
			return true
		}
		if s.RetentionBytes >= 0 && total-seg.Size >= s.RetentionBytes {
			reason = "retention.bytes"
			total -= seg.Size
			return true
		}
		return false
	})
	if err != nil {
		return err
	}
	if len(dropped) == 0 {
		return nil
	}
	var bytes int64
	for _, d := range dropped {
		bytes += d.Size
	}
	p.logger.Info("remote retention deleted segments", "reason", reason, "segments", len(dropped), "bytes", bytes,
		"log.start.offset", p.logStartOffset())
	p.wake()
	return p.remote.DeleteObjects(ctx, dropped)
}

// sweep removes objects no manifest names.
func (b *Broker) sweep(ctx context.Context) {
	live := map[string]bool{}
	for _, t := range b.current().md.Topics {
		live[fmt.Sprintf("%s-%s", t.Name, t.ID)] = true
	}
	grace := time.Duration(b.cfg.Settings.RemoteOrphanGraceMs) * time.Millisecond
	if _, err := b.tier.Sweep(ctx, func(dir string) bool { return live[dir] }, grace); err != nil && ctx.Err() == nil {
		b.logger.Warn("sweep failed", "err", err)
	}
}

// deleteRemoteTopic removes a deleted topic's objects in the background.
func (b *Broker) deleteRemoteTopic(t *controller.Topic) {
	if b.tier == nil {
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		n, err := b.tier.DeleteTopic(b.ctx, t.Name, t.ID.String())
		if err != nil {
			// The sweeper finishes the job.
			b.logger.Warn("deleting a topic's remote data failed; the sweeper will retry", "topic", t.Name, "err", err)
			return
		}
		if n > 0 {
			b.logger.Info("remote data of deleted topic removed", "topic", t.Name, "objects", n)
		}
	}()
}

// readRemote reads from the remote tier for a fetch below the local log.
func (p *partition) readRemote(ctx context.Context, offset int64, maxBytes int, minOne bool) (tiering.ReadResult, error) {
	return p.remote.Read(ctx, offset, maxBytes, minOne)
}

// errDiskFull refuses produce while the data directory's file system is
// fuller than tiercel.local.disk.max.used.ratio.
var errDiskFull = errors.New("local disk is above tiercel.local.disk.max.used.ratio; waiting for offload to free space")

// checkDisk samples the data directory's file system.
func (b *Broker) checkDisk() {
	used, err := b.diskUsage()
	if err != nil {
		return
	}
	full := used > b.cfg.Settings.LocalDiskMaxUsedRatio
	if was := b.diskFull.Swap(full); was != full {
		if full {
			b.logger.Warn("local disk nearly full; refusing produce until offload frees space",
				"used.ratio", fmt.Sprintf("%.3f", used), "tiercel.local.disk.max.used.ratio", b.cfg.Settings.LocalDiskMaxUsedRatio)
		} else {
			b.logger.Info("local disk below the limit again; accepting produce", "used.ratio", fmt.Sprintf("%.3f", used))
		}
	}
}

// statfsUsage is the used fraction of the file system holding dir.
func statfsUsage(dir string) (float64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	total := float64(st.Blocks) * float64(st.Bsize)
	if total == 0 {
		return 0, nil
	}
	free := float64(st.Bavail) * float64(st.Bsize)
	return 1 - free/total, nil
}
