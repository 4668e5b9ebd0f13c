package log

import (
	"io/fs"
	"os"
	"strings"
	"sync"
	"syscall"
)

// Op is a file operation that FaultFS can make fail.
type Op uint8

// The operations FaultFS can fail.
const (
	OpWrite    Op = iota + 1 // File.WriteAt
	OpSync                   // File.Sync
	OpTruncate               // File.Truncate
	OpRead                   // File.ReadAt
	OpCreate                 // FS.OpenFile with O_CREATE
	OpRename                 // FS.Rename
	OpRemove                 // FS.Remove and FS.RemoveAll
	OpSyncDir                // FS.SyncDir
)

// String names the operation, as in the errors FaultFS returns.
func (o Op) String() string {
	switch o {
	case OpWrite:
		return "write"
	case OpSync:
		return "sync"
	case OpTruncate:
		return "truncate"
	case OpRead:
		return "read"
	case OpCreate:
		return "create"
	case OpRename:
		return "rename"
	case OpRemove:
		return "remove"
	case OpSyncDir:
		return "syncdir"
	}
	return "unknown"
}

// Fault describes one injected failure.
type Fault struct {
	Op Op
	// PathContains restricts the fault to paths containing this substring
	// ("" matches every path), e.g. ".log" or ".index".
	PathContains string
	// Nth is which matching operation fails, counted from when the fault was
	// injected: 1 (or 0) is the next one.
	Nth int
	// Err is the error returned; nil means EIO. Use syscall.ENOSPC for a
	// full disk.
	Err error
	// ShortWrite, for OpWrite, is how many bytes really reach the file
	// before the error; -1 means half of the buffer. A torn write.
	ShortWrite int
	// Sticky keeps the fault firing on every later matching operation.
	Sticky bool
}

// FaultFS wraps an FS and fails chosen operations, in the manner of
// pebble's errorfs. It is safe for concurrent use.
type FaultFS struct {
	inner FS

	mu     sync.Mutex
	faults []*faultState
	fired  int
}

type faultState struct {
	Fault
	seen int
	done bool
}

// NewFaultFS wraps inner (nil means OSFS).
func NewFaultFS(inner FS) *FaultFS {
	if inner == nil {
		inner = OSFS()
	}
	return &FaultFS{inner: inner}
}

// Inject arms a fault.
func (f *FaultFS) Inject(ft Fault) {
	if ft.Nth <= 0 {
		ft.Nth = 1
	}
	if ft.Err == nil {
		ft.Err = syscall.EIO
	}
	f.mu.Lock()
	f.faults = append(f.faults, &faultState{Fault: ft})
	f.mu.Unlock()
}

// Reset disarms every fault.
func (f *FaultFS) Reset() {
	f.mu.Lock()
	f.faults = nil
	f.mu.Unlock()
}

// Fired reports how many injected failures have been returned.
func (f *FaultFS) Fired() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fired
}

// check reports the fault to apply to op on path, if any.
func (f *FaultFS) check(op Op, path string) *Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.faults {
		if s.Op != op || s.done || !strings.Contains(path, s.PathContains) {
			continue
		}
		s.seen++
		if s.seen < s.Nth {
			continue
		}
		if !s.Sticky {
			s.done = true
		}
		f.fired++
		ft := s.Fault
		return &ft
	}
	return nil
}

func pathErr(op Op, path string, err error) error {
	return &fs.PathError{Op: op.String(), Path: path, Err: err}
}

// OpenFile implements FS.
func (f *FaultFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	if flag&os.O_CREATE != 0 {
		if ft := f.check(OpCreate, name); ft != nil {
			return nil, pathErr(OpCreate, name, ft.Err)
		}
	}
	inner, err := f.inner.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: inner, fs: f, name: name}, nil
}

// Rename implements FS.
func (f *FaultFS) Rename(oldpath, newpath string) error {
	if ft := f.check(OpRename, oldpath); ft != nil {
		return pathErr(OpRename, oldpath, ft.Err)
	}
	return f.inner.Rename(oldpath, newpath)
}

// Remove implements FS.
func (f *FaultFS) Remove(name string) error {
	if ft := f.check(OpRemove, name); ft != nil {
		return pathErr(OpRemove, name, ft.Err)
	}
	return f.inner.Remove(name)
}

// RemoveAll implements FS.
func (f *FaultFS) RemoveAll(path string) error {
	if ft := f.check(OpRemove, path); ft != nil {
		return pathErr(OpRemove, path, ft.Err)
	}
	return f.inner.RemoveAll(path)
}

// MkdirAll implements FS.
func (f *FaultFS) MkdirAll(path string, perm fs.FileMode) error { return f.inner.MkdirAll(path, perm) }

// ReadDir implements FS.
func (f *FaultFS) ReadDir(name string) ([]fs.DirEntry, error) { return f.inner.ReadDir(name) }

// Stat implements FS.
func (f *FaultFS) Stat(name string) (fs.FileInfo, error) { return f.inner.Stat(name) }

// SyncDir implements FS.
func (f *FaultFS) SyncDir(dir string) error {
	if ft := f.check(OpSyncDir, dir); ft != nil {
		return pathErr(OpSyncDir, dir, ft.Err)
	}
	return f.inner.SyncDir(dir)
}

type faultFile struct {
	File
	fs   *FaultFS
	name string
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if ft := f.fs.check(OpWrite, f.name); ft != nil {
		n := ft.ShortWrite
		if n < 0 {
			n = len(p) / 2
		}
		if n > len(p) {
			n = len(p)
		}
		if n > 0 {
			if w, err := f.File.WriteAt(p[:n], off); err != nil {
				return w, err
			}
		}
		return n, pathErr(OpWrite, f.name, ft.Err)
	}
	return f.File.WriteAt(p, off)
}

func (f *faultFile) ReadAt(p []byte, off int64) (int, error) {
	if ft := f.fs.check(OpRead, f.name); ft != nil {
		return 0, pathErr(OpRead, f.name, ft.Err)
	}
	return f.File.ReadAt(p, off)
}

func (f *faultFile) Sync() error {
	if ft := f.fs.check(OpSync, f.name); ft != nil {
		return pathErr(OpSync, f.name, ft.Err)
	}
	return f.File.Sync()
}

func (f *faultFile) Truncate(size int64) error {
	if ft := f.fs.check(OpTruncate, f.name); ft != nil {
		return pathErr(OpTruncate, f.name, ft.Err)
	}
	return f.File.Truncate(size)
}
