package log

import (
	"fmt"
	"time"

	"github.com/tiercel/tiercel/wire/batch"
)

// AppendInfo describes a successful append.
type AppendInfo struct {
	FirstOffset int64
	LastOffset  int64
	// MaxTimestamp is the largest batch max timestamp appended (-1 if none).
	MaxTimestamp int64
	// OffsetOfMaxTimestamp is the last offset of the first batch carrying
	// MaxTimestamp (Kafka's "shallow" offset; the exact record is found by
	// MaxTimestamp when asked).
	OffsetOfMaxTimestamp int64
	Bytes                int
	// Position is the file position of the first batch in its segment.
	Position int64
}

// maxStackHeaders is how many headers Append parses without allocating.
const maxStackHeaders = 16

// Append appends one or more whole batches (concatenated) whose offsets are
// already assigned. The first batch must start at EndOffset() and each
// batch must start where the previous one ends, else nothing is appended
// and the error wraps ErrNonContiguous. Appends are serialized; reads run
// concurrently and see the batches only after the write completed.
//
// Append parses only the 61-byte batch headers (structure, not CRCs: the
// produce and replication paths validate batches before they get here) and
// writes the caller's bytes with one positional write. It rolls first if the
// active segment is full by size, age (segment.ms), index space, or if the
// offsets would not fit the index's 32-bit relative offsets. It adds index
// entries every IndexIntervalBytes and assigns leader epochs from the
// batches' PartitionLeaderEpoch.
//
// If the write fails, the file is cut back to its previous size and the log
// is unchanged; if even that fails, the log refuses further writes until
// reopened (ErrFailed). If the append succeeded but a flush it triggered
// failed, the AppendInfo is returned together with the error.
func (l *Log) Append(data []byte) (AppendInfo, error) {
	var stack [maxStackHeaders]batch.Header
	hs, err := parseAppend(data, stack[:0])
	if err != nil {
		return AppendInfo{}, err
	}
	first, last := &hs[0], &hs[len(hs)-1]

	l.writeMu.Lock()
	info, rolledTo, flush, err := l.appendLocked(data, hs, first, last)
	l.writeMu.Unlock()
	if err != nil {
		return AppendInfo{}, err
	}
	if rolledTo >= 0 && l.opts.OnRoll != nil {
		l.opts.OnRoll(rolledTo)
	}
	if flush {
		if err := l.Flush(); err != nil {
			return info, fmt.Errorf("log: appended, but flush failed: %w", err)
		}
	}
	return info, nil
}

// parseAppend checks the structure of the concatenated batches and returns
// their headers.
func parseAppend(data []byte, hs []batch.Header) ([]batch.Header, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("log: append: %w: no batches", batch.ErrCorrupt)
	}
	for pos := 0; pos < len(data); {
		h, err := batch.ParseHeader(data[pos:])
		if err != nil {
			return nil, fmt.Errorf("log: append: batch at %d: %w", pos, err)
		}
		if pos+h.Size() > len(data) {
			return nil, fmt.Errorf("log: append: batch at %d: %w: %d bytes, %d present", pos, batch.ErrShort, h.Size(), len(data)-pos)
		}
		if h.LastOffsetDelta < 0 || h.BaseOffset < 0 {
			return nil, fmt.Errorf("log: append: batch at %d: %w: offsets %d+%d", pos, batch.ErrCorrupt, h.BaseOffset, h.LastOffsetDelta)
		}
		if n := len(hs); n > 0 && h.BaseOffset != hs[n-1].NextOffset() {
			return nil, fmt.Errorf("%w: batch at %d starts at %d after a batch ending before %d", ErrNonContiguous, pos, h.BaseOffset, hs[n-1].NextOffset())
		}
		hs = append(hs, h)
		pos += h.Size()
	}
	return hs, nil
}

// appendLocked does the append under writeMu. rolledTo is the new base
// offset if it rolled, else -1; flush says a flush is due.
func (l *Log) appendLocked(data []byte, hs []batch.Header, first, last *batch.Header) (info AppendInfo, rolledTo int64, flush bool, err error) {
	rolledTo = -1
	if err := l.checkWritable(); err != nil {
		return info, rolledTo, false, err
	}
	cfg := l.config()
	seg := l.active
	if first.BaseOffset != seg.next {
		return info, rolledTo, false, fmt.Errorf("%w: append at %d, log end is %d", ErrNonContiguous, first.BaseOffset, seg.next)
	}
	now := l.now()
	if reason := l.shouldRoll(seg, cfg, int64(len(data)), last.LastOffset(), now); reason != "" {
		if err := l.rollLocked(now); err != nil {
			return info, rolledTo, false, err
		}
		seg = l.active
		rolledTo = seg.base
	}

	pos := seg.size // the writer owns size; reading it needs no lock
	if n, err := seg.file.f.WriteAt(data, pos); err != nil {
		l.undoWrite(seg, pos, n, err)
		return info, rolledTo, false, fmt.Errorf("log: append to %s: %w", seg.logPath, err)
	}

	info = AppendInfo{
		FirstOffset: first.BaseOffset, LastOffset: last.LastOffset(),
		MaxTimestamp: noTimestamp, OffsetOfMaxTimestamp: -1,
		Bytes: len(data), Position: pos,
	}
	lim := cfg.limits()
	seg.mu.Lock()
	p := pos
	for i := range hs {
		h := &hs[i]
		seg.ix.add(h, p, lim)
		if h.MaxTimestamp > info.MaxTimestamp {
			info.MaxTimestamp, info.OffsetOfMaxTimestamp = h.MaxTimestamp, h.LastOffset()
		}
		p += int64(h.Size())
	}
	seg.size = p
	seg.next = last.NextOffset()
	seg.modTime = now
	seg.writeGen++
	seg.mu.Unlock()

	l.mu.Lock()
	l.leo = seg.next
	l.size += int64(len(data))
	l.mu.Unlock()

	if l.unflushedSince.IsZero() {
		l.unflushedSince = now
	}
	if err := l.assignEpochsFromBatches(hs); err != nil {
		// The batches are in the log; the checkpoint is retried on flush.
		l.logger.Warn("cannot persist leader epochs", "err", err)
	}
	flush = seg.next-l.rp.Load() >= cfg.FlushIntervalMessages ||
		(cfg.FlushInterval > 0 && now.Sub(l.unflushedSince) >= cfg.FlushInterval)
	return info, rolledTo, flush, nil
}

// undoWrite cuts the segment back after a failed or short write so no torn
// batch stays in the file. Readers never saw the bytes: size was not
// published. If the truncate fails too, the log is marked failed; reopening
// recovers it (the failed log writes no clean-shutdown marker).
func (l *Log) undoWrite(seg *segment, pos int64, written int, werr error) {
	if err := seg.file.f.Truncate(pos); err != nil {
		l.failed = fmt.Errorf("append to %s failed (%v) after %d bytes and truncate failed: %w", seg.logPath, werr, written, err)
		l.logger.Error("log failed", "err", l.failed)
	}
}

// assignEpochsFromBatches starts a new epoch at each batch whose leader
// epoch is newer than the latest, as Kafka does on append.
func (l *Log) assignEpochsFromBatches(hs []batch.Header) error {
	var es []EpochEntry
	changed := false
	for i := range hs {
		e := hs[i].PartitionLeaderEpoch
		if e < 0 {
			continue
		}
		if es == nil {
			es = l.Epochs()
		}
		if n := len(es); n == 0 || e > es[n-1].Epoch {
			es, _ = epochsAssign(es, EpochEntry{Epoch: e, StartOffset: hs[i].BaseOffset})
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return l.setEpochsLocked(es)
}

// shouldRoll says why the active segment must roll before an append of n
// bytes ending at lastOffset, or "" if it need not.
func (l *Log) shouldRoll(seg *segment, cfg *Config, n, lastOffset int64, now time.Time) string {
	if seg.size == 0 {
		// An empty segment takes anything, even a batch larger than
		// segment.bytes; its base is the append's first offset, so a single
		// batch's offsets (delta < 2^31) always fit its index.
		return ""
	}
	switch {
	case seg.size+n > cfg.SegmentBytes:
		return "size"
	case seg.ix.full(cfg.limits()):
		return "index"
	case lastOffset-seg.base > maxRelOffset:
		return "offset"
	case cfg.RollInterval > 0 && now.Sub(seg.rollTime()) > cfg.RollInterval:
		return "time"
	}
	return ""
}

// rollTime is what segment.ms counts from: the first batch's timestamp, or
// the segment's creation when that batch has none.
func (s *segment) rollTime() time.Time {
	if s.ix.hasFirst && s.ix.firstTS > noTimestamp {
		return time.UnixMilli(s.ix.firstTS)
	}
	return s.created
}

// Roll seals the active segment, if it holds any batch, and starts a new
// one at the log end (segment.ms ticks, tests, tooling).
func (l *Log) Roll() error {
	l.writeMu.Lock()
	if err := l.checkWritable(); err != nil {
		l.writeMu.Unlock()
		return err
	}
	rolledTo := int64(-1)
	var err error
	if l.active.size > 0 {
		if err = l.rollLocked(l.now()); err == nil {
			rolledTo = l.active.base
		}
	}
	l.writeMu.Unlock()
	if rolledTo >= 0 && l.opts.OnRoll != nil {
		l.opts.OnRoll(rolledTo)
	}
	return err
}

// rollLocked seals the active segment and makes a new empty one at the log
// end. The sealed segment is not fsynced here (that would stall appends for
// as long as writing back up to a segment's worth of dirty pages takes); it
// stays dirty until the next Flush or MaybeFlush. Caller holds writeMu.
func (l *Log) rollLocked(now time.Time) error {
	old := l.active
	lim := l.config().limits()
	old.mu.Lock()
	old.ix.appendTime(lim.maxTime, true)
	old.mu.Unlock()
	if err := old.writeIndexFiles(l.fs, false); err != nil {
		return fmt.Errorf("log: roll: %w", err)
	}
	seg, err := createSegment(l.fs, l.dir, old.next, now)
	if err != nil {
		return fmt.Errorf("log: roll: %w", err)
	}
	old.mu.Lock()
	old.active = false
	old.mu.Unlock()

	l.mu.Lock()
	segs := make([]*segment, len(l.segs), len(l.segs)+1)
	copy(segs, l.segs)
	l.segs = append(segs, seg)
	l.mu.Unlock()
	l.active = seg
	l.dirDirty = true
	return nil
}
