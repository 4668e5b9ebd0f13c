// Command tiering measures Tiercel's tiered storage against MinIO on this
// machine, next to the limits measured in the same run:
//
//   - S3 requests per GiB offloaded, counted by an HTTP proxy between the
//     broker and MinIO (PUT-class: PUT object, PUT part, multipart create
//     and complete, LIST), at the segment sizes given;
//   - cold catch-up read throughput from the remote tier with franz-go,
//     against a raw loop of ranged GETs (the broker's chunk size) over the
//     same objects, straight to MinIO;
//   - GETs per GiB read cold;
//   - the chunk-cache hit ratio of a second reader, after the first and
//     alongside it;
//   - hot produce throughput to a topic that offloads and to one that does
//     not, interleaved, with the local bytes the offloading topic reached.
//
// It starts MinIO and the broker itself; see bench/tiering/run.sh.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	accessKey = "tiercel-bench"
	secretKey = "tiercel-bench-secret"
	bucket    = "bench"
	prefix    = "tiered"
	recSize   = 1024
	mib       = 1 << 20
	gib       = 1 << 30
	chunk     = 4 * mib // the broker's default tiercel.remote.fetch.chunk.bytes
)

var (
	tiercelBin = flag.String("tiercel", "", "tiercel binary (required)")
	minioBin   = flag.String("minio", "", "MinIO server binary (required)")
	workDir    = flag.String("workdir", "", "directory for MinIO's data, the broker's data and logs (required)")
	outJSON    = flag.String("out", "", "write the results as JSON to this file")
	coldSegs   = flag.String("cold-segment-bytes", "1073741824", "comma-separated segment.bytes values for the offload/cold-read topics")
	coldBytes  = flag.Int64("cold-bytes", 3*gib+256*mib, "bytes produced to each offload/cold-read topic")
	hotBytes   = flag.Int64("hot-bytes", gib, "bytes produced per hot produce run")
	hotRuns    = flag.Int("hot-runs", 5, "hot produce runs per topic (interleaved on/off)")
	hotParts   = flag.Int("hot-partitions", 4, "partitions of the hot produce topics")
	coldRepeat = flag.Int("cold-repeats", 2, "further cold reads of each topic, each on a restarted broker (an empty cache)")
	pairDelay  = flag.Duration("pair-delay", 200*time.Millisecond, "how long after the first reader the second of a concurrent pair starts")
)

// loadavg is the 1-minute load average: other work on the machine
// disturbs every number here, so each phase logs it.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

func main() {
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	flag.Parse()
	if *tiercelBin == "" || *minioBin == "" || *workDir == "" {
		flag.Usage()
		os.Exit(2)
	}
	res, err := run()
	if err != nil {
		log.Fatal(err)
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	if *outJSON != "" {
		if err := os.WriteFile(*outJSON, b, 0o644); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(string(b))
}

// Results is everything measured.
type Results struct {
	Offload []OffloadResult `json:"offload"`
	Hot     HotResult       `json:"hot_produce"`
	Limits  Limits          `json:"limits"`
}

type Limits struct {
	RawPutMBps   float64 `json:"raw_multipart_put_MBps"`    // minio-go, 16 MiB parts, 4 at once, one 1 GiB object
	FioWriteMBps float64 `json:"fio_seq_write_direct_MBps"` // 1 MiB blocks, O_DIRECT, 1 GiB
}

type OffloadResult struct {
	SegmentBytes   int64            `json:"segment_bytes"`
	OffloadedBytes int64            `json:"offloaded_bytes"`
	Segments       int              `json:"segments"`
	OffloadSeconds float64          `json:"offload_seconds"`
	Requests       map[string]int64 `json:"offload_requests"`
	PutClassPerGiB float64          `json:"put_class_requests_per_GiB"`
	ColdReadMBps   float64          `json:"cold_read_MBps"`
	ColdGets       int64            `json:"cold_read_gets"`
	ColdRequests   map[string]int64 `json:"cold_read_requests"`
	ColdGetsPerGiB float64          `json:"cold_read_gets_per_GiB"`
	RawGetMBps     []float64        `json:"raw_ranged_get_MBps"` // before and after the broker's read
	ColdVsRaw      float64          `json:"cold_over_raw"`
	// The raw loop again, but through the counting proxy the broker uses:
	// the proxy copies every byte in this process, which costs CPU the
	// direct loop does not pay. Both ratios are reported.
	RawGetViaProxyMBps float64 `json:"raw_ranged_get_via_proxy_MBps"`
	ColdVsRawViaProxy  float64 `json:"cold_over_raw_via_proxy"`
	// The same cold read again, each time on a restarted broker.
	ColdRepeatsMBps  []float64 `json:"cold_read_repeats_MBps"`
	SecondReadMBps   float64   `json:"second_read_MBps"`
	SecondHitRatio   float64   `json:"second_reader_chunk_hit_ratio"`
	SecondChunkGets  int64     `json:"second_reader_chunk_gets"`
	PairReadMBps     float64   `json:"concurrent_pair_MBps"`
	PairSecondHit    float64   `json:"concurrent_second_reader_chunk_hit_ratio"`
	BrokerHitMetric  string    `json:"broker_cache_hit_metric_after_second_read"`
	ChunksPerRead    int64     `json:"chunks_per_read"`
	HotReadMBps      float64   `json:"hot_read_reference_MBps"` // the same client reading a local log of the same size
	FetchPartitionMB int       `json:"fetch_max_partition_MiB"`
}

type HotResult struct {
	Partitions      int       `json:"partitions"`
	BytesPerRun     int64     `json:"bytes_per_run"`
	OnMBps          []float64 `json:"offload_on_MBps"`
	OffMBps         []float64 `json:"offload_off_MBps"`
	OnMedian        float64   `json:"offload_on_median_MBps"`
	OffMedian       float64   `json:"offload_off_median_MBps"`
	Ratio           float64   `json:"on_over_off"`
	MaxLocalBytes   int64     `json:"max_local_bytes_per_partition_offloading"`
	LocalBoundBytes int64     `json:"local_retention_plus_two_segments"`
	CatchUpSeconds  []float64 `json:"offload_catch_up_after_run_seconds"`
}

func run() (*Results, error) {
	res := &Results{}
	if err := os.MkdirAll(*workDir, 0o755); err != nil {
		return nil, err
	}
	fio, err := fioWrite(filepath.Join(*workDir, "fio"))
	if err != nil {
		log.Printf("fio: %v (limit not measured)", err)
	}
	res.Limits.FioWriteMBps = fio

	m, err := startMinIO(filepath.Join(*workDir, "minio"))
	if err != nil {
		return nil, err
	}
	defer m.stop()
	mc, err := minio.New(m.addr, &minio.Options{Creds: credentials.NewStaticV4(accessKey, secretKey, ""), Region: "us-east-1"})
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	if err := mc.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		return nil, err
	}
	if res.Limits.RawPutMBps, err = rawPut(ctx, mc); err != nil {
		return nil, err
	}
	log.Printf("raw multipart PUT: %.0f MB/s", res.Limits.RawPutMBps)
	// rawPut's 1 GiB buffer is garbage now; return it to the OS before the
	// measurements, which share this process (client and proxy).
	debug.FreeOSMemory()

	px, err := startProxy(m.addr)
	if err != nil {
		return nil, err
	}
	mcProxy, err := minio.New(px.addr, &minio.Options{Creds: credentials.NewStaticV4(accessKey, secretKey, ""), Region: "us-east-1"})
	if err != nil {
		return nil, err
	}
	b, err := startBroker(filepath.Join(*workDir, "broker"), px.addr)
	if err != nil {
		return nil, err
	}
	defer b.stop()

	for _, s := range strings.Split(*coldSegs, ",") {
		seg, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, err
		}
		or, err := offloadAndRead(ctx, b, px, mc, mcProxy, seg)
		if err != nil {
			return nil, err
		}
		res.Offload = append(res.Offload, *or)
		// A fresh cache for the next topic.
		if err := b.restart(); err != nil {
			return nil, err
		}
	}
	if *hotRuns > 0 {
		if res.Hot, err = hotProduce(ctx, b); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// ---------------------------------------------------------------------------
// Counting proxy.

type proxy struct {
	addr string
	mu   sync.Mutex
	// counts by category, only for requests under topics/ (the data of
	// tiering, not the controller's lease and metadata document)
	counts   map[string]int64
	outBytes atomic.Int64 // request bodies (PUTs)
	inBytes  atomic.Int64 // response bodies (GETs)
}

func (p *proxy) snapshot() map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int64, len(p.counts))
	for k, v := range p.counts {
		out[k] = v
	}
	return out
}

func diff(after, before map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

func putClass(c map[string]int64) int64 {
	return c["put_object"] + c["put_part"] + c["create_multipart"] + c["complete_multipart"] + c["list"]
}

func getClass(c map[string]int64) int64 { return c["get"] + c["get_range"] + c["head"] }

func category(r *http.Request) string {
	q := r.URL.Query()
	switch r.Method {
	case http.MethodPut:
		if q.Has("partNumber") {
			return "put_part"
		}
		return "put_object"
	case http.MethodPost:
		if q.Has("uploads") {
			return "create_multipart"
		}
		if q.Has("uploadId") {
			return "complete_multipart"
		}
		if q.Has("delete") {
			return "delete_multi"
		}
		return "post"
	case http.MethodDelete:
		if q.Has("uploadId") {
			return "abort_multipart"
		}
		return "delete"
	case http.MethodHead:
		return "head"
	case http.MethodGet:
		if q.Has("list-type") || q.Has("prefix") || strings.Count(strings.Trim(r.URL.Path, "/"), "/") == 0 {
			return "list"
		}
		if r.Header.Get("Range") != "" {
			return "get_range"
		}
		return "get"
	}
	return strings.ToLower(r.Method)
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n.Add(int64(n))
	return n, err
}

func startProxy(target string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{addr: ln.Addr().String(), counts: map[string]int64{}}
	u := &url.URL{Scheme: "http", Host: target}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			// Keep the Host header the client signed (SigV4 covers it).
			r.Out.Host = r.In.Host
		},
		Transport: &http.Transport{MaxIdleConnsPerHost: 64},
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ours := strings.Contains(r.URL.Path, "/topics/") || strings.Contains(r.URL.Query().Get("prefix"), "topics/")
		if ours {
			c := category(r)
			p.mu.Lock()
			p.counts[c]++
			p.mu.Unlock()
			if r.ContentLength > 0 {
				p.outBytes.Add(r.ContentLength)
			}
			w = countingWriter{w, &p.inBytes}
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	return p, nil
}

// ---------------------------------------------------------------------------
// Processes.

type minioProc struct {
	addr string
	cmd  *exec.Cmd
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startMinIO(dir string) (*minioProc, error) {
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "minio.log"))
	if err != nil {
		return nil, err
	}
	m := &minioProc{addr: freeAddr()}
	m.cmd = exec.Command(*minioBin, "server", "--quiet", "--address", m.addr, "--console-address", freeAddr(), filepath.Join(dir, "data"))
	m.cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+accessKey, "MINIO_ROOT_PASSWORD="+secretKey,
		"MINIO_REGION=us-east-1", "MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=on")
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get("http://" + m.addr + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return m, nil
			}
		}
		if time.Now().After(deadline) {
			m.stop()
			return nil, fmt.Errorf("MinIO did not start: %v", err)
		}
	}
}

func (m *minioProc) stop() {
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	_ = m.cmd.Wait()
}

type broker struct {
	dir, addr, metrics, endpoint string
	cmd                          *exec.Cmd
}

func startBroker(dir, endpoint string) (*broker, error) {
	b := &broker{dir: dir, addr: freeAddr(), metrics: freeAddr(), endpoint: endpoint}
	return b, b.start()
}

func (b *broker) start() error {
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(b.dir, "broker.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	b.cmd = exec.Command(*tiercelBin, "serve", "--listen", b.addr, "--metrics-listen", b.metrics,
		"--data-dir", filepath.Join(b.dir, "data"), "--object-store", "s3://"+bucket+"/"+prefix,
		"--s3-endpoint", "http://"+b.endpoint, "--s3-region", "us-east-1",
		"--override", "remote.log.manager.task.interval.ms=1000", "--override", "log.retention.check.interval.ms=1000")
	b.cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+accessKey, "AWS_SECRET_ACCESS_KEY="+secretKey)
	b.cmd.Stdout, b.cmd.Stderr = logf, logf
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := b.cmd.Start(); err != nil {
		return err
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", b.addr); err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("the broker did not start; see broker.log")
		}
	}
}

func (b *broker) stop() {
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	_ = b.cmd.Wait()
}

func (b *broker) restart() error {
	b.stop()
	return b.start()
}

// metric returns the /metrics lines that contain name.
func (b *broker) metric(name string) string {
	resp, err := http.Get("http://" + b.metrics + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out []string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, name) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "; ")
}

// localBytes sums the .log files of a topic's partition directories.
func (b *broker) localBytes(topic string) map[string]int64 {
	out := map[string]int64{}
	dirs, _ := filepath.Glob(filepath.Join(b.dir, "data", topic+"-*"))
	for _, d := range dirs {
		files, _ := filepath.Glob(filepath.Join(d, "*.log"))
		for _, f := range files {
			if st, err := os.Stat(f); err == nil {
				out[filepath.Base(d)] += st.Size()
			}
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Load.

// value fills v with record i's incompressible bytes, from a shared random
// buffer: windows at pseudo-random offsets, so batches do not compress.
var randBuf = func() []byte {
	b := make([]byte, 64*mib)
	_, _ = rand.Read(b)
	return b
}()

func value(i int) []byte {
	off := (uint64(i) * 2654435761) % uint64(len(randBuf)-recSize)
	return randBuf[off : off+recSize]
}

// produce writes n records to topic and returns MB/s (1 MB = 1e6 bytes).
func produce(ctx context.Context, addr, topic string, n int) (float64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(),
		kgo.MaxProduceRequestsInflightPerBroker(1))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	var failed atomic.Value
	began := time.Now()
	for i := 0; i < n; i++ {
		cl.Produce(ctx, &kgo.Record{Value: value(i)}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.CompareAndSwap(nil, err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, err
	}
	if err, _ := failed.Load().(error); err != nil {
		return 0, err
	}
	return float64(n*recSize) / time.Since(began).Seconds() / 1e6, nil
}

// consume reads every partition of topic from offset 0 up to ends and
// returns the elapsed time.
func consume(ctx context.Context, addr, topic string, ends map[int32]int64, partBytes int) (time.Duration, error) {
	offs := map[int32]kgo.Offset{}
	for p := range ends {
		offs[p] = kgo.NewOffset().At(0)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}),
		kgo.FetchMaxPartitionBytes(int32(partBytes)), kgo.FetchMaxBytes(64*mib))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	next := map[int32]int64{}
	done := 0
	began := time.Now()
	for done < len(ends) {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		var ferr error
		fs.EachError(func(_ string, p int32, err error) { ferr = fmt.Errorf("partition %d: %w", p, err) })
		if ferr != nil {
			return 0, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next[r.Partition] {
				ferr = fmt.Errorf("partition %d: offset %d after %d", r.Partition, r.Offset, next[r.Partition])
			}
			next[r.Partition] = r.Offset + 1
			if r.Offset+1 == ends[r.Partition] {
				done++
			}
		})
		if ferr != nil {
			return 0, ferr
		}
	}
	return time.Since(began), nil
}

// ---------------------------------------------------------------------------
// Offload and cold reads.

type manifest struct {
	Segments []struct {
		Base int64  `json:"base"`
		Next int64  `json:"next"`
		Size int64  `json:"size"`
		Key  string `json:"key"`
	} `json:"segments"`
}

func readManifests(ctx context.Context, mc *minio.Client, topic string) (map[int32]*manifest, error) {
	out := map[int32]*manifest{}
	for obj := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix + "/topics/" + topic + "-", Recursive: true}) {
		if obj.Err != nil {
			return nil, obj.Err
		}
		if !strings.HasSuffix(obj.Key, "/manifest") {
			continue
		}
		parts := strings.Split(obj.Key, "/")
		p, _ := strconv.Atoi(parts[len(parts)-2])
		o, err := mc.GetObject(ctx, bucket, obj.Key, minio.GetObjectOptions{})
		if err != nil {
			return nil, err
		}
		var m manifest
		err = json.NewDecoder(o).Decode(&m)
		o.Close()
		if err != nil {
			return nil, err
		}
		out[int32(p)] = &m
	}
	return out, nil
}

func offloadAndRead(ctx context.Context, b *broker, px *proxy, mc, mcProxy *minio.Client, segBytes int64) (*OffloadResult, error) {
	topic := fmt.Sprintf("cold-%d", segBytes)
	const parts = 1
	res := &OffloadResult{SegmentBytes: segBytes, FetchPartitionMB: 4}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr))
	if err != nil {
		return nil, err
	}
	adm := kadm.NewClient(cl)
	defer cl.Close()
	if r, err := adm.CreateTopic(ctx, parts, 1, map[string]*string{
		"segment.bytes":         kadm.StringPtr(strconv.FormatInt(segBytes, 10)),
		"local.retention.bytes": kadm.StringPtr("0"),
	}, topic); err != nil || r.Err != nil {
		return nil, fmt.Errorf("create %s: %v %v", topic, err, r.Err)
	}
	before := px.snapshot()
	n := int(*coldBytes / recSize)
	began := time.Now()
	mbps, err := produce(ctx, b.addr, topic, n)
	if err != nil {
		return nil, err
	}
	log.Printf("%s: produced %d MiB at %.0f MB/s; loadavg %s", topic, *coldBytes>>20, mbps, loadavg())
	// Offloaded: every sealed segment in the manifest, and local
	// retention has removed it locally.
	want := int(*coldBytes / segBytes)
	var ms map[int32]*manifest
	for deadline := time.Now().Add(10 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if ms, err = readManifests(ctx, mc, topic); err != nil {
			return nil, err
		}
		if m := ms[0]; m != nil && len(m.Segments) >= want {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: offload did not finish", topic)
		}
	}
	res.OffloadSeconds = time.Since(began).Seconds()
	res.Requests = diff(px.snapshot(), before)
	ends := map[int32]int64{}
	for p, m := range ms {
		for _, s := range m.Segments {
			res.OffloadedBytes += s.Size
			res.Segments++
		}
		ends[p] = m.Segments[len(m.Segments)-1].Next
	}
	res.PutClassPerGiB = float64(putClass(res.Requests)) / (float64(res.OffloadedBytes) / gib)
	for _, m := range ms {
		for _, s := range m.Segments {
			res.ChunksPerRead += (s.Size + chunk - 1) / chunk
		}
	}
	log.Printf("%s: %d segments, %d MiB offloaded; requests %v; %.1f PUT-class per GiB",
		topic, res.Segments, res.OffloadedBytes>>20, res.Requests, res.PutClassPerGiB)
	// Wait for local retention: the remote part must be remote only.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		var local int64
		for _, v := range b.localBytes(topic) {
			local += v
		}
		if local < segBytes {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: local retention did not remove the offloaded segments (%d local bytes)", topic, local)
		}
	}

	raw1, err := rawRangedGets(ctx, mc, ms)
	if err != nil {
		return nil, err
	}
	// Cold read: a cache that has seen nothing.
	before = px.snapshot()
	took, err := consume(ctx, b.addr, topic, ends, 4*mib)
	if err != nil {
		return nil, err
	}
	cold := diff(px.snapshot(), before)
	res.ColdReadMBps = float64(res.OffloadedBytes) / took.Seconds() / 1e6
	res.ColdGets = getClass(cold)
	res.ColdRequests = cold
	res.ColdGetsPerGiB = float64(res.ColdGets) / (float64(res.OffloadedBytes) / gib)
	raw2, err := rawRangedGets(ctx, mc, ms)
	if err != nil {
		return nil, err
	}
	res.RawGetMBps = []float64{raw1, raw2}
	res.ColdVsRaw = res.ColdReadMBps / max(raw1, raw2)
	if res.RawGetViaProxyMBps, err = rawRangedGets(ctx, mcProxy, ms); err != nil {
		return nil, err
	}
	res.ColdVsRawViaProxy = res.ColdReadMBps / res.RawGetViaProxyMBps
	log.Printf("%s: cold read %.0f MB/s (%d GETs, %.0f per GiB; %v); raw ranged GETs %.0f and %.0f MB/s (%.2fx), through the proxy %.0f MB/s (%.2fx); loadavg %s",
		topic, res.ColdReadMBps, res.ColdGets, res.ColdGetsPerGiB, cold, raw1, raw2, res.ColdVsRaw,
		res.RawGetViaProxyMBps, res.ColdVsRawViaProxy, loadavg())

	for i := 0; i < *coldRepeat; i++ {
		if err := b.restart(); err != nil {
			return nil, err
		}
		took, err := consume(ctx, b.addr, topic, ends, 4*mib)
		if err != nil {
			return nil, err
		}
		res.ColdRepeatsMBps = append(res.ColdRepeatsMBps, float64(res.OffloadedBytes)/took.Seconds()/1e6)
	}
	if len(res.ColdRepeatsMBps) > 0 {
		log.Printf("%s: the cold read again, each on a restarted broker: %.0f MB/s", topic, res.ColdRepeatsMBps)
	}

	// A second reader, after the first.
	before = px.snapshot()
	took, err = consume(ctx, b.addr, topic, ends, 4*mib)
	if err != nil {
		return nil, err
	}
	second := diff(px.snapshot(), before)
	res.SecondReadMBps = float64(res.OffloadedBytes) / took.Seconds() / 1e6
	// Chunk hit ratio: the share of the chunks read that needed no GET.
	// A chunk loaded more than once (evicted, or never admitted) counts
	// each extra GET against the ratio, which is clamped at 0.
	res.SecondChunkGets = second["get_range"]
	res.SecondHitRatio = max(0, 1-float64(second["get_range"])/float64(res.ChunksPerRead))
	res.BrokerHitMetric = b.metric("tiercel_remote_cache_hit")
	log.Printf("%s: second reader %.0f MB/s, %d chunk GETs of %d chunks: hit ratio %.2f; broker: %s",
		topic, res.SecondReadMBps, second["get_range"], res.ChunksPerRead, res.SecondHitRatio, res.BrokerHitMetric)

	// Two readers at once, on a fresh cache; the second starts pairDelay
	// later, well within the cache's budget behind the first.
	if err := b.restart(); err != nil {
		return nil, err
	}
	before = px.snapshot()
	var wg sync.WaitGroup
	var errs [2]error
	var tooks [2]time.Duration
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * *pairDelay)
			tooks[i], errs[i] = consume(ctx, b.addr, topic, ends, 4*mib)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	pair := diff(px.snapshot(), before)
	res.PairReadMBps = float64(2*res.OffloadedBytes) / (tooks[1] + *pairDelay).Seconds() / 1e6
	// The first reader alone needed about ColdGets chunk GETs; whatever the
	// pair needed beyond that is the second reader's misses.
	extra := float64(pair["get_range"]) - float64(cold["get_range"])
	res.PairSecondHit = max(0, 1-max(extra, 0)/float64(res.ChunksPerRead))
	log.Printf("%s: two readers at once: %.0f MB/s together, %d chunk GETs (one reader alone: %d): second reader's hit ratio %.2f",
		topic, res.PairReadMBps, pair["get_range"], cold["get_range"], res.PairSecondHit)

	// Reference: the same client reading the same amount from a local log
	// (page cache), through the hot path.
	ref := topic + "-local"
	if r, err := adm.CreateTopic(ctx, parts, 1, map[string]*string{
		"segment.bytes": kadm.StringPtr(strconv.FormatInt(segBytes, 10)), "remote.storage.enable": kadm.StringPtr("false"),
	}, ref); err != nil || r.Err != nil {
		return nil, fmt.Errorf("create %s: %v %v", ref, err, r.Err)
	}
	if _, err := produce(ctx, b.addr, ref, n); err != nil {
		return nil, err
	}
	var localBytes int64
	for _, v := range b.localBytes(ref) {
		localBytes += v
	}
	if took, err = consume(ctx, b.addr, ref, map[int32]int64{0: int64(n)}, 4*mib); err != nil {
		return nil, err
	}
	res.HotReadMBps = float64(localBytes) / took.Seconds() / 1e6
	log.Printf("%s: the same read from local disk: %.0f MB/s", topic, res.HotReadMBps)
	if _, err := adm.DeleteTopics(ctx, ref); err != nil {
		return nil, err
	}
	return res, nil
}

// rawRangedGets reads every .log object of the manifests with sequential
// ranged GETs of the chunk size, one stream per partition, straight to
// MinIO, and returns MB/s.
func rawRangedGets(ctx context.Context, mc *minio.Client, ms map[int32]*manifest) (float64, error) {
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(ms))
	began := time.Now()
	for _, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, chunk)
			for _, s := range m.Segments {
				key := prefix + "/" + s.Key + ".log"
				for off := int64(0); off < s.Size; off += chunk {
					opts := minio.GetObjectOptions{}
					if err := opts.SetRange(off, min(off+chunk, s.Size)-1); err != nil {
						errs <- err
						return
					}
					o, err := mc.GetObject(ctx, bucket, key, opts)
					if err != nil {
						errs <- err
						return
					}
					n, err := io.ReadFull(o, buf[:min(chunk, s.Size-off)])
					o.Close()
					if err != nil {
						errs <- fmt.Errorf("%s at %d: %w", key, off, err)
						return
					}
					total.Add(int64(n))
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(total.Load()) / time.Since(began).Seconds() / 1e6, nil
}

// rawPut uploads one 1 GiB object with minio-go's multipart upload, 16 MiB
// parts, four at once (the broker's S3 settings), and returns MB/s.
func rawPut(ctx context.Context, mc *minio.Client) (float64, error) {
	data := bytes.Repeat(randBuf, gib/len(randBuf))
	began := time.Now()
	if _, err := mc.PutObject(ctx, bucket, "raw/put", bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{PartSize: 16 * mib, NumThreads: 4}); err != nil {
		return 0, err
	}
	mbps := float64(len(data)) / time.Since(began).Seconds() / 1e6
	return mbps, mc.RemoveObject(ctx, bucket, "raw/put", minio.RemoveObjectOptions{})
}

// fioWrite runs fio's sequential direct write, 1 MiB blocks, 1 GiB.
func fioWrite(dir string) (float64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	out, err := exec.Command("fio", "--name=seqwrite", "--rw=write", "--bs=1M", "--size=1G", "--direct=1",
		"--ioengine=libaio", "--directory="+dir, "--output-format=json").Output()
	if err != nil {
		return 0, err
	}
	var r struct {
		Jobs []struct {
			Write struct {
				BW float64 `json:"bw_bytes"`
			} `json:"write"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(out, &r); err != nil || len(r.Jobs) == 0 {
		return 0, fmt.Errorf("fio output: %v", err)
	}
	return r.Jobs[0].Write.BW / 1e6, nil
}

// ---------------------------------------------------------------------------
// Hot produce.

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func hotProduce(ctx context.Context, b *broker) (HotResult, error) {
	const seg, localRet = 64 * mib, 128 * mib
	res := HotResult{Partitions: *hotParts, BytesPerRun: *hotBytes, LocalBoundBytes: localRet + 2*seg}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr))
	if err != nil {
		return res, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for topic, remote := range map[string]string{"hot-on": "true", "hot-off": "false"} {
		cfg := map[string]*string{"segment.bytes": kadm.StringPtr(strconv.Itoa(seg)), "remote.storage.enable": kadm.StringPtr(remote)}
		if remote == "true" {
			cfg["local.retention.bytes"] = kadm.StringPtr(strconv.Itoa(localRet))
		}
		if r, err := adm.CreateTopic(ctx, int32(*hotParts), 1, cfg, topic); err != nil || r.Err != nil {
			return res, fmt.Errorf("create %s: %v %v", topic, err, r.Err)
		}
	}
	n := int(*hotBytes / recSize)
	for run := 0; run < *hotRuns; run++ {
		// Offload on: sample the local bytes while producing.
		stop := make(chan struct{})
		sampled := make(chan int64)
		go func() {
			var worst int64
			for {
				for _, v := range b.localBytes("hot-on") {
					worst = max(worst, v)
				}
				select {
				case <-stop:
					sampled <- worst
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
		on, err := produce(ctx, b.addr, "hot-on", n)
		close(stop)
		res.MaxLocalBytes = max(res.MaxLocalBytes, <-sampled)
		if err != nil {
			return res, err
		}
		res.OnMBps = append(res.OnMBps, on)
		// Let offload catch up before the next run, so that it does not
		// run during the offload-off measurement.
		began := time.Now()
		for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
			caught := true
			for _, v := range b.localBytes("hot-on") {
				if v > localRet+seg {
					caught = false
				}
			}
			if caught {
				break
			}
			if time.Now().After(deadline) {
				return res, errors.New("offload did not catch up with hot-on")
			}
		}
		res.CatchUpSeconds = append(res.CatchUpSeconds, time.Since(began).Seconds())
		off, err := produce(ctx, b.addr, "hot-off", n)
		if err != nil {
			return res, err
		}
		res.OffMBps = append(res.OffMBps, off)
		log.Printf("hot produce run %d: offload on %.0f MB/s, off %.0f MB/s; hot-on local peak %d MiB per partition, caught up %.1fs after",
			run+1, on, off, res.MaxLocalBytes>>20, res.CatchUpSeconds[run])
	}
	res.OnMedian, res.OffMedian = median(res.OnMBps), median(res.OffMBps)
	if res.OffMedian > 0 {
		res.Ratio = res.OnMedian / res.OffMedian
	}
	return res, nil
}
