// Package objstore is the narrow interface Tiercel needs from object
// storage, and its implementations: S3 (AWS or MinIO), a local directory,
// and memory. Metrics and fault injection are wrappers around the
// interface, so every implementation gets them the same way.
//
// Beyond what a plain blob store offers, the interface has conditional puts:
// create-if-absent (If-None-Match: *) and compare-and-swap (If-Match: etag).
// The controller lease and the cluster metadata document are built on them.
package objstore

import (
	"context"
	"errors"
	"io"
	"time"
)

// Errors every implementation returns, wrapped, so callers can classify
// with errors.Is.
var (
	// ErrNotFound means no object exists at the key.
	ErrNotFound = errors.New("object not found")
	// ErrPreconditionFailed means a conditional put lost: the object
	// existed for IfNoneMatch, or its ETag differed for IfMatch.
	ErrPreconditionFailed = errors.New("precondition failed")
)

// IsNotFound reports whether err means the object does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsPreconditionFailed reports whether err is a lost conditional put.
func IsPreconditionFailed(err error) bool { return errors.Is(err, ErrPreconditionFailed) }

// Attrs describes a stored object.
type Attrs struct {
	Size         int64
	ETag         string // opaque; compare only for equality
	LastModified time.Time
}

// ObjectInfo is one entry of a listing.
type ObjectInfo struct {
	Key string
	Attrs
}

// PutOptions makes a put conditional. At most one field may be set.
type PutOptions struct {
	// IfNoneMatch makes the put succeed only if no object exists at the
	// key (HTTP If-None-Match: *).
	IfNoneMatch bool
	// IfMatch makes the put succeed only if the current object's ETag
	// equals it (HTTP If-Match).
	IfMatch string
}

// ObjectStore is a flat key space of immutable-once-written blobs.
// Keys use '/' as a separator. Implementations are safe for concurrent use.
type ObjectStore interface {
	// Put stores size bytes from r at key, replacing any object unless
	// opts makes the put conditional. It returns the new object's attributes.
	Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) (Attrs, error)
	// Get opens the whole object.
	Get(ctx context.Context, key string) (io.ReadCloser, Attrs, error)
	// GetRange opens length bytes from off. A range past the end is cut
	// at the end of the object.
	GetRange(ctx context.Context, key string, off, length int64) (io.ReadCloser, error)
	// Attributes returns the object's attributes without its body.
	Attributes(ctx context.Context, key string) (Attrs, error)
	// Delete removes the object. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List calls fn for every object whose key starts with prefix, in
	// lexical key order. fn's error stops the listing and is returned.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
	// Close releases the store's resources.
	Close() error
}
