package log

import (
	"slices"

	"github.com/tiercel/tiercel/wire/batch"
)

// indexer holds a segment's in-memory indexes and the running state that
// decides when to add entries. Append, recovery and index rebuilds all feed
// batches through add, so the three produce identical index files.
type indexer struct {
	base int64
	idx  []offsetEntry
	tidx []timeEntry

	bytesSince int64 // bytes appended since the last offset-index entry
	maxTS      int64 // largest batch max timestamp so far, noTimestamp if none
	maxTSOff   int64 // last offset of the first batch that reached maxTS
	firstTS    int64 // max timestamp of the segment's first batch
	hasFirst   bool
}

func newIndexer(base int64) indexer {
	return indexer{base: base, maxTS: noTimestamp, maxTSOff: -1, firstTS: noTimestamp}
}

// limits are the index settings derived from Config.
type limits struct {
	interval   int64
	maxEntries int // offset index entries
	maxTime    int // time index entries
}

func (c Config) limits() limits {
	l := limits{
		interval:   int64(c.IndexIntervalBytes),
		maxEntries: c.MaxIndexBytes / offsetEntrySize,
		maxTime:    c.MaxIndexBytes / timeEntrySize,
	}
	l.maxEntries = max(l.maxEntries, 1)
	l.maxTime = max(l.maxTime, 1)
	return l
}

// observe updates the timestamps for a batch without adding index entries.
func (x *indexer) observe(h *batch.Header) {
	if !x.hasFirst {
		x.firstTS, x.hasFirst = h.MaxTimestamp, true
	}
	if h.MaxTimestamp > x.maxTS {
		x.maxTS, x.maxTSOff = h.MaxTimestamp, h.LastOffset()
	}
}

// add feeds the batch at file position pos. Like Kafka, an entry is added
// for a batch once more than interval bytes were appended since the previous
// entry, and the time index gains an entry at the same moment if the max
// timestamp has grown. A full index just stops growing: the owner rolls on
// the next append, and lookups stay correct with sparser entries.
func (x *indexer) add(h *batch.Header, pos int64, lim limits) {
	x.observe(h)
	if x.bytesSince > lim.interval {
		if len(x.idx) < lim.maxEntries {
			x.idx = append(x.idx, offsetEntry{rel: uint32(h.LastOffset() - x.base), pos: uint32(pos)})
		}
		x.appendTime(lim.maxTime, false)
		x.bytesSince = 0
	}
	x.bytesSince += int64(h.Size())
}

// appendTime adds (maxTS, maxTSOff) to the time index if it raises the last
// entry. force ignores the size limit: Kafka appends one final entry when a
// segment is sealed so the file always ends with the segment's maximum.
func (x *indexer) appendTime(maxTime int, force bool) {
	if x.maxTS <= noTimestamp {
		return
	}
	if n := len(x.tidx); n > 0 && x.tidx[n-1].ts >= x.maxTS {
		return
	}
	if !force && len(x.tidx) >= maxTime {
		return
	}
	x.tidx = append(x.tidx, timeEntry{ts: x.maxTS, rel: uint32(x.maxTSOff - x.base)})
}

// full reports whether either index is full, which makes the segment roll.
func (x *indexer) full(lim limits) bool {
	return len(x.idx) >= lim.maxEntries || len(x.tidx) >= lim.maxTime
}

// setFromIndexes resets the running state from loaded index entries: the
// max timestamp is the last time-index entry's.
func (x *indexer) setFromIndexes(idx []offsetEntry, tidx []timeEntry) {
	*x = newIndexer(x.base)
	x.idx, x.tidx = idx, tidx
	if n := len(tidx); n > 0 {
		x.maxTS, x.maxTSOff = tidx[n-1].ts, x.base+int64(tidx[n-1].rel)
	}
}

// truncated returns a copy of the indexer keeping only what describes bytes
// before end (a batch boundary) and offsets below next. The slices are
// copied because concurrent readers may hold the old ones.
func (x *indexer) truncated(end, next int64) indexer {
	y := *x
	k := 0
	for k < len(x.idx) && int64(x.idx[k].pos) < end {
		k++
	}
	y.idx = slices.Clone(x.idx[:k])
	k = 0
	for k < len(x.tidx) && x.base+int64(x.tidx[k].rel) < next {
		k++
	}
	y.tidx = slices.Clone(x.tidx[:k])
	return y
}
