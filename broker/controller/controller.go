package controller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

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
	// Store holds the document. Every broker of a cluster uses the same.
	Store objstore.ObjectStore
	// NodeID is this broker's id.
	NodeID int32
	// Rack is this broker's rack, used when LiveBrokers is nil.
	Rack string
	// LiveBrokers lists the brokers that can take replicas. Nil means
	// this broker alone.
	LiveBrokers func() []BrokerInfo
	// ProducerIDBlockSize is how many producer ids one CAS claims.
	ProducerIDBlockSize int64
	// MaxCASRetries bounds how often an update is retried after losing
	// a compare-and-swap to a concurrent writer.
	MaxCASRetries int
	// Logger receives one line per decision.
	Logger *slog.Logger
	// Tracer records a span per metadata write; nil records nothing.
	Tracer trace.Tracer
}

// DefaultConfig returns defaults for everything but Store and NodeID.
func DefaultConfig() Config {
	return Config{ProducerIDBlockSize: 1000, MaxCASRetries: 20, Logger: slog.Default()}
}

// Controller reads and writes the cluster metadata document.
//
// Lock order: mu, then watchMu. Watchers run with neither held.
type Controller struct {
	cfg Config

	mu      sync.Mutex // serializes updates; guards md, etag, epoch
	md      *Metadata
	etag    string
	epoch   int64
	watchMu sync.Mutex
	watches []func(*Metadata)
}

// Open loads the document, creating it if absent, and claims the
// controller role by bumping the controller epoch. With one broker this
// is all the election there is; the lease comes with the cluster.
func Open(ctx context.Context, cfg Config) (*Controller, error) {
	def := DefaultConfig()
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
	c := &Controller{cfg: cfg}
	for attempt := 0; ; attempt++ {
		md, etag, err := c.load(ctx)
		switch {
		case objstore.IsNotFound(err):
			md = &Metadata{ClusterID: newClusterID(), Topics: map[string]*Topic{}, NextProducerID: 0}
			etag = ""
		case err != nil:
			return nil, err
		}
		next := md.Clone()
		next.ControllerEpoch++
		next.Version++
		newTag, err := c.write(ctx, next, etag)
		if objstore.IsPreconditionFailed(err) && attempt < cfg.MaxCASRetries {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("controller: claim epoch: %w", err)
		}
		c.md, c.etag, c.epoch = next, newTag, next.ControllerEpoch
		cfg.Logger.Info("controller elected", "node", cfg.NodeID, "epoch", c.epoch,
			"cluster", next.ClusterID, "topics", len(next.Topics), "version", next.Version)
		return c, nil
	}
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

// Epoch is this controller's epoch.
func (c *Controller) Epoch() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// ClusterID is the cluster's id.
func (c *Controller) ClusterID() string { return c.Current().ClusterID }

// NodeID is this broker's id.
func (c *Controller) NodeID() int32 { return c.cfg.NodeID }

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
			c.md, c.etag = md, tag
			c.mu.Unlock()
			c.notify(md)
			return nil, fmt.Errorf("%w: epoch %d > ours %d", ErrFenced, md.ControllerEpoch, c.epoch)
		}
		c.md, c.etag = md, tag
	}
	c.mu.Unlock()
	c.notify(next)
	return next, nil
}

func (c *Controller) notify(md *Metadata) {
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	for _, fn := range c.watches {
		fn(md)
	}
}

// AllocateProducerIDs claims a block of n producer ids and returns the
// first. Ids in the block are this broker's to hand out.
func (c *Controller) AllocateProducerIDs(ctx context.Context, n int64) (int64, error) {
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
		return 0, err
	}
	c.cfg.Logger.Info("producer id block allocated", "first", first, "size", n)
	return first, nil
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
