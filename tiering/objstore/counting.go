package objstore

import (
	"context"
	"io"
	"strings"
	"sync"
	"sync/atomic"
)

// S3ListPageSize is how many keys one S3 ListObjectsV2 request returns at
// most; a listing of n keys costs ceil(n/1000) requests, and at least one.
const S3ListPageSize = 1000

// numOps is the number of Ops; opIndex maps each to [0, numOps).
const numOps = 6

func opIndex(op Op) int {
	switch op {
	case OpPut:
		return 0
	case OpGet:
		return 1
	case OpGetRange:
		return 2
	case OpAttributes:
		return 3
	case OpDelete:
		return 4
	case OpList:
		return 5
	}
	return -1
}

type opCounters [numOps]atomic.Int64

func (c *opCounters) snapshot() map[Op]int64 {
	out := make(map[Op]int64, numOps)
	for _, op := range Ops() {
		out[op] = c[opIndex(op)].Load()
	}
	return out
}

// Counting wraps an ObjectStore and counts its calls by operation, for
// accounting and cost estimates. It is cheap enough to sit on every call:
// a few atomic adds, and one read-locked map lookup for the key group.
//
// It keeps two counts per operation:
//
//   - calls: ObjectStore calls made through it (Snapshot). These are the
//     calls the metrics wrapper counts as tiercel.objstore.requests.
//   - requests: the S3 requests those calls amount to (Requests), which is
//     what S3 bills. A Put larger than the S3 part size is a multipart
//     upload: one CreateMultipartUpload, one UploadPart per part and one
//     CompleteMultipartUpload. A List costs one ListObjectsV2 per 1000 keys
//     it returned, and at least one. Everything else is one request. The
//     part size is the wrapped S3 store's; for other stores (fs, mem) it is
//     the S3 store's default, so the figure is what the same calls would
//     cost on S3. Retries inside the S3 client are not visible here and are
//     not counted.
//
// Calls are counted when they return, whatever their outcome: S3 bills
// failed requests (a lost conditional put, a missing key) as well. A put
// that failed is counted as one request, as only its first request is
// known to have been sent.
//
// Requests are also counted by key group (GroupRequests): the first two
// '/'-separated elements of the key or listing prefix, such as
// "topics/orders-<topicId>" or "cluster/metadata", so that a report can
// attribute them to topics.
type Counting struct {
	next      ObjectStore
	partSize  int64
	singlePut int64

	calls    opCounters
	requests opCounters

	mu     sync.RWMutex // guards groups; its counters are atomic
	groups map[string]*opCounters
}

var _ ObjectStore = (*Counting)(nil)

// WithCounts wraps store with call and request counters, starting at zero.
func WithCounts(store ObjectStore) *Counting {
	part, single := s3PutSizes(store)
	return &Counting{next: store, partSize: part, singlePut: single, groups: map[string]*opCounters{}}
}

// s3PutSizes finds the part size and single-put limit of the S3 store under any wrappers of
// this package, or the default part size for other stores.
func s3PutSizes(s ObjectStore) (part, single int64) {
	for {
		switch v := s.(type) {
		case *S3:
			return v.partSize, v.singlePut
		case *metered:
			s = v.next
		case *Fault:
			s = v.next
		case *Counting:
			s = v.next
		default:
			return defaultPartSize, maxSinglePut
		}
	}
}

// Snapshot returns the calls made so far, by operation. Every Op is present.
func (c *Counting) Snapshot() map[Op]int64 { return c.calls.snapshot() }

// Requests returns the S3 requests the calls so far amount to, by
// operation. Every Op is present.
func (c *Counting) Requests() map[Op]int64 { return c.requests.snapshot() }

// GroupRequests returns Requests split by key group (see Counting). Only
// groups with at least one request are present.
func (c *Counting) GroupRequests() map[string]map[Op]int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make(map[string]map[Op]int64, len(c.groups))
	for g, ctr := range c.groups {
		out[g] = ctr.snapshot()
	}
	return out
}

// KeyGroup is the group a key or listing prefix is counted under: its
// first two '/'-separated elements, without a trailing '/'.
func KeyGroup(key string) string {
	if i := strings.IndexByte(key, '/'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '/'); j >= 0 {
			return key[:i+1+j]
		}
	}
	return strings.TrimSuffix(key, "/")
}

func (c *Counting) group(key string) *opCounters {
	g := KeyGroup(key)
	c.mu.RLock()
	ctr := c.groups[g]
	c.mu.RUnlock()
	if ctr != nil {
		return ctr
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ctr = c.groups[g]; ctr == nil {
		ctr = new(opCounters)
		c.groups[strings.Clone(g)] = ctr
	}
	return ctr
}

func (c *Counting) count(op Op, key string, requests int64) {
	i := opIndex(op)
	c.calls[i].Add(1)
	c.requests[i].Add(requests)
	c.group(key)[i].Add(requests)
}

// putRequests is the number of S3 requests a successful put of size bytes
// amounts to; it mirrors S3.Put and S3.putMultipart.
func (c *Counting) putRequests(size int64, opts PutOptions, r io.Reader) int64 {
	if opts.IfNoneMatch || opts.IfMatch != "" || size <= c.partSize {
		return 1
	}
	if _, ok := streamable(r); ok && size <= c.singlePut {
		return 1 // streamed from a file in one PutObject
	}
	part := max(c.partSize, (size+maxParts-1)/maxParts)
	return (size+part-1)/part + 2
}

// Put implements ObjectStore.
func (c *Counting) Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) (Attrs, error) {
	a, err := c.next.Put(ctx, key, r, size, opts)
	n := int64(1)
	if err == nil {
		n = c.putRequests(size, opts, r)
	}
	c.count(OpPut, key, n)
	return a, err
}

// Get implements ObjectStore.
func (c *Counting) Get(ctx context.Context, key string) (io.ReadCloser, Attrs, error) {
	rc, a, err := c.next.Get(ctx, key)
	c.count(OpGet, key, 1)
	return rc, a, err
}

// GetRange implements ObjectStore.
func (c *Counting) GetRange(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	rc, err := c.next.GetRange(ctx, key, off, length)
	c.count(OpGetRange, key, 1)
	return rc, err
}

// Attributes implements ObjectStore.
func (c *Counting) Attributes(ctx context.Context, key string) (Attrs, error) {
	a, err := c.next.Attributes(ctx, key)
	c.count(OpAttributes, key, 1)
	return a, err
}

// Delete implements ObjectStore.
func (c *Counting) Delete(ctx context.Context, key string) error {
	err := c.next.Delete(ctx, key)
	c.count(OpDelete, key, 1)
	return err
}

// List implements ObjectStore.
func (c *Counting) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	var n int64
	err := c.next.List(ctx, prefix, func(o ObjectInfo) error {
		n++
		return fn(o)
	})
	c.count(OpList, prefix, max(1, (n+S3ListPageSize-1)/S3ListPageSize))
	return err
}

// Close implements ObjectStore.
func (c *Counting) Close() error { return c.next.Close() }
