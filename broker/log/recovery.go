package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// recoveryStats is what Open reports in its one log line.
type recoveryStats struct {
	clean          bool
	hadSegments    bool
	tempRemoved    int
	orphansRemoved int
	scanned        []string // segments rescanned from the recovery point
	rebuilt        []string // segments whose indexes were rebuilt
	truncatedBytes int64
	deletedSegs    int
	reason         string // why the log was cut, if it was
}

func (r *recoveryStats) notable() bool {
	return (!r.clean && r.hadSegments) || r.tempRemoved > 0 || r.orphansRemoved > 0 || len(r.rebuilt) > 0 ||
		r.truncatedBytes > 0 || r.deletedSegs > 0
}

// load recovers the log from its directory:
//
//   - Leftover *.deleted, *.cleaned, *.swap and *.tmp files are removed, as
//     are index files without a segment.
//   - After a clean shutdown (the marker Close leaves, removed here), the
//     segments are trusted: indexes failing cheap checks (size, last entry)
//     are rebuilt now, the others are fully validated when first used, and
//     the active segment's tail past its last index entry is rescanned.
//   - Otherwise every batch from the segment containing the recovery point
//     to the end is checked (whole, parses, CRC, contiguous offsets); the log
//     is cut before the first bad one and every later segment deleted, and
//     the scanned segments' indexes are rebuilt and fsynced.
//   - The log start (its checkpoint, at least the first segment's base),
//     the leader-epoch cache (truncated to the end) and the snapshot list
//     are restored.
func (l *Log) load() error {
	var st recoveryStats
	lim := l.config().limits()
	entries, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("log: list %s: %w", l.dir, err)
	}
	var bases, snaps []int64
	indexFiles := map[int64][]string{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() {
			continue
		}
		if base, ok := parseFileName(name, logSuffix); ok {
			bases = append(bases, base)
		} else if off, ok := parseFileName(name, snapshotSuffix); ok {
			snaps = append(snaps, off)
		} else if base, ok := parseFileName(name, indexSuffix); ok {
			indexFiles[base] = append(indexFiles[base], name)
		} else if base, ok := parseFileName(name, timeIndexSuffix); ok {
			indexFiles[base] = append(indexFiles[base], name)
		} else if hasAnySuffix(name, deletedSuffix, cleanedSuffix, swapSuffix, tmpSuffix) {
			if err := l.fs.Remove(l.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("log: remove leftover %s: %w", name, err)
			}
			st.tempRemoved++
		}
	}
	slices.Sort(bases)
	slices.Sort(snaps)
	for base, names := range indexFiles {
		if _, found := slices.BinarySearch(bases, base); found {
			continue
		}
		for _, name := range names {
			if err := l.fs.Remove(l.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("log: remove orphan %s: %w", name, err)
			}
			st.orphansRemoved++
		}
	}

	if _, err := l.fs.Stat(l.path(cleanShutdownFile)); err == nil {
		st.clean = true
		// Remove the marker before anything else: from here on a crash
		// must lead to a full recovery.
		if err := l.fs.Remove(l.path(cleanShutdownFile)); err != nil {
			return fmt.Errorf("log: remove clean-shutdown marker: %w", err)
		}
		if err := l.fs.SyncDir(l.dir); err != nil {
			return fmt.Errorf("log: sync dir: %w", err)
		}
	}
	rp, haveRP, err := readOffsetCheckpoint(l.fs, l.path(recoveryPointFile))
	if err != nil {
		l.logger.Warn("ignoring recovery-point checkpoint; recovering from the start", "err", err)
		rp, haveRP, st.clean = 0, false, false
	}
	l.persistedRP = rp
	if !haveRP {
		l.persistedRP = -1 // make the first persist write the file
	}
	lso, _, err := readOffsetCheckpoint(l.fs, l.path(logStartCheckpointFile))
	if err != nil {
		l.logger.Warn("ignoring log-start-offset checkpoint", "err", err)
		lso = 0
	}

	now := l.now()
	segs := make([]*segment, 0, len(bases))
	for i, base := range bases {
		path := l.path(fileName(base, logSuffix))
		f, err := l.fs.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			l.segs = segs
			return fmt.Errorf("log: open %s: %w", path, err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			l.segs = segs
			return fmt.Errorf("log: stat %s: %w", path, err)
		}
		s := newSegment(l.dir, base, f)
		s.size, s.modTime, s.created = fi.Size(), fi.ModTime(), now
		if i+1 < len(bases) {
			s.next = bases[i+1] // provisional until loaded or scanned
		}
		segs = append(segs, s)
	}
	l.segs = segs // so Open releases the files on error
	st.hadSegments = len(segs) > 0

	firstScan := len(segs)
	if !st.clean && len(segs) > 0 {
		v := logView{segs: segs}
		firstScan = v.find(rp)
	}
	for i := 0; i < firstScan; i++ {
		s := segs[i]
		if i == len(segs)-1 {
			if err := l.loadActiveTail(s, lim); err != nil {
				l.logger.Warn("active segment does not load cleanly; rescanning it", "segment", s.logPath, "reason", err)
				firstScan = i
			}
			break
		}
		if !l.cheapIndexCheck(s) {
			st.rebuilt = append(st.rebuilt, filepath.Base(s.logPath))
			if err := s.ensureLoaded(l.fs, lim, l.logger); err != nil {
				return err
			}
		}
	}
	if segs, err = l.recoverTail(segs, firstScan, lim, &st); err != nil {
		l.segs = segs
		return err
	}
	l.segs = segs

	if len(segs) == 0 {
		s, err := createSegment(l.fs, l.dir, lso, now)
		if err != nil {
			return fmt.Errorf("log: %w", err)
		}
		segs = append(segs, s)
		l.segs = segs
	}
	last := segs[len(segs)-1]
	if last.next < lso {
		// The checkpointed start is past every batch: the tail was lost
		// (an unflushed range after a crash, or deleted files). Kafka
		// starts over at the checkpoint; so do we.
		l.logger.Warn("log end is below the checkpointed log start; starting empty at the log start", "end", last.next, "start", lso)
		for i := len(segs) - 1; i >= 0; i-- {
			if err := l.removeSegmentFiles(segs[i]); err != nil {
				return err
			}
			segs[i].file.release()
			st.deletedSegs++
		}
		l.segs = nil
		s, err := createSegment(l.fs, l.dir, lso, now)
		if err != nil {
			return fmt.Errorf("log: %w", err)
		}
		segs = []*segment{s}
		l.segs = segs
		last = s
		if err := writeFileAtomic(l.fs, l.dir, epochCheckpointFile, encodeEpochCheckpoint(nil)); err != nil {
			return fmt.Errorf("log: clear epochs: %w", err)
		}
		for _, off := range snaps {
			_ = l.fs.Remove(l.path(fileName(off, snapshotSuffix)))
		}
		snaps = nil
	}
	last.active, last.loaded = true, true
	l.active = last
	l.leo = last.next
	l.start = min(max(lso, segs[0].base), l.leo)
	for _, s := range segs {
		l.size += s.size
	}

	if len(st.scanned) > 0 || !st.clean {
		// What recovery kept is now known good; make it durable so the
		// recovery point can move to the end.
		for _, s := range segs[min(firstScan, len(segs)-1):] {
			if err := syncSegment(l.fs, s); err != nil {
				return err
			}
		}
		if err := l.fs.SyncDir(l.dir); err != nil {
			return fmt.Errorf("log: sync dir: %w", err)
		}
	}
	l.rp.Store(l.leo)
	if err := l.persistRecoveryPoint(true); err != nil {
		return err
	}

	es, err := readEpochCheckpoint(l.fs, l.path(epochCheckpointFile))
	if err != nil {
		return err
	}
	l.epochs = es
	if es, changed := epochsTruncateFromEnd(es, l.leo); changed {
		if err := l.setEpochsLocked(es); err != nil {
			return err
		}
	}
	l.snaps = snaps
	if err := l.deleteSnapshotsAbove(l.leo); err != nil {
		return err
	}

	if st.notable() {
		args := []any{"clean_shutdown", st.clean, "segments", len(segs), "start", l.start, "end", l.leo}
		if st.tempRemoved+st.orphansRemoved > 0 {
			args = append(args, "leftovers_removed", st.tempRemoved+st.orphansRemoved)
		}
		if len(st.scanned) > 0 {
			args = append(args, "rescanned", st.scanned)
		}
		if len(st.rebuilt) > 0 {
			args = append(args, "indexes_rebuilt", st.rebuilt)
		}
		if st.truncatedBytes > 0 || st.deletedSegs > 0 {
			args = append(args, "truncated_bytes", st.truncatedBytes, "segments_deleted", st.deletedSegs, "reason", st.reason)
		}
		l.logger.Info("recovered log", args...)
	}
	return nil
}

func hasAnySuffix(name string, suffixes ...string) bool {
	for _, s := range suffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// recoverTail rescans segs[from:] with full validation, cuts the log at the
// first bad batch and deletes everything after it. It returns the segments
// that remain.
func (l *Log) recoverTail(segs []*segment, from int, lim limits, st *recoveryStats) ([]*segment, error) {
	for i := from; i < len(segs); i++ {
		s := segs[i]
		if i > 0 && s.base < segs[i-1].next {
			st.reason = fmt.Sprintf("segment %d overlaps the previous one, which ends at %d", s.base, segs[i-1].next)
			return l.dropFrom(segs, i, st)
		}
		res, err := scanSegment(s.file.f, s.base, s.size, lim, true)
		if err != nil {
			return segs, fmt.Errorf("log: recover %s: %w", s.logPath, err)
		}
		st.scanned = append(st.scanned, filepath.Base(s.logPath))
		cut := res.validBytes < s.size
		if cut {
			if err := s.file.f.Truncate(res.validBytes); err != nil {
				return segs, fmt.Errorf("log: recover: truncate %s: %w", s.logPath, err)
			}
			st.truncatedBytes += s.size - res.validBytes
			st.reason = fmt.Sprintf("%s: %v", filepath.Base(s.logPath), res.bad)
		}
		s.ix = res.ix
		s.size, s.next = res.validBytes, res.next
		last := cut || i == len(segs)-1
		if !last {
			s.ix.appendTime(lim.maxTime, true) // sealed: end with the max, as a roll does
		}
		if err := s.writeIndexFiles(l.fs, true); err != nil {
			return segs, fmt.Errorf("log: recover: %w", err)
		}
		s.loaded = true
		if cut {
			return l.dropFrom(segs, i+1, st)
		}
	}
	return segs, nil
}

// dropFrom deletes segs[i:] during recovery, newest first.
func (l *Log) dropFrom(segs []*segment, i int, st *recoveryStats) ([]*segment, error) {
	for j := len(segs) - 1; j >= i; j-- {
		st.truncatedBytes += segs[j].size
		if err := l.removeSegmentFiles(segs[j]); err != nil {
			return segs[:j+1], err
		}
		segs[j].file.release()
		st.deletedSegs++
	}
	return segs[:i], nil
}

// loadActiveTail loads the last segment after a clean shutdown: its index
// files, then the batches past the last offset-index entry.
func (l *Log) loadActiveTail(s *segment, lim limits) error {
	idx, tidx, err := loadIndexes(l.fs, s.idxPath, s.timePath, s.size, maxRelOffset)
	if err != nil {
		return err
	}
	s.ix.setFromIndexes(idx, tidx)
	s.idxOnDisk, s.tidxOnDisk = len(idx), len(tidx)
	if err := s.loadFirstTimestamp(); err != nil {
		return err
	}
	scanFrom, skipFirst := int64(0), false
	if n := len(idx); n > 0 {
		scanFrom, skipFirst = int64(idx[n-1].pos), true
	}
	next, err := tailScan(s.file.f, &s.ix, scanFrom, s.size, skipFirst, lim)
	if err != nil {
		return err
	}
	if next < 0 {
		return fmt.Errorf("%w: no batch at the last index entry", ErrCorruptLog)
	}
	if n := len(tidx); n > 0 && s.base+int64(tidx[n-1].rel) >= next {
		return fmt.Errorf("%w: time index points past the segment end %d", ErrCorruptLog, next)
	}
	if n := len(idx); n > 0 && s.base+int64(idx[n-1].rel) >= next {
		return fmt.Errorf("%w: offset index points past the segment end %d", ErrCorruptLog, next)
	}
	s.next = next
	s.loaded = true
	return nil
}

// cheapIndexCheck is Kafka's sanity check of a sealed segment's indexes at
// load: sizes are whole entries and the last entries lie inside the
// segment. It reads only the last entries; full validation happens when the
// indexes are first used.
func (l *Log) cheapIndexCheck(s *segment) bool {
	maxRel := min(s.next-s.base-1, maxRelOffset)
	check := func(path string, entry int, valid func([]byte) bool) bool {
		f, err := l.fs.OpenFile(path, os.O_RDONLY, 0)
		if err != nil {
			return s.size == 0 && errors.Is(err, fs.ErrNotExist)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil || fi.Size()%int64(entry) != 0 {
			return false
		}
		if fi.Size() == 0 {
			return true
		}
		buf := make([]byte, entry)
		if _, err := f.ReadAt(buf, fi.Size()-int64(entry)); err != nil {
			return false
		}
		return valid(buf)
	}
	return check(s.idxPath, offsetEntrySize, func(b []byte) bool {
		rel, pos := binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:])
		return int64(rel) <= maxRel && int64(pos) < s.size
	}) && check(s.timePath, timeEntrySize, func(b []byte) bool {
		return int64(binary.BigEndian.Uint32(b[8:])) <= maxRel
	})
}
