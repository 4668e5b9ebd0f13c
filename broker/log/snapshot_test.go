package log

import (
	"os"
	"testing"
)

func TestSnapshots(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Config{}, Options{})
	if _, _, ok, err := l.LatestSnapshot(); ok || err != nil {
		t.Fatalf("empty: %v %v", ok, err)
	}
	for i := 0; i < 10; i++ {
		mustAppend(t, l, build(t, l.EndOffset(), spec{n: 1, epoch: -1}))
	}
	for _, off := range []int64{3, 0, 7, 12} {
		if err := l.WriteSnapshot(off, []byte{byte(off), 1, 2}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.WriteSnapshot(7, []byte("new")); err != nil {
		t.Fatal(err)
	}
	// 12 is past the end (10): not returned.
	off, data, ok, err := l.LatestSnapshot()
	if err != nil || !ok || off != 7 || string(data) != "new" {
		t.Fatalf("latest: %d %q %v %v", off, data, ok, err)
	}
	if _, err := os.Stat(segPath(dir, 7, snapshotSuffix)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Open drops snapshots past the end and keeps the rest.
	l = openLog(t, dir, Config{}, Options{})
	defer l.Close()
	if got := l.Snapshots(); len(got) != 3 || got[0] != 0 || got[2] != 7 {
		t.Fatalf("snapshots after reopen %v", got)
	}
	if err := l.TruncateTo(5); err != nil {
		t.Fatal(err)
	}
	off, data, ok, err = l.LatestSnapshot()
	if err != nil || !ok || off != 3 || data[0] != 3 {
		t.Fatalf("after truncate: %d %v %v", off, ok, err)
	}
	if got := l.Snapshots(); len(got) != 2 {
		t.Fatalf("snapshots after truncate %v", got)
	}
}
