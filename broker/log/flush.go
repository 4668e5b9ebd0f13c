package log

import (
	"fmt"
	"math"
	"time"
)

// Flush fsyncs every segment with unsynced writes (data and index files)
// and moves the recovery point to the log end offset as of the call. The
// fsyncs run without blocking appends.
func (l *Log) Flush() error {
	return l.flush(math.MaxInt64)
}

// MaybeFlush is for the owner's ticker. It flushes everything if
// FlushInterval has passed since the oldest unflushed append; otherwise it
// flushes only segments sealed by a roll since the last flush, as Kafka
// does in the background after each roll, so that the recovery point keeps
// up with rolled segments and an unclean restart rescans little.
func (l *Log) MaybeFlush() error {
	l.writeMu.Lock()
	if err := l.checkWritable(); err != nil {
		l.writeMu.Unlock()
		return err
	}
	cfg := l.config()
	due := cfg.FlushInterval > 0 && !l.unflushedSince.IsZero() && l.now().Sub(l.unflushedSince) >= cfg.FlushInterval
	upTo := l.active.base
	l.writeMu.Unlock()
	if due {
		upTo = math.MaxInt64
	}
	if err := l.flush(upTo); err != nil {
		return err
	}
	// Catch up a recovery-point write that Flush's rate limit skipped.
	return l.persistRecoveryPoint(true)
}

// flush fsyncs the data below upTo (capped at the log end) and advances the
// recovery point to it.
func (l *Log) flush(upTo int64) error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()

	// Phase 1, under writeMu: decide what to sync and write pending index
	// entries (small writes), pinning the segment files.
	l.writeMu.Lock()
	if err := l.checkWritable(); err != nil {
		l.writeMu.Unlock()
		return err
	}
	target := min(upTo, l.active.next)
	if target <= l.rp.Load() && !l.dirDirty {
		l.writeMu.Unlock()
		return nil
	}
	type pending struct {
		s   *segment
		gen uint64
	}
	var todo []pending
	l.mu.RLock()
	segs := l.segs
	l.mu.RUnlock()
	for _, s := range segs {
		if s.base >= target {
			break
		}
		if !s.dirty() || !s.file.acquire() {
			continue
		}
		if err := s.writeIndexFiles(l.fs, false); err != nil {
			s.file.release()
			for _, p := range todo {
				p.s.file.release()
			}
			l.writeMu.Unlock()
			return fmt.Errorf("log: flush: %w", err)
		}
		todo = append(todo, pending{s, s.writeGen})
	}
	syncDir := l.dirDirty
	l.dirDirty = false
	gen := l.truncGen
	epochsDirty := l.epochsDirty
	unflushedSince := l.unflushedSince
	l.writeMu.Unlock()

	// Phase 2, without writeMu: the fsyncs.
	var err error
	for _, p := range todo {
		if err == nil {
			err = syncSegment(l.fs, p.s)
		}
		p.s.file.release()
	}
	if err == nil && syncDir {
		if err = l.fs.SyncDir(l.dir); err != nil {
			err = fmt.Errorf("log: sync dir: %w", err)
		}
	}

	// Phase 3, under writeMu: record what is now durable.
	l.writeMu.Lock()
	if err != nil {
		// After a failed fsync the kernel may have dropped the dirty pages;
		// nothing written since the last good flush can be trusted, so
		// refuse writes until a reopen recovers the log.
		l.failed = err
		l.dirDirty = l.dirDirty || syncDir
		l.writeMu.Unlock()
		l.logger.Error("log failed", "err", err)
		return err
	}
	for _, p := range todo {
		if p.gen > p.s.syncGen {
			p.s.syncGen = p.gen
		}
	}
	if l.truncGen == gen && target > l.rp.Load() {
		l.rp.Store(target)
	}
	switch {
	case target >= l.active.next:
		l.unflushedSince = time.Time{}
	case upTo == math.MaxInt64 && l.unflushedSince.Equal(unflushedSince):
		// Appends arrived during the fsyncs; they are the oldest unflushed
		// data now, and arrived no earlier than phase 1.
		l.unflushedSince = l.now()
	}
	if epochsDirty {
		if perr := l.persistEpochs(l.Epochs()); perr != nil {
			l.logger.Warn("cannot persist leader epochs", "err", perr)
		}
	}
	l.writeMu.Unlock()
	return l.persistRecoveryPoint(false)
}
