package broker

import (
	"testing"

	"github.com/tiercel/tiercel/wire/batch"
)

// FuzzProducerSnapshot feeds arbitrary bytes to the decoder of producer
// snapshot files (on local disk and in the bucket): it must never panic,
// and whatever it accepts must encode back to the same bytes.
func FuzzProducerSnapshot(f *testing.F) {
	s := newProducerState()
	s.update(&batch.Header{ProducerID: 7, ProducerEpoch: 1, BaseSequence: 0, LastOffsetDelta: 4, RecordCount: 5, BaseOffset: 10}, 1000)
	s.update(&batch.Header{ProducerID: 9, ProducerEpoch: 0, BaseSequence: 3, LastOffsetDelta: 0, RecordCount: 1, BaseOffset: 15}, 2000)
	f.Add(s.encode())
	f.Add(newProducerState().encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeProducerState(b)
		if err != nil {
			return
		}
		if got := st.encode(); string(got) != string(b) {
			t.Fatalf("accepted snapshot does not round-trip: %x -> %x", b, got)
		}
	})
}
