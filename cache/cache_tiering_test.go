package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Behaviours the remote reader relies on.

// TestAbandonedLoadLandsInCache: a fetch that stops waiting (its deadline
// passed) does not cancel the load; the chunk lands in the cache and the
// fetch's retry hits it without loading again.
func TestAbandonedLoadLandsInCache(t *testing.T) {
	c, err := New(Config{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var loads atomic.Int32
	release := make(chan struct{})
	load := func(ctx context.Context) ([]byte, error) {
		loads.Add(1)
		select {
		case <-release:
			return []byte("chunk"), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Get(ctx, "k", load); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("get past its deadline: %v", err)
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for !c.Contains("k") {
		if time.Now().After(deadline) {
			t.Fatal("the abandoned load never landed in the cache")
		}
		time.Sleep(time.Millisecond)
	}
	b, err := c.Get(context.Background(), "k", load)
	if err != nil || string(b) != "chunk" || loads.Load() != 1 {
		t.Fatalf("retry: %q %v after %d loads", b, err, loads.Load())
	}
}

// TestPrefetchIsDroppedWhenWorkersAreBusy: prefetch is a hint; with every
// worker busy it is dropped rather than queued without bound.
func TestPrefetchIsDroppedWhenWorkersAreBusy(t *testing.T) {
	c, _ := New(Config{MaxBytes: 1 << 20, PrefetchWorkers: 2})
	release := make(chan struct{})
	var started atomic.Int32
	slow := func(context.Context) ([]byte, error) {
		started.Add(1)
		<-release
		return []byte("x"), nil
	}
	for i := 0; i < 10; i++ {
		c.Prefetch(fmt.Sprint(i), slow)
	}
	time.Sleep(50 * time.Millisecond)
	if n := started.Load(); n != 2 {
		t.Fatalf("%d prefetch loads running with 2 workers", n)
	}
	if s := c.Stats(); s.Prefetches != 2 {
		t.Fatalf("stats %+v", s)
	}
	close(release)
	c.Close() // waits for the two loads
	if n := started.Load(); n != 2 {
		t.Fatalf("%d prefetch loads ran in all", n)
	}
}

// TestEntryLargerThanBudget: a chunk that cannot be kept is still returned.
func TestEntryLargerThanBudget(t *testing.T) {
	c, _ := New(Config{MaxBytes: 1 << 10})
	defer c.Close()
	big := bytes.Repeat([]byte{7}, 4<<10)
	b, err := c.Get(context.Background(), "big", func(context.Context) ([]byte, error) { return big, nil })
	if err != nil || !bytes.Equal(b, big) {
		t.Fatalf("got %d bytes, %v", len(b), err)
	}
	if s := c.Stats(); s.Bytes > 1<<10 {
		t.Fatalf("holding %d bytes over a 1 KiB budget", s.Bytes)
	}
}

// TestConcurrentReadersGetTheirKeysBytes hammers the cache from many
// goroutines with Get and Prefetch over overlapping keys and a budget
// smaller than the data: every answer must be the bytes of its own key.
func TestConcurrentReadersGetTheirKeysBytes(t *testing.T) {
	c, _ := New(Config{MaxBytes: 64 << 10, PrefetchWorkers: 4})
	defer c.Close()
	value := func(k int) []byte { return bytes.Repeat([]byte(fmt.Sprintf("%08d", k)), 128) } // 1 KiB
	loader := func(k int) Loader {
		return func(context.Context) ([]byte, error) { return value(k), nil }
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for i := 0; i < 2000; i++ {
				k := rng.IntN(200)
				if rng.IntN(4) == 0 {
					c.Prefetch(fmt.Sprint(k+1), loader(k+1))
				}
				b, err := c.Get(context.Background(), fmt.Sprint(k), loader(k))
				if err != nil || !bytes.Equal(b, value(k)) {
					errs <- fmt.Errorf("key %d: %d bytes %q..., %v", k, len(b), b[:min(len(b), 8)], err)
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
	s := c.Stats()
	if s.Hits == 0 || s.Bytes > 64<<10 || s.Hits+s.Misses != 16000 {
		t.Fatalf("stats %+v", s)
	}
}
