package cache

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
)

// TestSequentialScanLargerThanBudget is the access pattern of a consumer
// catching up from the remote tier: chunks in order, each read several
// times in a row (batch headers, then the records), over far more chunks
// than the budget holds. Every chunk should be loaded once: the chunk just
// loaded is the one about to be read again. A cache that stops admitting
// new chunks once it is full of old, often-read ones loads every chunk
// once per read instead: ristretto alone did (3.8 to 4.5 loads per chunk,
// and 8 GETs per chunk in the bench/tiering cold read), which is why new
// entries pass through a recency window first. (Under -race ristretto
// alone passed: the race detector makes sync.Pool drop items at random,
// and ristretto records reads through a sync.Pool.)
func TestSequentialScanLargerThanBudget(t *testing.T) {
	const chunkSize, budgetChunks, chunks, readsPerChunk = 64 << 10, 16, 200, 5
	c, err := New(Config{MaxBytes: budgetChunks * chunkSize})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var loads atomic.Int64
	for i := 0; i < chunks; i++ {
		key := fmt.Sprintf("seg.log#%d", i)
		for r := 0; r < readsPerChunk; r++ {
			if _, err := c.Get(context.Background(), key, func(context.Context) ([]byte, error) {
				loads.Add(1)
				return make([]byte, chunkSize), nil
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	s := c.Stats()
	t.Logf("%d loads for %d chunks read %d times each; stats %+v", loads.Load(), chunks, readsPerChunk, s)
	if n := loads.Load(); n > chunks*11/10 {
		t.Fatalf("%d loads for %d chunks: each chunk is loaded %.1f times on average", n, chunks, float64(n)/chunks)
	}
}

// TestTrailingReaderHits is two consumers catching up on one partition,
// the second some chunks behind the first, over far more chunks than the
// budget. While the lag is inside the recency window, the second reader
// finds every chunk the first one loaded.
func TestTrailingReaderHits(t *testing.T) {
	const chunkSize, budgetChunks, chunks, readsPerChunk = 64 << 10, 32, 300, 3
	for _, tc := range []struct {
		lag      int
		wantHits bool
	}{{lag: 4, wantHits: true}, {lag: budgetChunks/2 - 2, wantHits: true}, {lag: 2 * budgetChunks, wantHits: false}} {
		c, err := New(Config{MaxBytes: budgetChunks * chunkSize})
		if err != nil {
			t.Fatal(err)
		}
		var loads atomic.Int64
		read := func(i int) {
			key := fmt.Sprintf("seg.log#%d", i)
			for r := 0; r < readsPerChunk; r++ {
				if _, err := c.Get(context.Background(), key, func(context.Context) ([]byte, error) {
					loads.Add(1)
					return make([]byte, chunkSize), nil
				}); err != nil {
					t.Fatal(err)
				}
			}
		}
		for i := 0; i < chunks+tc.lag; i++ {
			if i < chunks {
				read(i)
			}
			if j := i - tc.lag; j >= 0 {
				read(j)
			}
		}
		c.Close()
		extra := loads.Load() - chunks // loads beyond the first reader's
		hit := 1 - float64(extra)/chunks
		t.Logf("lag %d chunks (window %d): %d loads for %d chunks, second reader's hit ratio %.2f", tc.lag, budgetChunks/2, loads.Load(), chunks, hit)
		if tc.wantHits && hit < 0.95 {
			t.Errorf("lag %d chunks, inside the window: hit ratio %.2f", tc.lag, hit)
		}
		if !tc.wantHits && hit > 0.5 {
			// Not a requirement, but if this starts passing the comment
			// on WindowBytes is out of date.
			t.Logf("lag %d chunks, beyond the window: hit ratio %.2f (better than expected)", tc.lag, hit)
		}
	}
}

// TestHotKeySurvivesScan is a remote segment's offset index, read with
// GetHot on every fetch, while the fetches stream far more chunks than the
// budget through the cache with Get: the index must stay cached, not be
// loaded again each time the window turns over.
func TestHotKeySurvivesScan(t *testing.T) {
	const chunkSize, budgetChunks, chunks = 64 << 10, 32, 400
	c, err := New(Config{MaxBytes: budgetChunks * chunkSize})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var indexLoads, chunkLoads atomic.Int64
	loader := func(n int, loads *atomic.Int64) Loader {
		return func(context.Context) ([]byte, error) {
			loads.Add(1)
			return make([]byte, n), nil
		}
	}
	for i := 0; i < chunks; i++ {
		if _, err := c.GetHot(context.Background(), "seg.index", loader(chunkSize/4, &indexLoads)); err != nil {
			t.Fatal(err)
		}
		for r := 0; r < 3; r++ {
			if _, err := c.Get(context.Background(), fmt.Sprintf("seg.log#%d", i), loader(chunkSize, &chunkLoads)); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("index loaded %d times, %d chunk loads for %d chunks", indexLoads.Load(), chunkLoads.Load(), chunks)
	if n := indexLoads.Load(); n != 1 {
		t.Fatalf("the index was loaded %d times during the scan", n)
	}
	if n := chunkLoads.Load(); n > chunks*11/10 {
		t.Fatalf("%d chunk loads for %d chunks", n, chunks)
	}
}
