package log

import (
	"math"
	"testing"

	"github.com/tiercel/tiercel/wire/batch"
)

// linearOffsetForTimestamp is the reference: walk every record.
func linearOffsetForTimestamp(t *testing.T, l *Log, ts int64) (int64, int64, bool) {
	t.Helper()
	var off, rts int64
	found := false
	start := l.StartOffset()
	err := l.Batches(start, math.MaxInt64, func(h batch.Header, raw []byte) error {
		if found {
			return nil
		}
		return batch.Records(raw, func(r batch.Record) error {
			o := h.BaseOffset + int64(r.OffsetDelta)
			x := h.BaseTimestamp + r.TimestampDelta
			if h.LogAppendTime() {
				x = h.MaxTimestamp
			}
			if !found && o >= start && x >= ts {
				off, rts, found = o, x, true
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return off, rts, found
}

func TestOffsetForTimestamp(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{SegmentBytes: 600, IndexIntervalBytes: 100}
	l := openLog(t, dir, cfg, Options{})
	// Non-monotonic timestamps across batches and within them, some
	// compressed batches, and a LogAppendTime batch.
	batches := []spec{
		{n: 3, ts: []int64{100, 300, 200}},
		{n: 2, ts: []int64{150, 160}, codec: batch.CompressionZstd},
		{n: 4, ts: []int64{400, 350, 500, 450}, codec: batch.CompressionLZ4},
		{n: 1, ts: []int64{420}},
		{n: 3, ts: []int64{600, 610, 605}, codec: batch.CompressionGzip, valSize: 500},
		{n: 2, ts: []int64{10, 20}, appendTS: 700},
		{n: 5, ts: []int64{650, 800, 790, 900, 880}, codec: batch.CompressionSnappy, valSize: 300},
		{n: 2, ts: []int64{900, 901}},
	}
	for _, s := range batches {
		s.epoch = -1
		mustAppend(t, l, build(t, l.EndOffset(), s))
	}
	if len(l.Segments()) < 2 {
		t.Fatal("want several segments")
	}
	check := func(name string) {
		for ts := int64(0); ts <= 1000; ts += 7 {
			wo, wt, wf := linearOffsetForTimestamp(t, l, ts)
			o, gt, f, err := l.OffsetForTimestamp(ts)
			if err != nil {
				t.Fatal(err)
			}
			if f != wf || (f && (o != wo || gt != wt)) {
				t.Fatalf("%s: ts %d: got (%d, %d, %v), want (%d, %d, %v)", name, ts, o, gt, f, wo, wt, wf)
			}
		}
	}
	check("live")
	// Spot checks of the semantics.
	for _, tc := range []struct{ ts, off, rts int64 }{
		{0, 0, 100}, {101, 1, 300}, {300, 1, 300}, {301, 5, 400}, {455, 7, 500},
		{501, 10, 600}, {611, 13, 700}, {701, 16, 800}, {801, 18, 900}, {901, 21, 901},
	} {
		o, rts, f, err := l.OffsetForTimestamp(tc.ts)
		if err != nil || !f || o != tc.off || rts != tc.rts {
			t.Fatalf("ts %d: got (%d, %d, %v, %v), want (%d, %d)", tc.ts, o, rts, f, err, tc.off, tc.rts)
		}
	}
	if _, _, f, _ := l.OffsetForTimestamp(902); f {
		t.Fatal("found a record past the max timestamp")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, cfg, Options{})
	defer l.Close()
	check("reopened")
	if err := l.SetStartOffset(2); err != nil {
		t.Fatal(err)
	}
	// Offset 1 (ts 300) is now below the start.
	if o, _, _, _ := l.OffsetForTimestamp(250); o != 5 {
		t.Fatalf("below start: got %d", o)
	}
	check("after start moved")
}

func TestMaxTimestamp(t *testing.T) {
	cases := []struct {
		name    string
		batches []spec
		off, ts int64
	}{
		{"single", []spec{{n: 3, ts: []int64{5, 9, 7}}}, 1, 9},
		{"compressed middle", []spec{{n: 2, ts: []int64{1, 2}}, {n: 4, ts: []int64{3, 10, 4, 10}, codec: batch.CompressionZstd}, {n: 1, ts: []int64{6}}}, 3, 10},
		{"first of ties across batches", []spec{{n: 1, ts: []int64{8}}, {n: 1, ts: []int64{8}}}, 0, 8},
		{"log append time", []spec{{n: 2, ts: []int64{1, 2}}, {n: 3, ts: []int64{1, 1, 1}, appendTS: 50}}, 2, 50},
		{"later segment", []spec{{n: 1, ts: []int64{1}, valSize: 900}, {n: 1, ts: []int64{2}, valSize: 900}, {n: 2, ts: []int64{30, 3}, valSize: 900}}, 2, 30},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{SegmentBytes: 1000}
			l := openLog(t, dir, cfg, Options{})
			for _, s := range tc.batches {
				s.epoch = -1
				mustAppend(t, l, build(t, l.EndOffset(), s))
			}
			for pass := 0; pass < 2; pass++ {
				off, ts, found, err := l.MaxTimestamp()
				if err != nil || !found || off != tc.off || ts != tc.ts {
					t.Fatalf("pass %d: got (%d, %d, %v, %v), want (%d, %d)", pass, off, ts, found, err, tc.off, tc.ts)
				}
				l.Close()
				l = openLog(t, dir, cfg, Options{})
			}
			l.Close()
		})
	}
}
