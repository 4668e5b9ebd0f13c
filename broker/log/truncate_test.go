package log

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestTruncateTo(t *testing.T) {
	type setup struct {
		dir string
		l   *Log
		a   appended
	}
	mk := func(t *testing.T) *setup {
		s := &setup{dir: t.TempDir()}
		s.l = openLog(t, s.dir, smallConfig(), Options{})
		rng := rand.New(rand.NewPCG(15, 16))
		// Epoch 1 for the first half, epoch 3 for the second.
		for i := 0; i < 120; i++ {
			ep := int32(1)
			if i >= 60 {
				ep = 3
			}
			raw := build(t, s.l.EndOffset(), spec{n: 1 + rng.IntN(3), valSize: 50 + rng.IntN(200), epoch: ep})
			mustAppend(t, s.l, raw)
			s.a.add(raw)
		}
		return s
	}
	cases := []struct {
		name string
		// pick chooses the truncation offset.
		pick func(s *setup) int64
	}{
		{"middle of active segment", func(s *setup) int64 {
			segs := s.l.Segments()
			if last := s.a.bases[len(s.a.bases)-1]; last > segs[len(segs)-1].BaseOffset {
				return last
			}
			return s.a.bases[len(s.a.bases)-2]
		}},
		{"middle of an older segment", func(s *setup) int64 { return s.a.bases[30] }},
		{"segment boundary", func(s *setup) int64 { return s.l.Segments()[3].BaseOffset }},
		{"inside a batch", func(s *setup) int64 {
			i := s.a.indexOf(s.a.bases[70])
			for s.a.bases[i+1]-s.a.bases[i] < 2 {
				i++
			}
			return s.a.bases[i] + 1
		}},
		{"at epoch start", func(s *setup) int64 { return s.a.bases[60] }},
		{"to first segment base", func(s *setup) int64 { return 0 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := mk(t)
			l := s.l
			off := tc.pick(s)
			for _, snap := range []int64{0, off, off + 1, l.EndOffset()} {
				if err := l.WriteSnapshot(snap, []byte("x")); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := l.TruncateTo(off); err != nil {
				t.Fatal(err)
			}
			// The batch containing off goes entirely.
			i := s.a.indexOf(off)
			wantEnd := s.a.bases[i]
			if l.EndOffset() != wantEnd {
				t.Fatalf("end %d, want %d", l.EndOffset(), wantEnd)
			}
			if l.RecoveryPoint() > wantEnd {
				t.Fatalf("recovery point %d above end %d", l.RecoveryPoint(), wantEnd)
			}
			base60 := s.a.bases[60]
			s.a.batches, s.a.bases = s.a.batches[:i], s.a.bases[:i]
			for _, seg := range l.Segments() {
				if seg.BaseOffset > wantEnd {
					t.Fatalf("segment %d survived truncation to %d", seg.BaseOffset, wantEnd)
				}
			}
			var wantEpochs []EpochEntry
			if wantEnd > 0 {
				wantEpochs = append(wantEpochs, EpochEntry{1, 0})
			}
			if wantEnd > base60 {
				wantEpochs = append(wantEpochs, EpochEntry{3, base60})
			}
			if got := l.Epochs(); !equalEpochs(got, wantEpochs) {
				t.Fatalf("epochs %v, want %v", got, wantEpochs)
			}
			for _, snap := range l.Snapshots() {
				if snap > wantEnd {
					t.Fatalf("snapshot %d above end %d survived", snap, wantEnd)
				}
			}
			if len(s.a.batches) > 0 {
				checkAll(t, l, &s.a)
			}
			// Appends continue, with a new epoch.
			for k := 0; k < 20; k++ {
				raw := build(t, l.EndOffset(), spec{n: 2, valSize: 100, epoch: 5})
				mustAppend(t, l, raw)
				s.a.add(raw)
			}
			checkAll(t, l, &s.a)
			if ep, _ := l.LatestEpoch(); ep != 5 {
				t.Fatalf("latest epoch %d", ep)
			}
			end := l.EndOffset()
			// Unclean reopen sees the same log.
			l2 := openLog(t, s.dir, smallConfig(), Options{})
			if l2.EndOffset() != end {
				t.Fatalf("unclean reopen: end %d, want %d", l2.EndOffset(), end)
			}
			checkAll(t, l2, &s.a)
			l2.Close()
			l.Close()
			l3 := openLog(t, s.dir, smallConfig(), Options{})
			defer l3.Close()
			checkAll(t, l3, &s.a)
		})
	}
}

func equalEpochs(a, b []EpochEntry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTruncateNoop(t *testing.T) {
	l := openLog(t, t.TempDir(), smallConfig(), Options{})
	defer l.Close()
	var a appended
	fill(t, l, &a, rand.New(rand.NewPCG(1, 2)), 10)
	end := l.EndOffset()
	if err := l.TruncateTo(end); err != nil || l.EndOffset() != end {
		t.Fatalf("%v %d", err, l.EndOffset())
	}
	if err := l.TruncateTo(end + 10); err != nil || l.EndOffset() != end {
		t.Fatalf("%v %d", err, l.EndOffset())
	}
}

func TestTruncateFullyAndStartAt(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallConfig(), Options{})
	var a appended
	fill(t, l, &a, rand.New(rand.NewPCG(17, 18)), 50)
	if err := l.AssignEpoch(2, 0); err != nil {
		t.Fatal(err)
	}
	if err := l.WriteSnapshot(10, []byte("s")); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateFullyAndStartAt(1000); err != nil {
		t.Fatal(err)
	}
	if l.StartOffset() != 1000 || l.EndOffset() != 1000 || l.Size() != 0 || len(l.Segments()) != 1 {
		t.Fatalf("start %d end %d size %d segments %d", l.StartOffset(), l.EndOffset(), l.Size(), len(l.Segments()))
	}
	if len(l.Epochs()) != 0 || len(l.Snapshots()) != 0 {
		t.Fatalf("epochs %v snapshots %v", l.Epochs(), l.Snapshots())
	}
	if res, err := l.Read(1000, 10, math.MaxInt64, true); err != nil || res.Size != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	var b appended
	for i := 0; i < 30; i++ {
		raw := build(t, l.EndOffset(), spec{n: 2, valSize: 200, epoch: 7})
		mustAppend(t, l, raw)
		b.add(raw)
	}
	checkAll(t, l, &b)
	// Unclean then clean reopen.
	l2 := openLog(t, dir, smallConfig(), Options{})
	if l2.StartOffset() != 1000 {
		t.Fatalf("start %d", l2.StartOffset())
	}
	checkAll(t, l2, &b)
	l2.Close()
	l.Close()
	l = openLog(t, dir, smallConfig(), Options{})
	defer l.Close()
	checkAll(t, l, &b)
	if es := l.Epochs(); len(es) != 1 || es[0] != (EpochEntry{7, 1000}) {
		t.Fatalf("epochs %v", es)
	}
	// Truncating below the first segment is a full truncation.
	if err := l.TruncateTo(500); err != nil {
		t.Fatal(err)
	}
	if l.StartOffset() != 500 || l.EndOffset() != 500 {
		t.Fatalf("start %d end %d", l.StartOffset(), l.EndOffset())
	}
}
