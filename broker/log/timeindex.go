package log

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// The time index (.timeindex) is Kafka's: 12-byte big-endian entries
// (timestamp int64, relative offset uint32). An entry (t, r) says that t is
// the largest timestamp in the segment up to the batch whose last offset is
// base+r, and that this batch is the first to reach it. So every record
// before that batch has a timestamp < t, which is what lets a search for a
// timestamp start there. Timestamps strictly increase from entry to entry.

const timeEntrySize = 12

// noTimestamp is Kafka's RecordBatch.NO_TIMESTAMP.
const noTimestamp = -1

type timeEntry struct {
	ts  int64
	rel uint32
}

func appendTimeEntries(dst []byte, es []timeEntry) []byte {
	for _, e := range es {
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.ts))
		dst = binary.BigEndian.AppendUint32(dst, e.rel)
	}
	return dst
}

// decodeTimeIndex parses and validates a time index file; maxRel bounds the
// relative offsets as for decodeOffsetIndex.
func decodeTimeIndex(b []byte, maxRel int64) ([]timeEntry, error) {
	if len(b)%timeEntrySize != 0 {
		return nil, fmt.Errorf("%w: time index size %d is not a multiple of %d", ErrCorruptLog, len(b), timeEntrySize)
	}
	es := make([]timeEntry, len(b)/timeEntrySize)
	for i := range es {
		e := timeEntry{
			ts:  int64(binary.BigEndian.Uint64(b[i*timeEntrySize:])),
			rel: binary.BigEndian.Uint32(b[i*timeEntrySize+8:]),
		}
		if int64(e.rel) > maxRel || e.ts <= noTimestamp {
			return nil, fmt.Errorf("%w: time index entry %d (%d, %d) is out of range", ErrCorruptLog, i, e.ts, e.rel)
		}
		if i > 0 && (e.ts <= es[i-1].ts || e.rel < es[i-1].rel) {
			return nil, fmt.Errorf("%w: time index entry %d (%d, %d) does not increase", ErrCorruptLog, i, e.ts, e.rel)
		}
		es[i] = e
	}
	return es, nil
}

// lookupTime returns the offset from which to search for the first record
// with timestamp >= ts: that of the entry with the largest timestamp <= ts,
// else the segment base.
func lookupTime(es []timeEntry, base, ts int64) int64 {
	i := sort.Search(len(es), func(i int) bool { return es[i].ts > ts })
	if i == 0 {
		return base
	}
	return base + int64(es[i-1].rel)
}
