package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tiercel/tiercel/internal/testenv"
	"github.com/tiercel/tiercel/tiering/objstore"
	"github.com/tiercel/tiercel/tiering/objstore/objstoretest"
)

// TestFaultPassThrough: with no faults configured the wrapper is invisible.
func TestFaultPassThrough(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.ObjectStore {
		return objstore.NewFault(objstore.NewMem(), objstore.FaultConfig{Seed: 1})
	})
}

// checkInjected fails unless err is an injected, transient-looking error.
func checkInjected(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, objstore.ErrInjected) {
		t.Fatalf("%s = %v, want an injected error", what, err)
	}
	if objstore.IsNotFound(err) || objstore.IsPreconditionFailed(err) {
		t.Fatalf("%s = %v: an injected error must not look like an answer", what, err)
	}
}

func TestFaultErrorRate(t *testing.T) {
	ctx := context.Background()
	run := func(seed uint64) []bool {
		f := objstore.NewFault(objstore.NewMem(), objstore.FaultConfig{
			Seed:      seed,
			ErrorRate: map[objstore.Op]float64{objstore.OpAttributes: 0.3},
		})
		if _, err := f.Put(ctx, "k", strings.NewReader("v"), 1, objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		failed := make([]bool, 1000)
		for i := range failed {
			_, err := f.Attributes(ctx, "k")
			if err != nil {
				checkInjected(t, "Attributes", err)
				failed[i] = true
			}
		}
		if n := f.Injected(); n < 200 || n > 400 {
			t.Fatalf("seed %d: %d of 1000 calls failed at rate 0.3", seed, n)
		}
		return failed
	}
	a, b, c := run(7), run(7), run(8)
	if !slicesEqual(a, b) {
		t.Fatal("the same seed gave different faults")
	}
	if slicesEqual(a, c) {
		t.Fatal("different seeds gave the same faults")
	}
}

func slicesEqual(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFaultOutageAndFailNext(t *testing.T) {
	ctx := context.Background()
	f := objstore.NewFault(objstore.NewMem(), objstore.FaultConfig{})
	a, err := f.Put(ctx, "k", strings.NewReader("v1"), 2, objstore.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.SetOutage(true)
	_, err = f.Put(ctx, "k", strings.NewReader("v2"), 2, objstore.PutOptions{IfMatch: a.ETag})
	checkInjected(t, "conditional Put during outage", err)
	_, err = f.Put(ctx, "new", strings.NewReader("x"), 1, objstore.PutOptions{IfNoneMatch: true})
	checkInjected(t, "create during outage", err)
	_, _, err = f.Get(ctx, "k")
	checkInjected(t, "Get during outage", err)
	_, err = f.GetRange(ctx, "missing", 0, 1)
	checkInjected(t, "GetRange of a missing key during outage", err)
	_, err = f.Attributes(ctx, "k")
	checkInjected(t, "Attributes during outage", err)
	checkInjected(t, "Delete during outage", f.Delete(ctx, "k"))
	checkInjected(t, "List during outage", f.List(ctx, "", func(objstore.ObjectInfo) error { return nil }))
	f.SetOutage(false)

	// Nothing changed during the outage.
	got, ga := readAll(t, f, "k")
	if got != "v1" || ga.ETag != a.ETag {
		t.Fatalf("after the outage k = %q %+v", got, ga)
	}
	if _, err := f.Attributes(ctx, "new"); !objstore.IsNotFound(err) {
		t.Fatalf("a put during the outage landed: %v", err)
	}

	f.FailNext(3)
	for i := range 3 {
		_, err := f.Attributes(ctx, "k")
		checkInjected(t, fmt.Sprintf("call %d after FailNext(3)", i), err)
	}
	if _, err := f.Attributes(ctx, "k"); err != nil {
		t.Fatalf("fourth call after FailNext(3): %v", err)
	}
}

func readAll(t *testing.T, s objstore.ObjectStore, key string) (string, objstore.Attrs) {
	t.Helper()
	rc, a, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), a
}

func TestFaultTruncate(t *testing.T) {
	ctx := context.Background()
	f := objstore.NewFault(objstore.NewMem(), objstore.FaultConfig{Seed: 3})
	data := []byte(strings.Repeat("0123456789", 100))
	if _, err := f.Put(ctx, "k", bytes.NewReader(data), int64(len(data)), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Put(ctx, "empty", bytes.NewReader(nil), 0, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	f.TruncateNextGets(3, 10)
	rc, _, err := f.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	checkInjected(t, "reading a truncated body", err)
	if !errors.Is(err, io.ErrUnexpectedEOF) || !bytes.Equal(got, data[:10]) {
		t.Fatalf("truncated body gave %q, %v", got, err)
	}
	rc, err = f.GetRange(ctx, "k", 100, 5)
	if err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(rc)
	rc.Close()
	// The range is shorter than the cut point: it must still fail
	// rather than end cleanly.
	checkInjected(t, "reading a truncated short range", err)
	if !bytes.Equal(got, data[100:105]) {
		t.Fatalf("truncated range gave %q", got)
	}
	rc, _, err = f.Get(ctx, "empty")
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(rc)
	rc.Close()
	checkInjected(t, "reading a truncated empty body", err)
	if got, _ := readAll(t, f, "k"); got != string(data) {
		t.Fatal("a body after the truncations was damaged")
	}

	// Random truncation: every read either returns a correct prefix
	// with an error, or the whole object.
	f2 := objstore.NewFault(objstore.NewMem(), objstore.FaultConfig{Seed: 4, TruncateRate: 0.5})
	if _, err := f2.Put(ctx, "k", bytes.NewReader(data), int64(len(data)), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	cut := 0
	for range 200 {
		rc, _, err := f2.Get(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, data[:len(got)]) {
			t.Fatal("a truncated body had wrong bytes")
		}
		if err != nil {
			checkInjected(t, "random truncation", err)
			cut++
		} else if len(got) != len(data) {
			t.Fatalf("a body ended cleanly after %d of %d bytes", len(got), len(data))
		}
	}
	if cut < 60 || cut > 140 {
		t.Fatalf("%d of 200 bodies cut at rate 0.5", cut)
	}
}

func TestFaultLatency(t *testing.T) {
	f := objstore.NewFault(objstore.NewMem(), objstore.FaultConfig{Latency: 50 * time.Millisecond})
	start := time.Now()
	if _, err := f.Attributes(context.Background(), "k"); !objstore.IsNotFound(err) {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("call took %v, want at least the 50ms latency", d)
	}
	f.SetLatency(time.Hour, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err := f.Attributes(ctx, "k")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call with an hour's latency and a 20ms deadline = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a cancelled delay took %v", d)
	}
}

// TestFaultNeverCorrupts hammers a store through random faults on every
// operation: racing IfMatch increments retry through injected errors and
// still count exactly, and objects read back whole or not at all.
func TestFaultNeverCorrupts(t *testing.T) {
	rates := map[objstore.Op]float64{}
	for _, op := range objstore.Ops() {
		rates[op] = 0.2
	}
	for name, inner := range map[string]func(t *testing.T) objstore.ObjectStore{
		"mem": func(*testing.T) objstore.ObjectStore { return objstore.NewMem() },
		"fs":  func(t *testing.T) objstore.ObjectStore { return newFS(t) },
		"s3":  func(t *testing.T) objstore.ObjectStore { return newS3(t, s3Config(testenv.MinIO(t), "")) },
	} {
		t.Run(name, func(t *testing.T) {
			f := objstore.NewFault(inner(t), objstore.FaultConfig{Seed: 11, ErrorRate: rates, TruncateRate: 0.2})
			defer f.Close()
			ctx := context.Background()
			retry := func(fn func() error) error {
				for {
					err := fn()
					if !errors.Is(err, objstore.ErrInjected) {
						return err
					}
				}
			}
			if err := retry(func() error {
				_, err := f.Put(ctx, "counter", strings.NewReader("0"), 1, objstore.PutOptions{})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			const workers, each = 6, 15
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for range each {
						for {
							var cur []byte
							var a objstore.Attrs
							err := retry(func() error {
								rc, attrs, err := f.Get(ctx, "counter")
								if err != nil {
									return err
								}
								defer rc.Close()
								cur, err = io.ReadAll(rc)
								a = attrs
								return err
							})
							if err != nil {
								t.Errorf("worker %d: %v", w, err)
								return
							}
							n, err := strconv.Atoi(string(cur))
							if err != nil {
								t.Errorf("worker %d: counter %q: %v", w, cur, err)
								return
							}
							next := strconv.Itoa(n + 1)
							_, err = f.Put(ctx, "counter", strings.NewReader(next), int64(len(next)), objstore.PutOptions{IfMatch: a.ETag})
							if err == nil {
								break
							}
							// A lost swap or an injected failure
							// before the put: both mean "not
							// applied", so read again and retry.
							if !objstore.IsPreconditionFailed(err) && !errors.Is(err, objstore.ErrInjected) {
								t.Errorf("worker %d: %v", w, err)
								return
							}
						}
					}
				})
			}
			wg.Wait()
			var final string
			if err := retry(func() error {
				rc, _, err := f.Get(ctx, "counter")
				if err != nil {
					return err
				}
				defer rc.Close()
				b, err := io.ReadAll(rc)
				final = string(b)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if want := strconv.Itoa(workers * each); final != want {
				t.Fatalf("counter = %s, want %s", final, want)
			}
			if f.Injected() == 0 {
				t.Fatal("no faults were injected")
			}
			t.Logf("%d faults injected", f.Injected())
		})
	}
}

// TestFaultLostAck: the put is applied but reported as failed.
func TestFaultLostAck(t *testing.T) {
	ctx := context.Background()
	f := objstore.NewFault(objstore.NewMem(), objstore.FaultConfig{LostAckRate: 1})
	_, err := f.Put(ctx, "lease", strings.NewReader("me"), 2, objstore.PutOptions{IfNoneMatch: true})
	checkInjected(t, "Put with a lost ack", err)
	if got, _ := readAll(t, f, "lease"); got != "me" {
		t.Fatalf("the put was not applied: %q", got)
	}
}
