package objstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// Mem is an ObjectStore kept in memory, for tests and for a single-process
// broker that needs no durability. Conditional puts have the same semantics
// as on S3, and every put gets a new ETag, even with identical content.
type Mem struct {
	mu      sync.RWMutex
	objects map[string]memObject
	// seq numbers puts; ETags are made from it so they never repeat
	// within a store, not even after a delete and re-create.
	seq    uint64
	closed bool
}

// memObject is one stored version. data is never modified after the put,
// so readers can share it without copying.
type memObject struct {
	data  []byte
	attrs Attrs
}

var _ ObjectStore = (*Mem)(nil)

// NewMem returns an empty in-memory store.
func NewMem() *Mem {
	return &Mem{objects: make(map[string]memObject)}
}

// Put implements ObjectStore. The body is read before the store is locked,
// so a slow body never blocks other callers.
func (m *Mem) Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) (Attrs, error) {
	if err := checkPut(key, size, opts); err != nil {
		return Attrs{}, fmt.Errorf("mem: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Attrs{}, fmt.Errorf("mem: put %q: %w", key, err)
	}
	data, err := readAll(ctx, r, size)
	if err != nil {
		return Attrs{}, fmt.Errorf("mem: put %q: reading body: %w", key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Attrs{}, fmt.Errorf("mem: put %q: %w", key, errClosed)
	}
	cur, exists := m.objects[key]
	if err := checkCondition(key, opts, exists, cur.attrs.ETag); err != nil {
		return Attrs{}, fmt.Errorf("mem: %w", err)
	}
	m.seq++
	attrs := Attrs{
		Size:         size,
		ETag:         fmt.Sprintf("m%016x", m.seq),
		LastModified: time.Now().Round(0),
	}
	m.objects[key] = memObject{data: data, attrs: attrs}
	return attrs, nil
}

// lookup returns the object at key, or an error that wraps ErrNotFound.
func (m *Mem) lookup(ctx context.Context, op Op, key string) (memObject, error) {
	if err := checkKey(key); err != nil {
		return memObject{}, fmt.Errorf("mem: %s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return memObject{}, fmt.Errorf("mem: %s %q: %w", op, key, err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return memObject{}, fmt.Errorf("mem: %s %q: %w", op, key, errClosed)
	}
	obj, ok := m.objects[key]
	if !ok {
		return memObject{}, fmt.Errorf("mem: %s %q: %w", op, key, ErrNotFound)
	}
	return obj, nil
}

// Get implements ObjectStore. Reads from the returned body fail once ctx is
// done, as they do on S3.
func (m *Mem) Get(ctx context.Context, key string) (io.ReadCloser, Attrs, error) {
	obj, err := m.lookup(ctx, OpGet, key)
	if err != nil {
		return nil, Attrs{}, err
	}
	return io.NopCloser(ctxReader{ctx: ctx, r: bytes.NewReader(obj.data)}), obj.attrs, nil
}

// GetRange implements ObjectStore.
func (m *Mem) GetRange(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if err := checkRange(key, off, length); err != nil {
		return nil, fmt.Errorf("mem: %w", err)
	}
	obj, err := m.lookup(ctx, OpGetRange, key)
	if err != nil {
		return nil, err
	}
	size := int64(len(obj.data))
	start := min(off, size)
	end := start + min(length, size-start)
	return io.NopCloser(ctxReader{ctx: ctx, r: bytes.NewReader(obj.data[start:end])}), nil
}

// Attributes implements ObjectStore.
func (m *Mem) Attributes(ctx context.Context, key string) (Attrs, error) {
	obj, err := m.lookup(ctx, OpAttributes, key)
	if err != nil {
		return Attrs{}, err
	}
	return obj.attrs, nil
}

// Delete implements ObjectStore.
func (m *Mem) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("mem: delete: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mem: delete %q: %w", key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("mem: delete %q: %w", key, errClosed)
	}
	delete(m.objects, key)
	return nil
}

// List implements ObjectStore. It lists a snapshot taken when it starts,
// and calls fn without holding the store's lock, so fn may use the store.
func (m *Mem) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mem: list %q: %w", prefix, err)
	}
	m.mu.RLock()
	if m.closed {
		m.mu.RUnlock()
		return fmt.Errorf("mem: list %q: %w", prefix, errClosed)
	}
	var infos []ObjectInfo
	for k, obj := range m.objects {
		if strings.HasPrefix(k, prefix) {
			infos = append(infos, ObjectInfo{Key: k, Attrs: obj.attrs})
		}
	}
	m.mu.RUnlock()
	sort.Slice(infos, func(i, j int) bool { return infos[i].Key < infos[j].Key })
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("mem: list %q: %w", prefix, err)
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// Close implements ObjectStore. It drops the contents; later calls fail.
func (m *Mem) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.objects = nil
	return nil
}
