package wire

import (
	"context"
	"os"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FetchResponse is a Fetch response (versions 4 to 17) whose record sets
// may be file ranges. It is encoded by hand because kmsg can only encode
// records that are in memory; the encoding is checked byte for byte
// against kmsg's in the tests.
type FetchResponse struct {
	Version        int16
	ThrottleMillis int32
	ErrorCode      int16
	SessionID      int32
	Topics         []FetchTopic
	// Brokers is the v16+ NodeEndpoints tag (KIP-951 leader hints).
	Brokers []kmsg.FetchResponseBroker
}

// FetchTopic is one topic of a FetchResponse.
type FetchTopic struct {
	Topic      string   // v4 to v12
	TopicID    [16]byte // v13+
	Partitions []FetchPartition
}

// FetchPartition is one partition of a FetchResponse. Meta carries every
// field except the records; its RecordBatches must be empty. The records
// are Bytes followed by the File range, either of which may be empty.
type FetchPartition struct {
	Meta kmsg.FetchResponseTopicPartition
	// Bytes are in-memory record batches (the remote read path), in
	// pieces that are written back to back with one writev, so that
	// slices of cached chunks go out without being joined first.
	Bytes [][]byte
	// File is a range of a segment file (the hot path).
	File    *os.File
	FileOff int64
	FileLen int64
	// Release, if set, runs after the records are written or dropped.
	Release func()
}

// RecordsLen is the length of the partition's record set.
func (p *FetchPartition) RecordsLen() int64 {
	n := p.FileLen
	for _, b := range p.Bytes {
		n += int64(len(b))
	}
	return n
}

// Frame encodes the response. Between the file ranges, the fixed fields
// are gathered into buffers that the writer sends with one writev.
func (r *FetchResponse) Frame(context.Context) (*Frame, error) {
	f := &Frame{Msg: r}
	buf := r.encode(f)
	f.Bytes(buf)
	return f, nil
}

// encode appends the encoding to f, and returns the final byte run for
// the caller to append.
func (r *FetchResponse) encode(f *Frame) []byte {
	v := r.Version
	flex := v >= 12
	b := make([]byte, 0, 128)
	if v >= 1 {
		b = kbin.AppendInt32(b, r.ThrottleMillis)
	}
	if v >= 7 {
		b = kbin.AppendInt16(b, r.ErrorCode)
		b = kbin.AppendInt32(b, r.SessionID)
	}
	b = appendArrayLen(b, len(r.Topics), flex)
	for i := range r.Topics {
		t := &r.Topics[i]
		if v <= 12 {
			if flex {
				b = kbin.AppendCompactString(b, t.Topic)
			} else {
				b = kbin.AppendString(b, t.Topic)
			}
		} else {
			b = kbin.AppendUuid(b, t.TopicID)
		}
		b = appendArrayLen(b, len(t.Partitions), flex)
		for j := range t.Partitions {
			p := &t.Partitions[j]
			m := &p.Meta
			b = kbin.AppendInt32(b, m.Partition)
			b = kbin.AppendInt16(b, m.ErrorCode)
			b = kbin.AppendInt64(b, m.HighWatermark)
			if v >= 4 {
				b = kbin.AppendInt64(b, m.LastStableOffset)
			}
			if v >= 5 {
				b = kbin.AppendInt64(b, m.LogStartOffset)
			}
			if v >= 4 {
				aborted := m.AbortedTransactions
				if flex {
					b = kbin.AppendCompactNullableArrayLen(b, len(aborted), aborted == nil)
				} else {
					b = kbin.AppendNullableArrayLen(b, len(aborted), aborted == nil)
				}
				for _, a := range aborted {
					b = kbin.AppendInt64(b, a.ProducerID)
					b = kbin.AppendInt64(b, a.FirstOffset)
					if flex {
						b = append(b, 0)
					}
				}
			}
			if v >= 11 {
				b = kbin.AppendInt32(b, m.PreferredReadReplica)
			}
			// Records: nullable bytes. We never send null; an empty
			// record set is a zero-length array, as Kafka sends.
			n := p.RecordsLen()
			if flex {
				b = kbin.AppendUvarint(b, uint32(n+1))
			} else {
				b = kbin.AppendInt32(b, int32(n))
			}
			if len(p.Bytes) > 0 {
				f.Bytes(b)
				for _, piece := range p.Bytes {
					f.Bytes(piece)
				}
				b = make([]byte, 0, 128)
			}
			if p.FileLen > 0 {
				f.Bytes(b)
				f.File(p.File, p.FileOff, p.FileLen, p.Release)
				b = make([]byte, 0, 128)
			} else if p.Release != nil {
				// Keep the release with the frame so it runs after the
				// bytes are written.
				f.parts = append(f.parts, part{release: p.Release})
			}
			if flex {
				b = appendPartitionTags(b, m)
			}
		}
		if flex {
			b = append(b, 0)
		}
	}
	if flex {
		if v >= 16 && len(r.Brokers) > 0 {
			b = append(b, 1) // one tag
			b = kbin.AppendUvarint(b, 0)
			body := appendBrokers(nil, r.Brokers)
			b = kbin.AppendUvarint(b, uint32(len(body)))
			b = append(b, body...)
		} else {
			b = append(b, 0)
		}
	}
	return b
}

func appendArrayLen(b []byte, n int, flex bool) []byte {
	if flex {
		return kbin.AppendCompactArrayLen(b, n)
	}
	return kbin.AppendArrayLen(b, n)
}

// appendPartitionTags writes the partition's tagged fields, omitting
// those at their defaults as kmsg and Kafka do.
func appendPartitionTags(b []byte, m *kmsg.FetchResponseTopicPartition) []byte {
	de := m.DivergingEpoch.Epoch != -1 || m.DivergingEpoch.EndOffset != -1
	cl := m.CurrentLeader.LeaderID != -1 || m.CurrentLeader.LeaderEpoch != -1
	sn := m.SnapshotID.EndOffset != -1 || m.SnapshotID.Epoch != -1
	n := 0
	for _, set := range []bool{de, cl, sn} {
		if set {
			n++
		}
	}
	b = kbin.AppendUvarint(b, uint32(n))
	if de {
		b = append(b, 0, 13) // tag 0, 4+8 bytes + empty tag buffer
		b = kbin.AppendInt32(b, m.DivergingEpoch.Epoch)
		b = kbin.AppendInt64(b, m.DivergingEpoch.EndOffset)
		b = append(b, 0)
	}
	if cl {
		b = append(b, 1, 9) // tag 1, 4+4 bytes + empty tag buffer
		b = kbin.AppendInt32(b, m.CurrentLeader.LeaderID)
		b = kbin.AppendInt32(b, m.CurrentLeader.LeaderEpoch)
		b = append(b, 0)
	}
	if sn {
		b = append(b, 2, 13) // tag 2, 8+4 bytes + empty tag buffer
		b = kbin.AppendInt64(b, m.SnapshotID.EndOffset)
		b = kbin.AppendInt32(b, m.SnapshotID.Epoch)
		b = append(b, 0)
	}
	return b
}

func appendBrokers(b []byte, brokers []kmsg.FetchResponseBroker) []byte {
	b = kbin.AppendCompactArrayLen(b, len(brokers))
	for _, br := range brokers {
		b = kbin.AppendInt32(b, br.NodeID)
		b = kbin.AppendCompactString(b, br.Host)
		b = kbin.AppendInt32(b, br.Port)
		b = kbin.AppendCompactNullableString(b, br.Rack)
		b = append(b, 0)
	}
	return b
}

// NewFetchPartition returns a partition with Kafka's defaults for the
// fields that have them (-1 for unknown offsets, leaders and epochs).
func NewFetchPartition(partition int32) FetchPartition {
	m := kmsg.NewFetchResponseTopicPartition()
	m.Partition = partition
	return FetchPartition{Meta: m}
}
