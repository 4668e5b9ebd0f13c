package log

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
)

// The offset index (.index) is Kafka's: a sparse list of 8-byte big-endian
// entries (relative offset uint32, file position uint32). An entry (r, p)
// says that the batch starting at byte p of the segment has last offset
// base+r, so every offset > base+r lies at or after p. Entries are added
// every IndexIntervalBytes of appended data.

const offsetEntrySize = 8

// maxRelOffset bounds offsets relative to a segment's base. Kafka reads
// relative offsets as a signed 32-bit integer, so keep to its range even
// though the field is unsigned; a segment rolls before crossing it.
const maxRelOffset = math.MaxInt32

// maxSegmentPos bounds file positions for the same reason.
const maxSegmentPos = math.MaxInt32

type offsetEntry struct {
	rel uint32 // last offset of the indexed batch, minus the segment base
	pos uint32 // file position of the start of that batch
}

func appendOffsetEntries(dst []byte, es []offsetEntry) []byte {
	for _, e := range es {
		dst = binary.BigEndian.AppendUint32(dst, e.rel)
		dst = binary.BigEndian.AppendUint32(dst, e.pos)
	}
	return dst
}

// decodeOffsetIndex parses and validates an offset index file. logSize is
// the size of the segment file: every entry must point at a position inside
// it. maxRel bounds relative offsets (the segment's next offset minus base,
// minus one; or maxRelOffset when unknown). Any violation means the index is
// corrupt and must be rebuilt from the segment.
func decodeOffsetIndex(b []byte, logSize int64, maxRel int64) ([]offsetEntry, error) {
	if len(b)%offsetEntrySize != 0 {
		return nil, fmt.Errorf("%w: offset index size %d is not a multiple of %d", ErrCorruptLog, len(b), offsetEntrySize)
	}
	es := make([]offsetEntry, len(b)/offsetEntrySize)
	for i := range es {
		e := offsetEntry{
			rel: binary.BigEndian.Uint32(b[i*offsetEntrySize:]),
			pos: binary.BigEndian.Uint32(b[i*offsetEntrySize+4:]),
		}
		if int64(e.rel) > maxRel || int64(e.pos) >= logSize || int64(e.pos) > maxSegmentPos {
			return nil, fmt.Errorf("%w: offset index entry %d (%d, %d) lies past the segment", ErrCorruptLog, i, e.rel, e.pos)
		}
		if i > 0 && (e.rel <= es[i-1].rel || e.pos <= es[i-1].pos) {
			return nil, fmt.Errorf("%w: offset index entry %d (%d, %d) does not increase", ErrCorruptLog, i, e.rel, e.pos)
		}
		es[i] = e
	}
	return es, nil
}

// lookupOffset returns the position from which to scan for target: that of
// the indexed batch with the largest last offset <= target, else 0.
func lookupOffset(es []offsetEntry, base, target int64) int64 {
	rel := target - base
	if rel < 0 || len(es) == 0 {
		return 0
	}
	i := sort.Search(len(es), func(i int) bool { return int64(es[i].rel) > rel })
	if i == 0 {
		return 0
	}
	return int64(es[i-1].pos)
}

// jumpPosition returns the position of the indexed batch furthest into the
// segment that still lets a read include every byte before it: the entry
// must start after from, at or before limit, inside size, and its batch's
// last offset must be below maxOffset (so every batch before it is too).
// It returns from when there is no such entry.
func jumpPosition(es []offsetEntry, base, from, limit, size, maxOffset int64) int64 {
	if limit > size {
		limit = size - 1
	}
	relMax := maxOffset - base // entries need rel < relMax
	i := sort.Search(len(es), func(i int) bool {
		return int64(es[i].pos) > limit || int64(es[i].rel) >= relMax
	})
	if i == 0 {
		return from
	}
	if p := int64(es[i-1].pos); p > from {
		return p
	}
	return from
}
