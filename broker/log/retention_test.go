package log

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"testing"
)

func TestDeleteSegments(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallConfig(), Options{})
	var a appended
	fill(t, l, &a, rand.New(rand.NewPCG(9, 10)), 150)
	segs := l.Segments()
	if len(segs) < 5 {
		t.Fatalf("%d segments", len(segs))
	}
	for _, off := range []int64{0, segs[1].BaseOffset, segs[2].BaseOffset + 1, segs[3].BaseOffset} {
		if err := l.WriteSnapshot(off, []byte{byte(off)}); err != nil {
			t.Fatal(err)
		}
	}
	cut := segs[3].BaseOffset
	deleted, err := l.DeleteSegments(func(s SegmentInfo) bool { return s.NextOffset <= cut })
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 3 || deleted[0].BaseOffset != 0 || deleted[2].BaseOffset != segs[2].BaseOffset {
		t.Fatalf("deleted %+v", deleted)
	}
	for _, d := range deleted {
		for _, p := range []string{d.LogPath, d.IndexPath, d.TimeIndexPath} {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Fatalf("%s still exists: %v", p, err)
			}
		}
	}
	if l.StartOffset() != cut {
		t.Fatalf("start %d, want %d", l.StartOffset(), cut)
	}
	if got := l.Snapshots(); len(got) != 1 || got[0] != cut {
		t.Fatalf("snapshots %v (want only the newest at or below %d)", got, cut)
	}
	if _, err := l.Read(cut-1, 100, math.MaxInt64, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below start: %v", err)
	}
	checkAll(t, l, &a)

	// The active segment is never deleted.
	_, err = l.DeleteSegments(func(SegmentInfo) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Segments(); len(got) != 1 || !got[0].Active || l.StartOffset() != got[0].BaseOffset {
		t.Fatalf("after deleting all: %+v start %d", got, l.StartOffset())
	}
	end := l.EndOffset()
	checkAll(t, l, &a)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, smallConfig(), Options{})
	defer l.Close()
	if l.EndOffset() != end || l.StartOffset() != l.Segments()[0].BaseOffset {
		t.Fatalf("reopened: start %d end %d", l.StartOffset(), l.EndOffset())
	}
	checkAll(t, l, &a)
}

func TestSetStartOffset(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, smallConfig(), Options{})
	var a appended
	fill(t, l, &a, rand.New(rand.NewPCG(11, 12)), 100)
	segs := l.Segments()
	target := segs[2].BaseOffset + 3 // inside the third segment
	if err := l.AssignEpoch(0, 0); err != nil {
		t.Fatal(err)
	}
	if err := l.SetStartOffset(target); err != nil {
		t.Fatal(err)
	}
	if l.StartOffset() != target || l.Segments()[0].BaseOffset != segs[2].BaseOffset {
		t.Fatalf("start %d first segment %d", l.StartOffset(), l.Segments()[0].BaseOffset)
	}
	if es := l.Epochs(); len(es) != 1 || es[0] != (EpochEntry{0, target}) {
		t.Fatalf("epochs %v", es)
	}
	if err := l.SetStartOffset(1); err != nil || l.StartOffset() != target {
		t.Fatalf("moving back: %v, start %d", err, l.StartOffset())
	}
	if err := l.SetStartOffset(l.EndOffset() + 1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("past end: %v", err)
	}
	if _, err := l.Read(target-1, 100, math.MaxInt64, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below start: %v", err)
	}
	got, err := l.ReadBytes(target, 1, math.MaxInt64, true)
	if err != nil || !bytes.Equal(got, a.batches[a.indexOf(target)]) {
		t.Fatalf("read at start: %v", err)
	}
	checkAll(t, l, &a)

	// Persisted: survives both a clean and an unclean reopen.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, smallConfig(), Options{})
	if l.StartOffset() != target {
		t.Fatalf("after clean reopen start %d, want %d", l.StartOffset(), target)
	}
	l2 := openLog(t, dir, smallConfig(), Options{})
	defer l2.Close()
	defer l.Close()
	if l2.StartOffset() != target {
		t.Fatalf("after unclean reopen start %d, want %d", l2.StartOffset(), target)
	}

	// Up to the end: every sealed segment goes, the active one stays.
	if err := l2.SetStartOffset(l2.EndOffset()); err != nil {
		t.Fatal(err)
	}
	if n := len(l2.Segments()); n != 1 {
		t.Fatalf("%d segments", n)
	}
	if res, err := l2.Read(l2.EndOffset(), 100, math.MaxInt64, true); err != nil || res.Size != 0 {
		t.Fatalf("read at end: %+v %v", res, err)
	}
}

func TestReadSurvivesDeletion(t *testing.T) {
	l := openLog(t, t.TempDir(), smallConfig(), Options{})
	var a appended
	fill(t, l, &a, rand.New(rand.NewPCG(13, 14)), 60)
	res, err := l.Read(0, 1<<20, math.MaxInt64, true)
	if err != nil {
		t.Fatal(err)
	}
	want := a.concat(0, a.indexOf(res.NextOffset-1)+1)
	if _, err := l.DeleteSegments(func(s SegmentInfo) bool { return s.BaseOffset == 0 }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(segPath(l.Dir(), 0, logSuffix)); !os.IsNotExist(err) {
		t.Fatalf("segment file still there: %v", err)
	}
	// Close the log too: the reference alone keeps the file readable.
	res2, err := l.Read(l.StartOffset(), 1<<20, math.MaxInt64, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, res.Size)
	if _, err := res.File.ReadAt(got, res.Position); err != nil {
		t.Fatalf("read after delete: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("bytes differ")
	}
	res.Release()
	res.Release()
	if _, err := res.File.ReadAt(got[:1], 0); err == nil {
		t.Fatal("file still open after the last release")
	}
	got = make([]byte, res2.Size)
	if _, err := res2.File.ReadAt(got, res2.Position); err != nil {
		t.Fatalf("read after close: %v", err)
	}
	res2.Release()
	if _, err := l.Read(0, 1, math.MaxInt64, true); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
}

func TestDelete(t *testing.T) {
	dir := t.TempDir() + "/p-1"
	l := openLog(t, dir, smallConfig(), Options{})
	fill(t, l, &appended{}, rand.New(rand.NewPCG(1, 1)), 20)
	if err := l.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("dir still exists: %v", err)
	}
}
