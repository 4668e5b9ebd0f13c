package broker

import (
	"math"
	"time"

	plog "github.com/tiercel/tiercel/broker/log"
)

// applyRetention runs retention.ms and retention.bytes on every hosted
// partition this broker leads.
func (b *Broker) applyRetention() {
	nowMs := b.now().UnixMilli()
	b.forEachPartition(func(_ *topicState, p *partition) {
		p.applyRetention(nowMs)
	})
}

// applyRetention deletes whole sealed segments that are past the topic's
// limits, oldest first, and never one holding offsets at or above the high
// watermark: those may not be fully replicated. For a tiered topic the
// local limits are local.retention.*, and a segment goes only once the
// remote log has it: while the object store is unreachable, segments pile
// up locally and nothing is lost. Remote retention runs in the offload
// loop.
func (p *partition) applyRetention(nowMs int64) {
	s := p.settings()
	retMs, retBytes := s.RetentionMs, s.RetentionBytes
	uploadedBelow := int64(math.MaxInt64)
	if p.tiered() {
		retMs, retBytes = s.topic.LocalRetentionMs, s.topic.LocalRetentionBytes
		uploadedBelow = p.remoteNext()
	}
	if retMs < 0 && retBytes < 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	hw := p.hw.Load()
	excess := int64(-1)
	if retBytes >= 0 {
		excess = p.log.Size() - retBytes
	}
	reason := ""
	deleted, err := p.log.DeleteSegments(func(si plog.SegmentInfo) bool {
		if si.NextOffset > hw || si.NextOffset > uploadedBelow {
			return false
		}
		if retMs >= 0 && si.MaxTimestamp >= 0 && nowMs-si.MaxTimestamp > retMs {
			reason = "retention.ms"
			excess -= si.Size
			return true
		}
		// Size: Kafka deletes a segment only if the log stays at or above
		// the limit without it.
		if excess >= si.Size {
			reason = "retention.bytes"
			excess -= si.Size
			return true
		}
		return false
	})
	if err != nil {
		p.logger.Warn("retention failed", "err", err)
		return
	}
	if len(deleted) > 0 {
		var bytes int64
		for _, d := range deleted {
			bytes += d.Size
		}
		if p.tiered() {
			reason = "local." + reason
		}
		p.logger.Info("retention deleted local segments", "reason", reason, "segments", len(deleted),
			"bytes", bytes, "local.log.start.offset", p.log.StartOffset())
	}
}

// tickPartitions runs the once-a-second work: rolling segments older than
// segment.ms even when no append arrives (so that they can be sealed and,
// with tiering, offloaded), time-based flushes, and producer expiry.
func (b *Broker) tickPartitions() {
	now := b.now()
	expire := now.Sub(b.lastExpiry) >= time.Minute
	if expire {
		b.lastExpiry = now
	}
	b.checkDisk()
	if err := b.writeHWCheckpoint(); err != nil {
		b.logger.Warn("high watermark checkpoint failed", "err", err)
	}
	b.forEachPartition(func(_ *topicState, p *partition) {
		s := p.settings()
		if s.SegmentMs > 0 {
			segs := p.log.Segments()
			if n := len(segs); n > 0 {
				active := segs[n-1]
				if active.Size > 0 && active.FirstBatchTimestamp >= 0 && now.UnixMilli()-active.FirstBatchTimestamp >= s.SegmentMs {
					p.mu.Lock()
					if err := p.log.Roll(); err != nil {
						p.logger.Warn("segment.ms roll failed", "err", err)
					}
					p.mu.Unlock()
				}
			}
		}
		// Flushes what log.flush.interval.* asks for, fsyncs segments
		// sealed by a roll, and moves the recovery point, so that an
		// unclean restart rescans little.
		if err := p.log.MaybeFlush(); err != nil {
			p.logger.Warn("flush failed", "err", err)
		}
		if expire {
			p.expireProducers(int64(b.cfg.Settings.ProducerIDExpirationMs))
		}
		b.checkISR(p)
	})
}
