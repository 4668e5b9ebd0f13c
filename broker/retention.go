package broker

import (
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
// time or size limit, oldest first, and never one holding offsets at or
// above the high watermark: those may not be fully replicated.
func (p *partition) applyRetention(nowMs int64) {
	s := p.settings()
	if s.RetentionMs < 0 && s.RetentionBytes < 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	hw := p.hw.Load()
	excess := int64(-1)
	if s.RetentionBytes >= 0 {
		excess = p.log.Size() - s.RetentionBytes
	}
	reason := ""
	deleted, err := p.log.DeleteSegments(func(si plog.SegmentInfo) bool {
		if si.NextOffset > hw {
			return false
		}
		if s.RetentionMs >= 0 && si.MaxTimestamp >= 0 && nowMs-si.MaxTimestamp > s.RetentionMs {
			reason = "retention.ms"
			excess -= si.Size
			return true
		}
		// Size: Kafka deletes a segment only if the log stays at or above
		// retention.bytes without it.
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
		p.logger.Info("retention deleted segments", "reason", reason, "segments", len(deleted),
			"bytes", bytes, "log.start.offset", p.log.StartOffset())
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
	})
}
