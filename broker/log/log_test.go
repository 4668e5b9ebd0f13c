package log

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tiercel/tiercel/wire/batch"
)

func TestEmptyLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "t-0")
	l := openLog(t, dir, DefaultConfig(), Options{})
	if l.StartOffset() != 0 || l.EndOffset() != 0 || l.Size() != 0 {
		t.Fatalf("start %d end %d size %d", l.StartOffset(), l.EndOffset(), l.Size())
	}
	res, err := l.Read(0, 100, math.MaxInt64, true)
	if err != nil || res.Size != 0 || res.NextOffset != 0 {
		t.Fatalf("read empty: %+v %v", res, err)
	}
	res.Release()
	if _, _, found, err := l.MaxTimestamp(); found || err != nil {
		t.Fatalf("max timestamp on empty log: %v %v", found, err)
	}
	if _, _, found, err := l.OffsetForTimestamp(0); found || err != nil {
		t.Fatalf("offset for timestamp on empty log: %v %v", found, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	names := listDir(t, dir)
	want := map[string]bool{"00000000000000000000.log": true, "00000000000000000000.index": true,
		"00000000000000000000.timeindex": true, recoveryPointFile: true, logStartCheckpointFile: true, cleanShutdownFile: true}
	for _, n := range names {
		if !want[n] {
			t.Errorf("unexpected file %s", n)
		}
		delete(want, n)
	}
	if len(want) > 0 {
		t.Errorf("missing files %v", want)
	}
	if _, err := l.Append(build(t, 0, spec{n: 1, epoch: -1})); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

func TestAppendReadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallConfig(), Options{})
	var a appended
	rng := rand.New(rand.NewPCG(1, 2))
	fill(t, l, &a, rng, 300)
	if n := len(l.Segments()); n < 10 {
		t.Fatalf("only %d segments", n)
	}
	checkAll(t, l, &a)
	var total int64
	for _, s := range l.Segments() {
		total += s.Size
		if s.Size > 4096 && s.NextOffset-s.BaseOffset > 5 {
			t.Fatalf("segment %d has %d bytes, over segment.bytes", s.BaseOffset, s.Size)
		}
	}
	if total != l.Size() {
		t.Fatalf("Size %d, segments sum %d", l.Size(), total)
	}
	end := l.EndOffset()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// Clean reopen: same contents, appends continue.
	l = openLog(t, dir, smallConfig(), Options{})
	if l.EndOffset() != end {
		t.Fatalf("end %d after reopen, want %d", l.EndOffset(), end)
	}
	checkAll(t, l, &a)
	fill(t, l, &a, rng, 50)
	checkAll(t, l, &a)

	// Unclean reopen (no Close): recovery keeps everything.
	end = l.EndOffset()
	l2 := openLog(t, dir, smallConfig(), Options{})
	defer l2.Close()
	if l2.EndOffset() != end {
		t.Fatalf("end %d after unclean reopen, want %d", l2.EndOffset(), end)
	}
	checkAll(t, l2, &a)
	l.Close()
}

func TestAppendRejects(t *testing.T) {
	l := openLog(t, t.TempDir(), DefaultConfig(), Options{})
	defer l.Close()
	mustAppend(t, l, build(t, 0, spec{n: 3, epoch: -1}))
	b3 := build(t, 3, spec{n: 2, epoch: -1})
	b9 := build(t, 9, spec{n: 2, epoch: -1})
	cases := map[string]struct {
		data []byte
		want error
	}{
		"gap":            {build(t, 4, spec{n: 1, epoch: -1}), ErrNonContiguous},
		"overlap":        {build(t, 2, spec{n: 1, epoch: -1}), ErrNonContiguous},
		"inner gap":      {append(append([]byte(nil), b3...), b9...), ErrNonContiguous},
		"empty":          {nil, batch.ErrCorrupt},
		"torn":           {b3[:len(b3)-1], batch.ErrShort},
		"bad magic":      {func() []byte { b := append([]byte(nil), b3...); b[16] = 1; return b }(), batch.ErrUnsupportedMagic},
		"trailing bytes": {append(append([]byte(nil), b3...), 1, 2, 3), batch.ErrShort},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			size := l.Size()
			if _, err := l.Append(tc.data); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if l.EndOffset() != 3 || l.Size() != size {
				t.Fatalf("log changed: end %d size %d", l.EndOffset(), l.Size())
			}
		})
	}
	info := mustAppend(t, l, append(append([]byte(nil), b3...), build(t, 5, spec{n: 4, epoch: -1})...))
	if info.FirstOffset != 3 || info.LastOffset != 8 || l.EndOffset() != 9 {
		t.Fatalf("multi-batch append: %+v end %d", info, l.EndOffset())
	}
}

func TestAppendInfo(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{}, Options{})
	defer l.Close()
	a := build(t, 0, spec{n: 2, ts: []int64{100, 300}, epoch: -1})
	b := build(t, 2, spec{n: 3, ts: []int64{200, 300, 250}, epoch: -1})
	info := mustAppend(t, l, append(append([]byte(nil), a...), b...))
	want := AppendInfo{FirstOffset: 0, LastOffset: 4, MaxTimestamp: 300, OffsetOfMaxTimestamp: 1, Bytes: len(a) + len(b), Position: 0}
	if info != want {
		t.Fatalf("got %+v, want %+v", info, want)
	}
	info = mustAppend(t, l, build(t, 5, spec{n: 1, ts: []int64{50}, epoch: -1}))
	if info.Position != int64(len(a)+len(b)) || info.MaxTimestamp != 50 {
		t.Fatalf("second append %+v", info)
	}
}

func TestReadLimits(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{IndexIntervalBytes: 1}, Options{})
	defer l.Close()
	var a appended
	// Ten batches of 3 records each: offsets 0..29.
	for i := 0; i < 10; i++ {
		raw := build(t, l.EndOffset(), spec{n: 3, valSize: 100, epoch: -1})
		mustAppend(t, l, raw)
		a.add(raw)
	}
	sz := int64(len(a.batches[0]))
	cases := []struct {
		name                string
		from                int64
		maxBytes            int
		maxOffset           int64
		minOne              bool
		wantFirst, wantNext int64
		wantBatches         int
	}{
		{"all", 0, 1 << 20, math.MaxInt64, true, 0, 30, 10},
		{"max int bytes", 0, math.MaxInt, 20, false, 0, 21, 7},
		{"mid batch", 4, 1 << 20, math.MaxInt64, true, 3, 30, 9},
		{"exact bytes", 0, int(3 * sz), math.MaxInt64, false, 0, 9, 3},
		{"one short", 0, int(3*sz) - 1, math.MaxInt64, false, 0, 6, 2},
		{"too small without minOne", 0, int(sz) - 1, math.MaxInt64, false, 0, 0, 0},
		{"too small with minOne", 0, int(sz) - 1, math.MaxInt64, true, 0, 3, 1},
		{"zero bytes minOne", 6, 0, math.MaxInt64, true, 6, 9, 1},
		{"maxOffset at boundary", 0, 1 << 20, 9, true, 0, 9, 3},
		{"maxOffset inside batch", 0, 1 << 20, 10, true, 0, 12, 4},
		{"maxOffset and bytes", 3, int(2 * sz), 21, true, 3, 9, 2},
		{"from at maxOffset", 9, 1 << 20, 9, true, 9, 9, 0},
		{"from past maxOffset", 12, 1 << 20, 9, true, 12, 12, 0},
		{"from at end", 30, 1 << 20, math.MaxInt64, true, 30, 30, 0},
		{"last batch", 29, 1 << 20, math.MaxInt64, true, 27, 30, 1},
		{"index jump", 0, int(7*sz) + 5, math.MaxInt64, false, 0, 21, 7},
		{"index jump bounded by offset", 0, 1 << 20, 16, false, 0, 18, 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := l.Read(tc.from, tc.maxBytes, tc.maxOffset, tc.minOne)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Release()
			defer res.Release() // idempotent
			if res.NextOffset != tc.wantNext || res.Size != int64(tc.wantBatches)*sz {
				t.Fatalf("got first %d next %d size %d; want next %d, %d batches", res.FirstOffset, res.NextOffset, res.Size, tc.wantNext, tc.wantBatches)
			}
			if res.Size == 0 {
				return
			}
			if res.FirstOffset != tc.wantFirst {
				t.Fatalf("first %d, want %d", res.FirstOffset, tc.wantFirst)
			}
			got := make([]byte, res.Size)
			if _, err := res.File.ReadAt(got, res.Position); err != nil {
				t.Fatal(err)
			}
			i := a.indexOf(tc.wantFirst)
			if !bytes.Equal(got, a.concat(i, i+tc.wantBatches)) {
				t.Fatal("bytes differ")
			}
		})
	}
	for _, from := range []int64{-1, 31} {
		if _, err := l.Read(from, 100, math.MaxInt64, true); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("read %d: %v", from, err)
		}
		if _, err := l.ReadBytes(from, 100, math.MaxInt64, true); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("read bytes %d: %v", from, err)
		}
	}
}

func TestReadSingleSegment(t *testing.T) {
	l := openLog(t, t.TempDir(), smallConfig(), Options{})
	defer l.Close()
	var a appended
	fill(t, l, &a, rand.New(rand.NewPCG(3, 4)), 100)
	segs := l.Segments()
	res, err := l.Read(0, 1<<30, math.MaxInt64, true)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	if res.NextOffset != segs[0].NextOffset || res.Size != segs[0].Size {
		t.Fatalf("read spans %d bytes to %d; first segment is %d bytes to %d", res.Size, res.NextOffset, segs[0].Size, segs[0].NextOffset)
	}
}

func TestRoll(t *testing.T) {
	t.Run("size", func(t *testing.T) {
		l := openLog(t, t.TempDir(), Config{SegmentBytes: 1000}, Options{})
		defer l.Close()
		raw := build(t, 0, spec{n: 1, valSize: 400, epoch: -1})
		for i := 0; i < 5; i++ {
			mustAppend(t, l, build(t, l.EndOffset(), spec{n: 1, valSize: 400, epoch: -1}))
		}
		// Two ~470-byte batches fit in 1000 bytes, a third does not.
		if got := len(l.Segments()); got != 3 {
			t.Fatalf("%d segments for 5 batches of %d bytes", got, len(raw))
		}
		// A batch larger than segment.bytes still goes into an empty segment.
		big := build(t, l.EndOffset(), spec{n: 1, valSize: 3000, epoch: -1})
		mustAppend(t, l, big)
		segs := l.Segments()
		if last := segs[len(segs)-1]; last.Size != int64(len(big)) {
			t.Fatalf("big batch: segment of %d bytes", last.Size)
		}
	})
	t.Run("segment.ms", func(t *testing.T) {
		clk := newTestClock()
		l := openLog(t, t.TempDir(), Config{RollInterval: time.Hour}, Options{Now: clk.Now})
		defer l.Close()
		ts := clk.Now().UnixMilli()
		mustAppend(t, l, build(t, 0, spec{n: 1, tsBase: ts, epoch: -1}))
		clk.Advance(59 * time.Minute)
		mustAppend(t, l, build(t, 1, spec{n: 1, tsBase: ts, epoch: -1}))
		if n := len(l.Segments()); n != 1 {
			t.Fatalf("rolled too early: %d segments", n)
		}
		clk.Advance(2 * time.Minute)
		mustAppend(t, l, build(t, 2, spec{n: 1, tsBase: ts, epoch: -1}))
		segs := l.Segments()
		if len(segs) != 2 || segs[1].BaseOffset != 2 || segs[0].FirstBatchTimestamp != ts {
			t.Fatalf("segments %+v", segs)
		}
	})
	t.Run("segment.ms without timestamps", func(t *testing.T) {
		clk := newTestClock()
		l := openLog(t, t.TempDir(), Config{RollInterval: time.Hour}, Options{Now: clk.Now})
		defer l.Close()
		mustAppend(t, l, build(t, 0, spec{n: 1, ts: []int64{-1}, epoch: -1}))
		clk.Advance(2 * time.Hour)
		mustAppend(t, l, build(t, 1, spec{n: 1, ts: []int64{-1}, epoch: -1}))
		if n := len(l.Segments()); n != 2 {
			t.Fatalf("%d segments", n)
		}
	})
	t.Run("index full", func(t *testing.T) {
		// Room for 3 offset-index entries (and 2 time-index entries).
		l := openLog(t, t.TempDir(), Config{IndexIntervalBytes: 1, MaxIndexBytes: 24}, Options{})
		defer l.Close()
		for i := 0; i < 10; i++ {
			mustAppend(t, l, build(t, l.EndOffset(), spec{n: 1, tsBase: int64(i), epoch: -1}))
		}
		segs := l.Segments()
		if len(segs) < 3 {
			t.Fatalf("%d segments", len(segs))
		}
		for _, s := range segs[:len(segs)-1] {
			fi, err := os.Stat(s.IndexPath)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() > 24 {
				t.Fatalf("index of %d bytes", fi.Size())
			}
		}
	})
	t.Run("explicit and callback", func(t *testing.T) {
		var rolled []int64
		var l *Log
		l = openLog(t, t.TempDir(), Config{SegmentBytes: 1000}, Options{OnRoll: func(base int64) {
			rolled = append(rolled, base)
			// No log lock is held: calling back into the log works.
			if err := l.WriteSnapshot(base, []byte("state")); err != nil {
				t.Error(err)
			}
			_ = l.EndOffset()
		}})
		defer l.Close()
		if err := l.Roll(); err != nil || len(l.Segments()) != 1 {
			t.Fatalf("roll of empty segment: %v, %d segments", err, len(l.Segments()))
		}
		mustAppend(t, l, build(t, 0, spec{n: 2, epoch: -1}))
		if err := l.Roll(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			mustAppend(t, l, build(t, l.EndOffset(), spec{n: 1, valSize: 400, epoch: -1}))
		}
		if len(rolled) != 2 || rolled[0] != 2 || rolled[1] != 4 {
			t.Fatalf("rolled %v", rolled)
		}
		if got := l.Snapshots(); len(got) != 2 {
			t.Fatalf("snapshots %v", got)
		}
	})
	t.Run("SetConfig", func(t *testing.T) {
		l := openLog(t, t.TempDir(), DefaultConfig(), Options{})
		defer l.Close()
		for i := 0; i < 4; i++ {
			mustAppend(t, l, build(t, l.EndOffset(), spec{n: 1, valSize: 400, epoch: -1}))
		}
		cfg := DefaultConfig()
		cfg.SegmentBytes = 1000
		l.SetConfig(cfg)
		mustAppend(t, l, build(t, l.EndOffset(), spec{n: 1, valSize: 400, epoch: -1}))
		if n := len(l.Segments()); n != 2 {
			t.Fatalf("%d segments", n)
		}
	})
}

// TestIndexesMatchLinearScan checks every segment's indexes against a scan
// of its batches: each offset-index entry points at the start of the batch
// whose last offset it names, lookups land on a batch boundary at or before
// the target, and the time index is what Kafka's rules give.
func TestIndexesMatchLinearScan(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{SegmentBytes: 20000, IndexIntervalBytes: 500}
	l := openLog(t, dir, cfg, Options{})
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 400; i++ {
		n := 1 + rng.IntN(4)
		ts := make([]int64, n)
		for j := range ts {
			ts[j] = 1_000_000 + rng.Int64N(100_000) // non-monotonic
		}
		mustAppend(t, l, build(t, l.EndOffset(), spec{n: n, ts: ts, valSize: rng.IntN(200), epoch: -1}))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, cfg, Options{})
	defer l.Close()
	lim := cfg.normalized().limits()
	v, _ := l.view()
	for _, s := range v.segs {
		sv, err := s.view(l.fs, lim, l.logger)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(s.logPath)
		if err != nil {
			t.Fatal(err)
		}
		type bt struct {
			pos int64
			h   batch.Header
		}
		var bs []bt
		if _, err := batch.Iterate(data, func(h batch.Header, raw []byte) error {
			pos := int64(0)
			if len(bs) > 0 {
				pos = bs[len(bs)-1].pos + int64(bs[len(bs)-1].h.Size())
			}
			bs = append(bs, bt{pos, h})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		byPos := map[int64]batch.Header{}
		for _, b := range bs {
			byPos[b.pos] = b.h
		}
		for _, e := range sv.idx {
			h, ok := byPos[int64(e.pos)]
			if !ok || h.LastOffset() != s.base+int64(e.rel) {
				t.Fatalf("segment %d: index entry (%d, %d) does not match a batch", s.base, e.rel, e.pos)
			}
		}
		for _, b := range bs {
			for off := b.h.BaseOffset; off <= b.h.LastOffset(); off++ {
				p := lookupOffset(sv.idx, s.base, off)
				if _, ok := byPos[p]; !ok || p > b.pos {
					t.Fatalf("lookup %d gave %d; batch is at %d", off, p, b.pos)
				}
			}
		}
		// Recompute the time index by Kafka's rules.
		ix := newIndexer(s.base)
		for _, b := range bs {
			ix.add(&b.h, b.pos, lim)
		}
		if !sv.active {
			ix.appendTime(lim.maxTime, true)
		}
		if len(ix.tidx) != len(sv.tidx) {
			t.Fatalf("segment %d: time index has %d entries, want %d", s.base, len(sv.tidx), len(ix.tidx))
		}
		for i := range ix.tidx {
			if ix.tidx[i] != sv.tidx[i] {
				t.Fatalf("segment %d: time entry %d = %+v, want %+v", s.base, i, sv.tidx[i], ix.tidx[i])
			}
		}
		if sv.maxTS != ix.maxTS {
			t.Fatalf("segment %d: max ts %d, want %d", s.base, sv.maxTS, ix.maxTS)
		}
	}
}

func TestConcurrentReadsDuringAppends(t *testing.T) {
	l := openLog(t, t.TempDir(), smallConfig(), Options{})
	defer l.Close()
	const n = 400
	done := make(chan struct{})
	errs := make(chan error, 8)
	for r := 0; r < 4; r++ {
		go func() {
			from := int64(0)
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				end := l.EndOffset()
				if from >= end {
					continue
				}
				got, err := l.ReadBytes(from, 3000, end, true)
				if err != nil {
					errs <- err
					return
				}
				pos := 0
				for pos < len(got) {
					h, err := batch.Validate(got[pos : pos+int(int32(be32(got[pos+8:])))+12])
					if err != nil {
						errs <- err
						return
					}
					if h.BaseOffset >= end {
						errs <- errors.New("read past end")
						return
					}
					pos += h.Size()
					from = h.NextOffset()
				}
			}
		}()
	}
	rng := rand.New(rand.NewPCG(7, 8))
	var a appended
	fill(t, l, &a, rng, n)
	close(done)
	for r := 0; r < 4; r++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	checkAll(t, l, &a)
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
