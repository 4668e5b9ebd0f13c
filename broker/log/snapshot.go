package log

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
)

// Producer snapshots are <offset>.snapshot files whose bytes belong to the
// owner (producer state as of offset: every batch below offset applied).
// The log only names, lists, truncates and deletes them.

// WriteSnapshot writes the snapshot for offset atomically, replacing any
// earlier one at the same offset.
func (l *Log) WriteSnapshot(offset int64, data []byte) error {
	if offset < 0 {
		return fmt.Errorf("log: negative snapshot offset %d", offset)
	}
	l.snapMu.Lock()
	defer l.snapMu.Unlock()
	if err := writeFileAtomic(l.fs, l.dir, fileName(offset, snapshotSuffix), data); err != nil {
		return fmt.Errorf("log: write snapshot %d: %w", offset, err)
	}
	if i, found := slices.BinarySearch(l.snaps, offset); !found {
		l.snaps = slices.Insert(l.snaps, i, offset)
	}
	return nil
}

// LatestSnapshot returns the newest snapshot at or below EndOffset().
func (l *Log) LatestSnapshot() (offset int64, data []byte, ok bool, err error) {
	leo := l.EndOffset()
	l.snapMu.Lock()
	defer l.snapMu.Unlock()
	for i := len(l.snaps) - 1; i >= 0; i-- {
		if l.snaps[i] > leo {
			continue
		}
		offset = l.snaps[i]
		data, err = readWholeFile(l.fs, l.path(fileName(offset, snapshotSuffix)))
		if err != nil {
			return 0, nil, false, fmt.Errorf("log: read snapshot %d: %w", offset, err)
		}
		return offset, data, true, nil
	}
	return 0, nil, false, nil
}

// SnapshotAt returns the snapshot taken exactly at offset, if there is one.
// The offloader uploads the snapshot at a segment's end with the segment.
func (l *Log) SnapshotAt(offset int64) (data []byte, ok bool, err error) {
	l.snapMu.Lock()
	defer l.snapMu.Unlock()
	if _, found := slices.BinarySearch(l.snaps, offset); !found {
		return nil, false, nil
	}
	data, err = readWholeFile(l.fs, l.path(fileName(offset, snapshotSuffix)))
	if err != nil {
		return nil, false, fmt.Errorf("log: read snapshot %d: %w", offset, err)
	}
	return data, true, nil
}

// Snapshots returns the offsets of the snapshot files, ascending.
func (l *Log) Snapshots() []int64 {
	l.snapMu.Lock()
	defer l.snapMu.Unlock()
	return slices.Clone(l.snaps)
}

// deleteSnapshotsIf removes the snapshots for which drop returns true.
func (l *Log) deleteSnapshotsIf(drop func(i int, off int64) bool) error {
	l.snapMu.Lock()
	defer l.snapMu.Unlock()
	var firstErr error
	kept := l.snaps[:0:0]
	for i, off := range l.snaps {
		if !drop(i, off) {
			kept = append(kept, off)
			continue
		}
		err := l.fs.Remove(l.path(fileName(off, snapshotSuffix)))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			kept = append(kept, off)
			if firstErr == nil {
				firstErr = fmt.Errorf("log: delete snapshot %d: %w", off, err)
			}
		}
	}
	l.snaps = kept
	return firstErr
}

// deleteSnapshotsAbove removes snapshots past offset (truncation): they
// describe producer state that includes removed batches.
func (l *Log) deleteSnapshotsAbove(offset int64) error {
	return l.deleteSnapshotsIf(func(_ int, off int64) bool { return off > offset })
}

// deleteSnapshotsBelow removes snapshots older than the log start, keeping
// the newest one at or below it, from which producer state can be rebuilt.
func (l *Log) deleteSnapshotsBelow(start int64) error {
	l.snapMu.Lock()
	keep := int64(-1)
	for _, off := range l.snaps {
		if off <= start {
			keep = off
		}
	}
	l.snapMu.Unlock()
	return l.deleteSnapshotsIf(func(_ int, off int64) bool { return off < keep })
}
