package tiering

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"

	"github.com/tiercel/tiercel/tiering/objstore"
)

func seg(base, next int64, key string) Segment {
	return Segment{BaseOffset: base, NextOffset: next, Size: (next - base) * 100, Key: key, MinTimestamp: base, MaxTimestamp: next - 1}
}

func TestManifestCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		segs []Segment
		ok   bool
	}{
		{"empty", nil, true},
		{"one", []Segment{seg(0, 10, "a")}, true},
		{"contiguous", []Segment{seg(0, 10, "a"), seg(10, 11, "b"), seg(11, 50, "c")}, true},
		{"starts late", []Segment{seg(100, 110, "a"), seg(110, 120, "b")}, true},
		{"gap", []Segment{seg(0, 10, "a"), seg(11, 20, "b")}, false},
		{"overlap", []Segment{seg(0, 10, "a"), seg(9, 20, "b")}, false},
		{"same base", []Segment{seg(0, 10, "a"), seg(0, 10, "b")}, false},
		{"out of order", []Segment{seg(10, 20, "a"), seg(0, 10, "b")}, false},
		{"empty range", []Segment{{BaseOffset: 5, NextOffset: 5, Size: 10, Key: "a"}}, false},
		{"backwards range", []Segment{{BaseOffset: 5, NextOffset: 4, Size: 10, Key: "a"}}, false},
		{"zero size", []Segment{{BaseOffset: 0, NextOffset: 4, Size: 0, Key: "a"}}, false},
		{"no key", []Segment{{BaseOffset: 0, NextOffset: 4, Size: 10}}, false},
	} {
		m := &Manifest{Segments: tc.segs}
		if err := m.check(); (err == nil) != tc.ok {
			t.Errorf("%s: check() = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestManifestOffsetsAndFind(t *testing.T) {
	var empty Manifest
	if empty.StartOffset() != -1 || empty.NextOffset() != -1 || empty.Find(0) != -1 || empty.Size() != 0 || !empty.Empty() {
		t.Fatalf("empty manifest: start %d next %d find %d size %d", empty.StartOffset(), empty.NextOffset(), empty.Find(0), empty.Size())
	}
	m := &Manifest{Segments: []Segment{seg(100, 110, "a"), seg(110, 111, "b"), seg(111, 150, "c")}}
	if m.StartOffset() != 100 || m.NextOffset() != 150 || m.Size() != 5000 {
		t.Fatalf("start %d next %d size %d", m.StartOffset(), m.NextOffset(), m.Size())
	}
	// Linear reference for Find.
	find := func(m *Manifest, o int64) int {
		if o < m.StartOffset() {
			return -1
		}
		for i, s := range m.Segments {
			if o >= s.BaseOffset && o < s.NextOffset {
				return i
			}
		}
		return -1
	}
	check := func() {
		t.Helper()
		for o := int64(-1); o <= 155; o++ {
			if got, want := m.Find(o), find(m, o); got != want {
				t.Fatalf("log start %d: Find(%d) = %d, want %d", m.LogStartOffset, o, got, want)
			}
		}
	}
	check()
	// A log start inside a segment hides the offsets below it.
	m.LogStartOffset = 105
	if m.StartOffset() != 105 {
		t.Fatalf("start %d with log start 105", m.StartOffset())
	}
	check()
	m.LogStartOffset = 50 // below the first segment: the segment decides
	if m.StartOffset() != 100 {
		t.Fatalf("start %d with log start 50", m.StartOffset())
	}
	check()
}

func TestManifestEpochsMerge(t *testing.T) {
	m := &Manifest{Segments: []Segment{
		{Epochs: []EpochEntry{{1, 0}, {2, 5}}},
		{Epochs: []EpochEntry{{2, 5}}},          // epoch 2 still in force
		{Epochs: []EpochEntry{{2, 5}, {4, 30}}}, // 4 begins inside
		{Epochs: []EpochEntry{{4, 30}, {5, 41}}},
	}}
	want := []EpochEntry{{1, 0}, {2, 5}, {4, 30}, {5, 41}}
	if got := m.Epochs(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Epochs() = %v, want %v", got, want)
	}
}

func TestManifestCloneIsDeep(t *testing.T) {
	m := &Manifest{Version: 3, Segments: []Segment{{BaseOffset: 0, NextOffset: 1, Size: 1, Key: "a", Epochs: []EpochEntry{{1, 0}}}}}
	c := m.Clone()
	c.Segments[0].Key = "changed"
	c.Segments[0].Epochs[0].Epoch = 9
	c.Segments = append(c.Segments, seg(1, 2, "b"))
	if m.Segments[0].Key != "a" || m.Segments[0].Epochs[0].Epoch != 1 || len(m.Segments) != 1 {
		t.Fatalf("changing the clone changed the original: %+v", m.Segments)
	}
}

// appendSeg is an update that appends a segment with the given key at the
// end of the remote log, unless the manifest already has it (a retry after
// an unknown outcome).
func appendSeg(key string, n int64) func(m *Manifest) error {
	return func(m *Manifest) error {
		for _, s := range m.Segments {
			if s.Key == key {
				return errNoChange
			}
		}
		base := max(m.NextOffset(), 0)
		m.Segments = append(m.Segments, seg(base, base+n, key))
		return nil
	}
}

func TestManifestUpdatePersistsVersionAndEpoch(t *testing.T) {
	store := objstore.NewMem()
	id := testPID("t", 0)
	ms := &manifestStore{store: store, id: id}
	ctx := testContext(t)
	for i := 1; i <= 3; i++ {
		m, err := ms.update(ctx, 7, appendSeg(fmt.Sprint(i), 10))
		if err != nil {
			t.Fatal(err)
		}
		if m.Version != int64(i) || m.LeaderEpoch != 7 || len(m.Segments) != i {
			t.Fatalf("after update %d: version %d epoch %d segments %d", i, m.Version, m.LeaderEpoch, len(m.Segments))
		}
	}
	// An update that changes nothing writes nothing.
	before := getObject(t, store, id.ManifestKey())
	if _, err := ms.update(ctx, 7, appendSeg("2", 10)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, getObject(t, store, id.ManifestKey())) {
		t.Fatal("a no-change update rewrote the manifest")
	}
	// A fresh reader sees exactly what the writer cached.
	fresh, err := (&manifestStore{store: store, id: id}).load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fresh, ms.current()) {
		t.Fatalf("reloaded manifest differs:\n%+v\n%+v", fresh, ms.current())
	}
	// An update that would break the invariants is refused and changes
	// nothing.
	_, err = ms.update(ctx, 7, func(m *Manifest) error {
		m.Segments = append(m.Segments, seg(m.NextOffset()+1, m.NextOffset()+5, "gap"))
		return nil
	})
	if err == nil {
		t.Fatal("an update leaving a gap was written")
	}
	if !bytes.Equal(before, getObject(t, store, id.ManifestKey())) {
		t.Fatal("a refused update changed the stored manifest")
	}
}

func TestManifestCorruptIsReported(t *testing.T) {
	store := objstore.NewMem()
	id := testPID("t", 0)
	for _, body := range []string{"{not json", `{"segments":[{"base":0,"next":10,"size":5,"key":"a"},{"base":12,"next":20,"size":5,"key":"b"}]}`} {
		putObject(t, store, id.ManifestKey(), []byte(body))
		if _, err := (&manifestStore{store: store, id: id}).load(testContext(t)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("manifest %q: load error %v, want ErrCorrupt", body, err)
		}
	}
}

// TestManifestFencing: a writer whose leader epoch is older than the
// manifest's is refused, whether its cached copy is fresh or stale, and
// its refused offload leaves the manifest as it was.
func TestManifestFencing(t *testing.T) {
	store := objstore.NewMem()
	id := testPID("fence", 0)
	ctx := testContext(t)
	rng := rand.New(rand.NewPCG(1, 2))

	oldLeader := newTestTier(t, store, Config{}).Log(id)
	s0 := buildSegment(t, 0, rng, randomSpecs(rng, 5))
	if _, err := oldLeader.Offload(ctx, s0.source(t, 0), 3, s0.next); err != nil {
		t.Fatal(err)
	}
	// A new leader, epoch 4, takes over and writes.
	newLeader := newTestTier(t, store, Config{}).Log(id)
	if _, err := newLeader.Load(ctx); err != nil {
		t.Fatal(err)
	}
	s1 := buildSegment(t, s0.next, rng, randomSpecs(rng, 5))
	if _, err := newLeader.Offload(ctx, s1.source(t, 0), 4, s1.next); err != nil {
		t.Fatal(err)
	}
	written := getObject(t, store, id.ManifestKey())

	// The old leader's cache still says epoch 3 and ends at s0: its
	// upload goes through, the CAS loses, the reread shows epoch 4.
	s1b := buildSegment(t, s0.next, rng, randomSpecs(rng, 3))
	if _, err := oldLeader.Offload(ctx, s1b.source(t, 0), 3, s1b.next); !errors.Is(err, ErrFenced) {
		t.Fatalf("stale leader's offload: %v, want ErrFenced", err)
	}
	// Now its cache is fresh: refused before anything is uploaded.
	objects := len(listKeys(t, store, id.Prefix()))
	s2 := buildSegment(t, s1.next, rng, randomSpecs(rng, 3))
	if _, err := oldLeader.Offload(ctx, s2.source(t, 0), 3, s2.next); !errors.Is(err, ErrFenced) {
		t.Fatalf("fenced leader's second offload: %v, want ErrFenced", err)
	}
	if n := len(listKeys(t, store, id.Prefix())); n != objects {
		t.Fatalf("a leader known to be fenced uploaded %d objects", n-objects)
	}
	// Retention and DeleteRecords are fenced too.
	if _, err := oldLeader.SetStartOffset(ctx, 3, 5); !errors.Is(err, ErrFenced) {
		t.Fatalf("fenced SetStartOffset: %v", err)
	}
	if _, err := oldLeader.DropSegments(ctx, 3, func(Segment) bool { return true }); !errors.Is(err, ErrFenced) {
		t.Fatalf("fenced DropSegments: %v", err)
	}
	if !bytes.Equal(written, getObject(t, store, id.ManifestKey())) {
		t.Fatal("a fenced writer changed the manifest")
	}
	// The same epoch may go on writing; a newer one fences epoch 4.
	if _, err := newLeader.Offload(ctx, s2.source(t, 0), 4, s2.next); err != nil {
		t.Fatal(err)
	}
	newest := newTestTier(t, store, Config{}).Log(id)
	if _, err := newest.SetStartOffset(ctx, 5, 1); err != nil {
		t.Fatal(err)
	}
	s3 := buildSegment(t, s2.next, rng, randomSpecs(rng, 2))
	if _, err := newLeader.Offload(ctx, s3.source(t, 0), 4, s3.next); !errors.Is(err, ErrFenced) {
		t.Fatalf("epoch 4 after epoch 5 wrote: %v, want ErrFenced", err)
	}
	m, err := newest.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.LeaderEpoch != 5 || len(m.Segments) != 3 || m.NextOffset() != s2.next || m.StartOffset() != 1 {
		t.Fatalf("final manifest: epoch %d, %d segments, [%d, %d)", m.LeaderEpoch, len(m.Segments), m.StartOffset(), m.NextOffset())
	}
	// The fenced uploads are orphans: nothing names them.
	named := map[string]bool{id.ManifestKey(): true}
	for _, s := range m.Segments {
		for _, k := range s.objectKeys() {
			named[k] = true
		}
	}
	orphans := 0
	for _, k := range listKeys(t, store, id.Prefix()) {
		if !named[k] {
			orphans++
		}
	}
	if orphans != 10 { // s1b and s3: five objects each
		t.Fatalf("%d orphaned objects, want 10 (two fenced uploads)", orphans)
	}
}

// TestManifestConcurrentWritersLoseNothing runs writers on separate
// handles of one manifest, each appending its own segments, on a store
// that sometimes loses the acknowledgement of an applied put. Every
// segment must end up in the manifest exactly once, in a valid log.
func TestManifestConcurrentWritersLoseNothing(t *testing.T) {
	for _, lostAck := range []float64{0, 0.2} {
		t.Run(fmt.Sprintf("lostAck=%v", lostAck), func(t *testing.T) {
			mem := objstore.NewMem()
			store := objstore.NewFault(mem, objstore.FaultConfig{Seed: 9, LostAckRate: lostAck})
			id := testPID("race", 0)
			ctx := testContext(t)
			const writers, each = 4, 25
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ms := &manifestStore{store: store, id: id}
					for i := 0; i < each; i++ {
						key := fmt.Sprintf("w%d-%d", w, i)
						var err error
						for try := 0; try < 50; try++ {
							if _, err = ms.update(ctx, 1, appendSeg(key, int64(1+w))); err == nil {
								break
							}
						}
						if err != nil {
							errs <- fmt.Errorf("writer %d segment %d: %w", w, i, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			m, err := (&manifestStore{store: mem, id: id}).load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]int{}
			for _, s := range m.Segments {
				seen[s.Key]++
			}
			for w := 0; w < writers; w++ {
				for i := 0; i < each; i++ {
					if n := seen[fmt.Sprintf("w%d-%d", w, i)]; n != 1 {
						t.Errorf("segment w%d-%d is in the manifest %d times", w, i, n)
					}
				}
			}
			if len(m.Segments) != writers*each {
				t.Fatalf("%d segments, want %d", len(m.Segments), writers*each)
			}
			if err := m.check(); err != nil {
				t.Fatal(err)
			}
			if m.Version < int64(writers*each) {
				t.Fatalf("version %d after %d writes", m.Version, writers*each)
			}
		})
	}
}

// TestOffloadRacingDeleteRecords: DeleteRecords past the whole remote log
// (which empties the manifest) lands between a leader's upload and its
// manifest write. The late segment lies below the new log start and must
// not be recorded: a manifest whose only segment ends before its log
// start has its "end" behind the local log, and offload would stop for
// good at a gap it cannot fill.
func TestOffloadRacingDeleteRecords(t *testing.T) {
	store := objstore.NewMem()
	id := testPID("racy", 0)
	ctx := testContext(t)
	rng := rand.New(rand.NewPCG(6, 6))
	leader := newTestTier(t, store, Config{}).Log(id)
	s0 := buildSegment(t, 0, rng, randomSpecs(rng, 5))
	s1 := buildSegment(t, s0.next, rng, randomSpecs(rng, 5))
	offloadAll(t, leader, s0)
	// DeleteRecords, through another handle (the leader's cache is now
	// stale), moves the start past everything offloaded and past s1.
	deleter := newTestTier(t, store, Config{}).Log(id)
	if _, err := deleter.Load(ctx); err != nil {
		t.Fatal(err)
	}
	newStart := s1.next + 3
	dropped, err := deleter.SetStartOffset(ctx, 3, newStart)
	if err != nil || len(dropped) != 1 {
		t.Fatalf("SetStartOffset: %v, dropped %d", err, len(dropped))
	}
	if _, err := leader.Offload(ctx, s1.source(t, 0), 3, s1.next); err == nil {
		t.Error("a segment below the log start was recorded")
	}
	m, err := newTestTier(t, store, Config{}).Log(id).Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Empty() || m.LogStartOffset != newStart {
		t.Fatalf("manifest after the race: log start %d, segments %+v; want empty, log start %d", m.LogStartOffset, m.Segments, newStart)
	}
}
