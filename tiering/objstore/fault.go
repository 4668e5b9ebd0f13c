package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// ErrInjected marks every error a Fault store makes up. Injected errors
// stand for transient failures (a dropped connection, a 503), so callers
// must treat them as retryable: they never wrap ErrNotFound or
// ErrPreconditionFailed.
var ErrInjected = errors.New("injected fault")

// FaultConfig sets the faults a Fault store injects from the start; its
// methods change them at run time.
type FaultConfig struct {
	// Seed seeds the random choices, so a failing run can be repeated.
	Seed uint64
	// ErrorRate is, per operation, the probability in [0, 1] that a call
	// fails with an injected error before it reaches the store.
	ErrorRate map[Op]float64
	// Latency is added before every call; LatencyJitter adds a uniformly
	// random extra up to it. Both wait on the call's context.
	Latency, LatencyJitter time.Duration
	// TruncateRate is the probability that a Get or GetRange body breaks
	// at a random point with an injected error, as a connection dropped
	// mid-transfer does.
	TruncateRate float64
	// LostAckRate is the probability that a Put that succeeded reports an
	// injected error anyway, as when the response is lost after the
	// server applied the request. Callers of conditional puts must cope
	// with this "outcome unknown" case; it changes no data.
	LostAckRate float64
}

// Fault wraps an ObjectStore and injects failures, for tests of the code
// above it. It never changes stored data or the bytes of a body: a fault
// is an error returned, a delay, or a body cut short with an error (never
// with a premature io.EOF), so whatever a caller does read is correct.
type Fault struct {
	next     ObjectStore
	injected atomic.Int64

	mu        sync.Mutex
	rng       *rand.Rand
	cfg       FaultConfig
	outage    bool
	failNext  int
	truncNext int
	truncAt   int64
}

var _ ObjectStore = (*Fault)(nil)

// NewFault wraps store with the faults cfg describes.
func NewFault(store ObjectStore, cfg FaultConfig) *Fault {
	rates := make(map[Op]float64, len(cfg.ErrorRate))
	for op, r := range cfg.ErrorRate {
		rates[op] = r
	}
	cfg.ErrorRate = rates
	return &Fault{
		next: store,
		cfg:  cfg,
		rng:  rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5851f42d4c957f2d)),
	}
}

// SetOutage starts (true) or ends (false) an outage: while it lasts,
// every call fails with an injected error.
func (f *Fault) SetOutage(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.outage = on
}

// FailNext makes the next n calls, of any operation, fail.
func (f *Fault) FailNext(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext = n
}

// TruncateNextGets makes the bodies of the next n Get or GetRange calls
// fail after `after` bytes (at the end of the body if it is shorter); a
// negative after picks a random point in each body.
func (f *Fault) TruncateNextGets(n int, after int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.truncNext, f.truncAt = n, after
}

// SetErrorRate changes the probability that calls of op fail.
func (f *Fault) SetErrorRate(op Op, rate float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cfg.ErrorRate[op] = rate
}

// SetLatency changes the latency added to every call.
func (f *Fault) SetLatency(latency, jitter time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cfg.Latency, f.cfg.LatencyJitter = latency, jitter
}

// Injected returns how many faults have been injected so far (errors,
// truncated bodies and lost acknowledgements; not delays).
func (f *Fault) Injected() int64 { return f.injected.Load() }

func (f *Fault) inject(op Op, key, why string) error {
	f.injected.Add(1)
	return fmt.Errorf("%s %q: %s: %w", op, key, why, ErrInjected)
}

// before delays a call and decides whether it fails.
func (f *Fault) before(ctx context.Context, op Op, key string) error {
	f.mu.Lock()
	delay := f.cfg.Latency
	if f.cfg.LatencyJitter > 0 {
		delay += time.Duration(f.rng.Int64N(int64(f.cfg.LatencyJitter)))
	}
	var why string
	switch {
	case f.outage:
		why = "outage"
	case f.failNext > 0:
		f.failNext--
		why = "fail-next"
	case f.cfg.ErrorRate[op] > 0 && f.rng.Float64() < f.cfg.ErrorRate[op]:
		why = "random error"
	}
	f.mu.Unlock()
	if delay > 0 {
		if err := sleep(ctx, delay); err != nil {
			return fmt.Errorf("fault: %s %q: %w", op, key, err)
		}
	}
	if why != "" {
		return fmt.Errorf("fault: %w", f.inject(op, key, why))
	}
	return nil
}

// Put implements ObjectStore.
func (f *Fault) Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) (Attrs, error) {
	if err := f.before(ctx, OpPut, key); err != nil {
		return Attrs{}, err
	}
	a, err := f.next.Put(ctx, key, r, size, opts)
	if err != nil {
		return a, err
	}
	f.mu.Lock()
	lost := f.cfg.LostAckRate > 0 && f.rng.Float64() < f.cfg.LostAckRate
	f.mu.Unlock()
	if lost {
		return Attrs{}, fmt.Errorf("fault: %w", f.inject(OpPut, key, "response lost after the put was applied"))
	}
	return a, nil
}

// Get implements ObjectStore.
func (f *Fault) Get(ctx context.Context, key string) (io.ReadCloser, Attrs, error) {
	if err := f.before(ctx, OpGet, key); err != nil {
		return nil, Attrs{}, err
	}
	rc, a, err := f.next.Get(ctx, key)
	if err != nil {
		return nil, a, err
	}
	return f.maybeTruncate(OpGet, key, rc, a.Size), a, nil
}

// GetRange implements ObjectStore.
func (f *Fault) GetRange(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if err := f.before(ctx, OpGetRange, key); err != nil {
		return nil, err
	}
	rc, err := f.next.GetRange(ctx, key, off, length)
	if err != nil {
		return nil, err
	}
	return f.maybeTruncate(OpGetRange, key, rc, length), nil
}

// maybeTruncate decides whether a body breaks, and where. size bounds
// the random break point; it may exceed the body's real length.
func (f *Fault) maybeTruncate(op Op, key string, rc io.ReadCloser, size int64) io.ReadCloser {
	f.mu.Lock()
	defer f.mu.Unlock()
	at := int64(-1)
	switch {
	case f.truncNext > 0:
		f.truncNext--
		at = f.truncAt
		if at < 0 {
			at = f.rng.Int64N(max(size, 1))
		}
	case f.cfg.TruncateRate > 0 && f.rng.Float64() < f.cfg.TruncateRate:
		at = f.rng.Int64N(max(size, 1))
	default:
		return rc
	}
	return &truncBody{rc: rc, left: at, fail: func() error {
		return fmt.Errorf("fault: %w: %w", f.inject(op, key, "body cut short"), io.ErrUnexpectedEOF)
	}}
}

// truncBody passes through left bytes and then fails. It fails instead of
// returning io.EOF even if the body ends first, so a cut can never look
// like a complete, shorter object.
type truncBody struct {
	rc   io.ReadCloser
	left int64
	fail func() error
	err  error
}

func (t *truncBody) Read(p []byte) (int, error) {
	if t.err != nil {
		return 0, t.err
	}
	if t.left <= 0 {
		t.err = t.fail()
		return 0, t.err
	}
	if int64(len(p)) > t.left {
		p = p[:t.left]
	}
	n, err := t.rc.Read(p)
	t.left -= int64(n)
	if err == io.EOF {
		t.err = t.fail()
		return n, t.err
	}
	return n, err
}

func (t *truncBody) Close() error { return t.rc.Close() }

// Attributes implements ObjectStore.
func (f *Fault) Attributes(ctx context.Context, key string) (Attrs, error) {
	if err := f.before(ctx, OpAttributes, key); err != nil {
		return Attrs{}, err
	}
	return f.next.Attributes(ctx, key)
}

// Delete implements ObjectStore.
func (f *Fault) Delete(ctx context.Context, key string) error {
	if err := f.before(ctx, OpDelete, key); err != nil {
		return err
	}
	return f.next.Delete(ctx, key)
}

// List implements ObjectStore.
func (f *Fault) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	if err := f.before(ctx, OpList, prefix); err != nil {
		return err
	}
	return f.next.List(ctx, prefix, fn)
}

// Close implements ObjectStore; it injects nothing.
func (f *Fault) Close() error { return f.next.Close() }
