package objstore_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tiercel/tiercel/internal/testenv"
	"github.com/tiercel/tiercel/tiering/objstore"
	"github.com/tiercel/tiercel/tiering/objstore/objstoretest"
)

func TestCountingPassThrough(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.ObjectStore {
		return objstore.WithCounts(objstore.NewMem())
	})
}

func TestKeyGroup(t *testing.T) {
	for key, want := range map[string]string{
		"topics/orders-AAAAAAAAAAAAAAAAAAAAAA/0/manifest": "topics/orders-AAAAAAAAAAAAAAAAAAAAAA",
		"topics/orders-AAAAAAAAAAAAAAAAAAAAAA/":           "topics/orders-AAAAAAAAAAAAAAAAAAAAAA",
		"topics/":                                         "topics",
		"cluster/lease":                                   "cluster/lease",
		"cluster/accounting/1.json":                       "cluster/accounting",
		"plain":                                           "plain",
		"":                                                "",
	} {
		if got := objstore.KeyGroup(key); got != want {
			t.Errorf("KeyGroup(%q) = %q, want %q", key, got, want)
		}
	}
}

func putBytes(t *testing.T, s objstore.ObjectStore, key string, n int, opts objstore.PutOptions) error {
	t.Helper()
	_, err := s.Put(context.Background(), key, bytes.NewReader(make([]byte, n)), int64(n), opts)
	return err
}

// TestCountingCounts drives every operation, including the outcomes that
// are answers rather than successes, and checks calls, requests and groups.
func TestCountingCounts(t *testing.T) {
	ctx := context.Background()
	c := objstore.WithCounts(objstore.NewMem())
	for op, n := range c.Snapshot() {
		if n != 0 {
			t.Fatalf("fresh counter: %s = %d", op, n)
		}
	}
	if len(c.Snapshot()) != len(objstore.Ops()) || len(c.Requests()) != len(objstore.Ops()) {
		t.Fatalf("snapshots do not hold every Op: %v %v", c.Snapshot(), c.Requests())
	}

	// 2500 small objects: 2500 puts; a listing of them is 3 S3 pages.
	for i := 0; i < 2500; i++ {
		if err := putBytes(t, c, fmt.Sprintf("topics/a-x/0/%05d", i), 10, objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// A 40 MiB put is a multipart upload with the default 16 MiB parts:
	// create, 3 parts, complete.
	if err := putBytes(t, c, "topics/b-y/0/big", 40<<20, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	// A conditional put is always a single PutObject, whatever its size;
	// a lost one is billed too.
	if err := putBytes(t, c, "topics/b-y/0/big", 40<<20, objstore.PutOptions{IfNoneMatch: true}); !objstore.IsPreconditionFailed(err) {
		t.Fatalf("conditional put: %v", err)
	}
	if err := putBytes(t, c, "cluster/lease", 40<<20, objstore.PutOptions{IfNoneMatch: true}); err != nil {
		t.Fatal(err)
	}
	seen := 0
	if err := c.List(ctx, "topics/a-x/", func(objstore.ObjectInfo) error { seen++; return nil }); err != nil || seen != 2500 {
		t.Fatalf("list: %d objects, %v", seen, err)
	}
	if err := c.List(ctx, "nothing/", func(objstore.ObjectInfo) error { return nil }); err != nil {
		t.Fatal(err)
	}
	rc, _, err := c.Get(ctx, "topics/a-x/0/00001")
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if _, _, err := c.Get(ctx, "topics/a-x/0/missing"); !objstore.IsNotFound(err) {
		t.Fatalf("get missing: %v", err)
	}
	for i := 0; i < 3; i++ {
		rc, err := c.GetRange(ctx, "topics/b-y/0/big", int64(i)<<20, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
	}
	if _, err := c.Attributes(ctx, "cluster/lease"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "topics/a-x/0/00001"); err != nil {
		t.Fatal(err)
	}

	wantCalls := map[objstore.Op]int64{objstore.OpPut: 2503, objstore.OpGet: 2, objstore.OpGetRange: 3,
		objstore.OpAttributes: 1, objstore.OpDelete: 1, objstore.OpList: 2}
	wantReqs := map[objstore.Op]int64{objstore.OpPut: 2500 + 5 + 1 + 1, objstore.OpGet: 2, objstore.OpGetRange: 3,
		objstore.OpAttributes: 1, objstore.OpDelete: 1, objstore.OpList: 3 + 1}
	if got := c.Snapshot(); fmt.Sprint(got) != fmt.Sprint(wantCalls) {
		t.Errorf("calls %v, want %v", got, wantCalls)
	}
	if got := c.Requests(); fmt.Sprint(got) != fmt.Sprint(wantReqs) {
		t.Errorf("requests %v, want %v", got, wantReqs)
	}
	groups := c.GroupRequests()
	wantGroups := map[string]map[objstore.Op]int64{
		"topics/a-x":    {objstore.OpPut: 2500, objstore.OpList: 3, objstore.OpGet: 2, objstore.OpDelete: 1},
		"topics/b-y":    {objstore.OpPut: 6, objstore.OpGetRange: 3},
		"cluster/lease": {objstore.OpPut: 1, objstore.OpAttributes: 1},
		"nothing":       {objstore.OpList: 1},
	}
	if len(groups) != len(wantGroups) {
		t.Errorf("groups %v, want %v", groups, wantGroups)
	}
	sum := map[objstore.Op]int64{}
	for g, want := range wantGroups {
		for _, op := range objstore.Ops() {
			if groups[g][op] != want[op] {
				t.Errorf("group %s %s: %d, want %d", g, op, groups[g][op], want[op])
			}
		}
	}
	for _, ops := range groups {
		for op, n := range ops {
			sum[op] += n
		}
	}
	if fmt.Sprint(sum) != fmt.Sprint(wantReqs) {
		t.Errorf("groups sum to %v, requests are %v", sum, wantReqs)
	}
}

// TestCountingConcurrent counts from many goroutines; run with -race.
func TestCountingConcurrent(t *testing.T) {
	c := objstore.WithCounts(objstore.NewMem())
	const workers, each = 8, 200
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				_ = putBytes(t, c, fmt.Sprintf("topics/t%d-x/0/%d", i%5, w*each+i), 1, objstore.PutOptions{})
				_, _ = c.Attributes(context.Background(), "cluster/metadata")
				_ = c.GroupRequests()
			}
		}()
	}
	wg.Wait()
	if n := c.Snapshot()[objstore.OpPut]; n != workers*each {
		t.Errorf("puts %d, want %d", n, workers*each)
	}
	if n := c.Snapshot()[objstore.OpAttributes]; n != workers*each {
		t.Errorf("attributes %d, want %d", n, workers*each)
	}
}

// countingTransport counts the HTTP requests an S3 client sends.
type countingTransport struct {
	mu    sync.Mutex
	n     map[string]int64 // by method
	total atomic.Int64
}

func (c *countingTransport) Do(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n[r.Method]++
	c.mu.Unlock()
	c.total.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// TestCountingMatchesS3Requests checks the request estimate against the
// HTTP requests the S3 store really sends to MinIO: multipart uploads,
// listings over several pages, conditional puts, ranged gets, heads and
// deletes.
func TestCountingMatchesS3Requests(t *testing.T) {
	srv := testenv.MinIO(t)
	// A custom CA bundle only applies to the SDK's own HTTP client; the
	// test MinIO speaks plain HTTP.
	t.Setenv("AWS_CA_BUNDLE", "")
	ctx := context.Background()
	tr := &countingTransport{n: map[string]int64{}}
	cfg := s3Config(srv, "counting")
	cfg.HTTPClient = tr
	c := objstore.WithCounts(newS3(t, cfg))

	for i := 0; i < 1001; i++ { // two list pages
		if err := putBytes(t, c, fmt.Sprintf("topics/a-x/0/%05d", i), 10, objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// 12 MiB in 5 MiB parts: create, 3 parts, complete.
	if err := putBytes(t, c, "topics/b-y/0/big", 12<<20, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := putBytes(t, c, "cluster/lease", 100, objstore.PutOptions{IfNoneMatch: true}); err != nil {
		t.Fatal(err)
	}
	if err := putBytes(t, c, "cluster/lease", 100, objstore.PutOptions{IfNoneMatch: true}); !objstore.IsPreconditionFailed(err) {
		t.Fatalf("second create: %v", err)
	}
	n := 0
	if err := c.List(ctx, "topics/a-x/", func(objstore.ObjectInfo) error { n++; return nil }); err != nil || n != 1001 {
		t.Fatalf("list: %d, %v", n, err)
	}
	rc, err := c.GetRange(ctx, "topics/b-y/0/big", 6<<20, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, rc)
	rc.Close()
	rc, _, err = c.Get(ctx, "cluster/lease")
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if _, err := c.Attributes(ctx, "topics/b-y/0/big"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "topics/a-x/0/00000"); err != nil {
		t.Fatal(err)
	}

	var est int64
	for _, v := range c.Requests() {
		est += v
	}
	if got := tr.total.Load(); got != est {
		tr.mu.Lock()
		t.Errorf("S3 saw %d HTTP requests (%v); the counter estimates %d (%v)", got, tr.n, est, c.Requests())
		tr.mu.Unlock()
	}
	if reqs := c.Requests(); reqs[objstore.OpPut] != 1001+5+2 || reqs[objstore.OpList] != 2 {
		t.Errorf("requests %v", reqs)
	}
	if calls := c.Snapshot(); calls[objstore.OpPut] != 1004 || calls[objstore.OpList] != 1 {
		t.Errorf("calls %v", calls)
	}
}
