// Package cache keeps byte ranges of remote objects (chunks of offloaded
// segments, whole remote indexes) in memory with a byte budget, so that a
// consumer catching up from the remote tier, and the readers after it, do
// not pay an object-store round trip per fetch. It is built on ristretto.
//
// The cache knows keys and bytes only: what a key names and how to load it
// is the caller's business.
package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/ristretto/v2"
)

// Config configures a Cache.
type Config struct {
	// MaxBytes is the byte budget (tiercel.remote.cache.bytes). Zero
	// disables caching; loads are still shared between concurrent callers.
	MaxBytes int64
	// PrefetchWorkers bounds the loads running in the background.
	PrefetchWorkers int
}

// DefaultConfig returns a 256 MiB cache with four prefetch workers.
func DefaultConfig() Config { return Config{MaxBytes: 256 << 20, PrefetchWorkers: 4} }

// Loader fetches the bytes a key names.
type Loader func(ctx context.Context) ([]byte, error)

// Stats are cumulative counters.
type Stats struct {
	Hits, Misses     int64 // Get calls answered from memory, or not
	Loads, LoadBytes int64 // loads run (foreground and prefetch)
	LoadErrors       int64
	Prefetches       int64 // background loads started
	PrefetchHits     int64 // Gets answered by a prefetched entry
	Bytes            int64 // bytes currently held
}

// Cache is a byte cache with shared loads and background prefetch.
type Cache struct {
	cfg Config
	rc  *ristretto.Cache[string, entry] // nil when disabled

	mu       sync.Mutex // guards inflight
	inflight map[string]*call

	ctx    context.Context // ends background loads at Close
	cancel context.CancelFunc
	sem    chan struct{}
	wg     sync.WaitGroup

	hits, misses, loads, loadBytes, loadErrors atomic.Int64
	prefetches, prefetchHits                   atomic.Int64
}

type entry struct {
	b          []byte
	prefetched bool
}

// call is one load shared by everyone who asked for the key meanwhile.
type call struct {
	done chan struct{}
	b    []byte
	err  error
}

// New builds a cache.
func New(cfg Config) (*Cache, error) {
	if cfg.PrefetchWorkers <= 0 {
		cfg.PrefetchWorkers = DefaultConfig().PrefetchWorkers
	}
	c := &Cache{cfg: cfg, inflight: map[string]*call{}, sem: make(chan struct{}, cfg.PrefetchWorkers)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if cfg.MaxBytes > 0 {
		// ristretto wants about ten counters per item it may hold; chunks
		// are rarely below 64 KiB.
		counters := max(cfg.MaxBytes/(64<<10)*10, 1000)
		rc, err := ristretto.NewCache(&ristretto.Config[string, entry]{
			NumCounters:        counters,
			MaxCost:            cfg.MaxBytes,
			BufferItems:        64,
			Metrics:            true,
			IgnoreInternalCost: true,
		})
		if err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
		c.rc = rc
	}
	return c, nil
}

// Close stops background loads, waits for them, and drops the contents.
func (c *Cache) Close() {
	c.cancel()
	c.wg.Wait()
	if c.rc != nil {
		c.rc.Close()
	}
}

// Get returns the bytes for key, calling load on a miss. Concurrent misses
// for one key share one load. The returned slice must not be modified.
func (c *Cache) Get(ctx context.Context, key string, load Loader) ([]byte, error) {
	if c.rc != nil {
		if e, ok := c.rc.Get(key); ok {
			c.hits.Add(1)
			if e.prefetched {
				c.prefetchHits.Add(1)
			}
			return e.b, nil
		}
	}
	c.misses.Add(1)
	cl, leader := c.join(key)
	if leader {
		// The load runs on the cache's context, not the caller's: others
		// may be waiting for it, and a completed load is worth keeping.
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.run(key, cl, load, false)
		}()
	}
	select {
	case <-cl.done:
		return cl.b, cl.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Contains reports whether key is cached, without loading it.
func (c *Cache) Contains(key string) bool {
	if c.rc == nil {
		return false
	}
	_, ok := c.rc.Get(key)
	return ok
}

// Prefetch loads key in the background unless it is cached or already
// loading, or every prefetch worker is busy (prefetch is a hint; dropping
// it costs only a later miss).
func (c *Cache) Prefetch(key string, load Loader) {
	if c.rc == nil || c.Contains(key) {
		return
	}
	select {
	case c.sem <- struct{}{}:
	default:
		return
	}
	cl, leader := c.join(key)
	if !leader {
		<-c.sem
		return
	}
	c.prefetches.Add(1)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer func() { <-c.sem }()
		c.run(key, cl, load, true)
	}()
}

func (c *Cache) join(key string) (*call, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.inflight[key]; ok {
		return cl, false
	}
	cl := &call{done: make(chan struct{})}
	c.inflight[key] = cl
	return cl, true
}

func (c *Cache) run(key string, cl *call, load Loader, prefetched bool) {
	b, err := load(c.ctx)
	if err == nil && b == nil {
		err = errors.New("cache: loader returned no bytes")
	}
	c.loads.Add(1)
	if err != nil {
		c.loadErrors.Add(1)
	} else {
		c.loadBytes.Add(int64(len(b)))
		if c.rc != nil {
			c.rc.Set(key, entry{b: b, prefetched: prefetched}, int64(len(b)))
			// Make the entry visible before waiters return, so that the
			// next reader of this chunk hits.
			c.rc.Wait()
		}
	}
	cl.b, cl.err = b, err
	c.mu.Lock()
	delete(c.inflight, key)
	c.mu.Unlock()
	close(cl.done)
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	s := Stats{
		Hits: c.hits.Load(), Misses: c.misses.Load(),
		Loads: c.loads.Load(), LoadBytes: c.loadBytes.Load(), LoadErrors: c.loadErrors.Load(),
		Prefetches: c.prefetches.Load(), PrefetchHits: c.prefetchHits.Load(),
	}
	if c.rc != nil {
		s.Bytes = int64(c.rc.MaxCost() - c.rc.RemainingCost())
	}
	return s
}

// HitRatio is hits / (hits + misses), or 0 before any Get.
func (s Stats) HitRatio() float64 {
	if s.Hits+s.Misses == 0 {
		return 0
	}
	return float64(s.Hits) / float64(s.Hits+s.Misses)
}
