package tiering

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tiercel/tiercel/tiering/objstore"
	"github.com/tiercel/tiercel/wire/batch"
)

// TestBuildIndexesAgainstLinearScan checks the remote indexes of random
// segments against a linear scan of their batches: every offset-index
// entry names a real batch start, a lookup never lands past the batch
// holding an offset nor more than an index interval (plus a batch) before
// it, and the time index holds exactly the batches where the running
// maximum timestamp rises.
func TestBuildIndexesAgainstLinearScan(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		specs := randomSpecs(rng, 30+rng.IntN(150))
		for i := range specs {
			// Timestamps that go back and forth, batch to batch and within.
			specs[i].ts = func(off int64, j int) int64 { return baseTime + int64(rng.IntN(10_000)) - int64(j) }
		}
		base := int64(rng.IntN(1_000_000))
		s := buildSegment(t, base, rng, specs)
		src := s.source(t, rng.IntN(5000))
		idx, err := buildIndexes(src)
		if err != nil {
			t.Fatal(err)
		}

		// Offset index.
		if len(idx.offsetIndex)%8 != 0 || len(idx.offsetIndex) == 0 {
			t.Fatalf("seed %d: offset index has %d bytes", seed, len(idx.offsetIndex))
		}
		posOf := map[int64]testBatch{}
		maxBatch := int64(0)
		for _, b := range s.batches {
			posOf[b.pos] = b
			maxBatch = max(maxBatch, int64(len(b.raw)))
		}
		type entry struct{ rel, pos int64 }
		var entries []entry
		for i := 0; i < len(idx.offsetIndex); i += 8 {
			e := entry{int64(binary.BigEndian.Uint32(idx.offsetIndex[i:])), int64(binary.BigEndian.Uint32(idx.offsetIndex[i+4:]))}
			b, ok := posOf[e.pos]
			if !ok || b.base != base+e.rel {
				t.Fatalf("seed %d: index entry %+v does not name a batch start", seed, e)
			}
			if n := len(entries); n > 0 && (e.rel <= entries[n-1].rel || e.pos <= entries[n-1].pos) {
				t.Fatalf("seed %d: index entries not increasing: %+v after %+v", seed, e, entries[n-1])
			}
			entries = append(entries, e)
		}
		if entries[0] != (entry{0, 0}) {
			t.Fatalf("seed %d: first entry %+v, want the first batch", seed, entries[0])
		}
		if len(entries) < int(int64(len(s.data))/(indexIntervalBytes+maxBatch)) {
			t.Fatalf("seed %d: %d entries for %d bytes: too sparse", seed, len(entries), len(s.data))
		}
		for o := s.base; o < s.next; o++ {
			lookup := int64(0)
			for _, e := range entries {
				if e.rel <= o-base {
					lookup = e.pos
				}
			}
			exact := s.batches[s.batchAt(o)].pos
			if lookup > exact || exact-lookup >= indexIntervalBytes+maxBatch {
				t.Fatalf("seed %d offset %d: index gives position %d, batch is at %d", seed, o, lookup, exact)
			}
		}

		// Time index: one entry per rise of the running maximum, carrying
		// the new maximum and the last offset of the batch that set it.
		var want []byte
		running := int64(-1)
		for _, b := range s.batches {
			if b.maxTS > running {
				running = b.maxTS
				want = binary.BigEndian.AppendUint64(want, uint64(b.maxTS))
				want = binary.BigEndian.AppendUint32(want, uint32(b.next-1-base))
			}
		}
		if !bytes.Equal(idx.timeIndex, want) {
			t.Fatalf("seed %d: time index differs from the running maximum of the batches", seed)
		}
		if idx.minTS != s.batches[0].maxTS || idx.maxTS != running {
			t.Fatalf("seed %d: min/max timestamps %d/%d, want %d/%d", seed, idx.minTS, idx.maxTS, s.batches[0].maxTS, running)
		}
	}
}

func TestBuildIndexesRejectsBadRanges(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	s := buildSegment(t, 100, rng, randomSpecs(rng, 10))
	good := s.source(t, 0)
	if _, err := buildIndexes(good); err != nil {
		t.Fatal(err)
	}
	wrongNext := good
	wrongNext.NextOffset++
	shortSize := good
	shortSize.Size -= 3
	wrongBase := good
	wrongBase.BaseOffset--
	pastEnd := good
	pastEnd.Size += 100
	misaligned := good
	misaligned.Position++
	misaligned.Size--

	// A gap: the third batch renumbered.
	gap := buildSegment(t, 100, rng, randomSpecs(rng, 5))
	batch.SetBaseOffset(gap.data[gap.batches[2].pos:], gap.batches[2].base+1)
	gapSrc := gap.source(t, 0)

	for name, src := range map[string]SegmentSource{
		"next offset past the data": wrongNext, "size cuts the last batch": shortSize,
		"base offset wrong": wrongBase, "size past the file": pastEnd,
		"position inside a batch": misaligned, "offset gap": gapSrc,
	} {
		if _, err := buildIndexes(src); err == nil {
			t.Errorf("%s: buildIndexes accepted it", name)
		}
	}
}

var objectKeyRE = regexp.MustCompile(`^topics/up-` + testTopicID + `/2/(\d{20})-(\d+)-([0-9a-f]{32})\.(log|index|timeindex|epochs|snapshot)$`)

// TestOffloadUploadsEveryObject checks the keys and bodies of an offloaded
// segment and the manifest entry that names them.
func TestOffloadUploadsEveryObject(t *testing.T) {
	store := objstore.NewMem()
	id := testPID("up", 2)
	rng := rand.New(rand.NewPCG(5, 5))
	s := buildSegment(t, 12345, rng, randomSpecs(rng, 40))
	tier := newTestTier(t, store, Config{})
	tier.now = func() time.Time { return time.UnixMilli(1_800_000_000_000) }
	r := tier.Log(id)
	src := s.source(t, 999)
	src.Epochs = []EpochEntry{{Epoch: 2, StartOffset: 12000}, {Epoch: 3, StartOffset: 12350}}
	up, err := r.Offload(testContext(t), src, 3, s.next+7)
	if err != nil {
		t.Fatal(err)
	}
	keys := listKeys(t, store, "")
	exts := map[string]bool{}
	var uuid string
	for _, k := range keys {
		if k == id.ManifestKey() {
			continue
		}
		m := objectKeyRE.FindStringSubmatch(k)
		if m == nil {
			t.Fatalf("object %q does not follow the layout", k)
		}
		if m[1] != "00000000000000012345" || m[2] != "3" {
			t.Fatalf("object %q: base or epoch wrong", k)
		}
		if uuid != "" && m[3] != uuid {
			t.Fatalf("objects of one upload have different ids: %q", k)
		}
		uuid = m[3]
		exts[m[4]] = true
	}
	if len(exts) != 5 || len(keys) != 6 {
		t.Fatalf("keys %v", keys)
	}
	if got := getObject(t, store, up.LogKey()); !bytes.Equal(got, s.data) {
		t.Fatal("the .log object differs from the segment's bytes")
	}
	if got := getObject(t, store, up.SnapshotKey()); !bytes.Equal(got, src.Snapshot) {
		t.Fatalf("snapshot object %q", got)
	}
	var epochs []EpochEntry
	if err := json.Unmarshal(getObject(t, store, up.EpochsKey()), &epochs); err != nil || !reflect.DeepEqual(epochs, src.Epochs) {
		t.Fatalf("epochs object: %v %v", epochs, err)
	}
	idx, _ := buildIndexes(src)
	if !bytes.Equal(getObject(t, store, up.IndexKey()), idx.offsetIndex) || !bytes.Equal(getObject(t, store, up.TimeIndexKey()), idx.timeIndex) {
		t.Fatal("index objects differ from the indexes built")
	}
	m, err := (&manifestStore{store: store, id: id}).load(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	want := Segment{BaseOffset: 12345, NextOffset: s.next, Size: int64(len(s.data)), MinTimestamp: s.batches[0].maxTS,
		MaxTimestamp: idx.maxTS, LeaderEpoch: 3, Epochs: src.Epochs, Key: strings.TrimSuffix(up.LogKey(), ".log"),
		HasSnapshot: true, UploadedMs: 1_800_000_000_000}
	if len(m.Segments) != 1 || !reflect.DeepEqual(m.Segments[0], want) {
		t.Fatalf("manifest entry\n%+v\nwant\n%+v", m.Segments, want)
	}
	if m.LogStartOffset != 12345 || m.HighWatermark != s.next+7 || m.LeaderEpoch != 3 {
		t.Fatalf("manifest: log start %d, hw %d, epoch %d", m.LogStartOffset, m.HighWatermark, m.LeaderEpoch)
	}

	// No snapshot: no .snapshot object, and the entry says so.
	s2 := buildSegment(t, s.next, rng, randomSpecs(rng, 3))
	src2 := s2.source(t, 0)
	src2.Snapshot = nil
	up2, err := r.Offload(testContext(t), src2, 3, s2.next)
	if err != nil {
		t.Fatal(err)
	}
	if up2.HasSnapshot {
		t.Fatal("HasSnapshot without a snapshot")
	}
	if _, err := store.Attributes(testContext(t), up2.SnapshotKey()); !objstore.IsNotFound(err) {
		t.Fatalf("snapshot object of a segment without one: %v", err)
	}
	// A segment that does not continue the remote log is refused.
	s4 := buildSegment(t, s2.next+1, rng, randomSpecs(rng, 3))
	if _, err := r.Offload(testContext(t), s4.source(t, 0), 3, s4.next); err == nil {
		t.Fatal("offload of a segment leaving a gap succeeded")
	}
}

// TestOffloadFailureLeavesOnlyOrphans fails the upload at every one of its
// puts in turn: each time the manifest stays as it was, nothing the
// manifest names is missing, and the sweeper removes what was left.
func TestOffloadFailureLeavesOnlyOrphans(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	first := buildSegment(t, 0, rng, randomSpecs(rng, 10))
	next := buildSegment(t, first.next, rng, randomSpecs(rng, 10))
	for failAt := 0; failAt < 6; failAt++ { // 5 objects, then the manifest
		mem := objstore.NewMem()
		failing := &failingStore{ObjectStore: mem, failAfter: 1 << 30}
		tier := newTestTier(t, failing, Config{})
		r := tier.Log(testPID("fail", 0))
		offloadAll(t, r, first)
		before := getObject(t, mem, r.ID().ManifestKey())

		// Let failAt puts through, then fail the rest.
		failing.puts, failing.failAfter = 0, failAt
		if _, err := r.Offload(testContext(t), next.source(t, 0), 3, next.next); err == nil {
			t.Fatalf("failAt %d: offload succeeded through a failing store", failAt)
		}
		failing.failAfter = 1 << 30
		if !bytes.Equal(before, getObject(t, mem, r.ID().ManifestKey())) {
			t.Fatalf("failAt %d: a failed offload changed the manifest", failAt)
		}
		m, err := (&manifestStore{store: mem, id: r.ID()}).load(testContext(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range m.Segments {
			for _, k := range s.objectKeys() {
				if _, err := mem.Attributes(testContext(t), k); err != nil {
					t.Fatalf("failAt %d: manifest names %s: %v", failAt, k, err)
				}
			}
		}
		if n := len(listKeys(t, mem, "")); n != 6+failAt {
			t.Fatalf("failAt %d: %d objects in the store, want %d", failAt, n, 6+failAt)
		}
		// The sweeper, once the grace has passed, removes exactly the
		// failed upload's objects.
		tier.now = func() time.Time { return time.Now().Add(time.Hour) }
		res, err := tier.Sweep(testContext(t), func(string) bool { return true }, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if res.Deleted != failAt || len(listKeys(t, mem, "")) != 6 {
			t.Fatalf("failAt %d: sweep deleted %d, %d objects left", failAt, res.Deleted, len(listKeys(t, mem, "")))
		}
		// And the retry then goes through.
		tier.now = time.Now
		if _, err := r.Offload(testContext(t), next.source(t, 0), 3, next.next); err != nil {
			t.Fatalf("failAt %d: retry: %v", failAt, err)
		}
	}
}

// failingStore lets failAfter puts through and fails the ones after. It
// is used from one goroutine at a time.
type failingStore struct {
	objstore.ObjectStore
	failAfter int
	puts      int
}

var errPutFailed = errors.New("put failed on purpose")

func (f *failingStore) Put(ctx context.Context, key string, r io.Reader, size int64, opts objstore.PutOptions) (objstore.Attrs, error) {
	f.puts++
	if f.puts > f.failAfter {
		return objstore.Attrs{}, errPutFailed
	}
	return f.ObjectStore.Put(ctx, key, r, size, opts)
}
