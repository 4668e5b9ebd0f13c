// Package batch is the codec for Kafka's record batch v2 (magic 2), the
// format Tiercel stores on disk and in the bucket byte for byte.
//
// Layout of the 61-byte header (all big-endian):
//
//	 0 baseOffset           int64   rewritten by the leader, outside the CRC
//	 8 batchLength          int32   bytes after this field
//	12 partitionLeaderEpoch int32   rewritten by the leader, outside the CRC
//	16 magic                int8
//	17 crc                  uint32  CRC32C of bytes [21, end)
//	21 attributes           int16
//	23 lastOffsetDelta      int32
//	27 baseTimestamp        int64
//	35 maxTimestamp         int64
//	43 producerId           int64
//	51 producerEpoch        int16
//	53 baseSequence         int32
//	57 recordCount          int32
//	61 records...
//
// Nothing here knows about sockets or files: the package is shared by the
// wire layer, the local log and the remote reader.
package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Byte offsets of the header fields.
const (
	offBaseOffset      = 0
	offLength          = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offRecordCount     = 57

	// HeaderSize is the size of the fixed batch header.
	HeaderSize = 61
	// LogOverhead is the size of baseOffset and batchLength, the part of
	// the header that is not counted in batchLength.
	LogOverhead = 12
)

// Attribute bits.
const (
	AttrCompressionMask = 0x07
	AttrTimestampType   = 0x08 // 1 = LogAppendTime
	AttrTransactional   = 0x10
	AttrControl         = 0x20
	AttrDeleteHorizon   = 0x40
)

// Compression codecs, as numbered in the attributes.
type Compression int8

const (
	CompressionNone   Compression = 0
	CompressionGzip   Compression = 1
	CompressionSnappy Compression = 2
	CompressionLZ4    Compression = 3
	CompressionZstd   Compression = 4
)

func (c Compression) String() string {
	switch c {
	case CompressionNone:
		return "none"
	case CompressionGzip:
		return "gzip"
	case CompressionSnappy:
		return "snappy"
	case CompressionLZ4:
		return "lz4"
	case CompressionZstd:
		return "zstd"
	}
	return fmt.Sprintf("unknown(%d)", int8(c))
}

// NoSequence and NoProducerID mark a batch from a non-idempotent producer.
const (
	NoProducerID    = -1
	NoProducerEpoch = -1
	NoSequence      = -1
)

// Errors, classified so the broker can map them to Kafka codes.
var (
	// ErrCorrupt means the bytes are not a well-formed batch (bad length,
	// bad CRC, inconsistent record count). Kafka: CORRUPT_MESSAGE.
	ErrCorrupt = errors.New("corrupt record batch")
	// ErrUnsupportedMagic means the batch is not magic 2. Kafka:
	// UNSUPPORTED_FOR_MESSAGE_FORMAT.
	ErrUnsupportedMagic = errors.New("unsupported record batch magic")
	// ErrUnsupportedCompression means the attributes name an unknown codec.
	// Kafka: UNSUPPORTED_COMPRESSION_TYPE.
	ErrUnsupportedCompression = errors.New("unsupported compression codec")
	// ErrShort means fewer bytes are present than the header announces,
	// which at the tail of a segment is a torn write.
	ErrShort = errors.New("record batch truncated")
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Header is the decoded fixed header of one batch.
type Header struct {
	BaseOffset           int64
	Length               int32 // batchLength: bytes after the length field
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	RecordCount          int32
}

// Size is the total size of the batch on disk and on the wire.
func (h *Header) Size() int { return LogOverhead + int(h.Length) }

// LastOffset is the offset of the last record in the batch.
func (h *Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// NextOffset is the offset after the batch.
func (h *Header) NextOffset() int64 { return h.LastOffset() + 1 }

// Compression is the batch's codec.
func (h *Header) Compression() Compression { return Compression(h.Attributes & AttrCompressionMask) }

// IsTransactional reports the transactional attribute.
func (h *Header) IsTransactional() bool { return h.Attributes&AttrTransactional != 0 }

// IsControl reports the control attribute.
func (h *Header) IsControl() bool { return h.Attributes&AttrControl != 0 }

// LogAppendTime reports whether the timestamp type is LogAppendTime.
func (h *Header) LogAppendTime() bool { return h.Attributes&AttrTimestampType != 0 }

// LastSequence is the sequence number of the last record, with Kafka's
// wrap-around at MaxInt32.
func (h *Header) LastSequence() int32 {
	if h.BaseSequence == NoSequence {
		return NoSequence
	}
	return IncrementSequence(h.BaseSequence, h.LastOffsetDelta)
}

// IncrementSequence adds n to a producer sequence, wrapping to 0 after MaxInt32.
func IncrementSequence(seq, n int32) int32 {
	if seq > (1<<31-1)-n {
		return n - ((1<<31 - 1) - seq) - 1
	}
	return seq + n
}

// PeekSize reads the total size of the batch that starts at b[0]. It needs
// only the first 12 bytes. ok is false if fewer bytes are present.
func PeekSize(b []byte) (size int, ok bool) {
	if len(b) < LogOverhead {
		return 0, false
	}
	return LogOverhead + int(int32(binary.BigEndian.Uint32(b[offLength:]))), true
}

// ParseHeader decodes the fixed header at the start of b. It checks only
// that the header is present and that the declared length is sane; it does
// not need the records to be present.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderSize {
		return h, fmt.Errorf("%w: %d bytes, need %d for a header", ErrShort, len(b), HeaderSize)
	}
	h.BaseOffset = int64(binary.BigEndian.Uint64(b[offBaseOffset:]))
	h.Length = int32(binary.BigEndian.Uint32(b[offLength:]))
	h.PartitionLeaderEpoch = int32(binary.BigEndian.Uint32(b[offLeaderEpoch:]))
	h.Magic = int8(b[offMagic])
	h.CRC = binary.BigEndian.Uint32(b[offCRC:])
	h.Attributes = int16(binary.BigEndian.Uint16(b[offAttributes:]))
	h.LastOffsetDelta = int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:]))
	h.BaseTimestamp = int64(binary.BigEndian.Uint64(b[offBaseTimestamp:]))
	h.MaxTimestamp = int64(binary.BigEndian.Uint64(b[offMaxTimestamp:]))
	h.ProducerID = int64(binary.BigEndian.Uint64(b[offProducerID:]))
	h.ProducerEpoch = int16(binary.BigEndian.Uint16(b[offProducerEpoch:]))
	h.BaseSequence = int32(binary.BigEndian.Uint32(b[offBaseSequence:]))
	h.RecordCount = int32(binary.BigEndian.Uint32(b[offRecordCount:]))
	if h.Magic != 2 {
		return h, fmt.Errorf("%w: magic %d", ErrUnsupportedMagic, h.Magic)
	}
	if int(h.Length) < HeaderSize-LogOverhead {
		return h, fmt.Errorf("%w: batch length %d is below the header size", ErrCorrupt, h.Length)
	}
	return h, nil
}

// Checksum computes the CRC32C that the batch at b should carry. b must
// hold the whole batch.
func Checksum(b []byte) uint32 {
	return crc32.Checksum(b[offAttributes:], crcTable)
}

// Validate checks one whole batch: magic, length against the bytes
// present, CRC, and a record count consistent with lastOffsetDelta. It does
// not walk the records; use CheckRecords for that.
func Validate(b []byte) (Header, error) {
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
	if h.RecordCount <= 0 || h.LastOffsetDelta < 0 || h.LastOffsetDelta != h.RecordCount-1 {
		return h, fmt.Errorf("%w: %d records but last offset delta %d", ErrCorrupt, h.RecordCount, h.LastOffsetDelta)
	}
	if c := h.Compression(); c > CompressionZstd {
		return h, fmt.Errorf("%w: codec %d", ErrUnsupportedCompression, c)
	}
	return h, nil
}

// SetBaseOffset rewrites the base offset in place. The CRC does not cover it.
func SetBaseOffset(b []byte, off int64) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(off))
}

// SetPartitionLeaderEpoch rewrites the leader epoch in place. The CRC does
// not cover it.
func SetPartitionLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(epoch))
}

// SetLogAppendTime marks the batch as LogAppendTime, sets its max timestamp
// to ts and recomputes the CRC, as Kafka does for
// message.timestamp.type=LogAppendTime.
func SetLogAppendTime(b []byte, ts int64) {
	attrs := binary.BigEndian.Uint16(b[offAttributes:]) | AttrTimestampType
	binary.BigEndian.PutUint16(b[offAttributes:], attrs)
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(ts))
	binary.BigEndian.PutUint32(b[offCRC:], Checksum(b))
}

// Iterate walks the whole batches in b, which must start at a batch
// boundary. It stops at the first incomplete batch and returns the number of
// bytes consumed by whole batches, so a caller scanning a torn segment tail
// learns where the last whole batch ends. fn may stop the walk by returning
// an error, which Iterate returns.
func Iterate(b []byte, fn func(h Header, raw []byte) error) (int, error) {
	pos := 0
	for {
		size, ok := PeekSize(b[pos:])
		if !ok || size < HeaderSize || pos+size > len(b) {
			return pos, nil
		}
		raw := b[pos : pos+size]
		h, err := ParseHeader(raw)
		if err != nil {
			return pos, err
		}
		if err := fn(h, raw); err != nil {
			return pos, err
		}
		pos += size
	}
}
