// Package cache keeps byte ranges of remote objects (chunks of offloaded
// segments, whole remote indexes) in memory with a byte budget, so that a
// consumer catching up from the remote tier, and the readers after it, do
// not pay an object-store round trip per fetch. It is built on ristretto.
//
// The cache knows keys and bytes only: what a key names and how to load it
// is the caller's business.
package cache

import (
	"container/list"
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

// DefaultConfig returns a 256 MiB cache, half of it the recency window,
// with four prefetch workers.
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
//
// New entries go into a small LRU window first and move to ristretto
// when they leave it (a W-TinyLFU layout). Ristretto alone would refuse
// new chunks once it is full of chunks read often before: exactly the
// chunks a reader catching up sequentially is about to read again.
type Cache struct {
	cfg Config
	rc  *ristretto.Cache[string, entry] // nil when disabled

	winMu    sync.Mutex // guards the window
	win      *list.List // of *winItem, most recent first
	winIdx   map[string]*list.Element
	winBytes int64
	winMax   int64

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
	hot        bool // moved to the front of the window on every read
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
	c := &Cache{cfg: cfg, inflight: map[string]*call{}, sem: make(chan struct{}, cfg.PrefetchWorkers),
		win: list.New(), winIdx: map[string]*list.Element{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if cfg.MaxBytes > 0 {
		// Half of the budget: remote chunks are mostly read by consumers
		// catching up in offset order, for whom recency is what predicts
		// the next read. A reader trailing another on the same partition
		// hits while it trails by less than the window; beyond it, chunks
		// must win ristretto's admission against chunks read more often
		// (by both readers) and no longer needed.
		c.winMax = max(cfg.MaxBytes/2, 1)
		// ristretto wants about ten counters per item it may hold; chunks
		// are rarely below 64 KiB.
		counters := max(cfg.MaxBytes/(64<<10)*10, 1000)
		rc, err := ristretto.NewCache(&ristretto.Config[string, entry]{
			NumCounters:        counters,
			MaxCost:            max(cfg.MaxBytes-c.winMax, 1),
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
//
// Get suits data read in order, such as segment chunks: a new entry stays
// in the window for one turn of it, however often it is read meanwhile.
func (c *Cache) Get(ctx context.Context, key string, load Loader) ([]byte, error) {
	return c.get(ctx, key, load, false)
}

// GetHot is Get for an entry read again and again over time, such as a
// segment's offset index: every read moves it to the front of the window,
// so it stays cached for as long as it is in use.
func (c *Cache) GetHot(ctx context.Context, key string, load Loader) ([]byte, error) {
	return c.get(ctx, key, load, true)
}

func (c *Cache) get(ctx context.Context, key string, load Loader, hot bool) ([]byte, error) {
	if e, ok := c.winGet(key); ok {
		// Let ristretto's frequency sketch see the read too, as W-TinyLFU
		// counts every access: an entry read often while in the window
		// stands a better chance of admission when it leaves.
		c.rc.Get(key)
		c.hits.Add(1)
		if e.prefetched {
			c.prefetchHits.Add(1)
		}
		return e.b, nil
	}
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
			c.run(key, cl, load, false, hot)
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
	c.winMu.Lock()
	_, inWin := c.winIdx[key]
	c.winMu.Unlock()
	if inWin {
		return true
	}
	_, ok := c.rc.Get(key)
	return ok
}

// winItem is an entry of the window.
type winItem struct {
	key string
	e   entry
}

func (c *Cache) winGet(key string) (entry, bool) {
	c.winMu.Lock()
	defer c.winMu.Unlock()
	el, ok := c.winIdx[key]
	if !ok {
		return entry{}, false
	}
	// Only hot entries move to the front. For the rest the window is first
	// in, first out, so that it holds the chunks loaded last, not the ones
	// a trailing reader has just finished with.
	e := el.Value.(*winItem).e
	if e.hot {
		c.win.MoveToFront(el)
	}
	return e, true
}

// winPut adds a freshly loaded entry to the window; entries pushed out of
// it are offered to ristretto, whose admission policy decides.
func (c *Cache) winPut(key string, e entry) {
	c.winMu.Lock()
	if el, ok := c.winIdx[key]; ok {
		c.winBytes -= int64(len(el.Value.(*winItem).e.b))
		c.win.Remove(el)
	}
	c.winIdx[key] = c.win.PushFront(&winItem{key: key, e: e})
	c.winBytes += int64(len(e.b))
	var out []*winItem
	for c.winBytes > c.winMax && c.win.Len() > 0 {
		el := c.win.Back()
		it := el.Value.(*winItem)
		c.win.Remove(el)
		delete(c.winIdx, it.key)
		c.winBytes -= int64(len(it.e.b))
		out = append(out, it)
	}
	c.winMu.Unlock()
	for _, it := range out {
		c.rc.Set(it.key, it.e, int64(len(it.e.b)))
	}
	if len(out) > 0 {
		// ristretto applies sets asynchronously: wait, so that an entry
		// is never in neither place and read from the store again.
		c.rc.Wait()
	}
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
		c.run(key, cl, load, true, false)
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

func (c *Cache) run(key string, cl *call, load Loader, prefetched, hot bool) {
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
			c.winPut(key, entry{b: b, prefetched: prefetched, hot: hot})
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
		c.winMu.Lock()
		s.Bytes = c.winBytes + int64(c.rc.MaxCost()-c.rc.RemainingCost())
		c.winMu.Unlock()
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
