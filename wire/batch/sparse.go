package batch

import (
	"encoding/binary"
	"fmt"
	"math"
)

// SparseBuilder assembles a batch whose records need not fill its offset
// range: what log compaction leaves of one or more batches. Each record
// keeps its own offset and timestamp, and the batch spans the range given
// to Build, as Kafka's compacted batches do: the batch's lastOffsetDelta
// still reaches the end of the range when its last records were removed,
// so offsets stay contiguous from batch to batch, and a batch may hold no
// record at all. Such batches are valid record batch v2 for every Kafka
// client; Validate, which requires a full range, rejects them.
type SparseBuilder struct {
	recs []sparseRecord
	size int // encoded size of the records
}

type sparseRecord struct {
	offset, ts int64
	attrs      int8
	key, value []byte
	headers    []RecordHeader
	size       int // encoded size without the offset and timestamp deltas
}

// Add appends a record with its absolute offset and timestamp. Offsets
// must increase. The record's bytes are copied.
func (b *SparseBuilder) Add(offset, timestamp int64, r Record) {
	sr := sparseRecord{offset: offset, ts: timestamp, attrs: r.Attributes}
	if r.Key != nil {
		sr.key = append([]byte{}, r.Key...)
	}
	if r.Value != nil {
		sr.value = append([]byte{}, r.Value...)
	}
	for _, h := range r.Headers {
		sr.headers = append(sr.headers, RecordHeader{Key: h.Key, Value: append([]byte(nil), h.Value...)})
	}
	sr.size = 1 + varBytesLen(sr.key) + varBytesLen(sr.value) + varintLen(int64(len(sr.headers)))
	for _, h := range sr.headers {
		sr.size += varBytesLen([]byte(h.Key)) + varBytesLen(h.Value)
	}
	b.recs = append(b.recs, sr)
	// Deltas take at most 10 + 5 bytes, the length prefix at most 5.
	b.size += sr.size + 20
}

// Len is the number of records added.
func (b *SparseBuilder) Len() int { return len(b.recs) }

// Size bounds the bytes Build would produce.
func (b *SparseBuilder) Size() int { return HeaderSize + b.size }

// Reset empties the builder.
func (b *SparseBuilder) Reset() {
	b.recs = b.recs[:0]
	b.size = 0
}

// Build encodes an uncompressed batch spanning offsets [base, last] with
// the records added, which must all lie in that range. emptyTimestamp is
// the timestamp of a batch without records.
func (b *SparseBuilder) Build(base, last int64, leaderEpoch int32, emptyTimestamp int64) ([]byte, error) {
	if last < base || last-base > math.MaxInt32 {
		return nil, fmt.Errorf("batch: sparse range [%d, %d]", base, last)
	}
	baseTS, maxTS := emptyTimestamp, emptyTimestamp
	prev := base - 1
	for i, r := range b.recs {
		if r.offset <= prev || r.offset > last {
			return nil, fmt.Errorf("batch: record offset %d outside (%d, %d]", r.offset, prev, last)
		}
		prev = r.offset
		if i == 0 || r.ts < baseTS {
			baseTS = r.ts
		}
		if i == 0 || r.ts > maxTS {
			maxTS = r.ts
		}
	}
	out := make([]byte, HeaderSize, HeaderSize+b.size)
	var body []byte
	for _, r := range b.recs {
		body = body[:0]
		body = append(body, byte(r.attrs))
		body = binary.AppendVarint(body, r.ts-baseTS)
		body = binary.AppendVarint(body, r.offset-base)
		body = appendVarBytes(body, r.key)
		body = appendVarBytes(body, r.value)
		body = binary.AppendVarint(body, int64(len(r.headers)))
		for _, h := range r.headers {
			body = appendVarBytes(body, []byte(h.Key))
			body = appendVarBytes(body, h.Value)
		}
		out = binary.AppendVarint(out, int64(len(body)))
		out = append(out, body...)
	}
	binary.BigEndian.PutUint64(out[offBaseOffset:], uint64(base))
	binary.BigEndian.PutUint32(out[offLength:], uint32(len(out)-LogOverhead))
	binary.BigEndian.PutUint32(out[offLeaderEpoch:], uint32(leaderEpoch))
	out[offMagic] = 2
	binary.BigEndian.PutUint16(out[offAttributes:], 0) // CreateTime, uncompressed
	binary.BigEndian.PutUint32(out[offLastOffsetDelta:], uint32(last-base))
	binary.BigEndian.PutUint64(out[offBaseTimestamp:], uint64(baseTS))
	binary.BigEndian.PutUint64(out[offMaxTimestamp:], uint64(maxTS))
	binary.BigEndian.PutUint64(out[offProducerID:], 1<<64-1)           // NoProducerID
	binary.BigEndian.PutUint16(out[offProducerEpoch:], uint16(0xffff)) // NoProducerEpoch
	binary.BigEndian.PutUint32(out[offBaseSequence:], uint32(0xffffffff))
	binary.BigEndian.PutUint32(out[offRecordCount:], uint32(len(b.recs)))
	binary.BigEndian.PutUint32(out[offCRC:], Checksum(out))
	return out, nil
}

func varintLen(v int64) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutVarint(buf[:], v)
}

func varBytesLen(b []byte) int {
	if b == nil {
		return varintLen(-1)
	}
	return varintLen(int64(len(b))) + len(b)
}

// ValidateSparse is Validate for batches that log compaction may have
// thinned: everything Validate checks (magic, length, CRC, codec), except
// that the batch may hold fewer records than its offset range spans, down
// to none, as Kafka allows. A replica copying a compacted log (such as
// __consumer_offsets, see broker/log's OffsetsCleaner) or a recovery scan
// over one must use this rather than Validate.
func ValidateSparse(b []byte) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	if h.Size() != len(b) {
		if h.Size() > len(b) {
			return h, fmt.Errorf("%w: batch length %d but %d bytes present", ErrShort, h.Size(), len(b))
		}
		return h, fmt.Errorf("%w: batch length %d but %d bytes present", ErrCorrupt, h.Size(), len(b))
	}
	if got := Checksum(b); got != h.CRC {
		return h, fmt.Errorf("%w: crc %08x, computed %08x", ErrCorrupt, h.CRC, got)
	}
	if h.RecordCount < 0 || h.LastOffsetDelta < 0 || int64(h.RecordCount) > int64(h.LastOffsetDelta)+1 {
		return h, fmt.Errorf("%w: %d records in a range of %d offsets", ErrCorrupt, h.RecordCount, int64(h.LastOffsetDelta)+1)
	}
	if c := h.Compression(); c > CompressionZstd {
		return h, fmt.Errorf("%w: codec %d", ErrUnsupportedCompression, c)
	}
	return h, nil
}
