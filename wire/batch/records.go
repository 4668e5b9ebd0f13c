package batch

import (
	"encoding/binary"
	"fmt"
)

// Record is one decoded record. Key, Value and header slices alias the
// decompressed buffer.
type Record struct {
	Attributes     int8
	TimestampDelta int64
	OffsetDelta    int32
	Key            []byte // nil for a null key
	Value          []byte // nil for a null value (a tombstone)
	Headers        []RecordHeader
}

// RecordHeader is a record header.
type RecordHeader struct {
	Key   string
	Value []byte
}

// Records decodes the records of one whole, validated batch, inflating them
// if compressed, and calls fn for each. It fails with ErrCorrupt when the
// records do not parse or their count differs from the header's.
func Records(raw []byte, fn func(Record) error) error {
	h, err := ParseHeader(raw)
	if err != nil {
		return err
	}
	if h.Size() > len(raw) {
		return fmt.Errorf("%w: batch length %d but %d bytes present", ErrShort, h.Size(), len(raw))
	}
	data, err := Decompress(h.Compression(), raw[HeaderSize:h.Size()])
	if err != nil {
		return err
	}
	n := 0
	for len(data) > 0 {
		var r Record
		var used int
		r, used, err = decodeRecord(data)
		if err != nil {
			return fmt.Errorf("%w: record %d: %v", ErrCorrupt, n, err)
		}
		data = data[used:]
		if fn != nil {
			if err := fn(r); err != nil {
				return err
			}
		}
		n++
	}
	if int32(n) != h.RecordCount {
		return fmt.Errorf("%w: header says %d records, found %d", ErrCorrupt, h.RecordCount, n)
	}
	return nil
}

// CheckRecords verifies that a batch's records parse and that their count
// matches the header. For compressed batches this inflates the records,
// which is what Kafka's own validation does.
func CheckRecords(raw []byte) error { return Records(raw, nil) }

type recReader struct {
	b   []byte
	pos int
	err error
}

func (r *recReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b[r.pos:])
	if n <= 0 {
		r.err = fmt.Errorf("bad varint at %d", r.pos)
		return 0
	}
	r.pos += n
	return v
}

func (r *recReader) bytes(n int64) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 {
		return nil
	}
	if n > int64(len(r.b)-r.pos) {
		r.err = fmt.Errorf("field of %d bytes overruns record", n)
		return nil
	}
	out := r.b[r.pos : r.pos+int(n) : r.pos+int(n)]
	r.pos += int(n)
	return out
}

func decodeRecord(data []byte) (Record, int, error) {
	var rec Record
	length, n := binary.Varint(data)
	if n <= 0 {
		return rec, 0, fmt.Errorf("bad record length")
	}
	if length < 0 || length > int64(len(data)-n) {
		return rec, 0, fmt.Errorf("record length %d overruns %d bytes", length, len(data)-n)
	}
	body := data[n : n+int(length)]
	if len(body) < 1 {
		return rec, 0, fmt.Errorf("empty record")
	}
	r := recReader{b: body, pos: 1}
	rec.Attributes = int8(body[0])
	rec.TimestampDelta = r.varint()
	rec.OffsetDelta = int32(r.varint())
	rec.Key = r.bytes(r.varint())
	rec.Value = r.bytes(r.varint())
	nh := r.varint()
	if r.err == nil && (nh < 0 || nh > int64(len(body))) {
		r.err = fmt.Errorf("bad header count %d", nh)
	}
	for i := int64(0); i < nh && r.err == nil; i++ {
		k := r.bytes(r.varint())
		v := r.bytes(r.varint())
		rec.Headers = append(rec.Headers, RecordHeader{Key: string(k), Value: v})
	}
	if r.err != nil {
		return rec, 0, r.err
	}
	if r.pos != len(body) {
		return rec, 0, fmt.Errorf("%d trailing bytes in record", len(body)-r.pos)
	}
	return rec, n + int(length), nil
}

// Builder assembles a batch for the broker's own records (internal topics)
// and for tests. Producers' batches are never rebuilt.
type Builder struct {
	Compression   Compression
	ProducerID    int64
	ProducerEpoch int16
	BaseSequence  int32
	Attributes    int16 // extra attribute bits (transactional, control)

	baseTS, maxTS int64
	n             int32
	records       []byte
}

// NewBuilder returns a builder for a non-idempotent batch.
func NewBuilder(c Compression) *Builder {
	return &Builder{Compression: c, ProducerID: NoProducerID, ProducerEpoch: NoProducerEpoch, BaseSequence: NoSequence}
}

// Add appends a record with an absolute timestamp in milliseconds.
func (b *Builder) Add(ts int64, key, value []byte, headers ...RecordHeader) {
	if b.n == 0 {
		b.baseTS, b.maxTS = ts, ts
	}
	if ts > b.maxTS {
		b.maxTS = ts
	}
	var body []byte
	body = append(body, 0) // attributes
	body = binary.AppendVarint(body, ts-b.baseTS)
	body = binary.AppendVarint(body, int64(b.n))
	body = appendVarBytes(body, key)
	body = appendVarBytes(body, value)
	body = binary.AppendVarint(body, int64(len(headers)))
	for _, h := range headers {
		body = appendVarBytes(body, []byte(h.Key))
		body = appendVarBytes(body, h.Value)
	}
	b.records = binary.AppendVarint(b.records, int64(len(body)))
	b.records = append(b.records, body...)
	b.n++
}

// Len is the number of records added.
func (b *Builder) Len() int { return int(b.n) }

func appendVarBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// Build returns the encoded batch with base offset baseOffset.
func (b *Builder) Build(baseOffset int64) ([]byte, error) {
	if b.n == 0 {
		return nil, fmt.Errorf("batch: no records")
	}
	payload, err := Compress(b.Compression, b.records)
	if err != nil {
		return nil, err
	}
	out := make([]byte, HeaderSize, HeaderSize+len(payload))
	out = append(out, payload...)
	binary.BigEndian.PutUint64(out[offBaseOffset:], uint64(baseOffset))
	binary.BigEndian.PutUint32(out[offLength:], uint32(len(out)-LogOverhead))
	binary.BigEndian.PutUint32(out[offLeaderEpoch:], uint32(0xffffffff))
	out[offMagic] = 2
	binary.BigEndian.PutUint16(out[offAttributes:], uint16(b.Attributes)|uint16(b.Compression))
	binary.BigEndian.PutUint32(out[offLastOffsetDelta:], uint32(b.n-1))
	binary.BigEndian.PutUint64(out[offBaseTimestamp:], uint64(b.baseTS))
	binary.BigEndian.PutUint64(out[offMaxTimestamp:], uint64(b.maxTS))
	binary.BigEndian.PutUint64(out[offProducerID:], uint64(b.ProducerID))
	binary.BigEndian.PutUint16(out[offProducerEpoch:], uint16(b.ProducerEpoch))
	binary.BigEndian.PutUint32(out[offBaseSequence:], uint32(b.BaseSequence))
	binary.BigEndian.PutUint32(out[offRecordCount:], uint32(b.n))
	binary.BigEndian.PutUint32(out[offCRC:], Checksum(out))
	return out, nil
}
