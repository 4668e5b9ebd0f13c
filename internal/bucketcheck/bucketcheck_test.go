package bucketcheck

import (
	"bytes"
	"testing"

	"github.com/tiercel/tiercel/wire/batch"
)

// TestCheckLogCatchesDamage: the checker accepts batches that cover the
// manifest's range and rejects a flipped byte, a gap, a short object and a
// range that ends elsewhere, so the tests that rely on it can fail.
func TestCheckLogCatchesDamage(t *testing.T) {
	var log []byte
	for _, base := range []int64{100, 103} {
		b := batch.NewBuilder(batch.CompressionNone)
		for i := 0; i < 3; i++ {
			b.Add(1000, nil, Value(1, int(base)+i, 50))
		}
		raw, err := b.Build(base)
		if err != nil {
			t.Fatal(err)
		}
		log = append(log, raw...)
	}
	seg := Segment{Base: 100, Next: 106}
	if err := checkLog("ok", log, seg); err != nil {
		t.Fatalf("valid log rejected: %v", err)
	}
	flipped := bytes.Clone(log)
	flipped[len(flipped)-5] ^= 1
	if checkLog("flipped", flipped, seg) == nil {
		t.Error("a flipped byte passed")
	}
	if checkLog("short", log[:len(log)-1], seg) == nil {
		t.Error("a short object passed")
	}
	if checkLog("gap", log, Segment{Base: 99, Next: 106}) == nil {
		t.Error("batches starting after the manifest's base passed")
	}
	if checkLog("end", log, Segment{Base: 100, Next: 107}) == nil {
		t.Error("batches ending before the manifest's end passed")
	}
}
