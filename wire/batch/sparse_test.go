package batch

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestSparseBatch builds what compaction leaves (records at offsets 101,
// 105 and 109 of a batch spanning 100..112) and reads it back through this
// package and through kmsg's independent decoder.
func TestSparseBatch(t *testing.T) {
	var b SparseBuilder
	src := []struct {
		off, ts int64
		key     string
		value   []byte
	}{
		{101, 1700000000005, "a", []byte("1")},
		{105, 1700000000001, "b", nil}, // a tombstone, with an earlier timestamp
		{109, 1700000000009, "c", []byte("3")},
	}
	for _, r := range src {
		b.Add(r.off, r.ts, Record{Key: []byte(r.key), Value: r.value, Headers: []RecordHeader{{Key: "h", Value: []byte("x")}}})
	}
	raw, err := b.Build(100, 112, 7, 0)
	if err != nil {
		t.Fatal(err)
	}
	if b.Size() < len(raw) {
		t.Fatalf("Size %d underestimates %d", b.Size(), len(raw))
	}
	h, err := ParseHeader(raw)
	if err != nil {
		t.Fatal(err)
	}
	if h.BaseOffset != 100 || h.LastOffset() != 112 || h.RecordCount != 3 || h.PartitionLeaderEpoch != 7 ||
		h.BaseTimestamp != 1700000000001 || h.MaxTimestamp != 1700000000009 || h.ProducerID != -1 || h.Size() != len(raw) {
		t.Fatalf("header %+v", h)
	}
	if Checksum(raw) != h.CRC {
		t.Fatal("crc")
	}
	if _, err := Validate(raw); err == nil {
		t.Fatal("Validate accepted a sparse batch; it requires a full range")
	}
	if _, err := ValidateSparse(raw); err != nil {
		t.Fatalf("ValidateSparse: %v", err)
	}
	bad := append([]byte(nil), raw...)
	bad[len(bad)-1] ^= 1
	if _, err := ValidateSparse(bad); err == nil {
		t.Fatal("ValidateSparse accepted a bad CRC")
	}
	i := 0
	err = Records(raw, func(r Record) error {
		want := src[i]
		if h.BaseOffset+int64(r.OffsetDelta) != want.off || h.BaseTimestamp+r.TimestampDelta != want.ts ||
			string(r.Key) != want.key || (r.Value == nil) != (want.value == nil) || string(r.Value) != string(want.value) ||
			len(r.Headers) != 1 || r.Headers[0].Key != "h" {
			t.Errorf("record %d: %+v", i, r)
		}
		i++
		return nil
	})
	if err != nil || i != 3 {
		t.Fatalf("records: %v, %d", err, i)
	}
	var kb kmsg.RecordBatch
	if err := kb.ReadFrom(raw); err != nil || kb.NumRecords != 3 || kb.LastOffsetDelta != 12 || uint32(kb.CRC) != h.CRC {
		t.Fatalf("kmsg: %+v %v", kb, err)
	}

	// An empty batch still spans its range.
	b.Reset()
	raw, err = b.Build(200, 204, 3, 1700000000000)
	if err != nil {
		t.Fatal(err)
	}
	h, _ = ParseHeader(raw)
	if h.RecordCount != 0 || h.NextOffset() != 205 || h.MaxTimestamp != 1700000000000 || len(raw) != HeaderSize {
		t.Fatalf("empty batch %+v (%d bytes)", h, len(raw))
	}
	if _, err := ValidateSparse(raw); err != nil {
		t.Fatalf("ValidateSparse of an empty batch: %v", err)
	}
	// Records out of the range are refused.
	b.Add(300, 0, Record{Key: []byte("k")})
	if _, err := b.Build(301, 310, 0, 0); err == nil {
		t.Fatal("record below the range accepted")
	}
	if _, err := b.Build(290, 299, 0, 0); err == nil {
		t.Fatal("record above the range accepted")
	}
}
