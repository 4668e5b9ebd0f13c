package log

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestEndOffsetForEpoch(t *testing.T) {
	// Kafka's LeaderEpochFileCache.endOffsetFor cases (KIP-101, KIP-279).
	es := []EpochEntry{{2, 10}, {4, 30}, {5, 50}}
	const leo = 70
	cases := []struct {
		name      string
		entries   []EpochEntry
		requested int32
		epoch     int32
		end       int64
	}{
		{"empty cache", nil, 3, -1, -1},
		{"undefined epoch", es, -1, -1, -1},
		{"latest epoch gets the LEO", es, 5, 5, leo},
		{"known older epoch ends where the next starts", es, 2, 2, 30},
		{"epoch between known ones maps to the previous", es, 3, 2, 30},
		{"epoch before the latest", es, 4, 4, 50},
		{"below the first epoch", es, 1, 1, 10},
		{"epoch 0 below the first", es, 0, 0, 10},
		{"above the latest is unknown", es, 6, -1, -1},
		{"single entry, same epoch", []EpochEntry{{0, 0}}, 0, 0, leo},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ep, end := epochsEndOffsetFor(tc.entries, tc.requested, leo)
			if ep != tc.epoch || end != tc.end {
				t.Fatalf("got (%d, %d), want (%d, %d)", ep, end, tc.epoch, tc.end)
			}
		})
	}
}

func TestEpochAssign(t *testing.T) {
	base := []EpochEntry{{1, 0}, {3, 20}, {5, 40}}
	cases := []struct {
		name    string
		in      EpochEntry
		want    []EpochEntry
		changed bool
	}{
		{"new latest", EpochEntry{6, 60}, []EpochEntry{{1, 0}, {3, 20}, {5, 40}, {6, 60}}, true},
		{"same epoch later offset is a no-op", EpochEntry{5, 45}, base, false},
		{"same epoch same offset is a no-op", EpochEntry{5, 40}, base, false},
		{"same epoch earlier offset replaces", EpochEntry{5, 35}, []EpochEntry{{1, 0}, {3, 20}, {5, 35}}, true},
		{"lower epoch drops later entries", EpochEntry{4, 50}, []EpochEntry{{1, 0}, {3, 20}, {4, 50}}, true},
		{"higher epoch at lower offset drops entries starting at or after it", EpochEntry{7, 20}, []EpochEntry{{1, 0}, {7, 20}}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, changed := epochsAssign(base, tc.in)
			if changed != tc.changed || !equalEpochs(got, tc.want) {
				t.Fatalf("got %v %v, want %v %v", got, changed, tc.want, tc.changed)
			}
			if !equalEpochs(base, []EpochEntry{{1, 0}, {3, 20}, {5, 40}}) {
				t.Fatal("input modified")
			}
		})
	}
}

func TestEpochTruncation(t *testing.T) {
	es := []EpochEntry{{1, 0}, {3, 20}, {5, 40}}
	for _, tc := range []struct {
		end  int64
		want []EpochEntry
	}{{50, es}, {40, es[:2]}, {21, es[:2]}, {20, es[:1]}, {0, nil}} {
		if got, _ := epochsTruncateFromEnd(es, tc.end); !equalEpochs(got, tc.want) {
			t.Fatalf("from end %d: got %v, want %v", tc.end, got, tc.want)
		}
	}
	for _, tc := range []struct {
		start int64
		want  []EpochEntry
	}{{0, es}, {10, []EpochEntry{{1, 10}, {3, 20}, {5, 40}}}, {20, []EpochEntry{{3, 20}, {5, 40}}}, {45, []EpochEntry{{5, 45}}}} {
		if got, _ := epochsTruncateFromStart(es, tc.start); !equalEpochs(got, tc.want) {
			t.Fatalf("from start %d: got %v, want %v", tc.start, got, tc.want)
		}
	}
}

func TestEpochCheckpointFormat(t *testing.T) {
	es := []EpochEntry{{0, 0}, {3, 120}, {4, 130}}
	b := encodeEpochCheckpoint(es)
	if string(b) != "0\n3\n0 0\n3 120\n4 130\n" {
		t.Fatalf("format %q", b)
	}
	got, err := decodeEpochCheckpoint(b)
	if err != nil || !equalEpochs(got, es) {
		t.Fatalf("%v %v", got, err)
	}
	if got, err := decodeEpochCheckpoint([]byte("0\n0\n")); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v %v", got, err)
	}
	for _, bad := range []string{"", "1\n0\n", "0\n2\n1 1\n", "0\n1\n1\n", "0\nx\n", "0\n2\n3 10\n2 20\n", "0\n1\n-1 0\n"} {
		if _, err := decodeEpochCheckpoint([]byte(bad)); !errors.Is(err, ErrCorruptLog) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
}

func TestEpochsPersisted(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Config{}, Options{})
	// Appends assign epochs from the batches: -1 is ignored, only newer
	// epochs start entries.
	for _, ep := range []int32{-1, 0, 0, 2, 1, 2, 4} {
		mustAppend(t, l, build(t, l.EndOffset(), spec{n: 2, epoch: ep}))
	}
	want := []EpochEntry{{0, 2}, {2, 6}, {4, 12}}
	if got := l.Epochs(); !equalEpochs(got, want) {
		t.Fatalf("epochs %v, want %v", got, want)
	}
	if err := l.AssignEpoch(6, l.EndOffset()); err != nil {
		t.Fatal(err)
	}
	want = append(want, EpochEntry{6, 14})
	if ep, ok := l.LatestEpoch(); !ok || ep != 6 {
		t.Fatalf("latest %d %v", ep, ok)
	}
	if ep, end := l.EndOffsetForEpoch(2); ep != 2 || end != 12 {
		t.Fatalf("end for 2: %d %d", ep, end)
	}
	if ep, end := l.EndOffsetForEpoch(6); ep != 6 || end != 14 {
		t.Fatalf("end for 6: %d %d", ep, end)
	}
	b, err := os.ReadFile(filepath.Join(dir, epochCheckpointFile))
	if err != nil || string(b) != string(encodeEpochCheckpoint(want)) {
		t.Fatalf("checkpoint %q %v", b, err)
	}
	// Unclean reopen keeps them, except entries starting at or past the log
	// end (Kafka's truncateFromEnd(LEO) at load): the epoch 6 assigned at
	// the end with no data yet, and one whose data was lost.
	if err := writeFileAtomic(OSFS(), dir, epochCheckpointFile, encodeEpochCheckpoint(append(want, EpochEntry{8, 100}))); err != nil {
		t.Fatal(err)
	}
	l2 := openLog(t, dir, Config{}, Options{})
	defer l2.Close()
	defer l.Close()
	if got := l2.Epochs(); !equalEpochs(got, want[:3]) {
		t.Fatalf("reopened epochs %v, want %v", got, want)
	}
	if err := l.AssignEpoch(-1, 0); err == nil {
		t.Fatal("negative epoch accepted")
	}
}

func TestCorruptEpochCheckpointFailsOpen(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, epochCheckpointFile), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Config{}, Options{Logger: testLogger(t)}); !errors.Is(err, ErrCorruptLog) {
		t.Fatalf("open: %v", err)
	}
}
