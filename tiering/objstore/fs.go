package objstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Names under the root that start with fsReserved belong to the store
// itself (the lock file, temporary files); they are never keys and List
// never shows them.
const (
	fsReserved    = ".tiercel-"
	fsLockName    = fsReserved + "lock"
	fsTempPattern = fsReserved + "tmp-*"
)

// FS is an ObjectStore in a local directory: one file per key, at the
// key's path under the root. Several processes may share one directory,
// as two brokers on one machine do with a file:// store: conditional puts
// stay correct across them because every change to the tree happens under
// an flock on a lock file in the root.
//
// A put writes a temporary file next to its target, syncs it, and renames
// it into place, so a reader sees the old object or the new one, never a
// mix, and a crash leaves at worst a stray temporary file. An open object
// is never changed in place, so a reader keeps reading the version it
// opened even if the key is overwritten meanwhile.
//
// ETags are derived from the file's device, inode, size and modification
// time. Under the lock, each put sets its file's modification time past
// the one of the version it replaces, so the ETag changes on every put,
// even one with identical content (a lease renewal), and an old ETag can
// never match a later version.
//
// Unlike S3, a key cannot be both an object and a "directory" of others:
// with "a/b" stored, putting "a/b/c" fails, and the other way round. Keys
// may not contain empty, "." or ".." segments, start with '/', or have a
// segment starting with ".tiercel-".
type FS struct {
	root   string
	lockFD int
	lockF  *os.File
	// sem is the in-process half of the write lock: an flock is held by
	// an open file description, which all goroutines share, so it only
	// excludes other processes. A channel rather than a mutex lets
	// waiters give up when their context ends.
	sem    chan struct{}
	closed atomic.Bool
}

var _ ObjectStore = (*FS)(nil)

// NewFS opens (creating it if needed) a store rooted at the directory root.
func NewFS(root string) (*FS, error) {
	if root == "" {
		return nil, errors.New("fs: empty root directory")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("fs: root %q: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("fs: creating root: %w", err)
	}
	lf, err := os.OpenFile(filepath.Join(abs, fsLockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("fs: opening lock file: %w", err)
	}
	return &FS{root: abs, lockF: lf, lockFD: int(lf.Fd()), sem: make(chan struct{}, 1)}, nil
}

// Root returns the store's absolute root directory.
func (f *FS) Root() string { return f.root }

// path maps a key to its file, rejecting keys that would escape the root
// or collide with the store's own files.
func (f *FS) path(key string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	if err := checkFSPath(key, false); err != nil {
		return "", err
	}
	return filepath.Join(f.root, filepath.FromSlash(key)), nil
}

// checkFSPath checks the segments of a key, or of the directory part of a
// list prefix (where the trailing '/' is allowed).
func checkFSPath(key string, dir bool) error {
	if strings.HasPrefix(key, "/") {
		return fmt.Errorf("key %q is absolute; keys are relative to the store root", key)
	}
	if strings.ContainsRune(key, 0) {
		return fmt.Errorf("key %q contains a NUL byte", key)
	}
	segs := strings.Split(key, "/")
	if dir {
		segs = segs[:len(segs)-1]
	}
	for _, s := range segs {
		switch {
		case s == "":
			return fmt.Errorf("key %q has an empty segment (a doubled or trailing '/')", key)
		case s == "." || s == "..":
			return fmt.Errorf("key %q has a %q segment; keys may not walk the directory tree", key, s)
		case strings.HasPrefix(s, fsReserved):
			return fmt.Errorf("key %q has a segment starting with %q, which the store reserves", key, fsReserved)
		}
	}
	return nil
}

// lock takes the store's write lock: first the in-process semaphore, then
// the flock that excludes other processes. It polls the flock rather than
// blocking in the kernel so that a cancelled context is noticed.
func (f *FS) lock(ctx context.Context) (unlock func(), err error) {
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if f.closed.Load() {
		<-f.sem
		return nil, errClosed
	}
	delay := 200 * time.Microsecond
	for {
		err := unix.Flock(f.lockFD, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() {
				// Unlock fails only on a bad descriptor, which Close
				// cannot cause while we hold sem.
				_ = unix.Flock(f.lockFD, unix.LOCK_UN)
				<-f.sem
			}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			<-f.sem
			return nil, os.NewSyscallError("flock", err)
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			<-f.sem
			return nil, ctx.Err()
		}
		delay = min(delay*2, 10*time.Millisecond)
	}
}

// fsAttrs builds an object's attributes from its file's metadata.
func fsAttrs(fi fs.FileInfo) Attrs {
	var dev, ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		dev, ino = uint64(st.Dev), st.Ino
	}
	var b [32]byte
	binary.LittleEndian.PutUint64(b[0:], dev)
	binary.LittleEndian.PutUint64(b[8:], ino)
	binary.LittleEndian.PutUint64(b[16:], uint64(fi.Size()))
	binary.LittleEndian.PutUint64(b[24:], uint64(fi.ModTime().UnixNano()))
	sum := sha256.Sum256(b[:])
	return Attrs{
		Size:         fi.Size(),
		ETag:         hex.EncodeToString(sum[:16]),
		LastModified: fi.ModTime(),
	}
}

// isMissing reports whether err means that nothing is at a path: ENOTDIR
// comes back when a parent "directory" of the key is itself an object.
func isMissing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// current stats the object at path; exists is false if there is none.
func (f *FS) current(key, path string) (fi fs.FileInfo, exists bool, err error) {
	fi, err = os.Lstat(path)
	switch {
	case isMissing(err):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	case fi.IsDir():
		return nil, false, fmt.Errorf("key %q is a directory of other objects", key)
	case !fi.Mode().IsRegular():
		return nil, false, fmt.Errorf("key %q is not a regular file (mode %v)", key, fi.Mode())
	}
	return fi, true, nil
}

// createTemp creates a temporary file in dir, creating dir if needed. A
// concurrent Delete may remove dir as empty between the two steps, hence
// the retries.
func (f *FS) createTemp(key, dir string) (*os.File, error) {
	var err error
	for range 5 {
		if err = os.MkdirAll(dir, 0o755); err != nil {
			if errors.Is(err, syscall.ENOTDIR) {
				return nil, fmt.Errorf("key %q is under a path that is an object: %w", key, err)
			}
			return nil, err
		}
		var tmp *os.File
		tmp, err = os.CreateTemp(dir, fsTempPattern)
		if err == nil {
			return tmp, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return nil, err
}

// Put implements ObjectStore. The body is written and synced before the
// lock is taken; the lock covers only the condition check, the ETag stamp
// and the rename, so a large upload does not stall other writers.
func (f *FS) Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) (attrs Attrs, err error) {
	if err := checkPut(key, size, opts); err != nil {
		return Attrs{}, fmt.Errorf("fs: %w", err)
	}
	path, err := f.path(key)
	if err != nil {
		return Attrs{}, fmt.Errorf("fs: put: %w", err)
	}
	defer func() {
		switch {
		case err == nil:
		case IsPreconditionFailed(err):
			err = fmt.Errorf("fs: %w", err) // it names the key already
		default:
			err = fmt.Errorf("fs: put %q: %w", key, err)
		}
	}()
	if err := ctx.Err(); err != nil {
		return Attrs{}, err
	}
	if f.closed.Load() {
		return Attrs{}, errClosed
	}
	dir := filepath.Dir(path)
	tmp, err := f.createTemp(key, dir)
	if err != nil {
		return Attrs{}, err
	}
	tmpName := tmp.Name()
	renamed := false
	defer func() {
		if !renamed {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()
	if _, err := io.Copy(tmp, newExactReader(ctx, r, size)); err != nil {
		return Attrs{}, fmt.Errorf("writing body: %w", err)
	}
	// CreateTemp makes the file private; objects are as readable as
	// any other file the broker writes.
	if err := tmp.Chmod(0o644); err != nil {
		return Attrs{}, err
	}
	if err := tmp.Sync(); err != nil {
		return Attrs{}, err
	}
	if err := tmp.Close(); err != nil {
		return Attrs{}, err
	}

	unlock, err := f.lock(ctx)
	if err != nil {
		return Attrs{}, err
	}
	defer unlock()
	cur, exists, err := f.current(key, path)
	if err != nil {
		return Attrs{}, err
	}
	var curTag string
	if exists {
		curTag = fsAttrs(cur).ETag
	}
	if err := checkCondition(key, opts, exists, curTag); err != nil {
		return Attrs{}, err
	}
	fi, err := stampAfter(tmpName, cur)
	if err != nil {
		return Attrs{}, err
	}
	if err := os.Rename(tmpName, path); err != nil {
		return Attrs{}, err
	}
	renamed = true
	if err := syncDir(dir); err != nil {
		return Attrs{}, err
	}
	return fsAttrs(fi), nil
}

// stampAfter sets the modification time of the file at name to now, or
// just past prev's if the clock has not moved past it (puts in quick
// succession, a clock step back), and returns the file's new metadata.
// Filesystems that store coarse times get further steps.
func stampAfter(name string, prev fs.FileInfo) (fs.FileInfo, error) {
	t := time.Now()
	if prev != nil && !t.After(prev.ModTime()) {
		t = prev.ModTime().Add(time.Microsecond)
	}
	step := time.Second
	for range 4 {
		ts := unix.NsecToTimespec(t.UnixNano())
		if err := unix.UtimesNano(name, []unix.Timespec{ts, ts}); err != nil {
			return nil, os.NewSyscallError("utimensat", err)
		}
		fi, err := os.Lstat(name)
		if err != nil {
			return nil, err
		}
		if prev == nil || fi.ModTime().After(prev.ModTime()) {
			return fi, nil
		}
		t = prev.ModTime().Add(step)
		step *= 2
	}
	return nil, fmt.Errorf("cannot give %s a modification time after %v", name, prev.ModTime())
}

// syncDir makes a rename or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// open opens the object at key for reading.
func (f *FS) open(ctx context.Context, op Op, key string) (*os.File, Attrs, error) {
	path, err := f.path(key)
	if err != nil {
		return nil, Attrs{}, fmt.Errorf("fs: %s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, Attrs{}, fmt.Errorf("fs: %s %q: %w", op, key, err)
	}
	if f.closed.Load() {
		return nil, Attrs{}, fmt.Errorf("fs: %s %q: %w", op, key, errClosed)
	}
	file, err := os.Open(path)
	if isMissing(err) {
		return nil, Attrs{}, fmt.Errorf("fs: %s %q: %w", op, key, ErrNotFound)
	}
	if err != nil {
		return nil, Attrs{}, fmt.Errorf("fs: %s %q: %w", op, key, err)
	}
	fi, err := file.Stat()
	if err != nil {
		_ = file.Close()
		return nil, Attrs{}, fmt.Errorf("fs: %s %q: %w", op, key, err)
	}
	if !fi.Mode().IsRegular() {
		_ = file.Close()
		// A directory holds other objects; it is not one itself.
		return nil, Attrs{}, fmt.Errorf("fs: %s %q: %w", op, key, ErrNotFound)
	}
	return file, fsAttrs(fi), nil
}

// Get implements ObjectStore. Reads from the body fail once ctx is done.
func (f *FS) Get(ctx context.Context, key string) (io.ReadCloser, Attrs, error) {
	file, attrs, err := f.open(ctx, OpGet, key)
	if err != nil {
		return nil, Attrs{}, err
	}
	return readCloser{Reader: ctxReader{ctx: ctx, r: file}, Closer: file}, attrs, nil
}

// GetRange implements ObjectStore.
func (f *FS) GetRange(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if err := checkRange(key, off, length); err != nil {
		return nil, fmt.Errorf("fs: %w", err)
	}
	file, attrs, err := f.open(ctx, OpGetRange, key)
	if err != nil {
		return nil, err
	}
	start := min(off, attrs.Size)
	n := min(length, attrs.Size-start)
	return readCloser{Reader: ctxReader{ctx: ctx, r: io.NewSectionReader(file, start, n)}, Closer: file}, nil
}

// Attributes implements ObjectStore.
func (f *FS) Attributes(ctx context.Context, key string) (Attrs, error) {
	path, err := f.path(key)
	if err != nil {
		return Attrs{}, fmt.Errorf("fs: attributes: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Attrs{}, fmt.Errorf("fs: attributes %q: %w", key, err)
	}
	if f.closed.Load() {
		return Attrs{}, fmt.Errorf("fs: attributes %q: %w", key, errClosed)
	}
	fi, err := os.Stat(path)
	if isMissing(err) || (err == nil && !fi.Mode().IsRegular()) {
		return Attrs{}, fmt.Errorf("fs: attributes %q: %w", key, ErrNotFound)
	}
	if err != nil {
		return Attrs{}, fmt.Errorf("fs: attributes %q: %w", key, err)
	}
	return fsAttrs(fi), nil
}

// Delete implements ObjectStore. It also removes directories the delete
// leaves empty, so deleted topics do not leave a tree of empty folders.
func (f *FS) Delete(ctx context.Context, key string) (err error) {
	path, err := f.path(key)
	if err != nil {
		return fmt.Errorf("fs: delete: %w", err)
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("fs: delete %q: %w", key, err)
		}
	}()
	if err := ctx.Err(); err != nil {
		return err
	}
	// Deletes take the lock too: otherwise a delete could fall between a
	// conditional put's check and its rename, and the put would succeed
	// on an object that no longer existed.
	unlock, err := f.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	fi, err := os.Lstat(path)
	if isMissing(err) || (err == nil && fi.IsDir()) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !isMissing(err) {
		return err
	}
	dir := filepath.Dir(path)
	if err := syncDir(dir); err != nil {
		return err
	}
	for d := dir; d != f.root && strings.HasPrefix(d, f.root); d = filepath.Dir(d) {
		// Rmdir fails on a non-empty directory, which ends the walk; a
		// put's temporary file keeps its directory alive this way too.
		if unix.Rmdir(d) != nil {
			break
		}
	}
	return nil
}

// List implements ObjectStore. It walks the tree below the prefix's last
// '/', visiting each directory's entries in an order that yields keys in
// lexical order: a directory "d" sorts as "d/", because every key under it
// starts with that.
func (f *FS) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	if err := checkFSPath(prefix, true); prefix != "" && err != nil {
		return fmt.Errorf("fs: list: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fs: list %q: %w", prefix, err)
	}
	if f.closed.Load() {
		return fmt.Errorf("fs: list %q: %w", prefix, errClosed)
	}
	base := prefix[:strings.LastIndexByte(prefix, '/')+1]
	l := lister{ctx: ctx, prefix: prefix, fn: fn}
	err := l.walk(filepath.Join(f.root, filepath.FromSlash(base)), base)
	if err != nil && l.fnErr {
		return err
	}
	if err != nil {
		return fmt.Errorf("fs: list %q: %w", prefix, err)
	}
	return nil
}

// lister carries one List's state through the walk.
type lister struct {
	ctx    context.Context
	prefix string
	fn     func(ObjectInfo) error
	fnErr  bool // the error came from fn and is returned unwrapped
}

type listEntry struct {
	sortKey string
	name    string
	dir     bool
}

func (l *lister) walk(dir, keyPrefix string) error {
	des, err := os.ReadDir(dir)
	if isMissing(err) {
		return nil
	}
	if err != nil {
		return err
	}
	entries := make([]listEntry, 0, len(des))
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, fsReserved) {
			continue
		}
		e := listEntry{sortKey: name, name: name, dir: de.IsDir()}
		if e.dir {
			e.sortKey += "/"
		}
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].sortKey < entries[j].sortKey })
	for _, e := range entries {
		if err := l.ctx.Err(); err != nil {
			return err
		}
		key := keyPrefix + e.sortKey
		if e.dir {
			// Descend only if keys below can match the prefix.
			if strings.HasPrefix(key, l.prefix) || strings.HasPrefix(l.prefix, key) {
				if err := l.walk(filepath.Join(dir, e.name), key); err != nil {
					return err
				}
			}
			continue
		}
		if !strings.HasPrefix(key, l.prefix) {
			continue
		}
		fi, err := os.Lstat(filepath.Join(dir, e.name))
		if isMissing(err) {
			continue // deleted since ReadDir
		}
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		if err := l.fn(ObjectInfo{Key: key, Attrs: fsAttrs(fi)}); err != nil {
			l.fnErr = true
			return err
		}
	}
	return nil
}

// Close implements ObjectStore. It waits for a write in progress in this
// process to release the lock, then closes the lock file.
func (f *FS) Close() error {
	f.sem <- struct{}{}
	defer func() { <-f.sem }()
	if f.closed.Swap(true) {
		return nil
	}
	if err := f.lockF.Close(); err != nil {
		return fmt.Errorf("fs: close: %w", err)
	}
	return nil
}
