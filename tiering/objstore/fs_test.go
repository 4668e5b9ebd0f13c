package objstore_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tiercel/tiercel/tiering/objstore"
	"github.com/tiercel/tiercel/tiering/objstore/objstoretest"
)

func newFS(t *testing.T) *objstore.FS {
	t.Helper()
	s, err := objstore.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFS(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.ObjectStore { return newFS(t) })
}

func TestFSSameContentNewETag(t *testing.T) {
	s := newFS(t)
	defer s.Close()
	testSameContentNewETag(t, s)
}

func TestFSBadKeys(t *testing.T) {
	s := newFS(t)
	defer s.Close()
	ctx := context.Background()
	for _, key := range []string{
		"", "/abs", "../escape", "a/../../b", "a/./b", "a//b", "a/", ".tiercel-lock", "x/.tiercel-tmp-1",
	} {
		_, err := s.Put(ctx, key, bytes.NewReader(nil), 0, objstore.PutOptions{})
		if err == nil {
			t.Errorf("Put(%q) succeeded", key)
			continue
		}
		if objstore.IsNotFound(err) || objstore.IsPreconditionFailed(err) {
			t.Errorf("Put(%q) = %v, want a usage error", key, err)
		}
		if _, err := s.Attributes(ctx, key); err == nil || objstore.IsNotFound(err) {
			t.Errorf("Attributes(%q) = %v, want a usage error", key, err)
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(s.Root())); len(entries) != 1 {
		t.Errorf("bad keys wrote outside the root: %v", entries)
	}
}

// TestFSLayout checks that objects are plain files at their keys' paths and
// that the store's own files stay out of listings.
func TestFSLayout(t *testing.T) {
	s := newFS(t)
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Put(ctx, "cluster/lease", strings.NewReader("hello"), 5, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(s.Root(), "cluster", "lease"))
	if err != nil || string(b) != "hello" {
		t.Fatalf("file at key path = %q, %v", b, err)
	}
	// A stray temporary file, as a crash mid-put leaves, is not listed.
	if err := os.WriteFile(filepath.Join(s.Root(), "cluster", ".tiercel-tmp-123"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := s.List(ctx, "", func(o objstore.ObjectInfo) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "cluster/lease" {
		t.Fatalf("List = %q", keys)
	}
	// Deleting the last object removes the emptied directory; the
	// temporary file keeps it here.
	if err := s.Delete(ctx, "cluster/lease"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "cluster")); err != nil {
		t.Fatalf("directory with a temp file was removed: %v", err)
	}
	if _, err := s.Put(ctx, "topics/a/0/x", strings.NewReader(""), 0, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "topics/a/0/x"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "topics")); !os.IsNotExist(err) {
		t.Fatalf("emptied directories left behind: %v", err)
	}
}

// TestFSObjectDirConflict documents the one way FS differs from S3: a key
// cannot be both an object and a prefix of other keys.
func TestFSObjectDirConflict(t *testing.T) {
	s := newFS(t)
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Put(ctx, "a/b", strings.NewReader("x"), 1, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "a/b/c", strings.NewReader("y"), 1, objstore.PutOptions{}); err == nil {
		t.Fatal("Put under an object succeeded")
	}
	if _, err := s.Put(ctx, "a", strings.NewReader("y"), 1, objstore.PutOptions{}); err == nil {
		t.Fatal("Put over a directory succeeded")
	}
	if _, _, err := s.Get(ctx, "a"); !objstore.IsNotFound(err) {
		t.Fatalf("Get of a directory = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatalf("Delete of a directory = %v, want nil (no such object)", err)
	}
	if got, err := s.Attributes(ctx, "a/b"); err != nil || got.Size != 1 {
		t.Fatalf("a/b after the conflicts: %+v, %v", got, err)
	}
}

// TestFSReaderKeepsVersion checks that an open body keeps reading the
// version it opened while the key is overwritten.
func TestFSReaderKeepsVersion(t *testing.T) {
	s := newFS(t)
	defer s.Close()
	ctx := context.Background()
	v1 := bytes.Repeat([]byte("1"), 1<<20)
	if _, err := s.Put(ctx, "k", bytes.NewReader(v1), int64(len(v1)), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	rc, _, err := s.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	head := make([]byte, 100)
	if _, err := io.ReadFull(rc, head); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "k", strings.NewReader("2"), 1, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(append(head, rest...), v1) {
		t.Fatalf("reader saw the overwrite: %d bytes, %v", len(head)+len(rest), err)
	}
}

// Cross-process CAS: the test binary runs itself as helper processes that
// increment a counter in the same directory as the parent.
const (
	helperDirEnv = "TIERCEL_FS_HELPER_DIR"
	helperNEnv   = "TIERCEL_FS_HELPER_N"
)

// TestFSHelperProcess is not a test: it is the body of a helper process
// started by TestFSCrossProcessCAS, and does nothing otherwise.
func TestFSHelperProcess(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		return
	}
	n, err := strconv.Atoi(os.Getenv(helperNEnv))
	if err != nil {
		t.Fatal(err)
	}
	s, err := objstore.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := increment(context.Background(), s, n); err != nil {
		t.Fatal(err)
	}
}

// increment adds n to the counter with IfMatch read-modify-write loops.
func increment(ctx context.Context, s objstore.ObjectStore, n int) error {
	for range n {
		for {
			rc, a, err := s.Get(ctx, "counter")
			if err != nil {
				return err
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return err
			}
			v, err := strconv.Atoi(string(b))
			if err != nil {
				return fmt.Errorf("counter %q: %w", b, err)
			}
			next := strconv.Itoa(v + 1)
			_, err = s.Put(ctx, "counter", strings.NewReader(next), int64(len(next)), objstore.PutOptions{IfMatch: a.ETag})
			if err == nil {
				break
			}
			if !objstore.IsPreconditionFailed(err) {
				return err
			}
		}
	}
	return nil
}

func TestFSCrossProcessCAS(t *testing.T) {
	const procs, goroutines, perWorker = 3, 4, 25
	dir := t.TempDir()
	s, err := objstore.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := s.Put(ctx, "counter", strings.NewReader("0"), 1, objstore.PutOptions{IfNoneMatch: true}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range procs {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestFSHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperDirEnv+"="+dir, helperNEnv+"="+strconv.Itoa(perWorker))
		wg.Go(func() {
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("helper %d: %v\n%s", i, err, out)
			}
		})
	}
	for range goroutines {
		wg.Go(func() {
			if err := increment(ctx, s, perWorker); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	b, err := os.ReadFile(filepath.Join(dir, "counter"))
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa((procs + goroutines) * perWorker); string(b) != want {
		t.Fatalf("counter = %s, want %s: a swap was lost across processes", b, want)
	}
}

// TestFSCrossProcessCreate races processes to create one key.
func TestFSCrossProcessCreate(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Two stores on one directory stand in for two processes: they hold
	// separate lock file descriptions, so only the flock excludes them.
	a, err := objstore.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := objstore.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for round := range 20 {
		key := fmt.Sprintf("lease-%d", round)
		var wg sync.WaitGroup
		wins := make(chan string, 8)
		for i := range 8 {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Go(func() {
				body := strconv.Itoa(i)
				_, err := s.Put(ctx, key, strings.NewReader(body), int64(len(body)), objstore.PutOptions{IfNoneMatch: true})
				switch {
				case err == nil:
					wins <- body
				case !objstore.IsPreconditionFailed(err):
					t.Error(err)
				}
			})
		}
		wg.Wait()
		close(wins)
		if n := len(wins); n != 1 {
			t.Fatalf("round %d: %d winners", round, n)
		}
	}
}

func TestFSClose(t *testing.T) {
	s := newFS(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Put(context.Background(), "k", strings.NewReader(""), 0, objstore.PutOptions{}); err == nil {
		t.Fatal("Put after Close succeeded")
	}
	if err := s.Delete(context.Background(), "k"); err == nil {
		t.Fatal("Delete after Close succeeded")
	}
}

func TestNewFSErrors(t *testing.T) {
	if _, err := objstore.NewFS(""); err == nil {
		t.Fatal("NewFS(\"\") succeeded")
	}
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := objstore.NewFS(f); err == nil {
		t.Fatal("NewFS on a regular file succeeded")
	}
}
