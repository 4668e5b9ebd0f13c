package log

import "testing"

// An epoch that began at the log end and never got a batch (a leader
// elected and deposed without appending) goes when the log is truncated
// to that end: otherwise a follower keeps announcing it and the leader
// keeps answering with the same divergence.
func TestTruncateToEndDropsEmptyEpoch(t *testing.T) {
	l := openLog(t, t.TempDir(), smallConfig(), Options{})
	defer l.Close()
	mustAppend(t, l, build(t, 0, spec{n: 10, valSize: 10, epoch: 0}))
	if err := l.AssignEpoch(1, l.EndOffset()); err != nil {
		t.Fatal(err)
	}
	if e, _ := l.LatestEpoch(); e != 1 {
		t.Fatalf("latest epoch %d", e)
	}
	if err := l.TruncateTo(l.EndOffset()); err != nil {
		t.Fatal(err)
	}
	if e, _ := l.LatestEpoch(); e != 0 || l.EndOffset() != 10 {
		t.Fatalf("after truncating to the end: latest epoch %d, end %d; want 0, 10", e, l.EndOffset())
	}
}
