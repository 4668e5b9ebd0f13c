package log

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"
)

// Offset checkpoints (recovery-point, log-start-offset) are two text lines
// in the style of Kafka's checkpoint files: a format version, then the
// offset.
const offsetCheckpointVersion = 0

func writeOffsetCheckpoint(fsys FS, dir, name string, offset int64) error {
	data := fmt.Appendf(nil, "%d\n%d\n", offsetCheckpointVersion, offset)
	if err := writeFileAtomic(fsys, dir, name, data); err != nil {
		return fmt.Errorf("log: write %s: %w", name, err)
	}
	return nil
}

// readOffsetCheckpoint returns the offset in an offset checkpoint; ok is
// false if the file does not exist.
func readOffsetCheckpoint(fsys FS, path string) (offset int64, ok bool, err error) {
	b, err := readWholeFile(fsys, path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) != 2 || strings.TrimSpace(lines[0]) != strconv.Itoa(offsetCheckpointVersion) {
		return 0, false, fmt.Errorf("%w: %s: bad format", ErrCorruptLog, path)
	}
	offset, err = strconv.ParseInt(strings.TrimSpace(lines[1]), 10, 64)
	if err != nil || offset < 0 {
		return 0, false, fmt.Errorf("%w: %s: bad offset %q", ErrCorruptLog, path, lines[1])
	}
	return offset, true, nil
}

// rpPersistInterval rate-limits recovery-point checkpoint writes from
// frequent flushes (log.flush.interval.messages=1 would otherwise double the
// fsyncs). A stale checkpoint is safe: recovery merely rescans more.
const rpPersistInterval = time.Second

// persistRecoveryPoint writes the in-memory recovery point if it differs
// from the one on disk: always when force, otherwise at most once per
// rpPersistInterval. A recovery point lowered by truncation must be written
// with force before the truncated range is rewritten.
func (l *Log) persistRecoveryPoint(force bool) error {
	l.ckptMu.Lock()
	defer l.ckptMu.Unlock()
	rp := l.rp.Load()
	if rp == l.persistedRP {
		return nil
	}
	now := l.now()
	if !force && rp > l.persistedRP && now.Sub(l.lastRPPersist) < rpPersistInterval {
		return nil
	}
	if err := writeOffsetCheckpoint(l.fs, l.dir, recoveryPointFile, rp); err != nil {
		return err
	}
	l.persistedRP, l.lastRPPersist = rp, now
	return nil
}
