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
// with errors.Is. Any other error (a network failure, an outage, an
// injected fault) is transient as far as the interface knows: the call
// may be retried.
var (
	// ErrNotFound means no object exists at the key.
	ErrNotFound = errors.New("object not found")
	// ErrPreconditionFailed means a conditional put lost: the object
	// existed for IfNoneMatch, or its ETag differed for IfMatch. The
	// put was certainly not applied. For IfMatch on a missing key the
	// error wraps ErrNotFound as well.
	ErrPreconditionFailed = errors.New("precondition failed")
)

// IsNotFound reports whether err means the object does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsPreconditionFailed reports whether err is a lost conditional put.
func IsPreconditionFailed(err error) bool { return errors.Is(err, ErrPreconditionFailed) }

// Attrs describes a stored object.
type Attrs struct {
	// Size is the object's length in bytes.
	Size int64
	// ETag identifies the object's current version. It is opaque (on S3
	// it includes the quotes); compare it only for equality and pass it
	// back unchanged in PutOptions.IfMatch.
	//
	// A new ETag after every put is guaranteed only by the local stores
	// (FS, Mem). On S3 the ETag of a single-part object is the MD5 of
	// its content, so a put of identical bytes keeps the ETag. A
	// document updated by compare-and-swap (the lease, the cluster
	// metadata) must therefore change its bytes on every write, with a
	// counter or a nonce, or an observer watching the ETag cannot tell
	// a renewal from silence.
	ETag string
	// LastModified is when the version was written. S3 keeps whole
	// seconds; the attributes Put returns carry the server's response
	// time there instead of the stored one.
	LastModified time.Time
}

// ObjectInfo is one entry of a listing.
type ObjectInfo struct {
	// Key is relative to the store, as passed to Put.
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
	// size must be exact: a body that ends early or runs on is an error
	// and nothing is stored. Readers never see a partly written object.
	//
	// A conditional put that fails with ErrPreconditionFailed was not
	// applied. One that fails with any other error may or may not have
	// been applied (the request may have reached the server before the
	// connection broke): the caller must read the object again to find
	// out, and should recognise its own write by content, not by ETag.
	Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) (Attrs, error)
	// Get opens the whole object. The body must be closed, and reading
	// it fails once ctx is done.
	Get(ctx context.Context, key string) (io.ReadCloser, Attrs, error)
	// GetRange opens length bytes from off. A range past the end is cut
	// at the end of the object; one starting at or past the end is
	// empty. A missing key is ErrNotFound even for length 0.
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
