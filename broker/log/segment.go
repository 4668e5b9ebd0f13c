package log

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tiercel/tiercel/wire/batch"
)

// File name suffixes, as Kafka names them.
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	snapshotSuffix  = ".snapshot"
	deletedSuffix   = ".deleted"
	cleanedSuffix   = ".cleaned"
	swapSuffix      = ".swap"
	tmpSuffix       = ".tmp"
)

// fileName is Kafka's 20-digit zero-padded offset name.
func fileName(offset int64, suffix string) string {
	return fmt.Sprintf("%020d%s", offset, suffix)
}

// parseFileName returns the offset of a name like 00000000000000000042.log
// with the given suffix.
func parseFileName(name, suffix string) (int64, bool) {
	if len(name) != 20+len(suffix) || name[20:] != suffix {
		return 0, false
	}
	for _, c := range name[:20] {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	off, err := strconv.ParseInt(name[:20], 10, 64)
	return off, err == nil
}

// refFile is an open segment file shared by the log and by readers. The log
// holds one reference while the segment is live; every ReadResult holds one
// more. The descriptor closes when the last reference goes, so a reader can
// finish sending a segment that retention deleted (unlinked) meanwhile.
type refFile struct {
	f    File
	refs atomic.Int64
}

func newRefFile(f File) *refFile {
	r := &refFile{f: f}
	r.refs.Store(1)
	return r
}

// acquire takes a reference; it fails once the file has been closed.
func (r *refFile) acquire() bool {
	for {
		n := r.refs.Load()
		if n <= 0 {
			return false
		}
		if r.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (r *refFile) release() {
	if r.refs.Add(-1) == 0 {
		_ = r.f.Close() // reads only from here on; nothing to lose
	}
}

// segment is one <base>.log file with its two indexes.
type segment struct {
	base                       int64
	logPath, idxPath, timePath string
	file                       *refFile
	created                    time.Time // for segment.ms when no batch has a timestamp
	deleted                    atomic.Bool

	// Written by the log's single writer (Log.writeMu) under mu; read by
	// anyone under mu.RLock.
	mu      sync.RWMutex
	size    int64 // bytes of whole, published batches
	next    int64 // offset after the last batch
	active  bool
	loaded  bool // ix holds the segment's whole indexes
	ix      indexer
	modTime time.Time

	// Owned by the writer (Log.writeMu), or set once by the lazy loader
	// while !loaded (under mu).
	idxOnDisk, tidxOnDisk int    // entries already in the index files
	writeGen, syncGen     uint64 // dirty when they differ
}

func newSegment(dir string, base int64, f File) *segment {
	return &segment{
		base:     base,
		logPath:  filepath.Join(dir, fileName(base, logSuffix)),
		idxPath:  filepath.Join(dir, fileName(base, indexSuffix)),
		timePath: filepath.Join(dir, fileName(base, timeIndexSuffix)),
		file:     newRefFile(f),
		next:     base,
		ix:       newIndexer(base),
	}
}

// createSegment creates an empty active segment at base, with empty index
// files as Kafka has them. A stray file of that name is garbage (it is not
// in the segment list) and is truncated.
func createSegment(fsys FS, dir string, base int64, now time.Time) (*segment, error) {
	path := filepath.Join(dir, fileName(base, logSuffix))
	f, err := fsys.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create segment %s: %w", path, err)
	}
	s := newSegment(dir, base, f)
	for _, p := range []string{s.idxPath, s.timePath} {
		idx, err := fsys.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			f.Close()
			fsys.Remove(path)
			return nil, fmt.Errorf("create index %s: %w", p, err)
		}
		idx.Close()
	}
	s.active, s.loaded = true, true
	s.created, s.modTime = now, now
	return s, nil
}

// segView is a consistent copy of a segment's published state.
type segView struct {
	size, next int64
	idx        []offsetEntry
	tidx       []timeEntry
	maxTS      int64
	maxTSOff   int64
	firstTS    int64
	active     bool
	modTime    time.Time
}

// view returns the segment's published state, loading sealed indexes on
// first use. The returned slices are never modified afterwards (appends go
// past their length; truncation allocates new ones), so callers may search
// them without a lock.
func (s *segment) view(fsys FS, lim limits, lg logger) (segView, error) {
	s.mu.RLock()
	if !s.loaded {
		s.mu.RUnlock()
		if err := s.ensureLoaded(fsys, lim, lg); err != nil {
			return segView{}, err
		}
		s.mu.RLock()
	}
	v := segView{
		size: s.size, next: s.next, idx: s.ix.idx, tidx: s.ix.tidx,
		maxTS: s.ix.maxTS, maxTSOff: s.ix.maxTSOff, firstTS: s.ix.firstTS,
		active: s.active, modTime: s.modTime,
	}
	s.mu.RUnlock()
	return v, nil
}

// sizeNext returns size and next offset without loading indexes.
func (s *segment) sizeNext() (int64, int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.size, s.next
}

// logger is the slice of *slog.Logger the segment code uses.
type logger interface {
	Warn(msg string, args ...any)
}

// ensureLoaded reads a sealed segment's index files on first use. Files
// that fail validation are rebuilt from the segment (header scan) and
// rewritten, the same repair Open performs for indexes it sees are broken.
func (s *segment) ensureLoaded(fsys FS, lim limits, lg logger) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loaded {
		return nil
	}
	if s.deleted.Load() {
		// Its files are going; do not "repair" them back into existence.
		return fmt.Errorf("%w: segment %d was deleted", ErrOffsetOutOfRange, s.base)
	}
	idx, tidx, err := loadIndexes(fsys, s.idxPath, s.timePath, s.size, s.next-s.base-1)
	if err == nil {
		s.ix.setFromIndexes(idx, tidx)
		s.idxOnDisk, s.tidxOnDisk = len(idx), len(tidx)
		if err = s.loadFirstTimestamp(); err == nil {
			s.loaded = true
			return nil
		}
	}
	lg.Warn("rebuilding segment index", "segment", s.logPath, "reason", err)
	res, err := scanSegment(s.file.f, s.base, s.size, lim, false)
	if err != nil {
		return err
	}
	if res.bad != nil {
		// The trusted part of the log does not parse. Serve what does and
		// keep the rest on disk for an operator; reads past it will fail.
		lg.Warn("segment does not parse to its end", "segment", s.logPath, "valid_bytes", res.validBytes, "size", s.size, "reason", res.bad)
	}
	res.ix.appendTime(lim.maxTime, true)
	s.ix = res.ix
	s.idxOnDisk, s.tidxOnDisk = 0, 0
	if err := s.writeIndexFiles(fsys, true); err != nil {
		return err
	}
	s.loaded = true
	return nil
}

func (s *segment) loadFirstTimestamp() error {
	if s.size < batch.HeaderSize {
		return nil
	}
	var buf [batch.HeaderSize]byte
	if _, err := s.file.f.ReadAt(buf[:], 0); err != nil {
		return fmt.Errorf("read first batch of %s: %w", s.logPath, err)
	}
	h, err := batch.ParseHeader(buf[:])
	if err != nil {
		return fmt.Errorf("%w: first batch of %s: %v", ErrCorruptLog, s.logPath, err)
	}
	s.ix.firstTS, s.ix.hasFirst = h.MaxTimestamp, true
	return nil
}

// loadIndexes reads and validates both index files. A missing file is
// corrupt unless the segment is empty.
func loadIndexes(fsys FS, idxPath, timePath string, logSize, maxRel int64) ([]offsetEntry, []timeEntry, error) {
	if maxRel > maxRelOffset {
		maxRel = maxRelOffset
	}
	b, err := readWholeFile(fsys, idxPath)
	if err != nil && !(errors.Is(err, fs.ErrNotExist) && logSize == 0) {
		return nil, nil, err
	}
	idx, err := decodeOffsetIndex(b, logSize, maxRel)
	if err != nil {
		return nil, nil, err
	}
	b, err = readWholeFile(fsys, timePath)
	if err != nil && !(errors.Is(err, fs.ErrNotExist) && logSize == 0) {
		return nil, nil, err
	}
	tidx, err := decodeTimeIndex(b, maxRel)
	if err != nil {
		return nil, nil, err
	}
	return idx, tidx, nil
}

// writeIndexFiles writes index entries not yet on disk. With rewrite, the
// files are truncated and written whole. It is called by the writer, or by
// the lazy loader before the segment is visible as loaded.
func (s *segment) writeIndexFiles(fsys FS, rewrite bool) error {
	if rewrite {
		s.idxOnDisk, s.tidxOnDisk = 0, 0
	}
	if err := writeIndexTail(fsys, s.idxPath, rewrite, int64(s.idxOnDisk)*offsetEntrySize,
		appendOffsetEntries(nil, s.ix.idx[s.idxOnDisk:])); err != nil {
		return err
	}
	s.idxOnDisk = len(s.ix.idx)
	if err := writeIndexTail(fsys, s.timePath, rewrite, int64(s.tidxOnDisk)*timeEntrySize,
		appendTimeEntries(nil, s.ix.tidx[s.tidxOnDisk:])); err != nil {
		return err
	}
	s.tidxOnDisk = len(s.ix.tidx)
	return nil
}

func writeIndexTail(fsys FS, path string, truncate bool, off int64, data []byte) error {
	if len(data) == 0 && !truncate {
		return nil
	}
	flag := os.O_WRONLY | os.O_CREATE
	if truncate {
		flag |= os.O_TRUNC
	}
	f, err := fsys.OpenFile(path, flag, 0o644)
	if err != nil {
		return fmt.Errorf("open index %s: %w", path, err)
	}
	if len(data) > 0 {
		if _, err := f.WriteAt(data, off); err != nil {
			f.Close()
			return fmt.Errorf("write index %s: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close index %s: %w", path, err)
	}
	return nil
}

// truncateIndexFiles cuts the index files down to the entries kept in
// memory after a log truncation.
func (s *segment) truncateIndexFiles(fsys FS) error {
	for _, t := range []struct {
		path   string
		onDisk *int
		n, sz  int
	}{
		{s.idxPath, &s.idxOnDisk, len(s.ix.idx), offsetEntrySize},
		{s.timePath, &s.tidxOnDisk, len(s.ix.tidx), timeEntrySize},
	} {
		if *t.onDisk <= t.n {
			continue
		}
		f, err := fsys.OpenFile(t.path, os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("open index %s: %w", t.path, err)
		}
		err = f.Truncate(int64(t.n * t.sz))
		f.Close()
		if err != nil {
			return fmt.Errorf("truncate index %s: %w", t.path, err)
		}
		*t.onDisk = t.n
	}
	return nil
}

// info describes the segment for SegmentInfo.
func (s *segment) info(dir string, v segView) SegmentInfo {
	return SegmentInfo{
		BaseOffset:          s.base,
		NextOffset:          v.next,
		Size:                v.size,
		MaxTimestamp:        v.maxTS,
		FirstBatchTimestamp: v.firstTS,
		LastModified:        v.modTime,
		Active:              v.active,
		Dir:                 dir,
		LogPath:             s.logPath,
		IndexPath:           s.idxPath,
		TimeIndexPath:       s.timePath,
	}
}

// dirty reports whether the segment has writes not yet fsynced.
func (s *segment) dirty() bool { return s.writeGen != s.syncGen }
