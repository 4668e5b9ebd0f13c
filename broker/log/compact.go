package log

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/tiercel/tiercel/wire/batch"
)

// OffsetsCleaner keeps the log of a __consumer_offsets partition from
// growing without bound. Tiercel has no log compaction for topics in
// general (cleanup.policy=compact is refused); this is the one internal
// topic that needs it, and this cleaner applies only the rule that topic
// relies on:
//
//   - sealed segments are rewritten keeping only the latest record of each
//     key (the latest is found over the whole log, the active segment
//     included), with their offsets: a rewritten segment's batches still
//     cover its whole offset range, so offsets stay contiguous and reads,
//     indexes and leader epochs are unaffected (the batches are "sparse",
//     as Kafka's compacted batches are; see batch.SparseBuilder);
//   - consecutive segments whose remains fit in segment.bytes are merged
//     into one, and leading segments left with nothing are deleted, so
//     the segment count stays bounded too;
//   - a tombstone (null value) is dropped once it has been kept through
//     one full pass (so every older record of its key is gone) and is
//     older than the delete retention (so a reader replaying the log then
//     has seen it);
//   - only segments below the high watermark and below the recovery point
//     on disk are touched: an unclean restart rescans from the recovery
//     point with checks that expect full batches.
//
// A rewritten segment replaces the old one by renaming over it, which is
// the commit point. The merged-away segments are deleted right after; a
// crash between the two leaves them overlapping the merged segment, which
// reads (and the next pass) handle by taking each offset once.
//
// One cleaner serves one Log; passes must not run concurrently. Clean
// holds the log's write lock only to swap segments in.
type OffsetsCleaner struct {
	log *Log
	// cleanedTo: offsets below it have been through a pass of this
	// cleaner, so a tombstone there has been seen by a full pass. It is
	// not persisted: after a restart the first pass keeps every
	// tombstone, which only delays their removal.
	cleanedTo int64
	// tombstoneDue is when (ms) the oldest tombstone kept by the last
	// pass may go; a pass then runs even if little is dirty. 0: none.
	tombstoneDue int64
}

// NewOffsetsCleaner returns the cleaner of a __consumer_offsets partition log.
func NewOffsetsCleaner(l *Log) *OffsetsCleaner { return &OffsetsCleaner{log: l, cleanedTo: -1} }

// OffsetsCleanOptions parameterize a pass.
type OffsetsCleanOptions struct {
	// UpTo bounds the segments cleaned: only those whose every offset is
	// below it (the high watermark, so nothing unreplicated is rewritten).
	UpTo int64
	// DeleteRetention is delete.retention.ms: how long a tombstone is
	// kept after a pass has seen it.
	DeleteRetention time.Duration
	// MinDirtyRatio is min.cleanable.dirty.ratio: a pass runs only when
	// the share of cleanable bytes not cleaned yet is at least this.
	MinDirtyRatio float64
	// Now is the time tombstones are aged against.
	Now time.Time
}

// OffsetsCleanStats describes a pass.
type OffsetsCleanStats struct {
	// Ran is false when nothing was dirty enough to clean.
	Ran               bool
	SegmentsBefore    int
	SegmentsAfter     int
	BytesBefore       int64
	BytesAfter        int64
	RecordsDropped    int
	TombstonesDropped int
}

// errCleanerRaced means the log changed under a pass (truncated, deleted,
// segments removed); the pass stops and the next one starts over.
var errCleanerRaced = errors.New("log: the log changed during cleaning")

// errCleanerUnsupported: a batch the cleaner must not rewrite.
var errCleanerUnsupported = errors.New("log: cleaner: transactional, idempotent or control batch in a __consumer_offsets log")

// cleanerMaxBatchBytes bounds the batches the cleaner writes, so that a
// consumer reading the topic with default fetch sizes can read them.
const cleanerMaxBatchBytes = 1 << 20

// keyInfo is what a pass knows of a key: where its latest record is.
type keyInfo struct {
	offset    int64
	ts        int64
	seg       int32 // index in the pass's cleanable segments, -1 beyond them
	size      int32
	tombstone bool
	drop      bool // a tombstone old enough to go
}

// Clean runs one pass. ctx ends it early (between batches).
func (c *OffsetsCleaner) Clean(ctx context.Context, o OffsetsCleanOptions) (OffsetsCleanStats, error) {
	var st OffsetsCleanStats
	l := c.log
	// Make sealed segments durable and the recovery point on disk current,
	// then stay below it.
	if err := l.MaybeFlush(); err != nil {
		return st, err
	}
	if err := l.persistRecoveryPoint(true); err != nil {
		return st, err
	}
	l.ckptMu.Lock()
	bound := min(l.persistedRP, o.UpTo)
	l.ckptMu.Unlock()

	v, err := l.view()
	if err != nil {
		return st, err
	}
	l.writeMu.Lock()
	gen := l.truncGen
	l.writeMu.Unlock()
	lim := l.config().limits()
	var (
		segs  []*segment
		views []segView
	)
	for _, s := range v.segs[:len(v.segs)-1] {
		sv, err := s.view(l.fs, lim, l.logger)
		if err != nil {
			return st, err
		}
		if sv.active || sv.next > bound {
			break
		}
		segs, views = append(segs, s), append(views, sv)
	}
	st.SegmentsBefore = len(v.segs)
	for _, s := range v.segs {
		sz, _ := s.sizeNext()
		st.BytesBefore += sz
	}
	st.SegmentsAfter, st.BytesAfter = st.SegmentsBefore, st.BytesBefore
	if len(segs) == 0 {
		return st, nil
	}
	var dirty, clean int64
	for i := range segs {
		if views[i].next > c.cleanedTo {
			dirty += views[i].size
		} else {
			clean += views[i].size
		}
	}
	dirtyEnough := dirty > 0 && float64(dirty) >= o.MinDirtyRatio*float64(dirty+clean)
	tombstonesDue := c.tombstoneDue > 0 && o.Now.UnixMilli() >= c.tombstoneDue
	if !dirtyEnough && !tombstonesDue {
		return st, nil
	}
	st.Ran = true

	// Where is the latest record of each key, and how much would each
	// segment keep?
	bases := make([]int64, len(segs))
	for i, s := range segs {
		bases[i] = s.base
	}
	end := views[len(views)-1].next
	segOf := func(off int64) int32 {
		if off >= end {
			return -1
		}
		return int32(sort.Search(len(bases), func(i int) bool { return bases[i] > off }) - 1)
	}
	latest := map[string]keyInfo{}
	kept := make([]int64, len(segs))
	keptRecs := make([]int, len(segs))
	dropped := make([]int, len(segs))
	err = l.Batches(v.start, v.leo, func(h batch.Header, raw []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if h.IsControl() || h.IsTransactional() || h.ProducerID >= 0 {
			return errCleanerUnsupported
		}
		return batch.Records(raw, func(r batch.Record) error {
			off := h.BaseOffset + int64(r.OffsetDelta)
			si := segOf(off)
			size := int32(recordSize(r))
			if r.Key == nil {
				if si >= 0 {
					kept[si] += int64(size)
					keptRecs[si]++
				}
				return nil
			}
			if prev, ok := latest[string(r.Key)]; ok && prev.seg >= 0 {
				kept[prev.seg] -= int64(prev.size)
				keptRecs[prev.seg]--
				dropped[prev.seg]++
			}
			latest[string(r.Key)] = keyInfo{offset: off, ts: recordTime(&h, r), seg: si, size: size, tombstone: r.Value == nil}
			if si >= 0 {
				kept[si] += int64(size)
				keptRecs[si]++
			}
			return nil
		})
	})
	if err != nil {
		return st, fmt.Errorf("log: cleaner: read: %w", err)
	}
	horizon := o.Now.Add(-o.DeleteRetention).UnixMilli()
	due := int64(0)
	for k, ki := range latest {
		if !ki.tombstone || ki.seg < 0 {
			continue
		}
		if ki.offset < c.cleanedTo && ki.ts < horizon {
			ki.drop = true
			latest[k] = ki
			kept[ki.seg] -= int64(ki.size)
			keptRecs[ki.seg]--
			dropped[ki.seg]++
			continue
		}
		// Kept: it may go once past the retention (and seen, which it is
		// after this pass).
		if at := ki.ts + o.DeleteRetention.Milliseconds() + 1; due == 0 || at < due {
			due = at
		}
	}
	keep := func(off int64, r batch.Record) bool {
		if r.Key == nil {
			return true
		}
		ki, ok := latest[string(r.Key)]
		return ok && ki.offset == off && !ki.drop
	}

	// Group consecutive segments whose remains fit in one segment.
	maxBytes := l.config().SegmentBytes
	type span struct{ from, to int }
	var spans []span
	cur := span{0, 1}
	curBytes := kept[0]
	for i := 1; i < len(segs); i++ {
		if curBytes+kept[i] <= maxBytes && views[i].next-1-segs[cur.from].base <= maxRelOffset {
			cur.to = i + 1
			curBytes += kept[i]
			continue
		}
		spans = append(spans, cur)
		cur, curBytes = span{i, i + 1}, kept[i]
	}
	spans = append(spans, cur)

	for _, sp := range spans {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		n, recs := 0, 0
		for i := sp.from; i < sp.to; i++ {
			n += dropped[i]
			recs += keptRecs[i]
		}
		if sp.to-sp.from == 1 && n == 0 {
			continue // nothing to drop, nothing to merge
		}
		if recs == 0 && sp.from == 0 {
			// Nothing left at the head of the log: delete the segments,
			// moving the log start.
			if err := c.dropHead(segs[sp.from:sp.to], views[sp.to-1].next); err != nil {
				return st, err
			}
		} else if err := c.rewrite(ctx, segs[sp.from:sp.to], views[sp.from:sp.to], keep, gen); err != nil {
			// Stop here: later spans may hold tombstones whose older
			// records this span still has.
			return st, err
		}
		for i := sp.from; i < sp.to; i++ {
			st.RecordsDropped += dropped[i]
		}
	}
	for _, ki := range latest {
		if ki.drop {
			st.TombstonesDropped++
		}
	}
	c.cleanedTo = end
	c.tombstoneDue = due
	segsAfter, _ := l.view()
	st.SegmentsAfter = len(segsAfter.segs)
	st.BytesAfter = l.Size()
	return st, nil
}

// recordSize estimates a record's encoded size.
func recordSize(r batch.Record) int {
	n := 16 + len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += 4 + len(h.Key) + len(h.Value)
	}
	return n
}

// recordTime is a record's timestamp.
func recordTime(h *batch.Header, r batch.Record) int64 {
	if h.LogAppendTime() {
		return h.MaxTimestamp
	}
	return h.BaseTimestamp + r.TimestampDelta
}

// dropHead deletes leading segments that keep nothing.
func (c *OffsetsCleaner) dropHead(segs []*segment, end int64) error {
	l := c.log
	l.mu.RLock()
	first := l.segs[0]
	l.mu.RUnlock()
	if first != segs[0] {
		return errCleanerRaced
	}
	deleted, err := l.DeleteSegments(func(si SegmentInfo) bool { return si.NextOffset <= end })
	if err != nil {
		return fmt.Errorf("log: cleaner: %w", err)
	}
	if len(deleted) > 0 {
		l.logger.Debug("cleaner deleted segments with no live record", "segments", len(deleted), "log.start.offset", l.StartOffset())
	}
	return nil
}

// compactWriter writes the sparse batches of a rewritten segment.
type compactWriter struct {
	f        File
	pos      int64
	base     int64 // the segment's base: the first batch starts there
	lim      limits
	ix       indexer
	b        batch.SparseBuilder
	open     bool  // a batch is being filled
	start    int64 // its first offset
	epoch    int32 // its leader epoch
	maxTS    int64
	anyEpoch int32
}

// add takes one record the cleaner keeps, from a batch with header h.
func (w *compactWriter) add(h *batch.Header, off int64, r batch.Record) error {
	switch {
	case !w.open:
		w.open, w.start, w.epoch = true, w.base, h.PartitionLeaderEpoch
	case h.PartitionLeaderEpoch != w.epoch:
		// Keep leader epochs on the batches that carry them: the new
		// batch starts where its first input batch started.
		if err := w.flush(h.BaseOffset - 1); err != nil {
			return err
		}
		w.open, w.start, w.epoch = true, h.BaseOffset, h.PartitionLeaderEpoch
	case w.b.Size()+recordSize(r)+16 > cleanerMaxBatchBytes && w.b.Len() > 0:
		if err := w.flush(off - 1); err != nil {
			return err
		}
		w.open, w.start = true, off
	}
	w.b.Add(off, recordTime(h, r), r)
	return nil
}

// flush writes the open batch, which ends at last.
func (w *compactWriter) flush(last int64) error {
	raw, err := w.b.Build(w.start, last, w.epoch, w.maxTS)
	if err != nil {
		return err
	}
	h, err := batch.ParseHeader(raw)
	if err != nil {
		return err
	}
	if _, err := w.f.WriteAt(raw, w.pos); err != nil {
		return err
	}
	w.ix.add(&h, w.pos, w.lim)
	w.pos += int64(len(raw))
	w.b.Reset()
	w.open = false
	return nil
}

// rewrite replaces segs (consecutive, sealed) with one segment holding
// what keep keeps, with the first segment's base and the last one's end.
func (c *OffsetsCleaner) rewrite(ctx context.Context, segs []*segment, views []segView, keep func(int64, batch.Record) bool, gen uint64) (err error) {
	l := c.log
	base, end := segs[0].base, views[len(views)-1].next
	logTmp := filepath.Join(l.dir, fileName(base, logSuffix)+cleanedSuffix)
	idxTmp := filepath.Join(l.dir, fileName(base, indexSuffix)+cleanedSuffix)
	timeTmp := filepath.Join(l.dir, fileName(base, timeIndexSuffix)+cleanedSuffix)
	f, err := l.fs.OpenFile(logTmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("log: cleaner: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			f.Close()
			for _, p := range []string{logTmp, idxTmp, timeTmp} {
				_ = l.fs.Remove(p)
			}
		}
	}()
	lim := l.config().limits()
	w := &compactWriter{f: f, base: base, lim: lim, ix: newIndexer(base), maxTS: noTimestamp, anyEpoch: -1}
	var buf []byte
	for i, s := range segs {
		if !s.file.acquire() {
			return errCleanerRaced
		}
		next := views[i].next
		_, buf, err = l.segmentBatches(s, s.base, next, buf, func(h batch.Header, raw []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if h.IsControl() || h.IsTransactional() || h.ProducerID >= 0 {
				return errCleanerUnsupported
			}
			w.maxTS = max(w.maxTS, h.MaxTimestamp)
			w.anyEpoch = h.PartitionLeaderEpoch
			return batch.Records(raw, func(r batch.Record) error {
				off := h.BaseOffset + int64(r.OffsetDelta)
				// Take each offset from its own segment only (a crash in
				// an earlier merge may have left segments overlapping).
				if off < s.base || off >= next || !keep(off, r) {
					return nil
				}
				return w.add(&h, off, r)
			})
		})
		s.file.release()
		if err != nil {
			return fmt.Errorf("log: cleaner: %w", err)
		}
	}
	if !w.open {
		// Nothing kept: one empty batch still covers the range.
		w.open, w.start, w.epoch = true, base, w.anyEpoch
	}
	if err := w.flush(end - 1); err != nil {
		return fmt.Errorf("log: cleaner: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("log: cleaner: sync %s: %w", logTmp, err)
	}
	w.ix.appendTime(lim.maxTime, true) // sealed: end with the max, as a roll does
	if err := writeSynced(l.fs, idxTmp, appendOffsetEntries(nil, w.ix.idx)); err != nil {
		return err
	}
	if err := writeSynced(l.fs, timeTmp, appendTimeEntries(nil, w.ix.tidx)); err != nil {
		return err
	}
	if err := c.commit(segs, views, f, logTmp, idxTmp, timeTmp, w.ix, w.pos, gen); err != nil {
		return err
	}
	committed = true
	return nil
}

// writeSynced writes a whole file and fsyncs it.
func writeSynced(fsys FS, path string, data []byte) error {
	f, err := fsys.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("log: cleaner: %w", err)
	}
	if len(data) > 0 {
		if _, err := f.WriteAt(data, 0); err != nil {
			f.Close()
			return fmt.Errorf("log: cleaner: write %s: %w", path, err)
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("log: cleaner: sync %s: %w", path, err)
	}
	return f.Close()
}

// commit swaps the rewritten segment in for segs, under the write lock,
// if the log has not changed under the pass.
func (c *OffsetsCleaner) commit(segs []*segment, views []segView, f File, logTmp, idxTmp, timeTmp string, ix indexer, size int64, gen uint64) error {
	l := c.log
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := l.checkWritable(); err != nil {
		return err
	}
	if l.truncGen != gen {
		return errCleanerRaced
	}
	l.mu.RLock()
	all := l.segs
	l.mu.RUnlock()
	at := slices.Index(all, segs[0])
	if at < 0 || at+len(segs) > len(all) {
		return errCleanerRaced
	}
	var oldBytes int64
	for k, s := range segs {
		if all[at+k] != s || s == l.active {
			return errCleanerRaced
		}
		sz, next := s.sizeNext()
		if sz != views[k].size || next != views[k].next {
			return errCleanerRaced
		}
		oldBytes += sz
	}
	first := segs[0]
	// The old segments' indexes are loaded (the pass viewed them), so no
	// reader rebuilds index files for them from now on.
	for _, s := range segs {
		s.mu.Lock()
		s.deleted.Store(true)
		s.mu.Unlock()
	}
	// Index files first: a log without index files gets them rebuilt at
	// open, whereas old index files next to the new log would point into
	// the wrong bytes.
	for _, p := range []string{first.idxPath, first.timePath} {
		if err := l.fs.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			l.logger.Warn("cleaner: cannot remove index file", "path", p, "err", err)
		}
	}
	if err := l.fs.Rename(logTmp, first.logPath); err != nil {
		for _, s := range segs {
			s.deleted.Store(false)
		}
		// The old segment stays, its indexes in memory; the files are
		// rebuilt at the next open.
		return fmt.Errorf("log: cleaner: %w", err)
	}
	// Committed: the rewritten segment is the log from here on.
	for _, p := range [][2]string{{idxTmp, first.idxPath}, {timeTmp, first.timePath}} {
		if err := l.fs.Rename(p[0], p[1]); err != nil {
			l.logger.Warn("cleaner: cannot install index file; it will be rebuilt at open", "path", p[1], "err", err)
		}
	}
	for _, s := range segs[1:] {
		if err := l.removeSegmentFiles(s); err != nil {
			l.logger.Warn("cleaner: cannot delete merged segment", "segment", s.logPath, "err", err)
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		l.logger.Warn("cleaner: cannot sync directory", "err", err)
	}
	ns := newSegment(l.dir, first.base, f)
	ns.size, ns.next = size, views[len(views)-1].next
	ns.ix = ix
	ns.loaded = true
	ns.idxOnDisk, ns.tidxOnDisk = len(ix.idx), len(ix.tidx)
	ns.created = first.created
	ns.modTime = views[len(views)-1].modTime
	next := make([]*segment, 0, len(all)-len(segs)+1)
	next = append(next, all[:at]...)
	next = append(next, ns)
	next = append(next, all[at+len(segs):]...)
	l.mu.Lock()
	l.segs = next
	l.size += size - oldBytes
	l.mu.Unlock()
	for _, s := range segs {
		s.file.release()
	}
	return nil
}
