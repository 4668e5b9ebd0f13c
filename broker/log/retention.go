package log

import (
	"fmt"
)

// DeleteSegments deletes sealed segments from the oldest for as long as
// deletable returns true for them (the broker's retention policy decides;
// this is the mechanism). The active segment is never deleted. The log
// start moves up to the first remaining segment's base (never down), and
// producer snapshots below it go too, except the newest at or below it.
// Files are renamed to *.deleted before removal, so a crash part-way
// leaves a log that opens cleanly. Readers holding a ReadResult on a
// deleted segment keep reading it until they release it. It returns what
// was deleted, even with an error.
func (l *Log) DeleteSegments(deletable func(SegmentInfo) bool) ([]SegmentInfo, error) {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := l.checkWritable(); err != nil {
		return nil, err
	}
	lim := l.config().limits()
	l.mu.RLock()
	segs := l.segs
	l.mu.RUnlock()
	var deleted []SegmentInfo
	var err error
	n := 0
	for _, s := range segs {
		if s == l.active {
			break
		}
		sv, verr := s.view(l.fs, lim, l.logger)
		if verr != nil {
			err = verr
			break
		}
		info := s.info(l.dir, sv)
		if !deletable(info) {
			break
		}
		if err = l.removeSegmentFiles(s); err != nil {
			break
		}
		deleted = append(deleted, info)
		n++
	}
	if n == 0 {
		return nil, err
	}
	l.dropOldest(n)
	if serr := l.deleteSnapshotsBelow(l.StartOffset()); serr != nil && err == nil {
		err = serr
	}
	return deleted, err
}

// dropOldest removes the n oldest segments (whose files are already gone)
// from the log and releases them. Caller holds writeMu.
func (l *Log) dropOldest(n int) {
	l.mu.Lock()
	gone := l.segs[:n]
	l.segs = append([]*segment(nil), l.segs[n:]...)
	for _, s := range gone {
		sz, _ := s.sizeNext()
		l.size -= sz
	}
	l.start = max(l.start, l.segs[0].base)
	l.mu.Unlock()
	for _, s := range gone {
		s.file.release()
	}
}

// SetStartOffset moves the log start forward to offset (DeleteRecords). It
// never moves it back. offset above EndOffset() is ErrOffsetOutOfRange.
// Segments wholly below the new start are deleted (never the active one);
// the start is persisted in the log-start-offset checkpoint so it survives
// a restart, and the leader-epoch cache is truncated from the start as
// Kafka does.
func (l *Log) SetStartOffset(offset int64) error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := l.checkWritable(); err != nil {
		return err
	}
	l.mu.RLock()
	start, leo, segs := l.start, l.leo, l.segs
	l.mu.RUnlock()
	if offset > leo {
		return fmt.Errorf("%w: new start %d is past the end %d", ErrOffsetOutOfRange, offset, leo)
	}
	if offset <= start {
		return nil
	}
	// Persist first: if we crash after deleting segments, Open still takes
	// max(checkpoint, first base).
	if err := writeOffsetCheckpoint(l.fs, l.dir, logStartCheckpointFile, offset); err != nil {
		return err
	}
	l.mu.Lock()
	l.start = offset
	l.mu.Unlock()

	n := 0
	var err error
	for _, s := range segs {
		if s == l.active {
			break
		}
		if _, next := s.sizeNext(); next > offset {
			break
		}
		if err = l.removeSegmentFiles(s); err != nil {
			break
		}
		n++
	}
	if n > 0 {
		l.dropOldest(n)
	}
	if es, changed := epochsTruncateFromStart(l.Epochs(), offset); changed {
		if eerr := l.setEpochsLocked(es); eerr != nil && err == nil {
			err = eerr
		}
	}
	if serr := l.deleteSnapshotsBelow(offset); serr != nil && err == nil {
		err = serr
	}
	return err
}
