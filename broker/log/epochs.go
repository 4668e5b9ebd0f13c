package log

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// EpochEntry says that leader epoch Epoch wrote its first batch at
// StartOffset.
type EpochEntry struct {
	Epoch       int32
	StartOffset int64
}

// The leader-epoch cache follows Kafka's LeaderEpochFileCache. Entries are
// ascending in both epoch and start offset. The functions below are pure:
// they return new slices and never modify their input, because readers hold
// the old slice without a lock.

// epochsAssign adds (epoch, start) the way Kafka's assign does: nothing
// changes if the latest entry already has this epoch at an offset <= start;
// otherwise every entry with epoch >= the new one or start offset >= the new
// one is dropped and the new entry appended.
func epochsAssign(es []EpochEntry, e EpochEntry) ([]EpochEntry, bool) {
	if n := len(es); n > 0 && es[n-1].Epoch == e.Epoch && es[n-1].StartOffset <= e.StartOffset {
		return es, false
	}
	k := len(es)
	for k > 0 && (es[k-1].Epoch >= e.Epoch || es[k-1].StartOffset >= e.StartOffset) {
		k--
	}
	out := make([]EpochEntry, k, k+1)
	copy(out, es[:k])
	return append(out, e), true
}

// epochsTruncateFromEnd drops entries starting at or after end (the log was
// truncated to end).
func epochsTruncateFromEnd(es []EpochEntry, end int64) ([]EpochEntry, bool) {
	k := len(es)
	for k > 0 && es[k-1].StartOffset >= end {
		k--
	}
	if k == len(es) {
		return es, false
	}
	return slices.Clone(es[:k]), true
}

// epochsTruncateFromStart drops entries wholly below start (the log start
// moved to start); the last of them survives with its start offset moved up
// to start, since its epoch still covers the new first offset.
func epochsTruncateFromStart(es []EpochEntry, start int64) ([]EpochEntry, bool) {
	k := 0
	for k < len(es) && es[k].StartOffset <= start {
		k++
	}
	if k == 0 || (k == 1 && es[0].StartOffset == start) {
		return es, false
	}
	out := make([]EpochEntry, 0, len(es)-k+1)
	out = append(out, EpochEntry{Epoch: es[k-1].Epoch, StartOffset: start})
	return append(out, es[k:]...), true
}

// undefinedEpoch and undefinedEpochOffset are Kafka's UNDEFINED_EPOCH and
// UNDEFINED_EPOCH_OFFSET.
const (
	undefinedEpoch       = -1
	undefinedEpochOffset = -1
)

// epochsEndOffsetFor is Kafka's endOffsetFor: for the latest epoch, the log
// end; for an older epoch, the largest epoch <= it and the start offset of
// the first larger epoch; for an epoch below every entry, the requested
// epoch itself with the first entry's start offset (the history below was
// deleted, and the follower should replicate from there); undefined for an
// unknown (larger than latest) or undefined epoch, or an empty cache.
func epochsEndOffsetFor(es []EpochEntry, requested int32, leo int64) (int32, int64) {
	if requested == undefinedEpoch || len(es) == 0 {
		return undefinedEpoch, undefinedEpochOffset
	}
	if es[len(es)-1].Epoch == requested {
		return requested, leo
	}
	// First entry with a larger epoch.
	hi := sort.Search(len(es), func(i int) bool { return es[i].Epoch > requested })
	if hi == len(es) {
		return undefinedEpoch, undefinedEpochOffset
	}
	if hi == 0 {
		return requested, es[0].StartOffset
	}
	return es[hi-1].Epoch, es[hi].StartOffset
}

// Kafka's leader-epoch-checkpoint text format: version "0", the entry
// count, then one "<epoch> <startOffset>" line per entry.
func encodeEpochCheckpoint(es []EpochEntry) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n", len(es))
	for _, e := range es {
		fmt.Fprintf(&b, "%d %d\n", e.Epoch, e.StartOffset)
	}
	return b.Bytes()
}

func decodeEpochCheckpoint(b []byte) ([]EpochEntry, error) {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) < 2 || strings.TrimSpace(lines[0]) != "0" {
		return nil, fmt.Errorf("%w: leader-epoch-checkpoint: bad version line", ErrCorruptLog)
	}
	n, err := strconv.Atoi(strings.TrimSpace(lines[1]))
	if err != nil || n < 0 || n != len(lines)-2 {
		return nil, fmt.Errorf("%w: leader-epoch-checkpoint: count %q for %d entries", ErrCorruptLog, lines[1], len(lines)-2)
	}
	es := make([]EpochEntry, 0, n)
	for _, line := range lines[2:] {
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("%w: leader-epoch-checkpoint: bad line %q", ErrCorruptLog, line)
		}
		ep, err1 := strconv.ParseInt(f[0], 10, 32)
		off, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || ep < 0 || off < 0 {
			return nil, fmt.Errorf("%w: leader-epoch-checkpoint: bad line %q", ErrCorruptLog, line)
		}
		e := EpochEntry{Epoch: int32(ep), StartOffset: off}
		if k := len(es); k > 0 && (e.Epoch <= es[k-1].Epoch || e.StartOffset < es[k-1].StartOffset) {
			return nil, fmt.Errorf("%w: leader-epoch-checkpoint: entries out of order at %q", ErrCorruptLog, line)
		}
		es = append(es, e)
	}
	return es, nil
}

func readEpochCheckpoint(fsys FS, path string) ([]EpochEntry, error) {
	b, err := readWholeFile(fsys, path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("log: read %s: %w", path, err)
	}
	return decodeEpochCheckpoint(b)
}

// Epochs returns the leader-epoch entries, ascending.
func (l *Log) Epochs() []EpochEntry {
	l.epochMu.RLock()
	defer l.epochMu.RUnlock()
	return slices.Clone(l.epochs)
}

// LatestEpoch returns the newest epoch, or ok=false if the cache is empty.
func (l *Log) LatestEpoch() (epoch int32, ok bool) {
	l.epochMu.RLock()
	defer l.epochMu.RUnlock()
	if len(l.epochs) == 0 {
		return undefinedEpoch, false
	}
	return l.epochs[len(l.epochs)-1].Epoch, true
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch with Kafka's semantics:
// for the latest epoch, (epoch, LEO); for an older epoch e, the largest
// known epoch <= e and the start offset of the next larger epoch; for e
// below every known epoch, (e, start offset of the first epoch); and
// (-1, -1) for an undefined or unknown epoch or an empty cache.
func (l *Log) EndOffsetForEpoch(e int32) (epoch int32, endOffset int64) {
	leo := l.EndOffset()
	l.epochMu.RLock()
	defer l.epochMu.RUnlock()
	return epochsEndOffsetFor(l.epochs, e, leo)
}

// AssignEpoch records that epoch starts at startOffset (on leader
// election, at the LEO), with Kafka's assign semantics, and persists the
// cache.
func (l *Log) AssignEpoch(epoch int32, startOffset int64) error {
	if epoch < 0 || startOffset < 0 {
		return fmt.Errorf("log: invalid epoch entry (%d, %d)", epoch, startOffset)
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := l.checkWritable(); err != nil {
		return err
	}
	es, changed := epochsAssign(l.Epochs(), EpochEntry{Epoch: epoch, StartOffset: startOffset})
	if !changed {
		return nil
	}
	return l.setEpochsLocked(es)
}

// setEpochsLocked persists es and then publishes it. If the write fails the
// new entries are still published (they describe data that is in the log)
// and the write is retried on the next flush. Caller holds writeMu.
func (l *Log) setEpochsLocked(es []EpochEntry) error {
	err := l.persistEpochs(es)
	l.epochMu.Lock()
	l.epochs = es
	l.epochMu.Unlock()
	return err
}

func (l *Log) persistEpochs(es []EpochEntry) error {
	if err := writeFileAtomic(l.fs, l.dir, epochCheckpointFile, encodeEpochCheckpoint(es)); err != nil {
		l.epochsDirty = true
		return fmt.Errorf("log: write %s: %w", epochCheckpointFile, err)
	}
	l.epochsDirty = false
	return nil
}
