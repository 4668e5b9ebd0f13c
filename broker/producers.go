package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/tiercel/tiercel/wire/batch"
)

// producerStateBatches is how many recent batches are kept per producer
// for duplicate detection: clients keep at most five in flight.
const producerStateBatches = 5

// producerBatch records one appended batch of an idempotent producer.
type producerBatch struct {
	FirstSeq, LastSeq       int32
	FirstOffset, LastOffset int64
	Timestamp               int64 // the batch's max timestamp
}

// producerEntry is one producer's state on one partition.
type producerEntry struct {
	Epoch int16
	// Batches are the most recent appends, oldest first.
	Batches []producerBatch
	// LastUpdateMs is the wall-clock time of the last append, for expiry.
	LastUpdateMs int64
}

func (e *producerEntry) lastSeq() int32 {
	if len(e.Batches) == 0 {
		return batch.NoSequence
	}
	return e.Batches[len(e.Batches)-1].LastSeq
}

// producerState is the idempotence state of one partition: for every
// producer id, its epoch and its last few batches. The partition's mutex
// guards it.
type producerState struct {
	m map[int64]*producerEntry
}

func newProducerState() *producerState { return &producerState{m: map[int64]*producerEntry{}} }

// errDuplicate signals a retried batch that is already in the log.
type errDuplicate struct{ orig producerBatch }

func (e *errDuplicate) Error() string {
	return fmt.Sprintf("duplicate batch, already at offset %d", e.orig.FirstOffset)
}

// check validates an idempotent batch against the state, with Kafka's
// rules: a stale epoch is fenced, a new epoch must start at sequence 0,
// a retried batch is a duplicate, anything else must follow the last
// sequence exactly. It changes nothing.
func (s *producerState) check(h *batch.Header) error {
	if h.ProducerID < 0 {
		return nil
	}
	e := s.m[h.ProducerID]
	if e == nil {
		// We know nothing of this producer (new, or its state expired).
		// A first batch starts at sequence 0; anything else means we
		// lost its state and it must re-initialise.
		if h.BaseSequence != 0 {
			return fmt.Errorf("%w: producer %d starts at sequence %d", kerr.UnknownProducerID, h.ProducerID, h.BaseSequence)
		}
		return nil
	}
	switch {
	case h.ProducerEpoch < e.Epoch:
		return fmt.Errorf("%w: producer %d epoch %d is older than %d", kerr.InvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, e.Epoch)
	case h.ProducerEpoch > e.Epoch:
		if h.BaseSequence != 0 {
			return fmt.Errorf("%w: producer %d new epoch %d must start at sequence 0, not %d", kerr.OutOfOrderSequenceNumber, h.ProducerID, h.ProducerEpoch, h.BaseSequence)
		}
		return nil
	}
	last := h.LastSequence()
	for _, b := range e.Batches {
		if b.FirstSeq == h.BaseSequence && b.LastSeq == last {
			return &errDuplicate{orig: b}
		}
	}
	if want := batch.IncrementSequence(e.lastSeq(), 1); e.lastSeq() != batch.NoSequence && h.BaseSequence != want {
		return fmt.Errorf("%w: producer %d epoch %d sent sequence %d, expected %d", kerr.OutOfOrderSequenceNumber, h.ProducerID, h.ProducerEpoch, h.BaseSequence, want)
	}
	return nil
}

// update records an appended batch. It is also how state is rebuilt from
// the log on start-up, so it must accept whatever the log holds.
func (s *producerState) update(h *batch.Header, nowMs int64) {
	if h.ProducerID < 0 {
		return
	}
	e := s.m[h.ProducerID]
	if e == nil || h.ProducerEpoch > e.Epoch {
		e = &producerEntry{Epoch: h.ProducerEpoch}
		s.m[h.ProducerID] = e
	}
	e.Batches = append(e.Batches, producerBatch{
		FirstSeq: h.BaseSequence, LastSeq: h.LastSequence(),
		FirstOffset: h.BaseOffset, LastOffset: h.LastOffset(),
		Timestamp: h.MaxTimestamp,
	})
	if len(e.Batches) > producerStateBatches {
		e.Batches = append(e.Batches[:0], e.Batches[len(e.Batches)-producerStateBatches:]...)
	}
	if nowMs > e.LastUpdateMs {
		e.LastUpdateMs = nowMs
	}
}

// expire drops producers idle for longer than expirationMs
// (producer.id.expiration.ms).
func (s *producerState) expire(nowMs, expirationMs int64) int {
	n := 0
	for id, e := range s.m {
		if nowMs-e.LastUpdateMs > expirationMs {
			delete(s.m, id)
			n++
		}
	}
	return n
}

// Snapshot format, little-endian-free and versioned:
//
//	magic "TPS1" | crc32c of the rest | count u32 | entries...
//	entry: pid i64 | epoch i16 | lastUpdateMs i64 | nbatches u8 |
//	       batches (firstSeq i32, lastSeq i32, firstOff i64, lastOff i64, ts i64)
const snapshotMagic = "TPS1"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func (s *producerState) encode() []byte {
	ids := make([]int64, 0, len(s.m))
	for id := range s.m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	out := make([]byte, 0, 12+len(ids)*(19+producerStateBatches*32))
	out = append(out, snapshotMagic...)
	out = append(out, 0, 0, 0, 0) // crc
	out = binary.BigEndian.AppendUint32(out, uint32(len(ids)))
	for _, id := range ids {
		e := s.m[id]
		out = binary.BigEndian.AppendUint64(out, uint64(id))
		out = binary.BigEndian.AppendUint16(out, uint16(e.Epoch))
		out = binary.BigEndian.AppendUint64(out, uint64(e.LastUpdateMs))
		out = append(out, byte(len(e.Batches)))
		for _, b := range e.Batches {
			out = binary.BigEndian.AppendUint32(out, uint32(b.FirstSeq))
			out = binary.BigEndian.AppendUint32(out, uint32(b.LastSeq))
			out = binary.BigEndian.AppendUint64(out, uint64(b.FirstOffset))
			out = binary.BigEndian.AppendUint64(out, uint64(b.LastOffset))
			out = binary.BigEndian.AppendUint64(out, uint64(b.Timestamp))
		}
	}
	binary.BigEndian.PutUint32(out[4:], crc32.Checksum(out[8:], castagnoli))
	return out
}

var errBadSnapshot = errors.New("bad producer snapshot")

func decodeProducerState(b []byte) (*producerState, error) {
	if len(b) < 12 || string(b[:4]) != snapshotMagic {
		return nil, fmt.Errorf("%w: no header", errBadSnapshot)
	}
	if crc32.Checksum(b[8:], castagnoli) != binary.BigEndian.Uint32(b[4:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", errBadSnapshot)
	}
	n := binary.BigEndian.Uint32(b[8:])
	b = b[12:]
	s := newProducerState()
	for i := uint32(0); i < n; i++ {
		if len(b) < 19 {
			return nil, fmt.Errorf("%w: truncated entry %d", errBadSnapshot, i)
		}
		id := int64(binary.BigEndian.Uint64(b))
		e := &producerEntry{Epoch: int16(binary.BigEndian.Uint16(b[8:])), LastUpdateMs: int64(binary.BigEndian.Uint64(b[10:]))}
		nb := int(b[18])
		b = b[19:]
		if nb > producerStateBatches || len(b) < nb*32 {
			return nil, fmt.Errorf("%w: entry %d has %d batches", errBadSnapshot, i, nb)
		}
		for j := 0; j < nb; j++ {
			e.Batches = append(e.Batches, producerBatch{
				FirstSeq:    int32(binary.BigEndian.Uint32(b)),
				LastSeq:     int32(binary.BigEndian.Uint32(b[4:])),
				FirstOffset: int64(binary.BigEndian.Uint64(b[8:])),
				LastOffset:  int64(binary.BigEndian.Uint64(b[16:])),
				Timestamp:   int64(binary.BigEndian.Uint64(b[24:])),
			})
			b = b[32:]
		}
		s.m[id] = e
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errBadSnapshot, len(b))
	}
	return s, nil
}
