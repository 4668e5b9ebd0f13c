package cache

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestGetLoadsOnceAndHits(t *testing.T) {
	c, err := New(Config{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var loads atomic.Int32
	release := make(chan struct{})
	load := func(context.Context) ([]byte, error) {
		loads.Add(1)
		<-release
		return []byte("chunk"), nil
	}
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := c.Get(context.Background(), "k", load)
			if err != nil || string(b) != "chunk" {
				t.Errorf("get: %q %v", b, err)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := loads.Load(); n != 1 {
		t.Fatalf("%d loads for concurrent misses, want 1", n)
	}
	if b, err := c.Get(context.Background(), "k", func(context.Context) ([]byte, error) {
		t.Fatal("loaded a cached key")
		return nil, nil
	}); err != nil || string(b) != "chunk" {
		t.Fatalf("hit: %q %v", b, err)
	}
	if s := c.Stats(); s.Hits < 1 || s.Loads != 1 || s.Bytes != 5 {
		t.Fatalf("stats %+v", s)
	}
}

func TestErrorsAreNotCached(t *testing.T) {
	c, _ := New(Config{MaxBytes: 1 << 20})
	defer c.Close()
	boom := errors.New("boom")
	if _, err := c.Get(context.Background(), "k", func(context.Context) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	b, err := c.Get(context.Background(), "k", func(context.Context) ([]byte, error) { return []byte("ok"), nil })
	if err != nil || string(b) != "ok" {
		t.Fatalf("retry after error: %q %v", b, err)
	}
}

func TestPrefetchThenHit(t *testing.T) {
	c, _ := New(Config{MaxBytes: 1 << 20, PrefetchWorkers: 2})
	defer c.Close()
	c.Prefetch("p", func(context.Context) ([]byte, error) { return bytes.Repeat([]byte{1}, 100), nil })
	deadline := time.Now().Add(5 * time.Second)
	for !c.Contains("p") {
		if time.Now().After(deadline) {
			t.Fatal("prefetch never landed")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := c.Get(context.Background(), "p", nil); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.PrefetchHits != 1 || s.Prefetches != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestBudgetEvicts(t *testing.T) {
	c, _ := New(Config{MaxBytes: 10 << 10})
	defer c.Close()
	for i := 0; i < 100; i++ {
		key := string(rune('a'+i%26)) + string(rune('A'+i/26))
		if _, err := c.Get(context.Background(), key, func(context.Context) ([]byte, error) { return make([]byte, 1<<10), nil }); err != nil {
			t.Fatal(err)
		}
	}
	if s := c.Stats(); s.Bytes > 10<<10 {
		t.Fatalf("holding %d bytes over a %d budget", s.Bytes, 10<<10)
	}
}

func TestDisabledStillLoads(t *testing.T) {
	c, _ := New(Config{MaxBytes: 0})
	defer c.Close()
	n := 0
	for i := 0; i < 3; i++ {
		if _, err := c.Get(context.Background(), "k", func(context.Context) ([]byte, error) { n++; return []byte("x"), nil }); err != nil {
			t.Fatal(err)
		}
	}
	if n != 3 {
		t.Fatalf("%d loads with the cache off", n)
	}
}

func TestCallerContextCancels(t *testing.T) {
	c, _ := New(Config{MaxBytes: 1 << 20})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := c.Get(ctx, "slow", func(lctx context.Context) ([]byte, error) {
		<-lctx.Done()
		return nil, lctx.Err()
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
}
