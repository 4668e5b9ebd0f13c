package main

import (
	"github.com/tiercel/tiercel/internal/bucketcheck"

	"context"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tiercel/tiercel/internal/testenv"
	"github.com/tiercel/tiercel/internal/testproc"
)

// throttleProxy forwards TCP connections to a server and limits the bytes
// sent towards it, all connections together, to a rate: a slow link to
// the object store, so that an upload of a large segment takes seconds.
type throttleProxy struct {
	ln     net.Listener
	target string
	rate   atomic.Int64 // bytes per second towards the target; 0: unlimited

	mu    sync.Mutex
	next  time.Time // when the link is free again
	conns []net.Conn
}

func startThrottleProxy(t *testing.T, target string, rate int64) *throttleProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &throttleProxy{ln: ln, target: target}
	p.rate.Store(rate)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *throttleProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() {
			defer c.Close()
			defer s.Close()
			_, _ = io.Copy(c, s)
		}()
		go func() {
			defer c.Close()
			defer s.Close()
			buf := make([]byte, 16<<10)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					p.wait(n)
					if _, werr := s.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

// wait books n bytes on the shared link and sleeps until they are sent.
func (p *throttleProxy) wait(n int) {
	rate := p.rate.Load()
	if rate <= 0 {
		return
	}
	p.mu.Lock()
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	p.next = p.next.Add(time.Duration(float64(n) / float64(rate) * float64(time.Second)))
	until := p.next
	p.mu.Unlock()
	time.Sleep(time.Until(until))
}

func (p *throttleProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// TestTieredKill9DuringUpload kills the real binary with SIGKILL while it
// uploads a 64 MiB segment over a slow link to MinIO. No manifest entry may
// point at a partial or missing object; the objects the upload left are
// orphans, which the sweeper of the restarted broker removes once they are
// older than tiercel.remote.orphan.grace.ms; the segment is uploaded again
// and every acknowledged record reads back.
func TestTieredKill9DuringUpload(t *testing.T) {
	const (
		topic    = "killed"
		recSize  = 1000
		records  = 70_000 // 70 MB: one 64 MiB segment rolls
		seed     = 13
		prefix   = "kill"
		segBytes = 64 << 20
	)
	srv := testenv.MinIO(t)
	u, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	// 10 MB/s towards MinIO: the segment takes about 7 s to upload.
	proxy := startThrottleProxy(t, u.Host, 10e6)
	data := t.TempDir() + "/data"
	proc := tieredProc(t, tieredBrokerArgs(t, srv, "http://"+proxy.ln.Addr().String(), data, prefix,
		"remote.log.manager.task.interval.ms=200", "log.retention.check.interval.ms=200"))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	cl, err := kgo.NewClient(kgo.SeedBrokers(proc.Addr), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, map[string]*string{
		"segment.bytes":         kadm.StringPtr(strconv.Itoa(segBytes)),
		"local.retention.bytes": kadm.StringPtr(strconv.Itoa(segBytes)),
	}, topic); err != nil || r.Err != nil {
		t.Fatalf("create topic: %v %v", err, r.Err)
	}
	acked := make([]int64, records) // record -> offset
	recs := make([]*kgo.Record, 0, 1000)
	for i := 0; i < records; i++ {
		recs = append(recs, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: bucketcheck.Value(seed, i, recSize)})
		if len(recs) == cap(recs) || i == records-1 {
			for _, r := range cl.ProduceSync(ctx, recs...) {
				if r.Err != nil {
					t.Fatal(r.Err)
				}
				i, _ := strconv.Atoi(string(r.Record.Key))
				acked[i] = r.Record.Offset
			}
			recs = recs[:0]
		}
	}
	cl.Close()

	// Wait for the upload to be under way: its small objects are in the
	// bucket (they go first) and the .log is not. Kill a second later,
	// with the .log's parts in flight.
	mc := srv.Client()
	dirPrefix := prefix + "/topics/" + topic + "-"
	listing := func() map[string]int64 {
		out := map[string]int64{}
		for obj := range mc.ListObjects(ctx, srv.Bucket, minio.ListObjectsOptions{Prefix: dirPrefix, Recursive: true}) {
			if obj.Err != nil {
				t.Fatal(obj.Err)
			}
			out[obj.Key] = obj.Size
		}
		return out
	}
	hasExt := func(objs map[string]int64, ext string) bool {
		for k := range objs {
			if strings.HasSuffix(k, ext) {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(time.Minute)
	for objs := listing(); !hasExt(objs, ".index"); objs = listing() {
		if hasExt(objs, ".log") || time.Now().After(deadline) {
			t.Fatalf("never saw an upload in progress; bucket: %v", objs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second)
	if objs := listing(); hasExt(objs, ".log") || hasExt(objs, "/manifest") {
		t.Fatalf("the upload finished before the kill (the link is too fast): %v", objs)
	}
	proc.Kill()
	killedAt := time.Now()

	// After the kill: every manifest entry (if any) is complete; what the
	// upload left is unreferenced.
	parts := bucketcheck.MustCheck(t, srv.Client(), srv.Bucket, prefix)
	tp := parts[topic+"/0"]
	if tp == nil {
		t.Fatal("the killed upload left nothing in the bucket: it was not in progress")
	}
	if tp.Manifest != nil && len(tp.Manifest.Segments) > 0 {
		t.Fatalf("a manifest entry was written for an upload that was killed: %+v", tp.Manifest.Segments)
	}
	orphans := tp.Unreferenced()
	if len(orphans) < 3 {
		t.Fatalf("orphans after the kill: %v; want the upload's small objects", orphans)
	}
	for _, k := range orphans {
		if strings.HasSuffix(k, ".log") {
			t.Fatalf("a .log object exists for the killed upload: %s", k)
		}
	}
	// The .log's multipart upload, never completed, holds parts that are
	// not an object. (MinIO lists multipart uploads by exact key.)
	incomplete := 0
	logKey := strings.TrimSuffix(orphans[0], orphans[0][strings.LastIndexByte(orphans[0], '.'):]) + ".log"
	for up := range mc.ListIncompleteUploads(ctx, srv.Bucket, logKey, false) {
		if up.Err != nil {
			t.Fatalf("listing multipart uploads: %v", up.Err)
		}
		incomplete++
	}
	t.Logf("after kill -9: %d orphaned objects %v, %d incomplete multipart uploads (the bucket's lifecycle rule aborts those, not the sweeper)",
		len(orphans), orphans, incomplete)

	// Restart straight on MinIO, with a sweeper that runs every second
	// and a five-second grace: longer than the new upload takes, so the
	// sweeper cannot take the restarted broker's own upload for an orphan.
	proc = testproc.Start(t, proc.Addr, tieredBrokerArgs(t, srv, srv.Endpoint, data, prefix,
		"remote.log.manager.task.interval.ms=200", "log.retention.check.interval.ms=200",
		"tiercel.remote.orphan.grace.ms=5000", "tiercel.remote.sweep.interval.ms=1000")...)
	deadline = time.Now().Add(90 * time.Second)
	for {
		objs := listing()
		left := 0
		for _, k := range orphans {
			if _, ok := objs[k]; ok {
				left++
			}
		}
		parts = bucketcheck.MustCheck(t, srv.Client(), srv.Bucket, prefix)
		tp = parts[topic+"/0"]
		if left == 0 && tp != nil && tp.Manifest.Next() > 0 && len(tp.Unreferenced()) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of the killed upload's objects still there, manifest next %d, unreferenced %v",
				left, tp.Manifest.Next(), tp.Unreferenced())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("sweeper removed the orphans %v after the kill; segment uploaded again as [0, %d)",
		time.Since(killedAt).Round(100*time.Millisecond), tp.Manifest.Next())

	// Every acknowledged record is there.
	got := tieredRead(t, proc.Addr, topic, 0, records)
	for i, off := range acked {
		r := got[off]
		if r.Offset != off || string(r.Key) != strconv.Itoa(i) || string(r.Value) != string(bucketcheck.Value(seed, i, recSize)) {
			t.Fatalf("record %d acknowledged at offset %d: read back offset %d key %q", i, off, r.Offset, r.Key)
		}
	}
	// The output is read once the broker has exited.
	if err := proc.Stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(proc.Output(), "sweep removed unreferenced objects") {
		t.Fatalf("no sweep logged:\n%s", proc.Output())
	}
}
