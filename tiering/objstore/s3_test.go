package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/minio/minio-go/v7"

	"github.com/tiercel/tiercel/internal/testenv"
	"github.com/tiercel/tiercel/tiering/objstore"
	"github.com/tiercel/tiercel/tiering/objstore/objstoretest"
)

// TestMain stops the shared MinIO and removes its data after the tests.
func TestMain(m *testing.M) { testenv.Main(m) }

// testPartSize is S3's minimum part size, so the suite's large object is
// a real three-part upload.
const testPartSize = 5 << 20

func s3Config(srv *testenv.MinIOServer, prefix string) objstore.S3Config {
	return objstore.S3Config{
		Bucket:      srv.Bucket,
		Prefix:      prefix,
		Endpoint:    srv.Endpoint,
		Region:      srv.Region,
		PartSize:    testPartSize,
		Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
	}
}

func newS3(t *testing.T, cfg objstore.S3Config) *objstore.S3 {
	t.Helper()
	s, err := objstore.NewS3(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestS3(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.ObjectStore {
		return newS3(t, s3Config(testenv.MinIO(t), "cluster-a"))
	})
}

// TestS3NoPrefix runs the suite at the bucket's root.
func TestS3NoPrefix(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.ObjectStore {
		return newS3(t, s3Config(testenv.MinIO(t), ""))
	})
}

func trimQuotes(s string) string { return strings.Trim(s, `"`) }

// TestS3MinioGoInterop checks our S3 code against an independent client:
// what we write, minio-go reads back at the prefixed key, and the other
// way round.
func TestS3MinioGoInterop(t *testing.T) {
	srv := testenv.MinIO(t)
	s := newS3(t, s3Config(srv, "tiercel/c1"))
	defer s.Close()
	mc := srv.Client()
	ctx := context.Background()

	for _, size := range []int{0, 1, 100_000, objstoretest.LargeSize} {
		key := fmt.Sprintf("ours/%d", size)
		data := bytes.Repeat([]byte{byte(size)}, size)
		for i := range data {
			data[i] ^= byte(i * 7)
		}
		a, err := s.Put(ctx, key, bytes.NewReader(data), int64(len(data)), objstore.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		obj, err := mc.GetObject(ctx, srv.Bucket, "tiercel/c1/"+key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(obj)
		obj.Close()
		if err != nil {
			t.Fatalf("minio-go read of %s: %v", key, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("minio-go read %d bytes of %s, want %d", len(got), key, len(data))
		}
		st, err := mc.StatObject(ctx, srv.Bucket, "tiercel/c1/"+key, minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if trimQuotes(st.ETag) != trimQuotes(a.ETag) || st.Size != int64(size) {
			t.Fatalf("minio-go stat of %s = etag %s size %d; we returned %+v", key, st.ETag, st.Size, a)
		}
		// Above the part size the upload must have been multipart,
		// whose ETags end in "-<parts>".
		if multipart := strings.Contains(st.ETag, "-"); multipart != (size > testPartSize) {
			t.Fatalf("%s: ETag %s; multipart = %v for %d bytes", key, st.ETag, multipart, size)
		}
	}

	// minio-go writes, we read.
	body := []byte("written by minio-go")
	info, err := mc.PutObject(ctx, srv.Bucket, "tiercel/c1/theirs/x", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rc, a, err := s.Get(ctx, "theirs/x")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, body) || trimQuotes(a.ETag) != trimQuotes(info.ETag) {
		t.Fatalf("Get of minio-go's object = %q %+v, want %q etag %s", got, a, body, info.ETag)
	}
	// An object outside our prefix is invisible to us.
	if _, err := mc.PutObject(ctx, srv.Bucket, "other/theirs/x", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := s.List(ctx, "theirs/", func(o objstore.ObjectInfo) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "theirs/x" {
		t.Fatalf("List(theirs/) = %q", keys)
	}
	// Our conditional put honours an ETag minio-go saw.
	if _, err := s.Put(ctx, "theirs/x", strings.NewReader("swapped"), 7, objstore.PutOptions{IfMatch: a.ETag}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "theirs/x", strings.NewReader("again"), 5, objstore.PutOptions{IfMatch: a.ETag}); !objstore.IsPreconditionFailed(err) {
		t.Fatalf("stale IfMatch = %v", err)
	}
}

// TestS3SameContentKeepsETag records a real S3 property that callers of
// conditional puts must design around: the ETag of a single-part object
// is the MD5 of its content, so rewriting identical bytes keeps it.
func TestS3SameContentKeepsETag(t *testing.T) {
	s := newS3(t, s3Config(testenv.MinIO(t), ""))
	defer s.Close()
	ctx := context.Background()
	a1, err := s.Put(ctx, "lease", strings.NewReader("same"), 4, objstore.PutOptions{IfNoneMatch: true})
	if err != nil {
		t.Fatal(err)
	}
	a2, err := s.Put(ctx, "lease", strings.NewReader("same"), 4, objstore.PutOptions{IfMatch: a1.ETag})
	if err != nil {
		t.Fatal(err)
	}
	if a1.ETag != a2.ETag {
		t.Logf("this server changes the ETag on identical content (%s -> %s)", a1.ETag, a2.ETag)
	}
}

// faultTransport lets a test decide, per request, to fail it without
// sending it (as a refused connection does) or to send it and then lose
// the response (as a connection reset after the server acted does).
type faultTransport struct {
	base http.RoundTripper
	// decide returns what to do with the n-th request (from 1).
	decide func(n int64, req *http.Request) faultAction
	n      atomic.Int64
}

type faultAction int

const (
	pass faultAction = iota
	refuse
	loseResponse
	slowDown
	cutBody // pass the request, then break the response body after 1000 bytes
)

func (a faultAction) String() string {
	return [...]string{"pass", "refuse", "lose-response", "slow-down", "cut-body"}[a]
}

func (f *faultTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	switch f.decide(f.n.Add(1), req) {
	case refuse:
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	case slowDown:
		if req.Body != nil {
			req.Body.Close()
		}
		body := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`
		return &http.Response{
			StatusCode: http.StatusServiceUnavailable, Status: "503 Service Unavailable",
			Header:        http.Header{"Content-Type": []string{"application/xml"}},
			Body:          io.NopCloser(strings.NewReader(body)),
			ContentLength: int64(len(body)), Request: req, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		}, nil
	case cutBody:
		resp, err := f.base.RoundTrip(req)
		if err == nil {
			resp.Body = &brokenBody{rc: resp.Body, left: 1000}
		}
		return resp, err
	case loseResponse:
		resp, err := f.base.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	}
	return f.base.RoundTrip(req)
}

func faultyS3(t *testing.T, srv *testenv.MinIOServer, decide func(int64, *http.Request) faultAction) (*objstore.S3, *faultTransport) {
	t.Helper()
	// The SDK can add a CA bundle only to its own HTTP client type; this
	// test's server is plain HTTP anyway.
	t.Setenv("AWS_CA_BUNDLE", "")
	ft := &faultTransport{base: http.DefaultTransport.(*http.Transport).Clone(), decide: decide}
	cfg := s3Config(srv, "")
	cfg.HTTPClient = &http.Client{Transport: ft}
	cfg.MaxBackoff = 50 * time.Millisecond
	return newS3(t, cfg), ft
}

func isPut(req *http.Request) bool { return req.Method == http.MethodPut }

// TestS3ConditionalPutNotRetriedAfterUnknownOutcome: the server applies a
// conditional put but the response is lost. A blind retry would get 412
// and report a lost race for a put that won. Put must instead return an
// error that is not ErrPreconditionFailed, after one attempt.
func TestS3ConditionalPutNotRetriedAfterUnknownOutcome(t *testing.T) {
	srv := testenv.MinIO(t)
	ctx := context.Background()
	var puts atomic.Int64
	s, _ := faultyS3(t, srv, func(_ int64, req *http.Request) faultAction {
		if isPut(req) && puts.Add(1) == 1 {
			return loseResponse
		}
		return pass
	})
	defer s.Close()
	_, err := s.Put(ctx, "lease", strings.NewReader("me"), 2, objstore.PutOptions{IfNoneMatch: true})
	if err == nil || objstore.IsPreconditionFailed(err) {
		t.Fatalf("conditional put with a lost response = %v, want an error of unknown outcome", err)
	}
	if n := puts.Load(); n != 1 {
		t.Fatalf("conditional put was sent %d times, want 1", n)
	}
	// It was in fact applied.
	if _, err := s.Attributes(ctx, "lease"); err != nil {
		t.Fatalf("the put did not reach the server: %v", err)
	}

	// The same fault on an unconditional put is retried: an overwrite
	// of the same bytes is harmless.
	puts.Store(0)
	if _, err := s.Put(ctx, "plain", strings.NewReader("x"), 1, objstore.PutOptions{}); err != nil {
		t.Fatalf("unconditional put was not retried: %v", err)
	}
	if n := puts.Load(); n != 2 {
		t.Fatalf("unconditional put was sent %d times, want 2", n)
	}
}

// TestS3ConditionalPutRetriedWhenNotApplied: a refused connection or a
// 503 Slow Down proves the put was not applied, so it is retried.
func TestS3ConditionalPutRetriedWhenNotApplied(t *testing.T) {
	for _, action := range []faultAction{refuse, slowDown} {
		t.Run(action.String(), func(t *testing.T) {
			srv := testenv.MinIO(t)
			ctx := context.Background()
			var puts atomic.Int64
			s, _ := faultyS3(t, srv, func(_ int64, req *http.Request) faultAction {
				if isPut(req) && puts.Add(1) <= 2 {
					return action
				}
				return pass
			})
			defer s.Close()
			a, err := s.Put(ctx, "lease", strings.NewReader("me"), 2, objstore.PutOptions{IfNoneMatch: true})
			if err != nil {
				t.Fatalf("conditional put after %d transient failures: %v", 2, err)
			}
			if n := puts.Load(); n != 3 {
				t.Fatalf("sent %d times, want 3", n)
			}
			if _, err := s.Put(ctx, "lease", strings.NewReader("me2"), 3, objstore.PutOptions{IfMatch: a.ETag}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestS3RetriesTransientErrors: reads and writes survive a burst of 503s
// and refused connections within the retry budget, and give up after it.
func TestS3RetriesTransientErrors(t *testing.T) {
	srv := testenv.MinIO(t)
	ctx := context.Background()
	var failLeft atomic.Int64
	s, ft := faultyS3(t, srv, func(n int64, _ *http.Request) faultAction {
		if failLeft.Add(-1) >= 0 {
			if n%2 == 0 {
				return refuse
			}
			return slowDown
		}
		return pass
	})
	defer s.Close()
	failLeft.Store(3)
	if _, err := s.Put(ctx, "k", strings.NewReader("v"), 1, objstore.PutOptions{}); err != nil {
		t.Fatalf("Put after 3 transient failures: %v", err)
	}
	failLeft.Store(3)
	rc, _, err := s.Get(ctx, "k")
	if err != nil {
		t.Fatalf("Get after 3 transient failures: %v", err)
	}
	rc.Close()
	failLeft.Store(1000)
	start := ft.n.Load()
	_, err = s.Attributes(ctx, "k")
	if err == nil || objstore.IsNotFound(err) {
		t.Fatalf("Attributes during a long outage = %v, want a transient error", err)
	}
	if sent := ft.n.Load() - start; sent != 5 {
		t.Fatalf("Attributes made %d attempts, want 5 (1 + 4 retries)", sent)
	}
}

// TestS3Outage stops MinIO under the store and starts it again: calls
// fail while it is down, without being mistaken for missing objects or
// lost races, and work again afterwards with the data intact.
func TestS3Outage(t *testing.T) {
	srv := testenv.MinIODedicated(t)
	cfg := s3Config(srv, "p")
	cfg.MaxRetries = 2
	cfg.MaxBackoff = 100 * time.Millisecond
	s := newS3(t, cfg)
	defer s.Close()
	ctx := context.Background()
	a, err := s.Put(ctx, "lease", strings.NewReader("v1"), 2, objstore.PutOptions{IfNoneMatch: true})
	if err != nil {
		t.Fatal(err)
	}

	srv.Stop(t)
	start := time.Now()
	_, err = s.Put(ctx, "lease", strings.NewReader("v2"), 2, objstore.PutOptions{IfMatch: a.ETag})
	if err == nil || objstore.IsPreconditionFailed(err) || objstore.IsNotFound(err) {
		t.Fatalf("conditional put during outage = %v", err)
	}
	_, _, err = s.Get(ctx, "lease")
	if err == nil || objstore.IsNotFound(err) {
		t.Fatalf("Get during outage = %v", err)
	}
	err = s.List(ctx, "", func(objstore.ObjectInfo) error { return nil })
	if err == nil {
		t.Fatal("List during outage succeeded")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("failing calls took %v", d)
	}

	srv.Start(t)
	rc, got, err := s.Get(ctx, "lease")
	if err != nil {
		t.Fatalf("Get after restart: %v", err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "v1" || got.ETag != a.ETag {
		t.Fatalf("after restart lease = %q %+v, want v1 %+v", b, got, a)
	}
	if _, err := s.Put(ctx, "lease", strings.NewReader("v2"), 2, objstore.PutOptions{IfMatch: a.ETag}); err != nil {
		t.Fatalf("renewal after restart: %v", err)
	}
}

func TestS3MissingBucket(t *testing.T) {
	srv := testenv.MinIO(t)
	cfg := s3Config(srv, "")
	cfg.Bucket = "no-such-bucket-tiercel"
	s := newS3(t, cfg)
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Put(ctx, "k", strings.NewReader("v"), 1, objstore.PutOptions{}); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Put to a missing bucket = %v", err)
	}
	if _, _, err := s.Get(ctx, "k"); err == nil || objstore.IsNotFound(err) {
		t.Fatalf("Get from a missing bucket = %v, want a configuration error, not ErrNotFound", err)
	}
}

func TestNewS3Errors(t *testing.T) {
	// Keep the machine's AWS configuration out of the region check.
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_PROFILE", "")
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider("a", "b", "")
	for name, cfg := range map[string]objstore.S3Config{
		"no bucket":      {Endpoint: "http://127.0.0.1:1"},
		"bad endpoint":   {Bucket: "b", Endpoint: "127.0.0.1:9000"},
		"small parts":    {Bucket: "b", Endpoint: "http://127.0.0.1:1", PartSize: 1 << 20},
		"no region, AWS": {Bucket: "b", Credentials: creds},
	} {
		if _, err := objstore.NewS3(ctx, cfg); err == nil {
			t.Errorf("%s: NewS3 succeeded", name)
		}
	}
	s, err := objstore.NewS3(ctx, objstore.S3Config{Bucket: "b", Region: "eu-west-1", Credentials: aws.AnonymousCredentials{}})
	if err != nil {
		t.Fatalf("NewS3 for AWS with a region: %v", err)
	}
	s.Close()
}

// TestS3ContextCancelDuringGet: a body stops with its context.
func TestS3ContextCancelDuringGet(t *testing.T) {
	srv := testenv.MinIO(t)
	s := newS3(t, s3Config(srv, ""))
	defer s.Close()
	data := bytes.Repeat([]byte("x"), 8<<20)
	if _, err := s.Put(context.Background(), "big", bytes.NewReader(data), int64(len(data)), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rc, _, err := s.Get(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	buf := make([]byte, 1024)
	if _, err := io.ReadFull(rc, buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	_, err = io.Copy(io.Discard, rc)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("reading after cancel = %v, want context.Canceled", err)
	}
}

// failingReader yields n bytes and then fails, like a segment file that
// hits a disk error mid-upload.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errors.New("disk error")
	}
	k := min(len(p), f.n)
	for i := range p[:k] {
		p[i] = 'x'
	}
	f.n -= k
	return k, nil
}

// TestS3MultipartAbort: a multipart upload whose body fails part-way
// stores nothing and leaves no incomplete upload behind.
func TestS3MultipartAbort(t *testing.T) {
	srv := testenv.MinIO(t)
	s := newS3(t, s3Config(srv, ""))
	defer s.Close()
	ctx := context.Background()
	_, err := s.Put(ctx, "seg", &failingReader{n: 2*testPartSize + 100}, 4*testPartSize, objstore.PutOptions{})
	if err == nil || !strings.Contains(err.Error(), "disk error") {
		t.Fatalf("Put with a failing body = %v", err)
	}
	// And one whose body runs on past its size.
	_, err = s.Put(ctx, "seg", &failingReader{n: 3 * testPartSize}, 2*testPartSize, objstore.PutOptions{})
	if err == nil {
		t.Fatal("Put with a body longer than its size succeeded")
	}
	if _, err := s.Attributes(ctx, "seg"); !objstore.IsNotFound(err) {
		t.Fatalf("a failed multipart upload left an object: %v", err)
	}
	for u := range srv.Client().ListIncompleteUploads(ctx, srv.Bucket, "", true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		t.Errorf("incomplete upload left behind: %s %s", u.Key, u.UploadID)
	}
}

// TestS3MultipartRetriesParts: parts whose responses are lost or that get
// 503 are sent again, and the object is whole.
func TestS3MultipartRetriesParts(t *testing.T) {
	srv := testenv.MinIO(t)
	var parts atomic.Int64
	s, _ := faultyS3(t, srv, func(_ int64, req *http.Request) faultAction {
		if req.Method == http.MethodPut && req.URL.Query().Get("partNumber") != "" {
			switch parts.Add(1) {
			case 1:
				return loseResponse
			case 2:
				return slowDown
			}
		}
		return pass
	})
	defer s.Close()
	ctx := context.Background()
	data := bytes.Repeat([]byte("0123456789abcdef"), (2*testPartSize+12345)/16)
	if _, err := s.Put(ctx, "seg", bytes.NewReader(data), int64(len(data)), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := parts.Load(); n != 5 {
		t.Fatalf("%d part requests, want 3 parts + 2 retries", n)
	}
	obj, err := srv.Client().GetObject(ctx, srv.Bucket, "seg", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	got, err := io.ReadAll(obj)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (%v), want %d identical", len(got), err, len(data))
	}
}

// brokenBody delivers left bytes and then fails as a reset connection does.
type brokenBody struct {
	rc   io.ReadCloser
	left int
}

func (b *brokenBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	}
	n, err := b.rc.Read(p[:min(len(p), b.left)])
	b.left -= n
	return n, err
}

func (b *brokenBody) Close() error { return b.rc.Close() }

// TestS3GetResumes: a body whose connection breaks carries on from where
// it stopped, for whole and ranged reads, and never mixes versions.
func TestS3GetResumes(t *testing.T) {
	srv := testenv.MinIO(t)
	ctx := context.Background()
	var gets atomic.Int64
	cutFirst := atomic.Int64{} // how many GETs to cut
	var beforeResume func()
	s, _ := faultyS3(t, srv, func(_ int64, req *http.Request) faultAction {
		if req.Method != http.MethodGet || req.URL.Query().Has("list-type") {
			return pass
		}
		n := gets.Add(1)
		if n > 1 && beforeResume != nil {
			beforeResume()
		}
		if n <= cutFirst.Load() {
			return cutBody
		}
		return pass
	})
	defer s.Close()
	data := make([]byte, 300_000)
	for i := range data {
		data[i] = byte(i % 251)
	}
	if _, err := s.Put(ctx, "seg", bytes.NewReader(data), int64(len(data)), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}

	readAllS3 := func(rc io.ReadCloser) ([]byte, error) {
		defer rc.Close()
		return io.ReadAll(rc)
	}
	gets.Store(0)
	cutFirst.Store(3)
	rc, _, err := s.Get(ctx, "seg")
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAllS3(rc)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get with 3 broken connections: %d bytes, %v", len(got), err)
	}
	if n := gets.Load(); n != 4 {
		t.Fatalf("%d GETs, want 4", n)
	}

	gets.Store(0)
	rc, err = s.GetRange(ctx, "seg", 100_000, 50_000)
	if err != nil {
		t.Fatal(err)
	}
	got, err = readAllS3(rc)
	if err != nil || !bytes.Equal(got, data[100_000:150_000]) {
		t.Fatalf("GetRange with 3 broken connections: %d bytes, %v", len(got), err)
	}

	// Too many breaks: the read fails, after a correct prefix.
	gets.Store(0)
	cutFirst.Store(100)
	rc, _, err = s.Get(ctx, "seg")
	if err != nil {
		t.Fatal(err)
	}
	got, err = readAllS3(rc)
	if err == nil || !bytes.Equal(got, data[:len(got)]) {
		t.Fatalf("Get with endless broken connections: %d bytes, %v", len(got), err)
	}
	if objstore.IsNotFound(err) || objstore.IsPreconditionFailed(err) {
		t.Fatalf("a broken read classifies as an answer: %v", err)
	}

	// The object changes before the resume: the read fails rather than
	// continue with the new version's bytes.
	gets.Store(0)
	cutFirst.Store(1)
	beforeResume = func() {
		beforeResume = nil
		v2 := bytes.Repeat([]byte{'N'}, len(data))
		if _, err := srv.Client().PutObject(ctx, srv.Bucket, "seg", bytes.NewReader(v2), int64(len(v2)), minio.PutObjectOptions{}); err != nil {
			t.Error(err)
		}
	}
	rc, _, err = s.Get(ctx, "seg")
	if err != nil {
		t.Fatal(err)
	}
	got, err = readAllS3(rc)
	if err == nil || !bytes.Equal(got, data[:len(got)]) {
		t.Fatalf("Get across an overwrite: %d bytes, %v; want an error after a prefix of the old version", len(got), err)
	}
}
