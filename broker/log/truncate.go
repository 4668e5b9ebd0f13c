package log

import (
	"fmt"
	"time"
)

// TruncateTo removes every offset >= offset (a follower whose log diverged
// from the leader's). The segment holding offset is cut at the batch
// containing it (so the new end may be below offset if offset falls inside
// a batch; followers truncate at batch boundaries), later segments are
// deleted, and the indexes, leader-epoch cache (truncateFromEnd) and
// producer snapshots above the new end go too. Truncating to at or past the
// end keeps the data but still drops epoch entries starting at or after
// offset: a leader epoch that began at the log end and never got a batch
// must go when the leader says the follower diverged there (as Kafka's
// truncateTo does), or the follower asks about it forever. Below the first
// segment it is TruncateFullyAndStartAt.
func (l *Log) TruncateTo(offset int64) error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := l.checkWritable(); err != nil {
		return err
	}
	l.mu.RLock()
	segs, leo := l.segs, l.leo
	l.mu.RUnlock()
	if offset >= leo {
		if es, changed := epochsTruncateFromEnd(l.Epochs(), offset); changed {
			return l.setEpochsLocked(es)
		}
		return nil
	}
	if offset < segs[0].base {
		return l.truncateFullyLocked(offset)
	}
	l.truncGen++
	// Lower the recovery point durably before touching data: the range
	// above will be rewritten and must be rescanned after a crash.
	if offset < l.rp.Load() {
		l.rp.Store(offset)
		if err := l.persistRecoveryPoint(true); err != nil {
			return err
		}
	}

	v := logView{segs: segs}
	keep := v.find(offset)
	// Delete newer segments newest first, so a crash part-way leaves a
	// contiguous prefix.
	for i := len(segs) - 1; i > keep; i-- {
		if err := l.removeSegmentFiles(segs[i]); err != nil {
			return l.fail(err)
		}
		l.mu.Lock()
		l.segs = segs[:i:i]
		sz, _ := segs[i].sizeNext()
		l.size -= sz
		l.leo = segs[i-1].next
		l.mu.Unlock()
		segs[i].file.release()
	}
	s := segs[keep]
	if err := l.truncateSegment(s, offset); err != nil {
		return l.fail(err)
	}
	l.active = s

	newEnd := l.active.next
	if es, changed := epochsTruncateFromEnd(l.Epochs(), newEnd); changed {
		if err := l.setEpochsLocked(es); err != nil {
			return err
		}
	}
	if newEnd < l.rp.Load() {
		l.rp.Store(newEnd)
	}
	l.mu.Lock()
	lowered := newEnd < l.start
	l.start = min(l.start, newEnd)
	l.mu.Unlock()
	if lowered {
		// As Kafka does, a truncation below the start lowers it; persist
		// that, or the next Open would find the start past the end.
		if err := writeOffsetCheckpoint(l.fs, l.dir, logStartCheckpointFile, newEnd); err != nil {
			return err
		}
	}
	return l.deleteSnapshotsAbove(newEnd)
}

// fail marks the log failed after a truncation could not complete: the
// in-memory state may no longer match the files. Caller holds writeMu.
func (l *Log) fail(err error) error {
	l.failed = err
	l.logger.Error("log failed", "err", err)
	return fmt.Errorf("%w: %v", ErrFailed, err)
}

// truncateSegment cuts s at the batch containing offset and makes it the
// active segment. Caller holds writeMu.
func (l *Log) truncateSegment(s *segment, offset int64) error {
	lim := l.config().limits()
	sv, err := s.view(l.fs, lim, l.logger)
	if err != nil {
		return err
	}
	r := newHeaderReader(s.file.f, sv.size)
	h, cut, found, err := r.seek(lookupOffset(sv.idx, s.base, offset), offset)
	r.close()
	if err != nil {
		return err
	}
	newNext := sv.next
	if found {
		newNext = h.BaseOffset
	} else {
		cut = sv.size
	}

	// Keep the index entries below the cut and rescan from the last one
	// to recover the running state (max timestamp, bytes since entry).
	ix := s.ix.truncated(cut, newNext)
	scanFrom, skipFirst := int64(0), false
	if n := len(ix.idx); n > 0 {
		scanFrom, skipFirst = int64(ix.idx[n-1].pos), true
	}
	ix.maxTS, ix.maxTSOff = noTimestamp, -1
	if n := len(ix.tidx); n > 0 {
		ix.maxTS, ix.maxTSOff = ix.tidx[n-1].ts, s.base+int64(ix.tidx[n-1].rel)
	}
	ix.bytesSince = 0
	if cut == 0 {
		ix = newIndexer(s.base)
	} else if _, err := tailScan(s.file.f, &ix, scanFrom, cut, skipFirst, lim); err != nil {
		return err
	}
	// Publish the shorter segment before cutting the file, so new reads
	// stop at the cut rather than find bytes vanishing under them.
	now := l.now()
	s.mu.Lock()
	s.ix = ix
	s.size, s.next = cut, newNext
	s.active = true
	s.modTime = now
	s.writeGen++
	s.mu.Unlock()
	l.mu.Lock()
	l.size -= sv.size - cut
	l.leo = newNext
	l.mu.Unlock()
	if cut < sv.size {
		if err := s.file.f.Truncate(cut); err != nil {
			return fmt.Errorf("truncate %s: %w", s.logPath, err)
		}
	}
	return s.truncateIndexFiles(l.fs)
}

// TruncateFullyAndStartAt deletes every segment and restarts the log empty
// at offset (a follower that must skip to the leader's local start, or a
// broker restoring from the bucket). The leader-epoch cache and the
// producer snapshots are cleared; the caller re-assigns epochs.
func (l *Log) TruncateFullyAndStartAt(offset int64) error {
	if offset < 0 {
		return fmt.Errorf("log: negative start offset %d", offset)
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := l.checkWritable(); err != nil {
		return err
	}
	return l.truncateFullyLocked(offset)
}

func (l *Log) truncateFullyLocked(offset int64) error {
	l.truncGen++
	// Checkpoints first: if we crash part-way, Open finds the new start
	// and, with no segment left at or above it, starts empty there.
	l.rp.Store(offset)
	if err := l.persistRecoveryPoint(true); err != nil {
		return err
	}
	if err := writeOffsetCheckpoint(l.fs, l.dir, logStartCheckpointFile, offset); err != nil {
		return err
	}
	if err := l.setEpochsLocked(nil); err != nil {
		return err
	}
	l.mu.RLock()
	segs := l.segs
	l.mu.RUnlock()
	for i := len(segs) - 1; i >= 0; i-- {
		if err := l.removeSegmentFiles(segs[i]); err != nil {
			return l.fail(err)
		}
		l.mu.Lock()
		l.segs = segs[:i:i]
		sz, _ := segs[i].sizeNext()
		l.size -= sz
		l.mu.Unlock()
		segs[i].file.release()
	}
	seg, err := createSegment(l.fs, l.dir, offset, l.now())
	if err != nil {
		return l.fail(err)
	}
	l.mu.Lock()
	l.segs = []*segment{seg}
	l.start, l.leo, l.size = offset, offset, 0
	l.mu.Unlock()
	l.active = seg
	l.dirDirty = true
	l.unflushedSince = time.Time{}
	return l.deleteSnapshotsIf(func(int, int64) bool { return true })
}
