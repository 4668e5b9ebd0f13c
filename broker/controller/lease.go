package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/tiercel/tiercel/tiering/objstore"
)

// LeaseKey is the controller lease object.
const LeaseKey = "cluster/lease"

// LeaseConfig times the lease. The defaults tolerate several slow object
// store requests in a row (S3's tail latency reaches seconds) before a
// controller steps down.
type LeaseConfig struct {
	// TTL is how long a lease may go unrenewed, as measured by an
	// observer's own monotonic clock, before another broker may take it.
	TTL time.Duration
	// RenewInterval is how often the holder renews.
	RenewInterval time.Duration
	// PollInterval is how often a broker that does not hold the lease
	// reads it.
	PollInterval time.Duration
}

// DefaultLeaseConfig returns a 10 s TTL, renewed every 2 s, polled every
// second.
func DefaultLeaseConfig() LeaseConfig {
	return LeaseConfig{TTL: 10 * time.Second, RenewInterval: 2 * time.Second, PollInterval: time.Second}
}

// leaseDoc is the lease object. Counter changes with every renewal so that
// every write has new bytes (S3 keeps an ETag for identical content).
type leaseDoc struct {
	// Holder is the controller's node id, or -1 once released.
	Holder int32 `json:"holder"`
	// Epoch is the controller epoch: it increases with every change of
	// holder, and stamps every metadata write.
	Epoch   int64 `json:"epoch"`
	Counter int64 `json:"counter"`
	TTLMs   int64 `json:"ttlMs"`
}

// LeaseState is what a broker knows of the lease.
type LeaseState struct {
	Held   bool  // this broker holds it
	Holder int32 // -1 when unknown or released
	Epoch  int64
}

// lease runs the lease protocol for one broker. Its single goroutine
// (run) owns the fields below mu's guard only for readers.
type lease struct {
	store  objstore.ObjectStore
	node   int32
	cfg    LeaseConfig
	logger *slog.Logger
	// minEpoch returns the controller epoch in the metadata document, so
	// a lease recreated after loss still moves the epoch forward.
	minEpoch func(ctx context.Context) (int64, error)
	// onChange runs on the lease goroutine when this broker gains or
	// loses the lease, or learns of a new holder.
	onChange func(LeaseState)

	mu    sync.Mutex
	state LeaseState

	// Owned by run.
	etag         string
	doc          leaseDoc
	seenEtag     string
	seenSince    time.Time // monotonic: when seenEtag was first observed
	renewedStart time.Time // monotonic: start of the last successful renewal
}

// State returns the current view.
func (l *lease) State() LeaseState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

func (l *lease) setState(s LeaseState) {
	l.mu.Lock()
	changed := l.state != s
	l.state = s
	l.mu.Unlock()
	if changed && l.onChange != nil {
		l.onChange(s)
	}
}

// run acquires, renews and observes the lease until ctx ends. On the way
// out it releases a held lease, so another broker can take over without
// waiting for the TTL.
func (l *lease) run(ctx context.Context) {
	for {
		wait := l.cfg.PollInterval
		if l.State().Held {
			wait = l.cfg.RenewInterval
			l.renew(ctx)
		} else {
			l.observe(ctx)
		}
		if l.State().Held {
			wait = l.cfg.RenewInterval
		}
		select {
		case <-ctx.Done():
			l.release()
			return
		case <-time.After(wait):
		}
	}
}

func (l *lease) read(ctx context.Context) (leaseDoc, string, error) {
	rc, attrs, err := l.store.Get(ctx, LeaseKey)
	if err != nil {
		return leaseDoc{}, "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return leaseDoc{}, "", err
	}
	var d leaseDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return leaseDoc{}, "", fmt.Errorf("controller: lease object is corrupt: %w", err)
	}
	return d, attrs.ETag, nil
}

func (l *lease) write(ctx context.Context, d leaseDoc, opts objstore.PutOptions) (string, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return "", err
	}
	attrs, err := l.store.Put(ctx, LeaseKey, bytes.NewReader(b), int64(len(b)), opts)
	if err != nil {
		return "", err
	}
	return attrs.ETag, nil
}

// observe reads the lease, and takes it when it is absent, released, or
// unrenewed for a TTL on our clock.
func (l *lease) observe(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, l.cfg.TTL)
	defer cancel()
	d, etag, err := l.read(rctx)
	now := time.Now()
	switch {
	case objstore.IsNotFound(err):
		min, merr := l.minEpoch(rctx)
		if merr != nil {
			l.logger.Warn("cannot read the metadata document to create the lease", "err", merr)
			return
		}
		l.take(rctx, leaseDoc{Holder: l.node, Epoch: min + 1, TTLMs: l.cfg.TTL.Milliseconds()},
			objstore.PutOptions{IfNoneMatch: true}, now)
		return
	case err != nil:
		l.logger.Warn("cannot read the controller lease", "err", err)
		return
	}
	if etag != l.seenEtag {
		l.seenEtag, l.seenSince = etag, now
		l.setState(LeaseState{Holder: d.Holder, Epoch: d.Epoch})
	}
	expired := now.Sub(l.seenSince) >= l.cfg.TTL
	// A lease naming this node is left over from before a restart: the
	// node id is ours alone (gossip refuses duplicates), so take it back
	// at once rather than waiting out the TTL.
	if d.Holder >= 0 && d.Holder != l.node && !expired {
		return
	}
	if d.Holder >= 0 {
		l.logger.Warn("controller lease expired; taking over", "holder", d.Holder, "epoch", d.Epoch,
			"unrenewed.for", now.Sub(l.seenSince).Round(time.Millisecond))
	}
	min, merr := l.minEpoch(rctx)
	if merr != nil {
		l.logger.Warn("cannot read the metadata document to take the lease", "err", merr)
		return
	}
	l.take(rctx, leaseDoc{Holder: l.node, Epoch: max(d.Epoch, min) + 1, TTLMs: l.cfg.TTL.Milliseconds()},
		objstore.PutOptions{IfMatch: etag}, now)
}

func (l *lease) take(ctx context.Context, d leaseDoc, opts objstore.PutOptions, started time.Time) {
	etag, err := l.write(ctx, d, opts)
	if objstore.IsPreconditionFailed(err) {
		return // someone else was faster; observe them next time
	}
	if err != nil {
		l.logger.Warn("cannot write the controller lease", "err", err)
		return
	}
	l.etag, l.doc, l.renewedStart = etag, d, started
	l.seenEtag, l.seenSince = etag, started
	l.logger.Info("controller lease acquired", "node", l.node, "epoch", d.Epoch)
	l.setState(LeaseState{Held: true, Holder: l.node, Epoch: d.Epoch})
}

// renew extends a held lease. Losing the compare-and-swap means another
// broker took it; failing to renew for long means stepping down before
// the lease can expire for others, as their clocks measure it.
func (l *lease) renew(ctx context.Context) {
	started := time.Now()
	deadline := l.renewedStart.Add(l.cfg.TTL - l.cfg.RenewInterval)
	rctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	next := l.doc
	next.Counter++
	etag, err := l.write(rctx, next, objstore.PutOptions{IfMatch: l.etag})
	switch {
	case err == nil:
		l.etag, l.doc, l.renewedStart = etag, next, started
		l.seenEtag, l.seenSince = etag, started
		return
	case objstore.IsPreconditionFailed(err):
		l.logger.Warn("controller lease lost to another broker", "epoch", l.doc.Epoch)
	case time.Now().After(deadline) || errors.Is(err, context.DeadlineExceeded):
		l.logger.Warn("controller lease not renewed in time; stepping down", "epoch", l.doc.Epoch, "err", err)
	default:
		l.logger.Warn("controller lease renewal failed; will retry", "err", err)
		return
	}
	l.etag = ""
	l.seenEtag, l.seenSince = "", time.Time{}
	l.setState(LeaseState{Holder: -1, Epoch: l.doc.Epoch})
}

// release gives the lease up on shutdown: the holder becomes -1, which
// others may take at once.
func (l *lease) release() {
	if !l.State().Held {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.RenewInterval)
	defer cancel()
	d := l.doc
	d.Holder = -1
	d.Counter++
	if _, err := l.write(ctx, d, objstore.PutOptions{IfMatch: l.etag}); err != nil {
		l.logger.Warn("releasing the controller lease failed; it will expire", "err", err)
	} else {
		l.logger.Info("controller lease released", "epoch", d.Epoch)
	}
	l.setState(LeaseState{Holder: -1, Epoch: d.Epoch})
}
