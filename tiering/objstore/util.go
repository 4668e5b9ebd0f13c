package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Op names an ObjectStore operation. The metrics and fault wrappers use it
// as the value of their "operation" attribute and as a configuration key.
type Op string

// The operations of ObjectStore.
const (
	OpPut        Op = "put"
	OpGet        Op = "get"
	OpGetRange   Op = "get_range"
	OpAttributes Op = "attributes"
	OpDelete     Op = "delete"
	OpList       Op = "list"
)

// Ops lists every Op, for callers that configure or report all of them.
func Ops() []Op {
	return []Op{OpPut, OpGet, OpGetRange, OpAttributes, OpDelete, OpList}
}

// maxKeyLen is S3's limit. Every implementation enforces it so a key that
// works on the local store also works on S3.
const maxKeyLen = 1024

var errClosed = errors.New("object store is closed")

// checkKey applies the rules every implementation shares.
func checkKey(key string) error {
	switch {
	case key == "":
		return errors.New("empty key")
	case len(key) > maxKeyLen:
		return fmt.Errorf("key is %d bytes, longer than %d", len(key), maxKeyLen)
	case !utf8.ValidString(key):
		return fmt.Errorf("key %q is not valid UTF-8", key)
	}
	return nil
}

// checkPut validates the arguments of Put before any body byte is read.
func checkPut(key string, size int64, opts PutOptions) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("put %q: negative size %d", key, size)
	}
	if opts.IfNoneMatch && opts.IfMatch != "" {
		return fmt.Errorf("put %q: IfNoneMatch and IfMatch are mutually exclusive", key)
	}
	return nil
}

// checkRange validates GetRange's arguments.
func checkRange(key string, off, length int64) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if off < 0 || length < 0 {
		return fmt.Errorf("get range %q: negative offset %d or length %d", key, off, length)
	}
	return nil
}

// checkCondition decides a conditional put against the current object.
// exists and etag describe the object at key now. An IfMatch on a missing
// key is a lost precondition, and it also wraps ErrNotFound so the caller
// can tell "gone" from "changed".
func checkCondition(key string, opts PutOptions, exists bool, etag string) error {
	switch {
	case opts.IfNoneMatch && exists:
		return fmt.Errorf("put %q if-none-match: object exists: %w", key, ErrPreconditionFailed)
	case opts.IfMatch != "" && !exists:
		return fmt.Errorf("put %q if-match %s: %w: %w", key, opts.IfMatch, ErrPreconditionFailed, ErrNotFound)
	case opts.IfMatch != "" && etag != opts.IfMatch:
		return fmt.Errorf("put %q if-match %s: etag is %s: %w", key, opts.IfMatch, etag, ErrPreconditionFailed)
	}
	return nil
}

// ctxReader fails reads once ctx is done. Local stores use it so that a
// slow body (a pipe, a throttled producer) cannot hold a cancelled call,
// and so that their readers stop with the context as S3 bodies do.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// readCloser pairs a reader with the Close of what it reads from.
type readCloser struct {
	io.Reader
	io.Closer
}

// errShortBody and errLongBody report a body that disagrees with the size
// passed to Put. Storing it anyway would silently corrupt the object.
var (
	errShortBody = errors.New("body is shorter than the declared size")
	errLongBody  = errors.New("body is longer than the declared size")
)

// exactReader yields exactly size bytes of r: it fails if r ends early, and
// once size bytes are read it checks that r has nothing more.
type exactReader struct {
	r    io.Reader
	left int64
}

func newExactReader(ctx context.Context, r io.Reader, size int64) *exactReader {
	return &exactReader{r: ctxReader{ctx: ctx, r: r}, left: size}
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left == 0 {
		var one [1]byte
		for {
			n, err := e.r.Read(one[:])
			if n > 0 {
				return 0, errLongBody
			}
			if err == io.EOF {
				return 0, io.EOF
			}
			if err != nil {
				return 0, err
			}
		}
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF {
		if e.left > 0 {
			return n, errShortBody
		}
		err = nil
	}
	return n, err
}

// readAll reads exactly size bytes from r, honouring ctx.
func readAll(ctx context.Context, r io.Reader, size int64) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(int(size))
	if _, err := buf.ReadFrom(newExactReader(ctx, r, size)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
