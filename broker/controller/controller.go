package controller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/tiercel/tiercel/tiering/objstore"
)

// MetadataKey is where the document lives in the object store.
const MetadataKey = "cluster/metadata"

// Errors, classified by the broker into Kafka codes.
var (
	ErrTopicExists              = errors.New("topic already exists")
	ErrUnknownTopic             = errors.New("unknown topic")
	ErrInvalidPartitions        = errors.New("invalid partition count")
	ErrInvalidReplicationFactor = errors.New("invalid replication factor")
	ErrInvalidReplicaAssignment = errors.New("invalid replica assignment")
	// ErrFenced means a controller with a newer epoch has written the
	// document; this one must stop making decisions.
	ErrFenced = errors.New("controller fenced by a newer epoch")
	// ErrStoreUnavailable means the document could not be read or
	// written; the operation may succeed if retried.
	ErrStoreUnavailable = errors.New("metadata store unavailable")
)

// BrokerInfo is what assignment needs to know about a live broker.
type BrokerInfo struct {
	ID   int32
	Rack string
}

// Config configures a Controller.
type Config struct {
	// Store holds the document and the lease. Every broker of a cluster
	// uses the same.
	Store objstore.ObjectStore
	// NodeID is this broker's id.
	NodeID int32
	// Rack is this broker's rack, used when LiveBrokers is nil.
	Rack string
	// LiveBrokers lists the brokers that can take replicas. Nil means
	// this broker alone.
	LiveBrokers func() []BrokerInfo
	// Lease times the controller lease.
	Lease LeaseConfig
	// RefreshInterval is how often a broker rereads the document even
	// without an announcement, so a lost gossip message costs only latency.
	RefreshInterval time.Duration
	// ProducerIDBlockSize is how many producer ids one CAS claims.
	ProducerIDBlockSize int64
	// MaxCASRetries bounds how often an update is retried after losing
	// a compare-and-swap to a concurrent writer.
	MaxCASRetries int
	// OnRoleChange, if set, runs when this broker becomes or stops being
	// the controller, after the document has been claimed. It runs on the
	// lease goroutine and must not block for long.
	OnRoleChange func(active bool, epoch int64)
	// OnWrite, if set, runs after each document version this controller
	// writes; the broker announces it over gossip.
	OnWrite func(md *Metadata)
	// Logger receives one line per decision.
	Logger *slog.Logger
	// Tracer records a span per metadata write; nil records nothing.
	Tracer trace.Tracer
}

// DefaultConfig returns defaults for everything but Store and NodeID.
func DefaultConfig() Config {
	return Config{Lease: DefaultLeaseConfig(), RefreshInterval: 5 * time.Second,
		ProducerIDBlockSize: 1000, MaxCASRetries: 20, Logger: slog.Default()}
}

// Controller holds this broker's view of the cluster metadata document and,
// while this broker holds the controller lease, writes it.
//
// Lock order: mu, then watchMu, then lease.mu. Watchers and callbacks run
// with none held.
type Controller struct {
	cfg   Config
	lease *lease

	mu     sync.Mutex // serializes updates; guards md, etag, epoch, active
	md     *Metadata
	etag   string
	epoch  int64 // the epoch we claimed the document with, while active
	active bool

	watchMu sync.Mutex
	watches []func(*Metadata)

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// ErrNotController refuses a write on a broker that is not the controller.
var ErrNotController = errors.New("this broker is not the controller")

// Open loads the document (an empty one if it does not exist yet). The
// broker only becomes controller once Start wins the lease.
func Open(ctx context.Context, cfg Config) (*Controller, error) {
	def := DefaultConfig()
	if cfg.Lease.TTL <= 0 {
		cfg.Lease.TTL = def.Lease.TTL
	}
	if cfg.Lease.RenewInterval <= 0 {
		cfg.Lease.RenewInterval = def.Lease.RenewInterval
	}
	if cfg.Lease.PollInterval <= 0 {
		cfg.Lease.PollInterval = def.Lease.PollInterval
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = def.RefreshInterval
	}
	if cfg.ProducerIDBlockSize <= 0 {
		cfg.ProducerIDBlockSize = def.ProducerIDBlockSize
	}
	if cfg.MaxCASRetries <= 0 {
		cfg.MaxCASRetries = def.MaxCASRetries
	}
	if cfg.Logger == nil {
		cfg.Logger = def.Logger
	}
	if cfg.Tracer == nil {
		cfg.Tracer = noop.NewTracerProvider().Tracer("tiercel/controller")
	}
	if cfg.Store == nil {
		return nil, errors.New("controller: no object store")
	}
	if cfg.Lease.RenewInterval >= cfg.Lease.TTL {
		return nil, fmt.Errorf("controller: lease renew interval %v must be shorter than its TTL %v", cfg.Lease.RenewInterval, cfg.Lease.TTL)
	}
	c := &Controller{cfg: cfg}
	md, etag, err := c.load(ctx)
	switch {
	case objstore.IsNotFound(err):
		md, etag = &Metadata{Topics: map[string]*Topic{}}, ""
	case err != nil:
		return nil, err
	}
	c.md, c.etag = md, etag
	c.lease = &lease{
		store: cfg.Store, node: cfg.NodeID, cfg: cfg.Lease, logger: cfg.Logger,
		minEpoch: func(ctx context.Context) (int64, error) {
			md, _, err := c.load(ctx)
			if objstore.IsNotFound(err) {
				return 0, nil
			}
			if err != nil {
				return 0, err
			}
			return md.ControllerEpoch, nil
		},
		onChange: c.onLease,
	}
	return c, nil
}

// Start runs the lease and the document refresh until Close. It makes one
// attempt at the lease before returning, so a lone broker is controller
// when Start returns.
func (c *Controller) Start(ctx context.Context) {
	ctx, c.cancel = context.WithCancel(ctx)
	c.lease.observe(ctx)
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		c.lease.run(ctx)
	}()
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(c.cfg.RefreshInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if !c.Active() {
					if err := c.Refresh(ctx); err != nil && ctx.Err() == nil {
						c.cfg.Logger.Warn("cannot reread the metadata document", "err", err)
					}
				}
			}
		}
	}()
}

// Close stops the lease (releasing it if held) and the refresh loop.
func (c *Controller) Close() {
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
}

// Active reports whether this broker is the controller now.
func (c *Controller) Active() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.active
}

// Lease returns what this broker knows of the lease.
func (c *Controller) Lease() LeaseState { return c.lease.State() }

// onLease reacts to lease changes: winning it claims the document with
// the new epoch, which fences every older controller; losing it stops
// writes at once.
func (c *Controller) onLease(s LeaseState) {
	if s.Held {
		if err := c.claim(context.Background(), s.Epoch); err != nil {
			c.cfg.Logger.Error("won the controller lease but cannot claim the metadata document", "epoch", s.Epoch, "err", err)
			return
		}
		if c.cfg.OnRoleChange != nil {
			c.cfg.OnRoleChange(true, s.Epoch)
		}
		return
	}
	c.mu.Lock()
	was := c.active
	c.active = false
	c.mu.Unlock()
	if was {
		c.cfg.Logger.Warn("no longer the controller", "node", c.cfg.NodeID, "epoch", c.Epoch())
		if c.cfg.OnRoleChange != nil {
			c.cfg.OnRoleChange(false, s.Epoch)
		}
	}
}

// claim writes the document stamped with the new controller epoch,
// creating it if absent.
func (c *Controller) claim(ctx context.Context, epoch int64) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Lease.TTL)
	defer cancel()
	for attempt := 0; ; attempt++ {
		md, etag, err := c.load(ctx)
		switch {
		case objstore.IsNotFound(err):
			md, etag = &Metadata{ClusterID: newClusterID(), Topics: map[string]*Topic{}}, ""
		case err != nil:
			return err
		}
		if md.ControllerEpoch >= epoch {
			return fmt.Errorf("%w: document at epoch %d, lease at %d", ErrFenced, md.ControllerEpoch, epoch)
		}
		next := md.Clone()
		next.ControllerEpoch = epoch
		next.Version++
		tag, err := c.write(ctx, next, etag)
		if objstore.IsPreconditionFailed(err) && attempt < c.cfg.MaxCASRetries {
			continue
		}
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.md, c.etag, c.epoch, c.active = next, tag, epoch, true
		c.mu.Unlock()
		c.cfg.Logger.Info("controller elected", "node", c.cfg.NodeID, "epoch", epoch,
			"cluster", next.ClusterID, "topics", len(next.Topics), "version", next.Version)
		c.notify(next)
		if c.cfg.OnWrite != nil {
			c.cfg.OnWrite(next)
		}
		return nil
	}
}

// Refresh rereads the document and tells watchers of a newer version. A
// version stamped with an older controller epoch than one already seen is
// ignored: it can only come from a fenced controller.
func (c *Controller) Refresh(ctx context.Context) error {
	md, etag, err := c.load(ctx)
	if objstore.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	cur := c.md
	newer := md.Version > cur.Version && md.ControllerEpoch >= cur.ControllerEpoch
	if newer {
		c.md, c.etag = md, etag
		if c.active && md.ControllerEpoch > c.epoch {
			c.active = false
		}
	}
	c.mu.Unlock()
	if newer {
		c.notify(md)
	}
	return nil
}

// newClusterID returns a random id in Kafka's style (22 base64 chars).
func newClusterID() string { return NewTopicID().String() }

func (c *Controller) load(ctx context.Context) (*Metadata, string, error) {
	rc, attrs, err := c.cfg.Store.Get(ctx, MetadataKey)
	if err != nil {
		return nil, "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, "", fmt.Errorf("controller: read metadata: %w", err)
	}
	md, err := decode(b)
	if err != nil {
		return nil, "", err
	}
	return md, attrs.ETag, nil
}

// write stores md conditionally on etag (create-if-absent when empty).
func (c *Controller) write(ctx context.Context, md *Metadata, etag string) (string, error) {
	b, err := encode(md)
	if err != nil {
		return "", err
	}
	opts := objstore.PutOptions{IfMatch: etag, IfNoneMatch: etag == ""}
	attrs, err := c.cfg.Store.Put(ctx, MetadataKey, bytes.NewReader(b), int64(len(b)), opts)
	if err != nil {
		return "", err
	}
	return attrs.ETag, nil
}

// Current returns the latest document this controller knows. It is shared:
// do not modify it.
func (c *Controller) Current() *Metadata {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.md
}

// Epoch is the controller epoch of the document this broker knows.
func (c *Controller) Epoch() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.md.ControllerEpoch
}

// ClusterID is the cluster's id.
func (c *Controller) ClusterID() string { return c.Current().ClusterID }

// NodeID is this broker's id.
func (c *Controller) NodeID() int32 { return c.cfg.NodeID }

// ControllerID is the node holding the lease as this broker last saw it,
// or -1 when unknown.
func (c *Controller) ControllerID() int32 {
	if c.Active() {
		return c.cfg.NodeID
	}
	return c.Lease().Holder
}

// Watch registers fn to be called with every new document version after
// it is written. Calls are serialized and in version order.
func (c *Controller) Watch(fn func(*Metadata)) {
	c.watchMu.Lock()
	c.watches = append(c.watches, fn)
	c.watchMu.Unlock()
}

// Update applies fn to a copy of the document and writes it by
// compare-and-swap, stamped with this controller's epoch. When another
// writer got there first, it rereads and applies fn again, so fn must be
// a pure function of the document. fn returning an error aborts the update.
// Watchers have seen the new version when Update returns.
func (c *Controller) Update(ctx context.Context, fn func(*Metadata) error) (md *Metadata, err error) {
	ctx, span := c.cfg.Tracer.Start(ctx, "controller.update")
	defer func() {
		if err != nil {
			span.RecordError(err)
		} else {
			span.SetAttributes(attribute.Int64("metadata.version", md.Version))
		}
		span.End()
	}()
	c.mu.Lock()
	if !c.active {
		c.mu.Unlock()
		return nil, ErrNotController
	}
	var next *Metadata
	for attempt := 0; ; attempt++ {
		next = c.md.Clone()
		if err := fn(next); err != nil {
			c.mu.Unlock()
			return nil, err
		}
		next.Version = c.md.Version + 1
		next.ControllerEpoch = c.epoch
		tag, err := c.write(ctx, next, c.etag)
		if err == nil {
			c.md, c.etag = next, tag
			break
		}
		if !objstore.IsPreconditionFailed(err) || attempt >= c.cfg.MaxCASRetries {
			c.mu.Unlock()
			return nil, fmt.Errorf("controller: write metadata: %w: %w", ErrStoreUnavailable, err)
		}
		// Someone else wrote. If a newer controller did, we are done.
		md, tag, lerr := c.load(ctx)
		if lerr != nil {
			c.mu.Unlock()
			return nil, fmt.Errorf("controller: reload metadata after lost CAS: %w: %w", ErrStoreUnavailable, lerr)
		}
		if md.ControllerEpoch > c.epoch {
			c.md, c.etag, c.active = md, tag, false
			c.mu.Unlock()
			c.notify(md)
			return nil, fmt.Errorf("%w: epoch %d > ours %d", ErrFenced, md.ControllerEpoch, c.epoch)
		}
		c.md, c.etag = md, tag
	}
	c.mu.Unlock()
	c.notify(next)
	if c.cfg.OnWrite != nil {
		c.cfg.OnWrite(next)
	}
	return next, nil
}

func (c *Controller) notify(md *Metadata) {
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	for _, fn := range c.watches {
		fn(md)
	}
}

// AllocateProducerIDs claims a block of n producer ids (the configured
// block size when n <= 0) and returns its first id and size. Ids in the
// block belong to whoever asked.
func (c *Controller) AllocateProducerIDs(ctx context.Context, n int64) (int64, int64, error) {
	if n <= 0 {
		n = c.cfg.ProducerIDBlockSize
	}
	var first int64
	_, err := c.Update(ctx, func(md *Metadata) error {
		first = md.NextProducerID
		md.NextProducerID += n
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	c.cfg.Logger.Info("producer id block allocated", "first", first, "size", n)
	return first, n, nil
}

// liveBrokers returns the brokers replicas can go to.
func (c *Controller) liveBrokers() []BrokerInfo {
	if c.cfg.LiveBrokers != nil {
		if bs := c.cfg.LiveBrokers(); len(bs) > 0 {
			return bs
		}
	}
	return []BrokerInfo{{ID: c.cfg.NodeID, Rack: c.cfg.Rack}}
}
