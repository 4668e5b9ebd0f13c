// Package log is the local segmented log of one partition: record batches
// (v2, byte for byte as produced) in <base>.log segment files with Kafka's
// sparse offset and time indexes, the leader-epoch cache, producer-state
// snapshots as opaque files, and crash recovery. It knows nothing of the
// network, the object store or Kafka request types.
//
// Concurrency: one writer at a time (the partition's owner serializes
// Append, truncation, deletion), many concurrent readers. Readers take locks
// only to copy a few fields and do their I/O holding a reference on the
// segment file instead, so a fetch never waits for an append's write(2) and
// never sees a batch before its whole bytes are in the file.
//
// Lock order: a goroutine holding one of these may only acquire those listed
// below it.
//
//	Log.flushMu    serializes Flush; fsyncs run holding only this lock
//	Log.writeMu    serializes every mutation (Append, Roll, truncation,
//	               deletion, AssignEpoch, SetStartOffset, SetConfig, Close)
//	Log.ckptMu     serializes writes of the recovery-point checkpoint
//	Log.snapMu     guards the list of snapshot files
//	Log.mu         guards the segment list, start, end, size, closed;
//	               never held during I/O
//	segment.mu     guards one segment's size, next offset, indexes and
//	               timestamps; held during I/O only to load a sealed
//	               segment's indexes the first time they are needed
//	Log.epochMu    guards the in-memory epoch entries; never held during I/O
package log

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned by the log, to be matched with errors.Is.
var (
	// ErrOffsetOutOfRange: the offset is below the log start or above the
	// log end. Kafka: OFFSET_OUT_OF_RANGE.
	ErrOffsetOutOfRange = errors.New("log: offset out of range")
	// ErrNonContiguous: an append does not start at the log end offset or
	// its batches do not follow one another.
	ErrNonContiguous = errors.New("log: batches are not contiguous with the log")
	// ErrCorruptLog: bytes on disk do not parse (a batch, an index, a
	// checkpoint). Kafka: CORRUPT_MESSAGE / KafkaStorageException.
	ErrCorruptLog = errors.New("log: corrupt")
	// ErrClosed: the log was closed or deleted.
	ErrClosed = errors.New("log: closed")
	// ErrFailed: an earlier write failed in a way that could not be undone;
	// the log refuses writes until it is reopened (which recovers it).
	ErrFailed = errors.New("log: failed after an I/O error; reopen to recover")
)

// Names of the log's metadata files inside the partition directory.
const (
	epochCheckpointFile    = "leader-epoch-checkpoint"
	recoveryPointFile      = "recovery-point"
	logStartCheckpointFile = "log-start-offset"
	cleanShutdownFile      = ".clean-shutdown"
)

// Config is the per-topic configuration the log obeys. Zero or negative
// values fall back to DefaultConfig's, except where noted.
type Config struct {
	// SegmentBytes is segment.bytes: roll when the active segment would
	// grow past it. Capped at 2 GiB - 1 because index positions are 32-bit.
	SegmentBytes int64
	// RollInterval is segment.ms: roll when the active segment's first batch
	// is older than this. 0 means never.
	RollInterval time.Duration
	// IndexIntervalBytes is index.interval.bytes. 0 indexes every batch;
	// negative means the default.
	IndexIntervalBytes int
	// MaxIndexBytes is segment.index.bytes: roll when the offset index
	// would outgrow it.
	MaxIndexBytes int
	// FlushIntervalMessages is log.flush.interval.messages: fsync once this
	// many offsets are unflushed. <= 0 or MaxInt64 means never by count.
	FlushIntervalMessages int64
	// FlushInterval is log.flush.interval.ms: fsync once the oldest
	// unflushed append is this old. 0 means never by time. It is checked
	// on Append and by MaybeFlush, which the owner calls from a ticker.
	FlushInterval time.Duration
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:       1 << 30,
		RollInterval:       7 * 24 * time.Hour,
		IndexIntervalBytes: 4096,
		MaxIndexBytes:      10 << 20,
	}
}

func (c Config) normalized() Config {
	d := DefaultConfig()
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = d.SegmentBytes
	}
	c.SegmentBytes = min(c.SegmentBytes, maxSegmentPos)
	if c.RollInterval < 0 {
		c.RollInterval = 0
	}
	if c.IndexIntervalBytes < 0 {
		c.IndexIntervalBytes = d.IndexIntervalBytes
	}
	if c.MaxIndexBytes <= 0 {
		c.MaxIndexBytes = d.MaxIndexBytes
	}
	if c.FlushIntervalMessages <= 0 {
		c.FlushIntervalMessages = math.MaxInt64
	}
	if c.FlushInterval < 0 {
		c.FlushInterval = 0
	}
	return c
}

// Options are the log's collaborators.
type Options struct {
	// Logger receives the log's few messages (recovery, repairs). nil
	// means slog.Default().
	Logger *slog.Logger
	// Now is the clock, for tests. nil means time.Now.
	Now func() time.Time
	// FS is the file layer. nil means the operating system's.
	FS FS
	// OnRoll, if set, is called after the active segment rolls, with the
	// new segment's base offset and no log lock held, so the owner can
	// write a producer snapshot at that offset. It runs on the goroutine
	// of the Append or Roll that rolled, before that call returns.
	OnRoll func(newBaseOffset int64)
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FS == nil {
		o.FS = OSFS()
	}
	return o
}

// Log is the segmented log of one partition. Its methods are safe for
// concurrent use; writes are serialized internally, and the owner is
// expected to issue appends from one goroutine in offset order anyway.
type Log struct {
	dir    string
	fs     FS
	opts   Options
	logger *slog.Logger
	cfg    atomic.Pointer[Config]

	flushMu sync.Mutex

	writeMu sync.Mutex
	// Guarded by writeMu.
	active         *segment
	failed         error
	dirDirty       bool      // segment files created since the last directory fsync
	unflushedSince time.Time // time of the oldest unflushed append; zero if none
	truncGen       uint64    // bumped by truncations, so a concurrent flush does not move the recovery point over rewritten data
	epochsDirty    bool      // the epoch checkpoint failed to persist; retry on flush
	rp             atomic.Int64

	ckptMu        sync.Mutex
	persistedRP   int64 // guarded by ckptMu
	lastRPPersist time.Time

	snapMu sync.Mutex
	snaps  []int64 // ascending snapshot offsets; guarded by snapMu

	mu     sync.RWMutex
	segs   []*segment // ascending by base; replaced, never modified in place
	start  int64
	leo    int64
	size   int64
	closed bool

	epochMu sync.RWMutex
	epochs  []EpochEntry // replaced, never modified in place
}

// Open opens the log in dir, creating the directory if it is missing, and
// recovers it: see recovery.go.
func Open(dir string, cfg Config, opts Options) (*Log, error) {
	opts = opts.withDefaults()
	cfg = cfg.normalized()
	l := &Log{
		dir:    dir,
		fs:     opts.FS,
		opts:   opts,
		logger: opts.Logger.With("dir", dir),
	}
	l.cfg.Store(&cfg)
	if err := l.fs.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("log: create %s: %w", dir, err)
	}
	if err := l.load(); err != nil {
		for _, s := range l.segs {
			s.file.release()
		}
		return nil, err
	}
	return l, nil
}

func (l *Log) config() *Config { return l.cfg.Load() }

func (l *Log) now() time.Time { return l.opts.Now() }

// SetConfig applies a topic configuration change. It takes effect from the
// next append (a smaller segment.bytes rolls the active segment then).
func (l *Log) SetConfig(cfg Config) {
	cfg = cfg.normalized()
	l.writeMu.Lock()
	l.cfg.Store(&cfg)
	l.writeMu.Unlock()
}

// Dir returns the partition directory.
func (l *Log) Dir() string { return l.dir }

// StartOffset returns the log start offset: the first offset that reads
// may ask for. After SetStartOffset it may lie inside the first segment.
func (l *Log) StartOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.start
}

// EndOffset returns the log end offset (LEO): the offset the next append
// must start at.
func (l *Log) EndOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.leo
}

// Size returns the bytes of all segments.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.size
}

// RecoveryPoint returns the offset below which all data is known to be
// fsynced; recovery after a crash rescans from the segment containing it.
func (l *Log) RecoveryPoint() int64 { return l.rp.Load() }

// logView is a consistent copy of the log-level state.
type logView struct {
	segs       []*segment
	start, leo int64
}

func (l *Log) view() (logView, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return logView{}, ErrClosed
	}
	return logView{segs: l.segs, start: l.start, leo: l.leo}, nil
}

// find returns the index of the segment whose range holds offset: the last
// one with base <= offset (0 if offset is below every base).
func (v *logView) find(offset int64) int {
	i := sort.Search(len(v.segs), func(i int) bool { return v.segs[i].base > offset })
	return max(i-1, 0)
}

// SegmentInfo describes one segment.
type SegmentInfo struct {
	BaseOffset int64
	// NextOffset is the offset after the segment's last batch.
	NextOffset int64
	Size       int64
	// MaxTimestamp is the largest batch max timestamp, -1 if none.
	MaxTimestamp int64
	// FirstBatchTimestamp is the max timestamp of the first batch (what
	// segment.ms measures from, as in Kafka), -1 if none.
	FirstBatchTimestamp int64
	LastModified        time.Time
	Active              bool
	Dir                 string
	LogPath             string
	IndexPath           string
	TimeIndexPath       string
}

// Segments describes every segment, oldest first. It may read the indexes
// of sealed segments not yet used since Open.
func (l *Log) Segments() []SegmentInfo {
	v, err := l.view()
	if err != nil {
		return nil
	}
	out := make([]SegmentInfo, 0, len(v.segs))
	for _, s := range v.segs {
		sv, err := s.view(l.fs, l.config().limits(), l.logger)
		if err != nil {
			l.logger.Warn("cannot describe segment", "segment", s.logPath, "err", err)
			sv.size, sv.next = s.sizeNext()
			sv.maxTS, sv.firstTS = noTimestamp, noTimestamp
		}
		out = append(out, s.info(l.dir, sv))
	}
	return out
}

// Close flushes the log, writes its recovery point, log start offset and a
// clean-shutdown marker (so the next Open skips the recovery scan) and
// releases its files. Reads still holding a ReadResult keep their file
// open until they Release it. Close is idempotent.
func (l *Log) Close() error {
	return l.close(true)
}

func (l *Log) close(clean bool) error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	segs := l.segs
	l.mu.Unlock()

	var err error
	if clean && l.failed == nil {
		err = l.shutdownLocked(segs)
	}
	for _, s := range segs {
		s.file.release()
	}
	return err
}

// shutdownLocked makes everything durable and leaves the clean marker.
func (l *Log) shutdownLocked(segs []*segment) error {
	a := l.active
	a.mu.Lock()
	// As Kafka does on close: end the time index with the segment's max so
	// the next Open learns it without scanning.
	a.ix.appendTime(l.config().limits().maxTime, true)
	a.mu.Unlock()
	for _, s := range segs {
		if !s.dirty() && s != a {
			continue
		}
		if err := s.writeIndexFiles(l.fs, false); err != nil {
			return err
		}
		if err := syncSegment(l.fs, s); err != nil {
			return err
		}
		s.syncGen = s.writeGen
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fmt.Errorf("log: sync dir: %w", err)
	}
	if l.epochsDirty {
		if err := l.persistEpochs(l.Epochs()); err != nil {
			return err
		}
	}
	l.mu.RLock()
	leo, start := l.leo, l.start
	l.mu.RUnlock()
	l.rp.Store(leo)
	if err := l.persistRecoveryPoint(true); err != nil {
		return err
	}
	if err := writeOffsetCheckpoint(l.fs, l.dir, logStartCheckpointFile, start); err != nil {
		return err
	}
	return writeFileAtomic(l.fs, l.dir, cleanShutdownFile, nil)
}

func syncSegment(fsys FS, s *segment) error {
	if err := s.file.f.Sync(); err != nil {
		return fmt.Errorf("log: sync %s: %w", s.logPath, err)
	}
	if err := syncPath(fsys, s.idxPath); err != nil {
		return fmt.Errorf("log: sync %s: %w", s.idxPath, err)
	}
	if err := syncPath(fsys, s.timePath); err != nil {
		return fmt.Errorf("log: sync %s: %w", s.timePath, err)
	}
	return nil
}

// Delete closes the log without flushing and removes its directory (topic
// deletion). Outstanding ReadResults stay readable until released.
func (l *Log) Delete() error {
	if err := l.close(false); err != nil {
		return err
	}
	if err := l.fs.RemoveAll(l.dir); err != nil {
		return fmt.Errorf("log: remove %s: %w", l.dir, err)
	}
	return nil
}

// checkWritable returns why the log cannot be written, if it cannot.
// Caller holds writeMu.
func (l *Log) checkWritable() error {
	l.mu.RLock()
	closed := l.closed
	l.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	if l.failed != nil {
		return fmt.Errorf("%w: %v", ErrFailed, l.failed)
	}
	return nil
}

// removeSegmentFiles deletes a segment's files the Kafka way: rename to
// *.deleted first, so a crash part-way leaves names that Open recognizes as
// garbage, then remove. Renaming the .log is the commit point: once it is
// renamed the segment no longer exists for recovery, and a failure after it
// is only logged (Open removes what is left). Readers that hold the file
// open keep reading it.
func (l *Log) removeSegmentFiles(s *segment) error {
	s.deleted.Store(true)
	if err := l.fs.Rename(s.logPath, s.logPath+deletedSuffix); err != nil {
		s.deleted.Store(false) // still whole
		return fmt.Errorf("log: delete %s: %w", s.logPath, err)
	}
	for _, p := range []string{s.idxPath, s.timePath} {
		if err := l.fs.Rename(p, p+deletedSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.logger.Warn("cannot rename deleted segment index", "path", p, "err", err)
		}
	}
	for _, p := range []string{s.logPath, s.idxPath, s.timePath} {
		if err := l.fs.Remove(p + deletedSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.logger.Warn("cannot remove deleted segment file", "path", p+deletedSuffix, "err", err)
		}
	}
	return nil
}

// path joins a name to the partition directory.
func (l *Log) path(name string) string { return filepath.Join(l.dir, name) }
