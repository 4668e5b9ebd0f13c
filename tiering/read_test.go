package tiering

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/tiercel/tiercel/tiering/objstore"
	"github.com/tiercel/tiercel/wire/batch"
)

// remoteFixture is a partition with several offloaded segments on a mem
// store, and the segments as written.
type remoteFixture struct {
	store *objstore.Mem
	segs  []testSegment
	up    []Segment
}

func newRemoteFixture(t *testing.T, seed uint64, nsegs int, specs func(rng *rand.Rand) []batchSpec) remoteFixture {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 11))
	f := remoteFixture{store: objstore.NewMem()}
	next := int64(1000)
	for i := 0; i < nsegs; i++ {
		s := buildSegment(t, next, rng, specs(rng))
		f.segs = append(f.segs, s)
		next = s.next
	}
	r := newTestTier(t, f.store, Config{}).Log(testPID("read", 0))
	f.up = offloadAll(t, r, f.segs...)
	return f
}

// reader opens the fixture's partition through a new tier (a cold cache).
func (f remoteFixture) reader(t *testing.T, cfg Config) *RemoteLog {
	t.Helper()
	r := newTestTier(t, f.store, cfg).Log(testPID("read", 0))
	if _, err := r.Load(testContext(t)); err != nil {
		t.Fatal(err)
	}
	return r
}

// expected is what a read at offset with maxBytes should return: whole
// batches of the segment holding offset, from the one containing it.
func (f remoteFixture) expected(offset int64, maxBytes int, minOne bool) ([]byte, int64) {
	for _, s := range f.segs {
		i := s.batchAt(offset)
		if i < 0 {
			continue
		}
		var out []byte
		next := offset
		for _, b := range s.batches[i:] {
			if len(out)+len(b.raw) > maxBytes && !(minOne && len(out) == 0) {
				break
			}
			out = append(out, b.raw...)
			next = b.next
		}
		return out, next
	}
	return nil, -1
}

// TestReadEveryOffset reads every offset of a multi-segment remote log,
// with several byte limits and chunk sizes (down to chunks smaller than a
// batch header, so batches and headers span chunks), and compares with
// the bytes written.
func TestReadEveryOffset(t *testing.T) {
	f := newRemoteFixture(t, 1, 3, func(rng *rand.Rand) []batchSpec { return randomSpecs(rng, 15+rng.IntN(15)) })
	first, end := f.segs[0].base, f.segs[len(f.segs)-1].next
	// Whole-segment reads through tiny chunks are slow under -race: the
	// smaller the chunk, the smaller the reads.
	for chunk, limits := range map[int64][]int{4 << 20: {1 << 30, 3000, 1}, 4096: {1 << 30, 1}, 1000: {3000, 1}, 37: {1}} {
		t.Run(fmt.Sprintf("chunk=%d", chunk), func(t *testing.T) {
			r := f.reader(t, Config{ChunkBytes: chunk, PrefetchChunks: 2, ReadWorkers: 2})
			ctx := testContext(t)
			for o := first; o < end; o++ {
				for _, maxBytes := range limits {
					want, wantNext := f.expected(o, maxBytes, true)
					got, err := r.Read(ctx, o, maxBytes, true)
					if err != nil {
						t.Fatalf("Read(%d, %d): %v", o, maxBytes, err)
					}
					if !bytes.Equal(got.Bytes(), want) || got.NextOffset != wantNext {
						t.Fatalf("Read(%d, %d): %d bytes next %d, want %d bytes next %d", o, maxBytes, len(got.Bytes()), got.NextOffset, len(want), wantNext)
					}
				}
			}
		})
	}
}

// TestReadKIP74 checks the byte limit: whole batches only, and the first
// batch whole even past the limit only when minOne asks for it.
func TestReadKIP74(t *testing.T) {
	f := newRemoteFixture(t, 2, 1, func(rng *rand.Rand) []batchSpec {
		return []batchSpec{{n: 5, size: 2000}, {n: 3, size: 100}, {n: 1, size: 5000}, {n: 2, size: 10}}
	})
	r := f.reader(t, Config{ChunkBytes: 1024})
	ctx := testContext(t)
	bs := f.segs[0].batches
	for _, tc := range []struct {
		maxBytes int
		minOne   bool
		batches  int
	}{
		{0, false, 0},
		{len(bs[0].raw) - 1, false, 0},
		{len(bs[0].raw) - 1, true, 1},
		{1, true, 1},
		{len(bs[0].raw), false, 1},
		{len(bs[0].raw) + len(bs[1].raw) - 1, true, 1},
		{len(bs[0].raw) + len(bs[1].raw), true, 2},
		{len(bs[0].raw) + len(bs[1].raw) + len(bs[2].raw) + len(bs[3].raw), false, 4},
		{1 << 30, false, 4},
	} {
		got, err := r.Read(ctx, bs[0].base+2, tc.maxBytes, tc.minOne)
		if err != nil {
			t.Fatal(err)
		}
		var want []byte
		wantNext := bs[0].base + 2
		for _, b := range bs[:tc.batches] {
			want = append(want, b.raw...)
			wantNext = b.next
		}
		if !bytes.Equal(got.Bytes(), want) || got.NextOffset != wantNext {
			t.Errorf("maxBytes %d minOne %v: %d bytes next %d, want %d batches (%d bytes) next %d",
				tc.maxBytes, tc.minOne, len(got.Bytes()), got.NextOffset, tc.batches, len(want), wantNext)
		}
	}
}

func TestReadOutsideTheRemoteLog(t *testing.T) {
	f := newRemoteFixture(t, 3, 2, func(rng *rand.Rand) []batchSpec { return randomSpecs(rng, 10) })
	r := f.reader(t, Config{})
	ctx := testContext(t)
	end := f.segs[1].next
	for _, o := range []int64{-1, 0, f.segs[0].base - 1, end, end + 100} {
		if _, err := r.Read(ctx, o, 1<<20, true); !errors.Is(err, ErrNotRemote) {
			t.Errorf("Read(%d): %v, want ErrNotRemote", o, err)
		}
	}
	// DeleteRecords inside the second segment: the first segment leaves
	// the manifest, offsets below the new start are gone.
	start := f.segs[1].batches[3].base + 1
	dropped, err := r.SetStartOffset(ctx, 3, start)
	if err != nil {
		t.Fatal(err)
	}
	if len(dropped) != 1 || dropped[0].BaseOffset != f.segs[0].base {
		t.Fatalf("dropped %+v", dropped)
	}
	if err := r.DeleteObjects(ctx, dropped); err != nil {
		t.Fatal(err)
	}
	for _, k := range dropped[0].objectKeys() {
		if _, err := f.store.Attributes(ctx, k); !objstore.IsNotFound(err) {
			t.Fatalf("%s still stored: %v", k, err)
		}
	}
	for o := f.segs[0].base; o < start; o++ {
		if _, err := r.Read(ctx, o, 1<<20, true); !errors.Is(err, ErrNotRemote) {
			t.Fatalf("Read(%d) below the start %d: %v", o, start, err)
		}
	}
	got, err := r.Read(ctx, start, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := f.expected(start, 1<<20, true); !bytes.Equal(got.Bytes(), want) {
		t.Fatal("read at the new start differs")
	}
	// Moving the start back is a no-op.
	if d, err := r.SetStartOffset(ctx, 3, f.segs[0].base); err != nil || len(d) != 0 || r.Manifest().StartOffset() != start {
		t.Fatalf("moving the start back: %v %v, start %d", d, err, r.Manifest().StartOffset())
	}
}

// corrupt rewrites one byte of an object in the mem store.
func corrupt(t *testing.T, store *objstore.Mem, key string, at func([]byte) int) {
	t.Helper()
	b := getObject(t, store, key)
	b[at(b)] ^= 0x40
	putObject(t, store, key, b)
}

// TestReadCorruptObjects flips bytes in the stored objects: a read that
// would include them fails with ErrCorrupt, and the bytes are never
// returned.
func TestReadCorruptObjects(t *testing.T) {
	specs := func(rng *rand.Rand) []batchSpec { return randomSpecs(rng, 20) }
	for _, tc := range []struct {
		name string
		key  func(s *Segment) string
		at   func(seg testSegment, obj []byte) int // byte to flip
		read func(seg testSegment) int64
	}{
		{"record payload", (*Segment).LogKey,
			func(seg testSegment, _ []byte) int { return int(seg.batches[5].pos) + batch.HeaderSize + 3 },
			func(seg testSegment) int64 { return seg.batches[5].base }},
		{"payload of a later batch in the same read", (*Segment).LogKey,
			func(seg testSegment, _ []byte) int { return int(seg.batches[6].pos) + len(seg.batches[6].raw) - 1 },
			func(seg testSegment) int64 { return seg.batches[4].base }},
		{"batch length", (*Segment).LogKey,
			func(seg testSegment, _ []byte) int { return int(seg.batches[5].pos) + 10 },
			func(seg testSegment) int64 { return seg.batches[5].base }},
		{"magic", (*Segment).LogKey,
			func(seg testSegment, _ []byte) int { return int(seg.batches[5].pos) + 16 },
			func(seg testSegment) int64 { return seg.batches[5].base }},
		// The base offset is outside the CRC: the reader must check that
		// the batches it serves are the ones asked for.
		{"base offset of the batch read", (*Segment).LogKey,
			func(seg testSegment, _ []byte) int { return int(seg.batches[5].pos) + 7 },
			func(seg testSegment) int64 { return seg.batches[5].base }},
		{"base offset of a later batch", (*Segment).LogKey,
			func(seg testSegment, _ []byte) int { return int(seg.batches[7].pos) + 7 },
			func(seg testSegment) int64 { return seg.batches[5].base }},
		// An index entry pointing into the middle of a batch.
		{"offset index position", (*Segment).IndexKey,
			func(_ testSegment, idx []byte) int { return len(idx) - 1 },
			func(seg testSegment) int64 { return seg.batches[19].base }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newRemoteFixture(t, 4, 1, specs)
			corrupt(t, f.store, tc.key(&f.up[0]), func(b []byte) int { return tc.at(f.segs[0], b) })
			r := f.reader(t, Config{ChunkBytes: 512})
			got, err := r.Read(testContext(t), tc.read(f.segs[0]), 1<<20, true)
			if !errors.Is(err, ErrCorrupt) || got.Pieces != nil {
				t.Fatalf("read over a corrupt object: %d bytes, err %v; want ErrCorrupt and no bytes", len(got.Bytes()), err)
			}
		})
	}
	t.Run("index of bad length", func(t *testing.T) {
		f := newRemoteFixture(t, 4, 1, specs)
		putObject(t, f.store, f.up[0].IndexKey(), []byte{1, 2, 3})
		if _, err := f.reader(t, Config{}).Read(testContext(t), f.segs[0].base, 1<<20, true); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("read with a 3-byte index: %v", err)
		}
	})
	t.Run("log object shorter than the manifest says", func(t *testing.T) {
		f := newRemoteFixture(t, 4, 1, specs)
		b := getObject(t, f.store, f.up[0].LogKey())
		putObject(t, f.store, f.up[0].LogKey(), b[:len(b)-100])
		last := f.segs[0].batches[19].base
		got, err := f.reader(t, Config{}).Read(testContext(t), last, 1<<20, true)
		if err == nil || got.Pieces != nil {
			t.Fatalf("read past the end of a truncated object: %d bytes, err %v", len(got.Bytes()), err)
		}
	})
	t.Run("missing log object", func(t *testing.T) {
		f := newRemoteFixture(t, 4, 1, specs)
		if err := f.store.Delete(testContext(t), f.up[0].LogKey()); err != nil {
			t.Fatal(err)
		}
		if _, err := f.reader(t, Config{}).Read(testContext(t), f.segs[0].base, 1<<20, true); err == nil {
			t.Fatal("read of a deleted object succeeded")
		}
	})
}

// TestReadStoreErrorsAreNotCached: a read through a failing store fails,
// and the same read succeeds once the store is back.
func TestReadStoreErrorsAreNotCached(t *testing.T) {
	f := newRemoteFixture(t, 5, 1, func(rng *rand.Rand) []batchSpec { return randomSpecs(rng, 20) })
	fault := objstore.NewFault(f.store, objstore.FaultConfig{})
	r := newTestTier(t, fault, Config{ChunkBytes: 1024}).Log(testPID("read", 0))
	ctx := testContext(t)
	if _, err := r.Load(ctx); err != nil {
		t.Fatal(err)
	}
	o := f.segs[0].batches[10].base
	fault.SetOutage(true)
	if got, err := r.Read(ctx, o, 1<<20, true); err == nil || got.Pieces != nil {
		t.Fatalf("read during an outage: %d bytes, %v", len(got.Bytes()), err)
	}
	fault.SetOutage(false)
	fault.TruncateNextGets(3, 100)
	if got, err := r.Read(ctx, o, 1<<20, true); err == nil || got.Pieces != nil {
		t.Fatalf("read over a cut body: %d bytes, %v", len(got.Bytes()), err)
	}
	fault.TruncateNextGets(0, 0)
	got, err := r.Read(ctx, o, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := f.expected(o, 1<<20, true); !bytes.Equal(got.Bytes(), want) {
		t.Fatal("read after the outage differs")
	}
}

// TestReadPrefetchesAhead: a read loads the chunks after the ones it used
// in the background, so the next sequential read hits the cache.
func TestReadPrefetchesAhead(t *testing.T) {
	f := newRemoteFixture(t, 6, 1, func(rng *rand.Rand) []batchSpec { return randomSpecs(rng, 60) })
	tier := newTestTier(t, f.store, Config{ChunkBytes: 2048, PrefetchChunks: 3})
	r := tier.Log(testPID("read", 0))
	ctx := testContext(t)
	if _, err := r.Load(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := r.Read(ctx, f.segs[0].base, 1000, true)
	if err != nil {
		t.Fatal(err)
	}
	last := (int64(len(got.Bytes())) - 1) / 2048
	deadline := time.Now().Add(10 * time.Second)
	for j := last + 1; j <= last+3; j++ {
		for !tier.cache.Contains(chunkKey(f.up[0].LogKey(), j)) {
			if time.Now().After(deadline) {
				t.Fatalf("chunk %d was not prefetched after a read ending in chunk %d", j, last)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if tier.cache.Contains(chunkKey(f.up[0].LogKey(), last+4)) {
		t.Fatalf("chunk %d loaded: prefetch went past PrefetchChunks", last+4)
	}
	if s := tier.cache.Stats(); s.Prefetches < 3 {
		t.Fatalf("stats %+v", s)
	}
}

// TestOffsetForTimestamp compares the remote time lookup with a brute
// force search over every record, on segments with compressed batches,
// LogAppendTime batches and timestamps out of order within and across
// batches and segments, before and after the log start moves.
func TestOffsetForTimestamp(t *testing.T) {
	codecs := []batch.Compression{batch.CompressionNone, batch.CompressionGzip, batch.CompressionSnappy, batch.CompressionLZ4, batch.CompressionZstd}
	f := newRemoteFixture(t, 7, 3, func(rng *rand.Rand) []batchSpec {
		specs := randomSpecs(rng, 15+rng.IntN(10))
		for i := range specs {
			specs[i].codec = codecs[rng.IntN(len(codecs))]
			specs[i].ts = func(off int64, j int) int64 { return baseTime + off*10 + int64(rng.IntN(400)) - 200 }
			if rng.IntN(10) == 0 {
				specs[i].ts = nil
				specs[i].logAppendTime = baseTime + int64(rng.IntN(30_000))
			}
		}
		return specs
	})
	var all []record
	for _, s := range f.segs {
		all = append(all, s.records()...)
	}
	brute := func(start, ts int64) (int64, int64, bool) {
		for _, rec := range all {
			if rec.offset >= start && rec.ts >= ts {
				return rec.offset, rec.ts, true
			}
		}
		return -1, -1, false
	}
	probes := []int64{0, baseTime - 1_000_000, baseTime + 1_000_000_000}
	for _, rec := range all {
		probes = append(probes, rec.ts-1, rec.ts, rec.ts+1)
	}
	r := f.reader(t, Config{ChunkBytes: 700})
	ctx := testContext(t)
	check := func(start int64) {
		t.Helper()
		for _, ts := range probes {
			off, rts, found, err := r.OffsetForTimestamp(ctx, ts)
			if err != nil {
				t.Fatal(err)
			}
			wo, wts, wfound := brute(start, ts)
			if found != wfound || (found && (off != wo || rts != wts)) {
				t.Fatalf("start %d: OffsetForTimestamp(%d) = %d@%d found=%v, want %d@%d found=%v", start, ts, off, rts, found, wo, wts, wfound)
			}
		}
	}
	check(f.segs[0].base)
	// Move the start into the middle of a batch of the second segment.
	b := f.segs[1].batches[2]
	start := b.base + (b.next-b.base)/2
	if _, err := r.SetStartOffset(ctx, 3, start); err != nil {
		t.Fatal(err)
	}
	check(start)

	// A batch whose base offset (outside the CRC) was changed in the
	// bucket makes the lookup fail rather than answer a wrong offset.
	victim := f.segs[2].batches[4]
	corrupt(t, f.store, f.up[2].LogKey(), func([]byte) int { return int(victim.pos) + 7 })
	r = f.reader(t, Config{ChunkBytes: 700})
	if _, err := r.SetStartOffset(ctx, 3, victim.base); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := r.OffsetForTimestamp(ctx, 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("time lookup over a renumbered batch: %v, want ErrCorrupt", err)
	}
}

// TestValidatePieces cuts valid batches into pieces at every position (and
// at random sets of positions) and checks that they validate, and that a
// flipped byte anywhere in a batch's checked bytes is caught wherever the
// cuts fall.
func TestValidatePieces(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	seg := buildSegment(t, 0, rng, randomSpecs(rng, 4))
	data := seg.data
	ok := func(ps [][]byte) error {
		return validatePieces(ps, func(_ batch.Header, err error) error { return err })
	}
	cut := func(b []byte, at []int) [][]byte {
		var ps [][]byte
		prev := 0
		for _, a := range at {
			ps = append(ps, b[prev:a])
			prev = a
		}
		return append(ps, b[prev:])
	}
	for i := 0; i <= len(data); i++ {
		if err := ok(cut(data, []int{i})); err != nil {
			t.Fatalf("cut at %d: %v", i, err)
		}
	}
	for trial := 0; trial < 200; trial++ {
		n := 1 + rng.IntN(20)
		at := make([]int, n)
		for i := range at {
			at[i] = rng.IntN(len(data) + 1)
		}
		sort.Ints(at)
		if err := ok(cut(data, at)); err != nil {
			t.Fatalf("cuts at %v: %v", at, err)
		}
		// Corrupt one byte covered by the CRC (after the CRC field).
		bad := bytes.Clone(data)
		b := seg.batches[rng.IntN(len(seg.batches))]
		pos := int(b.pos) + 21 + rng.IntN(len(b.raw)-21)
		bad[pos] ^= 0x40
		if err := ok(cut(bad, at)); err == nil {
			t.Fatalf("flipped byte %d with cuts at %v: not detected", pos, at)
		}
	}
	// A batch cut short is an error, not a silent end.
	if err := ok(cut(data[:len(data)-1], []int{len(data) / 2})); !errors.Is(err, batch.ErrShort) {
		t.Fatalf("truncated: %v, want ErrShort", err)
	}
}
