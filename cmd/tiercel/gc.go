package main

import "runtime/debug"

// The broker's garbage-collector defaults. Its live heap is small (the
// records live in the page cache, not the heap), so Go's default GOGC=100
// collects every few megabytes allocated, and each cycle shows in the
// produce latency tail (acks=all p99 at 50 MB/s RF 3: 5.76 ms median of 7
// runs with GOGC=100, 4.99 ms with 400, in bench/RESULTS.md). The soft
// memory limit keeps a large live heap (a big remote cache) from growing
// five-fold: the collector then runs by the limit instead.
const (
	brokerGCPercent = 400
	// brokerMemoryBase is the memory limit's allowance beyond the cache.
	brokerMemoryBase = 1 << 30
)

// gcPolicy is what the broker sets, decided from the environment: the
// operator's GOGC and GOMEMLIMIT always win.
type gcPolicy struct {
	gcPercent   int   // 0: leave as is
	memoryLimit int64 // 0: leave as is
}

func decideGC(getenv func(string) string, cacheBytes int64) gcPolicy {
	if getenv("GOGC") != "" {
		return gcPolicy{}
	}
	p := gcPolicy{gcPercent: brokerGCPercent}
	if getenv("GOMEMLIMIT") == "" {
		p.memoryLimit = brokerMemoryBase + cacheBytes + cacheBytes/2
	}
	return p
}

func (p gcPolicy) apply() {
	if p.gcPercent > 0 {
		debug.SetGCPercent(p.gcPercent)
	}
	if p.memoryLimit > 0 {
		debug.SetMemoryLimit(p.memoryLimit)
	}
}
