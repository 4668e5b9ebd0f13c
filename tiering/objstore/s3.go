package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"
)

// Multipart limits S3 imposes: parts other than the last must be at least
// 5 MiB, and a single PutObject may carry at most 5 GiB.
const (
	minPartSize     = 5 << 20
	maxSinglePut    = 5 << 30
	defaultPartSize = 16 << 20
)

// S3Config configures NewS3. Credentials come from the standard AWS chain
// (environment, shared config and profile, web identity for IRSA, EC2
// instance metadata); Tiercel never takes keys on its command line.
type S3Config struct {
	// Bucket is the bucket's name. Required.
	Bucket string
	// Prefix is prepended to every key, so several clusters can share a
	// bucket. A '/' is added if it does not end with one.
	Prefix string
	// Endpoint is a custom endpoint URL such as MinIO's
	// "http://127.0.0.1:9000". Setting it implies path-style addressing,
	// since such servers rarely have wildcard DNS for bucket hosts.
	Endpoint string
	// Region is the bucket's region. If empty, the AWS chain decides
	// (AWS_REGION, the profile); with a custom Endpoint it falls back to
	// us-east-1, which MinIO accepts.
	Region string
	// ForcePathStyle addresses the bucket as a path rather than as part
	// of the host name.
	ForcePathStyle bool
	// PartSize is both the size above which a put of a plain reader
	// becomes a multipart upload and the size of its parts. Default 16 MiB;
	// at least 5 MiB.
	PartSize int64
	// SinglePutMax is the largest file-backed body (an *os.File or an
	// *io.SectionReader, such as a run of a segment file) streamed in one
	// PutObject, retried by seeking back, rather than uploaded in parts:
	// offloading a 1 GiB segment then costs one request instead of 66.
	// Default and maximum 5 GiB, S3's single-put limit. Bodies in memory
	// still go in parts above PartSize.
	SinglePutMax int64
	// Concurrency is how many parts of one multipart upload are in
	// flight at once. Default 4. Memory use is up to PartSize times this.
	Concurrency int
	// MaxRetries is how many times a failed request is retried after a
	// transient error (5xx, throttling, connection reset, timeout).
	// 0 means the default, 4; a negative value disables retries.
	MaxRetries int
	// MaxBackoff bounds the wait between retries. Default 5s.
	MaxBackoff time.Duration
	// Logger receives retry and warning messages. Default: discard.
	Logger *slog.Logger
	// HTTPClient replaces the default HTTP client, whose timeouts suit a
	// broker (5s to connect, 60s without a byte from the server). A custom CA
	// bundle from the AWS configuration (AWS_CA_BUNDLE) only applies to
	// the default client.
	HTTPClient aws.HTTPClient
	// Credentials, when set, replaces the AWS credential chain. Tests use
	// it for MinIO's fixed keys; production leaves it nil.
	Credentials aws.CredentialsProvider
}

// S3 is an ObjectStore on AWS S3 or an S3-compatible server such as MinIO,
// built on aws-sdk-go-v2.
//
// Unconditional requests are retried by the SDK's standard retryer, with
// exponential backoff and full jitter bounded by MaxBackoff, on 500, 502,
// 503, 504, throttling codes (SlowDown), connection errors and timeouts.
// Bodies of single puts and of multipart parts are buffered in memory, so
// every retry resends the same bytes.
// The SDK's retry quota (a token bucket shared by the client's calls) is
// kept: in a long outage retries stop being spent, and calls fail fast
// rather than multiply the load on a struggling server.
//
// Conditional puts are different; see Put.
type S3 struct {
	client      *s3.Client
	concurrency int // parts of one multipart upload in flight
	bucket      string
	prefix      string
	partSize    int64
	singlePut   int64
	attempts    int
	backoff     jitterBackoff
	log         *slog.Logger
}

var _ ObjectStore = (*S3)(nil)

// NewS3 returns a store for cfg.Bucket. It does not contact S3, so a broker
// can start while S3 is unreachable; the first request reports problems.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3: no bucket")
	}
	singlePut := cfg.SinglePutMax
	if singlePut <= 0 || singlePut > maxSinglePut {
		singlePut = maxSinglePut
	}
	partSize := cfg.PartSize
	switch {
	case partSize == 0:
		partSize = defaultPartSize
	case partSize < minPartSize || partSize > maxSinglePut:
		return nil, fmt.Errorf("s3: part size %d outside [%d, %d]", partSize, minPartSize, int64(maxSinglePut))
	}
	concurrency := cfg.Concurrency
	if concurrency <= 0 {
		concurrency = 4
	}
	attempts := 5
	switch {
	case cfg.MaxRetries > 0:
		attempts = cfg.MaxRetries + 1
	case cfg.MaxRetries < 0:
		attempts = 1
	}
	maxBackoff := cfg.MaxBackoff
	if maxBackoff <= 0 {
		maxBackoff = 5 * time.Second
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("s3: endpoint %q is not an http:// or https:// URL", cfg.Endpoint)
		}
	}

	backoff := jitterBackoff{base: 100 * time.Millisecond, max: maxBackoff}
	httpClient := cfg.HTTPClient
	if httpClient == nil {
		httpClient = newHTTPClient()
	}
	loadOpts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(httpClient),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = attempts
				o.MaxBackoff = maxBackoff
				o.Backoff = backoff
			})
		}),
		config.WithLogger(sdkLogger{logger}),
		config.WithClientLogMode(aws.LogRetries),
	}
	if cfg.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(cfg.Region))
	}
	if cfg.Credentials != nil {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(cfg.Credentials))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("s3: loading AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		if cfg.Endpoint == "" {
			return nil, errors.New("s3: no region: set AWS_REGION, a profile region, or the S3 region option")
		}
		awsCfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.ForcePathStyle || cfg.Endpoint != ""
		// Ranged and multipart reads carry no whole-object checksum;
		// the SDK would log that it skipped validation on each one.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	prefix := strings.TrimPrefix(cfg.Prefix, "/")
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return &S3{
		client:      client,
		concurrency: concurrency,
		bucket:      cfg.Bucket,
		prefix:      prefix,
		partSize:    partSize,
		singlePut:   singlePut,
		attempts:    attempts,
		backoff:     backoff,
		log:         logger,
	}, nil
}

// newHTTPClient returns the default HTTP client: the SDK's own (so the
// AWS configuration can still add a custom CA bundle to it), with bounded
// connect and header waits, so that a black-holed endpoint turns into a
// retryable timeout instead of a hung broker, and enough idle connections
// for parallel part uploads and ranged reads.
func newHTTPClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) {
			d.Timeout = 5 * time.Second
		}).
		// A connection that delivers no byte for this long is dead: the
		// request fails (and is retried) instead of hanging, and so
		// does a body read that stalls.
		WithReadTimeout(60 * time.Second).
		WithTransportOptions(func(tr *http.Transport) {
			tr.ResponseHeaderTimeout = 60 * time.Second
			tr.IdleConnTimeout = 30 * time.Second
			tr.MaxIdleConns = 256
			tr.MaxIdleConnsPerHost = 64
		})
}

// jitterBackoff is exponential backoff with full jitter: the n-th retry
// waits a uniformly random time below min(max, base*2^(n-1)). Random
// waits keep brokers that failed together from retrying in lockstep.
type jitterBackoff struct {
	base, max time.Duration
}

// BackoffDelay implements retry.BackoffDelayer.
func (b jitterBackoff) BackoffDelay(attempt int, _ error) (time.Duration, error) {
	ceil := b.max
	if attempt < 1 {
		attempt = 1
	}
	if shift := attempt - 1; shift < 30 && b.base<<shift < b.max {
		ceil = b.base << shift
	}
	return time.Duration(rand.Int64N(int64(ceil)) + 1), nil
}

// sdkLogger sends the SDK's log lines to slog.
type sdkLogger struct{ l *slog.Logger }

// Logf implements logging.Logger.
func (s sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	level := slog.LevelDebug
	if c == logging.Warn {
		level = slog.LevelWarn
	}
	s.l.Log(context.Background(), level, fmt.Sprintf(format, v...), "component", "aws-sdk")
}

func (s *S3) fullKey(key string) *string { return aws.String(s.prefix + key) }

// Put implements ObjectStore.
//
// A body up to PartSize is buffered and sent with one PutObject; a larger
// one is sent as a multipart upload, PartSize bytes at a time.
//
// Conditional puts always use one PutObject with If-None-Match: * or
// If-Match (so their body, up to 5 GiB, is buffered in memory whatever
// its size), and the SDK does not retry them. A retry after an attempt
// whose outcome is unknown (connection reset, timeout, 500) could find
// the condition broken by that very attempt and report
// ErrPreconditionFailed for a put that in fact won, and a caller that
// then backs off from a lease it holds is worse off than one that is
// told the truth: the outcome is unknown. So Put retries a conditional
// put only after errors that prove the request was not applied (the
// connection was never made, or the server answered 503 Slow Down), and
// otherwise returns the error, which the caller must treat as "may or
// may not have been written". A retry can never produce a false success:
// the server checks the condition anew on every attempt.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) (Attrs, error) {
	if err := checkPut(key, size, opts); err != nil {
		return Attrs{}, fmt.Errorf("s3: %w", err)
	}
	conditional := opts.IfNoneMatch || opts.IfMatch != ""
	if rs, ok := streamable(r); ok && !conditional && size > s.partSize && size <= s.singlePut {
		return s.putStream(ctx, key, rs, size)
	}
	if !conditional && size > s.partSize {
		return s.putMultipart(ctx, key, r, size)
	}
	if size > maxSinglePut {
		return Attrs{}, fmt.Errorf("s3: put %q: conditional put of %d bytes exceeds S3's single-put limit", key, size)
	}
	body, err := readAll(ctx, r, size)
	if err != nil {
		return Attrs{}, fmt.Errorf("s3: put %q: reading body: %w", key, err)
	}
	in := &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           s.fullKey(key),
		ContentLength: aws.Int64(size),
	}
	if !conditional {
		in.Body = bytes.NewReader(body)
		out, err := s.client.PutObject(ctx, in)
		if err != nil {
			return Attrs{}, s.wrap(OpPut, key, opts, err)
		}
		return putAttrs(out.ETag, size, out.ResultMetadata), nil
	}
	if opts.IfNoneMatch {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(opts.IfMatch)
	}
	for attempt := 1; ; attempt++ {
		in.Body = bytes.NewReader(body)
		out, err := s.client.PutObject(ctx, in, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
		if err == nil {
			return putAttrs(out.ETag, size, out.ResultMetadata), nil
		}
		if attempt >= s.attempts || !notApplied(err) {
			return Attrs{}, s.wrap(OpPut, key, opts, err)
		}
		delay, _ := s.backoff.BackoffDelay(attempt, err)
		s.log.Debug("retrying conditional put that was not applied", "key", key, "attempt", attempt, "delay", delay, "error", err)
		if err := sleep(ctx, delay); err != nil {
			return Attrs{}, fmt.Errorf("s3: put %q: %w", key, err)
		}
	}
}

// streamable reports a file-backed body that can be sent without
// buffering and re-read for a retry.
func streamable(r io.Reader) (io.ReadSeeker, bool) {
	switch v := r.(type) {
	case *io.SectionReader:
		return v, true
	case *os.File:
		return v, true
	}
	return nil, false
}

// putStream sends a seekable body in one PutObject without buffering it:
// the SDK reads it to sign and checksum it, seeks back, sends it, and
// seeks back again to retry.
func (s *S3) putStream(ctx context.Context, key string, body io.ReadSeeker, size int64) (Attrs, error) {
	start, err := body.Seek(0, io.SeekCurrent)
	if err != nil {
		return Attrs{}, fmt.Errorf("s3: put %q: %w", key, err)
	}
	in := &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           s.fullKey(key),
		ContentLength: aws.Int64(size),
		Body:          io.NewSectionReader(readerAtSeeker{body, start}, 0, size),
	}
	out, err := s.client.PutObject(ctx, in)
	if err != nil {
		return Attrs{}, s.wrap(OpPut, key, PutOptions{}, err)
	}
	return putAttrs(out.ETag, size, out.ResultMetadata), nil
}

// readerAtSeeker gives a ReadSeeker positioned at start the ReaderAt
// interface a SectionReader needs, so the body the SDK gets is exactly
// size bytes and rewinds to the right place. Use from one goroutine.
type readerAtSeeker struct {
	rs    io.ReadSeeker
	start int64
}

func (r readerAtSeeker) ReadAt(p []byte, off int64) (int, error) {
	if ra, ok := r.rs.(io.ReaderAt); ok {
		return ra.ReadAt(p, r.start+off)
	}
	if _, err := r.rs.Seek(r.start+off, io.SeekStart); err != nil {
		return 0, err
	}
	return io.ReadFull(r.rs, p)
}

// maxParts is S3's limit on the parts of one upload.
const maxParts = 10000

// putMultipart uploads a large body in parts of s.partSize (more if the
// object would need over 10,000 parts), up to s.concurrency at a time.
// It is written against the S3 API directly rather than with the SDK's
// upload manager, which is deprecated.
//
// Each part is read into its own buffer before it is sent, so the SDK
// retries a part by resending the same bytes. Every part carries a CRC32
// checksum that the server verifies. If anything fails the upload is
// aborted, so no orphaned parts are left to pay for (a bucket lifecycle
// rule should still expire incomplete uploads a crash leaves behind).
func (s *S3) putMultipart(ctx context.Context, key string, r io.Reader, size int64) (Attrs, error) {
	partSize := max(s.partSize, (size+maxParts-1)/maxParts)
	nparts := int((size + partSize - 1) / partSize)
	create, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:            aws.String(s.bucket),
		Key:               s.fullKey(key),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
	})
	if err != nil {
		return Attrs{}, s.wrap(OpPut, key, PutOptions{}, err)
	}
	uploadID := create.UploadId
	abort := func(cause error) error {
		// Abort even if ctx is what failed, but not forever.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, aerr := s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
			Bucket: aws.String(s.bucket), Key: s.fullKey(key), UploadId: uploadID,
		}); aerr != nil {
			s.log.Warn("aborting multipart upload failed; its parts stay until a lifecycle rule expires them",
				"key", key, "upload_id", aws.ToString(uploadID), "error", aerr)
		}
		return cause
	}

	uctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	body := newExactReader(uctx, r, size)
	parts := make([]types.CompletedPart, nparts)
	free := make(chan []byte, s.concurrency)
	for range min(s.concurrency, nparts) {
		free <- make([]byte, partSize)
	}
	var wg sync.WaitGroup
	var readErr error
	for i := range nparts {
		var buf []byte
		select {
		case buf = <-free:
		case <-uctx.Done():
		}
		if buf == nil {
			break
		}
		n := min(partSize, size-int64(i)*partSize)
		if _, err := io.ReadFull(body, buf[:n]); err != nil {
			readErr = fmt.Errorf("reading body: %w", err)
			cancel(readErr)
			break
		}
		num := aws.Int32(int32(i + 1))
		wg.Go(func() {
			defer func() { free <- buf }()
			out, err := s.client.UploadPart(uctx, &s3.UploadPartInput{
				Bucket:            aws.String(s.bucket),
				Key:               s.fullKey(key),
				UploadId:          uploadID,
				PartNumber:        num,
				Body:              bytes.NewReader(buf[:n]),
				ContentLength:     aws.Int64(n),
				ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
			})
			if err != nil {
				cancel(fmt.Errorf("part %d: %w", *num, err))
				return
			}
			parts[i] = types.CompletedPart{PartNumber: num, ETag: out.ETag, ChecksumCRC32: out.ChecksumCRC32}
		})
	}
	if readErr == nil && uctx.Err() == nil {
		// All size bytes are read; the body must end here.
		if _, err := body.Read(make([]byte, 1)); err != io.EOF {
			readErr = fmt.Errorf("reading body: %w", err)
			cancel(readErr)
		}
	}
	wg.Wait()
	if err := context.Cause(uctx); err != nil {
		if readErr != nil {
			return Attrs{}, abort(fmt.Errorf("s3: put %q: %w", key, readErr))
		}
		return Attrs{}, abort(s.wrap(OpPut, key, PutOptions{}, err))
	}
	out, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(s.bucket),
		Key:             s.fullKey(key),
		UploadId:        uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return Attrs{}, abort(s.wrap(OpPut, key, PutOptions{}, err))
	}
	return putAttrs(out.ETag, size, out.ResultMetadata), nil
}

// putAttrs builds a put's attributes. S3 does not return the new object's
// Last-Modified from a put, so the server's Date header stands in for it
// (or the local clock); it may differ from the stored time by a second.
func putAttrs(etag *string, size int64, md middleware.Metadata) Attrs {
	t, ok := awsmiddleware.GetServerTime(md)
	if !ok {
		t = time.Now()
	}
	return Attrs{Size: size, ETag: aws.ToString(etag), LastModified: t}
}

// notApplied reports whether a failed request certainly had no effect, so
// that even a conditional put may be sent again.
func notApplied(err error) bool {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return true
	}
	if httpStatus(err) == http.StatusServiceUnavailable {
		switch apiCode(err) {
		case "SlowDown", "SlowDownWrite", "ServiceUnavailable", "XMinioServerNotInitialized":
			return true
		}
	}
	return false
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// wrap classifies an SDK error into the package's sentinel errors.
func (s *S3) wrap(op Op, key string, opts PutOptions, err error) error {
	status, code := httpStatus(err), apiCode(err)
	switch {
	case code == "NoSuchBucket":
		// A missing bucket is a configuration error, not a missing object.
		return fmt.Errorf("s3: %s %q: bucket %q does not exist: %w", op, key, s.bucket, err)
	case status == http.StatusNotFound || code == "NoSuchKey" || code == "NotFound":
		if op == OpPut && opts.IfMatch != "" {
			return fmt.Errorf("s3: put %q if-match %s: %w: %w: %w", key, opts.IfMatch, ErrPreconditionFailed, ErrNotFound, err)
		}
		return fmt.Errorf("s3: %s %q: %w: %w", op, key, ErrNotFound, err)
	case status == http.StatusPreconditionFailed || code == "PreconditionFailed",
		// S3 answers 409 when a concurrent conditional write to the
		// same key won the race.
		status == http.StatusConflict && code == "ConditionalRequestConflict":
		return fmt.Errorf("s3: %s %q: %w: %w", op, key, ErrPreconditionFailed, err)
	}
	return fmt.Errorf("s3: %s %q: %w", op, key, err)
}

// Get implements ObjectStore. Reading the body fails once ctx is done. If
// the connection breaks mid-body, the body resumes where it stopped with a
// ranged GET conditional on the same ETag; see resumingBody.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, Attrs, error) {
	if err := checkKey(key); err != nil {
		return nil, Attrs{}, fmt.Errorf("s3: get: %w", err)
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: s.fullKey(key)})
	if err != nil {
		return nil, Attrs{}, s.wrap(OpGet, key, PutOptions{}, err)
	}
	a := Attrs{
		Size:         aws.ToInt64(out.ContentLength),
		ETag:         aws.ToString(out.ETag),
		LastModified: aws.ToTime(out.LastModified),
	}
	return s.resuming(ctx, key, a.ETag, 0, a.Size, out.Body), a, nil
}

// GetRange implements ObjectStore with a Range header. A range that starts
// at or past the end gets 416 from S3, which is an empty read here. Like
// Get's, the body resumes after a broken connection.
func (s *S3) GetRange(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if err := checkRange(key, off, length); err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	if length == 0 {
		// HTTP cannot express an empty range; check that the object
		// exists so a missing key still reports ErrNotFound.
		if _, err := s.Attributes(ctx, key); err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	end := int64(-1) // open-ended
	if length <= math.MaxInt64-off {
		end = off + length
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    s.fullKey(key),
		Range:  aws.String(httpRange(off, end)),
	})
	if httpStatus(err) == http.StatusRequestedRangeNotSatisfiable {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	if err != nil {
		return nil, s.wrap(OpGetRange, key, PutOptions{}, err)
	}
	return s.resuming(ctx, key, aws.ToString(out.ETag), off, aws.ToInt64(out.ContentLength), out.Body), nil
}

// httpRange formats the byte range [off, end); end < 0 means to the end.
func httpRange(off, end int64) string {
	if end < 0 {
		return fmt.Sprintf("bytes=%d-", off)
	}
	return fmt.Sprintf("bytes=%d-%d", off, end-1)
}

func (s *S3) resuming(ctx context.Context, key, etag string, off, n int64, body io.ReadCloser) io.ReadCloser {
	return &resumingBody{s: s, ctx: ctx, key: key, etag: etag, off: off, end: off + n, body: body}
}

// resumingBody is a response body that survives a broken connection: on
// a read error, or an early EOF, it asks for the rest with a ranged GET
// conditional on the ETag it started with (If-Match), so it never splices
// two versions of an object together. A segment read for a cold fetch
// can be many MiB; starting it over, or failing the fetch, for one reset
// connection would be wasteful. It gives up after the store's retry
// budget, when ctx is done, or when the object has changed.
type resumingBody struct {
	s        *S3
	ctx      context.Context
	key      string
	etag     string
	off, end int64 // next byte to deliver; end of the requested range
	body     io.ReadCloser
	resumes  int
}

func (b *resumingBody) Read(p []byte) (int, error) {
	for {
		n, err := b.body.Read(p)
		b.off += int64(n)
		if err == io.EOF && b.off < b.end {
			err = io.ErrUnexpectedEOF
		}
		if err == nil || err == io.EOF || n > 0 {
			// Deliver what arrived; a lasting error comes back on
			// the next Read.
			if err != nil && err != io.EOF {
				err = nil
			}
			return n, err
		}
		if rerr := b.resume(err); rerr != nil {
			return 0, rerr
		}
	}
}

// resume replaces the broken body, or returns the error to report.
func (b *resumingBody) resume(cause error) error {
	if b.ctx.Err() != nil || b.resumes+1 >= b.s.attempts || b.etag == "" {
		return fmt.Errorf("s3: reading %q at offset %d: %w", b.key, b.off, cause)
	}
	b.resumes++
	_ = b.body.Close()
	b.body = io.NopCloser(bytes.NewReader(nil))
	delay, _ := b.s.backoff.BackoffDelay(b.resumes, cause)
	b.s.log.Debug("resuming object read after an error", "key", b.key, "offset", b.off, "attempt", b.resumes, "delay", delay, "error", cause)
	if err := sleep(b.ctx, delay); err != nil {
		return fmt.Errorf("s3: reading %q at offset %d: %w", b.key, b.off, err)
	}
	out, err := b.s.client.GetObject(b.ctx, &s3.GetObjectInput{
		Bucket:  aws.String(b.s.bucket),
		Key:     b.s.fullKey(b.key),
		Range:   aws.String(httpRange(b.off, b.end)),
		IfMatch: aws.String(b.etag),
	})
	if err != nil {
		// The resume error is reported as text only: a read that
		// failed must not classify as ErrNotFound or
		// ErrPreconditionFailed, which are answers about the key.
		return fmt.Errorf("s3: reading %q at offset %d: %w (resuming failed: %v)", b.key, b.off, cause, b.s.wrap(OpGet, b.key, PutOptions{}, err))
	}
	b.body = out.Body
	return nil
}

func (b *resumingBody) Close() error { return b.body.Close() }

// Attributes implements ObjectStore with HeadObject.
func (s *S3) Attributes(ctx context.Context, key string) (Attrs, error) {
	if err := checkKey(key); err != nil {
		return Attrs{}, fmt.Errorf("s3: attributes: %w", err)
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: s.fullKey(key)})
	if err != nil {
		return Attrs{}, s.wrap(OpAttributes, key, PutOptions{}, err)
	}
	return Attrs{
		Size:         aws.ToInt64(out.ContentLength),
		ETag:         aws.ToString(out.ETag),
		LastModified: aws.ToTime(out.LastModified),
	}, nil
}

// Delete implements ObjectStore. S3 already treats deleting a missing key
// as success; a 404 from another server is mapped to success too.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("s3: delete: %w", err)
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: s.fullKey(key)})
	if err != nil {
		if err := s.wrap(OpDelete, key, PutOptions{}, err); !IsNotFound(err) {
			return err
		}
	}
	return nil
}

// List implements ObjectStore with ListObjectsV2, a page (up to 1000 keys)
// at a time. S3 returns keys in UTF-8 binary order, which is Go's string
// order.
func (s *S3) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(s.prefix + prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return s.wrap(OpList, prefix, PutOptions{}, err)
		}
		for _, o := range page.Contents {
			info := ObjectInfo{
				Key: strings.TrimPrefix(aws.ToString(o.Key), s.prefix),
				Attrs: Attrs{
					Size:         aws.ToInt64(o.Size),
					ETag:         aws.ToString(o.ETag),
					LastModified: aws.ToTime(o.LastModified),
				},
			}
			if err := fn(info); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close implements ObjectStore. There is nothing to release: the SDK's
// HTTP client does not expose its idle connections, which time out on
// their own after 30s, and a caller-supplied client is the caller's.
func (s *S3) Close() error { return nil }
