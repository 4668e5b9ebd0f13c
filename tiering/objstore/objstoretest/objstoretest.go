// Package objstoretest is the acceptance suite every objstore.ObjectStore
// implementation must pass. The same behaviours are checked against the
// memory store, the directory store and a real MinIO, so code above the
// interface can rely on them whichever store it is given.
package objstoretest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tiercel/tiercel/tiering/objstore"
)

// LargeSize is the size of the suite's largest object: above 11 MiB, so
// that an S3 store configured with 5 MiB parts uploads it in three parts,
// and not a multiple of the part size, so the last part is short.
const LargeSize = 11<<20 + 3

// Run runs the suite. newStore must return a new, empty store for each
// call; Run closes it when the subtest ends.
func Run(t *testing.T, newStore func(t *testing.T) objstore.ObjectStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s objstore.ObjectStore)
	}{
		{"PutGet/Empty", func(t *testing.T, s objstore.ObjectStore) { testRoundTrip(t, s, 0) }},
		{"PutGet/OneByte", func(t *testing.T, s objstore.ObjectStore) { testRoundTrip(t, s, 1) }},
		{"PutGet/KiB", func(t *testing.T, s objstore.ObjectStore) { testRoundTrip(t, s, 1000) }},
		{"PutGet/Multipart", func(t *testing.T, s objstore.ObjectStore) { testRoundTrip(t, s, LargeSize) }},
		{"PutGet/KeyCharacters", testKeyCharacters},
		{"Put/SizeMismatch", testSizeMismatch},
		{"Attributes", testAttributes},
		{"GetRange", testGetRange},
		{"GetRange/Multipart", testGetRangeLarge},
		{"Missing", testMissing},
		{"Delete", testDelete},
		{"List/Prefixes", testList},
		{"List/Empty", testListEmpty},
		{"List/CallbackError", testListCallbackError},
		{"List/Pagination", testListPagination},
		{"Overwrite", testOverwrite},
		{"IfNoneMatch", testIfNoneMatch},
		{"IfMatch", testIfMatch},
		{"IfMatch/Missing", testIfMatchMissing},
		{"Conditional/BothSet", testBothConditions},
		{"Race/CreateIfAbsent", testRaceCreate},
		{"Race/Increment", testRaceIncrement},
		{"Context/Canceled", testCanceled},
		{"Context/SlowBody", testSlowBody},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// randomBytes returns n bytes of seeded noise; random content makes any
// misplaced or repeated byte range visible.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func put(t *testing.T, s objstore.ObjectStore, key string, data []byte, opts objstore.PutOptions) objstore.Attrs {
	t.Helper()
	a, err := s.Put(ctxFor(t), key, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		t.Fatalf("Put(%q, %d bytes, %+v): %v", key, len(data), opts, err)
	}
	return a
}

func get(t *testing.T, s objstore.ObjectStore, key string) ([]byte, objstore.Attrs) {
	t.Helper()
	rc, a, err := s.Get(ctxFor(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q): reading body: %v", key, err)
	}
	return b, a
}

func getRange(t *testing.T, s objstore.ObjectStore, key string, off, n int64) []byte {
	t.Helper()
	rc, err := s.GetRange(ctxFor(t), key, off, n)
	if err != nil {
		t.Fatalf("GetRange(%q, %d, %d): %v", key, off, n, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("GetRange(%q, %d, %d): reading body: %v", key, off, n, err)
	}
	return b
}

func sameBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes (sha256 %x), want %d bytes (sha256 %x)",
			what, len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
	}
}

func testRoundTrip(t *testing.T, s objstore.ObjectStore, n int) {
	data := randomBytes(n, uint64(n))
	key := fmt.Sprintf("topics/t-1/0/%020d.log", n)
	a := put(t, s, key, data, objstore.PutOptions{})
	if a.Size != int64(n) || a.ETag == "" {
		t.Fatalf("Put returned %+v, want size %d and an ETag", a, n)
	}
	got, ga := get(t, s, key)
	sameBytes(t, "Get", got, data)
	if ga.Size != int64(n) || ga.ETag != a.ETag {
		t.Fatalf("Get attrs %+v, want size %d etag %s", ga, n, a.ETag)
	}
}

func testKeyCharacters(t *testing.T, s objstore.ObjectStore) {
	keys := []string{
		"with space/and+plus=eq&amp",
		"ünïcödé/日本/ключ",
		"percent%20not-decoded",
		"a.b-c_d~e",
		"x/" + string(bytes.Repeat([]byte("k"), 200)),
	}
	for i, k := range keys {
		put(t, s, k, []byte(k), objstore.PutOptions{})
		got, _ := get(t, s, k)
		sameBytes(t, fmt.Sprintf("key %d %q", i, k), got, []byte(k))
	}
	var listed []string
	if err := s.List(ctxFor(t), "", func(o objstore.ObjectInfo) error {
		listed = append(listed, o.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(keys)
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Fatalf("List = %q, want %q", listed, want)
	}
}

// testSizeMismatch checks that a body disagreeing with its declared size
// is refused rather than stored truncated or padded.
func testSizeMismatch(t *testing.T, s objstore.ObjectStore) {
	ctx := ctxFor(t)
	if _, err := s.Put(ctx, "short", bytes.NewReader([]byte("abc")), 5, objstore.PutOptions{}); err == nil {
		t.Fatal("Put with a body shorter than its size succeeded")
	}
	if _, err := s.Put(ctx, "long", bytes.NewReader([]byte("abcdefg")), 5, objstore.PutOptions{}); err == nil {
		t.Fatal("Put with a body longer than its size succeeded")
	}
	for _, k := range []string{"short", "long"} {
		if _, err := s.Attributes(ctx, k); !objstore.IsNotFound(err) {
			t.Fatalf("after a failed put, Attributes(%q) = %v, want ErrNotFound", k, err)
		}
	}
	if _, err := s.Put(ctx, "neg", bytes.NewReader(nil), -1, objstore.PutOptions{}); err == nil {
		t.Fatal("Put with a negative size succeeded")
	}
}

func testAttributes(t *testing.T, s objstore.ObjectStore) {
	// S3 keeps whole seconds; allow for that and for a clock read on
	// the other side of a second boundary.
	before := time.Now().Add(-2 * time.Second)
	data := randomBytes(12345, 1)
	a := put(t, s, "attrs/obj", data, objstore.PutOptions{})
	after := time.Now().Add(2 * time.Second)
	got, err := s.Attributes(ctxFor(t), "attrs/obj")
	if err != nil {
		t.Fatal(err)
	}
	if got.Size != int64(len(data)) {
		t.Errorf("Size = %d, want %d", got.Size, len(data))
	}
	if got.ETag == "" || got.ETag != a.ETag {
		t.Errorf("ETag = %q, want Put's %q", got.ETag, a.ETag)
	}
	for what, lm := range map[string]time.Time{"Attributes": got.LastModified, "Put": a.LastModified} {
		if lm.Before(before) || lm.After(after) {
			t.Errorf("%s LastModified = %v, want within [%v, %v]", what, lm, before, after)
		}
	}
	var listed []objstore.ObjectInfo
	if err := s.List(ctxFor(t), "attrs/", func(o objstore.ObjectInfo) error {
		listed = append(listed, o)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0].Size != got.Size || listed[0].ETag != got.ETag {
		t.Errorf("List = %+v, want one entry with %+v", listed, got)
	}
}

func testGetRange(t *testing.T, s objstore.ObjectStore) {
	data := randomBytes(1000, 2)
	put(t, s, "r", data, objstore.PutOptions{})
	cases := []struct {
		off, n int64
		want   []byte
	}{
		{0, 10, data[:10]},        // start
		{500, 100, data[500:600]}, // middle
		{990, 10, data[990:]},     // end, exactly
		{995, 100, data[995:]},    // past the end: cut
		{0, 1000, data},           // whole
		{0, 1 << 40, data},        // huge length
		{999, 1, data[999:]},      // last byte
		{1000, 10, nil},           // at the end: empty
		{5000, 10, nil},           // beyond the end: empty
		{10, 0, nil},              // zero length
		{0, 1<<63 - 1, data},      // length that would overflow off+n
		{1, 1<<63 - 1, data[1:]},  // likewise from 1
	}
	for _, c := range cases {
		got := getRange(t, s, "r", c.off, c.n)
		sameBytes(t, fmt.Sprintf("GetRange(%d, %d)", c.off, c.n), got, c.want)
	}
	if _, err := s.GetRange(ctxFor(t), "r", -1, 10); err == nil {
		t.Error("GetRange with a negative offset succeeded")
	}
	put(t, s, "empty", nil, objstore.PutOptions{})
	sameBytes(t, "GetRange of an empty object", getRange(t, s, "empty", 0, 10), nil)
}

func testGetRangeLarge(t *testing.T, s objstore.ObjectStore) {
	data := randomBytes(LargeSize, 3)
	put(t, s, "big", data, objstore.PutOptions{})
	for _, c := range [][2]int64{{0, 1 << 20}, {5<<20 - 10, 20}, {LargeSize - 100, 1000}, {3 << 20, 6 << 20}} {
		end := min(c[0]+c[1], LargeSize)
		sameBytes(t, fmt.Sprintf("GetRange(%d, %d)", c[0], c[1]), getRange(t, s, "big", c[0], c[1]), data[c[0]:end])
	}
}

func testMissing(t *testing.T, s objstore.ObjectStore) {
	ctx := ctxFor(t)
	put(t, s, "present/x", []byte("x"), objstore.PutOptions{})
	for _, key := range []string{"absent", "present", "present/x/y", "present/y"} {
		if _, _, err := s.Get(ctx, key); !objstore.IsNotFound(err) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", key, err)
		}
		if _, err := s.Attributes(ctx, key); !objstore.IsNotFound(err) {
			t.Errorf("Attributes(%q) = %v, want ErrNotFound", key, err)
		}
		if _, err := s.GetRange(ctx, key, 0, 10); !objstore.IsNotFound(err) {
			t.Errorf("GetRange(%q) = %v, want ErrNotFound", key, err)
		}
		if _, err := s.GetRange(ctx, key, 0, 0); !objstore.IsNotFound(err) {
			t.Errorf("GetRange(%q, 0, 0) = %v, want ErrNotFound", key, err)
		}
	}
}

func testDelete(t *testing.T, s objstore.ObjectStore) {
	ctx := ctxFor(t)
	put(t, s, "d/a", []byte("a"), objstore.PutOptions{})
	put(t, s, "d/b", []byte("b"), objstore.PutOptions{})
	for range 2 { // the second time the key is already gone
		if err := s.Delete(ctx, "d/a"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	if err := s.Delete(ctx, "never/existed"); err != nil {
		t.Fatalf("Delete of a key that never existed: %v", err)
	}
	if _, err := s.Attributes(ctx, "d/a"); !objstore.IsNotFound(err) {
		t.Fatalf("after Delete, Attributes = %v, want ErrNotFound", err)
	}
	if got, _ := get(t, s, "d/b"); string(got) != "b" {
		t.Fatalf("Delete of d/a changed d/b: %q", got)
	}
	// A deleted key can be created again, also conditionally.
	put(t, s, "d/a", []byte("again"), objstore.PutOptions{IfNoneMatch: true})
	if got, _ := get(t, s, "d/a"); string(got) != "again" {
		t.Fatalf("re-created d/a = %q", got)
	}
}

func listKeys(t *testing.T, s objstore.ObjectStore, prefix string) []string {
	t.Helper()
	keys := []string{}
	if err := s.List(ctxFor(t), prefix, func(o objstore.ObjectInfo) error {
		keys = append(keys, o.Key)
		return nil
	}); err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return keys
}

func testList(t *testing.T, s objstore.ObjectStore) {
	// Chosen so that a directory walk in name order would go wrong:
	// '-' and '.' sort before '/', '0' after it.
	keys := []string{
		"cluster/lease",
		"cluster/metadata",
		"topics/a-1/0/00000000000000000000-0-x.log",
		"topics/a-1/0/00000000000000000000-0-x.index",
		"topics/a-1/0/manifest",
		"topics/a-1/1/manifest",
		"topics/a-1/10/manifest",
		"topics/a-10/0/manifest",
		"topics/a.b/0/manifest",
		"topics/a/0/manifest",
		"topics/a0/manifest",
		"topics/b",
		"z",
	}
	for _, k := range keys {
		put(t, s, k, []byte(k), objstore.PutOptions{})
	}
	sorted := slices.Clone(keys)
	slices.Sort(sorted)
	filter := func(p string) []string {
		out := []string{}
		for _, k := range sorted {
			if len(k) >= len(p) && k[:len(p)] == p {
				out = append(out, k)
			}
		}
		return out
	}
	for _, p := range []string{
		"", "cluster/", "cluster", "topics/", "topics/a", "topics/a-1/", "topics/a-1/1",
		"topics/a-1/0/0000", "topics/a/", "topics/a-", "topics/a.", "z", "zz", "nope/", "topics/a-1/0/manifest",
	} {
		if got, want := listKeys(t, s, p), filter(p); !slices.Equal(got, want) {
			t.Errorf("List(%q) =\n %q\nwant\n %q", p, got, want)
		}
	}
}

func testListEmpty(t *testing.T, s objstore.ObjectStore) {
	if got := listKeys(t, s, ""); len(got) != 0 {
		t.Fatalf("List of an empty store = %q", got)
	}
	put(t, s, "a/b", nil, objstore.PutOptions{})
	if err := s.Delete(ctxFor(t), "a/b"); err != nil {
		t.Fatal(err)
	}
	if got := listKeys(t, s, ""); len(got) != 0 {
		t.Fatalf("List after deleting everything = %q", got)
	}
}

func testListCallbackError(t *testing.T, s objstore.ObjectStore) {
	for i := range 5 {
		put(t, s, fmt.Sprintf("k%d", i), nil, objstore.PutOptions{})
	}
	stop := errors.New("stop here")
	n := 0
	err := s.List(ctxFor(t), "", func(objstore.ObjectInfo) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Fatalf("List returned %v after %d calls, want the callback's error after 2", err, n)
	}
}

// testListPagination lists more keys than one S3 page (1000) holds.
func testListPagination(t *testing.T, s objstore.ObjectStore) {
	const n = 1100
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("p/%05d", i)
	}
	keys = append(keys, "p0", "o")
	ctx := ctxFor(t)
	var wg sync.WaitGroup
	errs := make(chan error, len(keys))
	work := make(chan string)
	for range 16 {
		wg.Go(func() {
			for k := range work {
				if _, err := s.Put(ctx, k, bytes.NewReader(nil), 0, objstore.PutOptions{}); err != nil {
					errs <- fmt.Errorf("Put(%q): %w", k, err)
				}
			}
		})
	}
	for _, k := range keys {
		work <- k
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := listKeys(t, s, "p/")
	if !slices.Equal(got, keys[:n]) {
		t.Fatalf("List(p/) returned %d keys, want %d in order", len(got), n)
	}
	if got := listKeys(t, s, ""); len(got) != n+2 || got[0] != "o" || got[n+1] != "p0" {
		t.Fatalf("List() returned %d keys (first %q), want %d", len(got), got[:min(3, len(got))], n+2)
	}
}

func testOverwrite(t *testing.T, s objstore.ObjectStore) {
	a1 := put(t, s, "o", []byte("one"), objstore.PutOptions{})
	a2 := put(t, s, "o", []byte("two!"), objstore.PutOptions{})
	if a1.ETag == a2.ETag {
		t.Fatalf("overwrite with new content kept ETag %q", a1.ETag)
	}
	got, ga := get(t, s, "o")
	if string(got) != "two!" || ga.ETag != a2.ETag || ga.Size != 4 {
		t.Fatalf("after overwrite Get = %q %+v, want two! with %+v", got, ga, a2)
	}
}

func testIfNoneMatch(t *testing.T, s objstore.ObjectStore) {
	a := put(t, s, "lease", []byte("holder-1"), objstore.PutOptions{IfNoneMatch: true})
	_, err := s.Put(ctxFor(t), "lease", bytes.NewReader([]byte("holder-2")), 8, objstore.PutOptions{IfNoneMatch: true})
	if !objstore.IsPreconditionFailed(err) {
		t.Fatalf("IfNoneMatch on a present key = %v, want ErrPreconditionFailed", err)
	}
	if objstore.IsNotFound(err) {
		t.Fatalf("IfNoneMatch on a present key also reports ErrNotFound: %v", err)
	}
	got, ga := get(t, s, "lease")
	if string(got) != "holder-1" || ga.ETag != a.ETag {
		t.Fatalf("a failed IfNoneMatch changed the object: %q %+v", got, ga)
	}
}

func testIfMatch(t *testing.T, s objstore.ObjectStore) {
	a1 := put(t, s, "meta", []byte("v1"), objstore.PutOptions{})
	a2 := put(t, s, "meta", []byte("v2"), objstore.PutOptions{IfMatch: a1.ETag})
	if a2.ETag == "" || a2.ETag == a1.ETag {
		t.Fatalf("IfMatch put returned ETag %q, want a new one (old %q)", a2.ETag, a1.ETag)
	}
	if cur, err := s.Attributes(ctxFor(t), "meta"); err != nil || cur.ETag != a2.ETag {
		t.Fatalf("Attributes after IfMatch = %+v, %v; want ETag %q", cur, err, a2.ETag)
	}
	// a1 is stale now.
	_, err := s.Put(ctxFor(t), "meta", bytes.NewReader([]byte("v3")), 2, objstore.PutOptions{IfMatch: a1.ETag})
	if !objstore.IsPreconditionFailed(err) {
		t.Fatalf("IfMatch with a stale ETag = %v, want ErrPreconditionFailed", err)
	}
	got, ga := get(t, s, "meta")
	if string(got) != "v2" || ga.ETag != a2.ETag {
		t.Fatalf("a failed IfMatch changed the object: %q %+v", got, ga)
	}
	// A made-up ETag fails too.
	if _, err := s.Put(ctxFor(t), "meta", bytes.NewReader([]byte("v3")), 2, objstore.PutOptions{IfMatch: `"0123456789abcdef0123456789abcdef"`}); !objstore.IsPreconditionFailed(err) {
		t.Fatalf("IfMatch with a made-up ETag = %v, want ErrPreconditionFailed", err)
	}
	// The new ETag works for the next swap.
	put(t, s, "meta", []byte("v3"), objstore.PutOptions{IfMatch: a2.ETag})
}

func testIfMatchMissing(t *testing.T, s objstore.ObjectStore) {
	a := put(t, s, "gone", []byte("x"), objstore.PutOptions{})
	if err := s.Delete(ctxFor(t), "gone"); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"gone", "never"} {
		_, err := s.Put(ctxFor(t), key, bytes.NewReader([]byte("y")), 1, objstore.PutOptions{IfMatch: a.ETag})
		if !objstore.IsPreconditionFailed(err) {
			t.Fatalf("IfMatch on missing %q = %v, want ErrPreconditionFailed", key, err)
		}
		if _, err := s.Attributes(ctxFor(t), key); !objstore.IsNotFound(err) {
			t.Fatalf("a failed IfMatch created %q: %v", key, err)
		}
	}
}

func testBothConditions(t *testing.T, s objstore.ObjectStore) {
	_, err := s.Put(ctxFor(t), "both", bytes.NewReader(nil), 0, objstore.PutOptions{IfNoneMatch: true, IfMatch: "x"})
	if err == nil || objstore.IsPreconditionFailed(err) {
		t.Fatalf("Put with both conditions = %v, want a usage error", err)
	}
}

// racers is how many goroutines contend in the race tests.
const racers = 8

func testRaceCreate(t *testing.T, s objstore.ObjectStore) {
	ctx := ctxFor(t)
	for round := range 5 {
		key := fmt.Sprintf("race/%d", round)
		var wins atomic.Int32
		var winner atomic.Value
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range racers {
			wg.Go(func() {
				body := []byte("racer-" + strconv.Itoa(i))
				<-start
				_, err := s.Put(ctx, key, bytes.NewReader(body), int64(len(body)), objstore.PutOptions{IfNoneMatch: true})
				switch {
				case err == nil:
					wins.Add(1)
					winner.Store(string(body))
				case !objstore.IsPreconditionFailed(err):
					t.Errorf("racer %d: %v", i, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("round %d: %d racers created the object, want exactly 1", round, n)
		}
		if got, _ := get(t, s, key); string(got) != winner.Load() {
			t.Fatalf("round %d: stored %q, but the winner wrote %q", round, got, winner.Load())
		}
	}
}

// testRaceIncrement has racers increment a counter by read-modify-write
// with IfMatch, retrying lost swaps. A lost update shows as a final count
// below the number of increments.
func testRaceIncrement(t *testing.T, s objstore.ObjectStore) {
	const perRacer = 10
	ctx := ctxFor(t)
	put(t, s, "counter", []byte("0"), objstore.PutOptions{IfNoneMatch: true})
	var wg sync.WaitGroup
	var conflicts atomic.Int64
	for i := range racers {
		wg.Go(func() {
			for range perRacer {
				for {
					rc, a, err := s.Get(ctx, "counter")
					if err != nil {
						t.Errorf("racer %d: Get: %v", i, err)
						return
					}
					b, err := io.ReadAll(rc)
					rc.Close()
					if err != nil {
						t.Errorf("racer %d: reading: %v", i, err)
						return
					}
					n, err := strconv.Atoi(string(b))
					if err != nil {
						t.Errorf("racer %d: counter %q: %v", i, b, err)
						return
					}
					next := []byte(strconv.Itoa(n + 1))
					_, err = s.Put(ctx, "counter", bytes.NewReader(next), int64(len(next)), objstore.PutOptions{IfMatch: a.ETag})
					if err == nil {
						break
					}
					if !objstore.IsPreconditionFailed(err) {
						t.Errorf("racer %d: Put: %v", i, err)
						return
					}
					conflicts.Add(1)
				}
			}
		})
	}
	wg.Wait()
	got, _ := get(t, s, "counter")
	if want := strconv.Itoa(racers * perRacer); string(got) != want {
		t.Fatalf("counter = %s, want %s: updates were lost", got, want)
	}
	t.Logf("%d increments, %d lost swaps retried", racers*perRacer, conflicts.Load())
}

func testCanceled(t *testing.T, s objstore.ObjectStore) {
	put(t, s, "c", []byte("data"), objstore.PutOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context = %v, want context.Canceled", what, err)
		}
	}
	_, err := s.Put(ctx, "c2", bytes.NewReader([]byte("x")), 1, objstore.PutOptions{})
	check("Put", err)
	_, err = s.Put(ctx, "c", bytes.NewReader([]byte("x")), 1, objstore.PutOptions{IfNoneMatch: true})
	check("conditional Put", err)
	_, _, err = s.Get(ctx, "c")
	check("Get", err)
	_, err = s.GetRange(ctx, "c", 0, 2)
	check("GetRange", err)
	_, err = s.Attributes(ctx, "c")
	check("Attributes", err)
	check("Delete", s.Delete(ctx, "c"))
	check("List", s.List(ctx, "", func(objstore.ObjectInfo) error { return nil }))
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancelled calls took %v", d)
	}
	if got, _ := get(t, s, "c"); string(got) != "data" {
		t.Fatalf("cancelled calls changed the object: %q", got)
	}
	if _, err := s.Attributes(ctxFor(t), "c2"); !objstore.IsNotFound(err) {
		t.Fatalf("cancelled Put created c2: %v", err)
	}
}

// slowReader trickles bytes forever, like a producer that stalls.
type slowReader struct{}

func (slowReader) Read(p []byte) (int, error) {
	time.Sleep(5 * time.Millisecond)
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = 'x'
	return 1, nil
}

func testSlowBody(t *testing.T, s objstore.ObjectStore) {
	for _, size := range []int64{1 << 10, LargeSize} {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		start := time.Now()
		_, err := s.Put(ctx, "slow", slowReader{}, size, objstore.PutOptions{})
		cancel()
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Put of %d bytes returned %v after the context ended", size, d)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Put of %d bytes with an expiring context = %v, want context.DeadlineExceeded", size, err)
		}
	}
	if _, err := s.Attributes(ctxFor(t), "slow"); !objstore.IsNotFound(err) {
		t.Fatalf("an interrupted Put created the object: %v", err)
	}
}
