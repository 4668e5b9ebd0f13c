package cluster_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/internal/testenv"
	"github.com/tiercel/tiercel/internal/testproc"
)

// Broker settings every cluster test runs with: failure detection in a
// couple of seconds rather than Kafka's tens, a short controller lease,
// and metadata polled often. They are the knobs the issue names; the
// values are chosen so that a 2-core machine running the race-enabled
// test binary next to three brokers does not see false failures.
var fastSettings = map[string]string{
	"tiercel.gossip.probe.interval.ms":     "500",
	"tiercel.gossip.suspicion.mult":        "4",
	"tiercel.controller.lease.ttl.ms":      "3000",
	"tiercel.controller.lease.renew.ms":    "500",
	"tiercel.controller.lease.poll.ms":     "250",
	"tiercel.metadata.refresh.ms":          "500",
	"replica.lag.time.max.ms":              "5000",
	"replica.fetch.wait.max.ms":            "200",
	"replica.fetch.backoff.ms":             "200",
	"default.replication.factor":           "3",
	"min.insync.replicas":                  "2",
	"offsets.topic.replication.factor":     "3",
	"offsets.topic.num.partitions":         "3",
	"num.partitions":                       "1",
	"auto.create.topics.enable":            "false",
	"tiercel.leader.rebalance.interval.ms": "0",
	"group.initial.rebalance.delay.ms":     "0",
	"group.min.session.timeout.ms":         "1000",
	"log.retention.check.interval.ms":      "1000",
	"remote.log.manager.task.interval.ms":  "1000",
	// The test machine's disk may be fuller than a broker's default 90%
	// allows; the disk guard is not what these tests are about.
	"tiercel.local.disk.max.used.ratio": "1.0",
}

// clusterOpts shapes a cluster.
type clusterOpts struct {
	// brokers is the number of brokers (default 3), with node ids 1..n.
	brokers int
	// netns runs every broker in a network namespace of its own, joined
	// by a bridge, so that one can be cut off (isolate). Otherwise they
	// listen on 127.0.0.1 with distinct ports.
	netns bool
	// settings override fastSettings (a value of "" removes one).
	settings map[string]string
	// noStart creates the brokers without starting them.
	noStart bool
}

// cluster is a set of broker processes sharing one bucket.
type cluster struct {
	t        *testing.T
	minio    *testenv.MinIOServer
	prefix   string // key prefix of the cluster in the bucket
	endpoint string // MinIO as the brokers reach it
	net      *network
	logDir   string
	brokers  []*broker
	settings map[string]string

	mu      sync.Mutex
	clients map[string]*kgo.Client // one client per broker address, for raw requests
}

// newCluster starts MinIO (shared, with a bucket of the test's own),
// the network when asked, and the brokers, then waits until every broker
// sees every other and a controller is known.
func newCluster(t *testing.T, o clusterOpts) *cluster {
	t.Helper()
	if o.brokers == 0 {
		o.brokers = 3
	}
	c := &cluster{
		t:        t,
		minio:    testenv.MinIO(t),
		prefix:   "tiercel",
		logDir:   t.TempDir(),
		settings: maps.Clone(fastSettings),
		clients:  map[string]*kgo.Client{},
	}
	for k, v := range o.settings {
		if v == "" {
			delete(c.settings, k)
		} else {
			c.settings[k] = v
		}
	}
	c.endpoint = c.minio.Endpoint
	if o.netns {
		c.net = newNetwork(t, o.brokers)
		c.endpoint = "http://" + c.net.forward(t, strings.TrimPrefix(c.minio.Endpoint, "http://"))
	}
	binary := testproc.Binary(t)
	dataRoot := t.TempDir()
	for i := range o.brokers {
		b := &broker{c: c, id: int32(i + 1), bin: binary}
		if c.net != nil {
			ip := c.net.ip(i)
			b.ns = c.net.ns(i)
			b.kafka = net.JoinHostPort(ip, "9092")
			b.gossip = net.JoinHostPort(ip, "7946")
			b.metrics = net.JoinHostPort(ip, "9644")
		} else {
			b.kafka = freeTCPAddr(t)
			b.gossip = freeTCPUDPAddr(t)
			b.metrics = freeTCPAddr(t)
		}
		b.dataDir = filepath.Join(dataRoot, fmt.Sprintf("broker-%d", b.id))
		b.logPath = filepath.Join(c.logDir, fmt.Sprintf("broker-%d.log", b.id))
		c.brokers = append(c.brokers, b)
	}
	t.Cleanup(func() {
		// Kill every broker (a SIGSTOPped one too) before the network and
		// the bucket go away; then show what they said if the test failed.
		for _, b := range c.brokers {
			b.cont()
			b.kill()
		}
		c.closeClients()
		if dir := os.Getenv("TIERCEL_CLUSTER_LOGS"); dir != "" {
			c.copyLogs(filepath.Join(dir, sanitize(t.Name())))
		}
		if t.Failed() {
			for _, b := range c.brokers {
				t.Logf("---- broker %d (%s) log tail (whole log: %s) ----\n%s", b.id, b.kafka, b.logPath, logTail(b.logPath, 120))
			}
		}
	})
	if !o.noStart {
		for _, b := range c.brokers {
			b.start()
		}
		c.waitFormed(60 * time.Second)
	}
	return c
}

// storeURL is the --object-store of every broker.
func (c *cluster) storeURL() string { return "s3://" + c.minio.Bucket + "/" + c.prefix }

// seeds lists the Kafka addresses of all brokers.
func (c *cluster) seeds() []string {
	var out []string
	for _, b := range c.brokers {
		out = append(out, b.kafka)
	}
	return out
}

// broker returns the broker with node id id.
func (c *cluster) broker(id int32) *broker {
	for _, b := range c.brokers {
		if b.id == id {
			return b
		}
	}
	c.t.Fatalf("no broker %d", id)
	return nil
}

// running lists the brokers whose process runs and is not paused.
func (c *cluster) running() []*broker {
	var out []*broker
	for _, b := range c.brokers {
		if b.isRunning() && !b.isPaused() {
			out = append(out, b)
		}
	}
	return out
}

// waitFormed waits until every running broker lists all running brokers
// in Metadata and they agree on a controller that is one of them.
func (c *cluster) waitFormed(timeout time.Duration) int32 {
	c.t.Helper()
	var ctrl int32 = -1
	waitFor(c.t, timeout, "cluster formed (all brokers listed, one controller)", func() (bool, string) {
		live := c.running()
		want := make([]int32, 0, len(live))
		for _, b := range live {
			want = append(want, b.id)
		}
		slices.Sort(want)
		ctrl = -1
		for _, b := range live {
			md, err := c.metadata(b, nil)
			if err != nil {
				return false, fmt.Sprintf("broker %d: %v", b.id, err)
			}
			var got []int32
			for _, br := range md.Brokers {
				got = append(got, br.NodeID)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				return false, fmt.Sprintf("broker %d lists brokers %v, want %v", b.id, got, want)
			}
			if md.ControllerID < 0 || !slices.Contains(want, md.ControllerID) {
				return false, fmt.Sprintf("broker %d reports controller %d", b.id, md.ControllerID)
			}
			if ctrl >= 0 && md.ControllerID != ctrl {
				return false, fmt.Sprintf("brokers disagree on the controller: %d vs %d", ctrl, md.ControllerID)
			}
			ctrl = md.ControllerID
		}
		return true, ""
	})
	return ctrl
}

// client returns a kgo client whose only seed is addr, for requests to
// that very broker. Clients are cached and closed at cleanup.
func (c *cluster) client(addr string) *kgo.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl := c.clients[addr]; cl != nil {
		return cl
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTimeout(2*time.Second),
		kgo.RequestTimeoutOverhead(3*time.Second), kgo.RetryTimeout(time.Second))
	if err != nil {
		c.t.Fatal(err)
	}
	c.clients[addr] = cl
	return cl
}

func (c *cluster) closeClients() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, cl := range c.clients {
		cl.Close()
		delete(c.clients, k)
	}
}

// request sends req to broker b itself (not to whichever broker kgo
// would pick), with a bounded wait.
func (c *cluster) request(b *broker, req kmsg.Request, timeout time.Duration) (kmsg.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.client(b.kafka).SeedBrokers()[0].Request(ctx, req)
}

// metadata asks broker b for Metadata of topics (nil: all topics).
func (c *cluster) metadata(b *broker, topics []string) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	if topics != nil {
		// An empty, non-nil list asks for no topics; nil asks for all.
		req.Topics = []kmsg.MetadataRequestTopic{}
		for _, tp := range topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(tp)
			req.Topics = append(req.Topics, rt)
		}
	}
	resp, err := c.request(b, req, 3*time.Second)
	if err != nil {
		return nil, err
	}
	return resp.(*kmsg.MetadataResponse), nil
}

// describeCluster asks broker b for DescribeCluster.
func (c *cluster) describeCluster(b *broker) (*kmsg.DescribeClusterResponse, error) {
	resp, err := c.request(b, kmsg.NewPtrDescribeClusterRequest(), 3*time.Second)
	if err != nil {
		return nil, err
	}
	r := resp.(*kmsg.DescribeClusterResponse)
	if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
		return nil, err
	}
	return r, nil
}

// admin returns a kadm client seeded with every broker.
func (c *cluster) admin() *kadm.Client {
	c.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.DialTimeout(2*time.Second),
		kgo.RequestTimeoutOverhead(5*time.Second), kgo.MetadataMinAge(100*time.Millisecond),
		kgo.RetryTimeout(20*time.Second))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// createTopic creates a topic with RF 3 (or less with fewer brokers)
// and waits until every running broker reports a leader for every
// partition.
func (c *cluster) createTopic(name string, partitions int32, configs map[string]*string) {
	c.t.Helper()
	rf := int16(min(3, len(c.brokers)))
	adm := c.admin()
	var last error
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := adm.CreateTopic(ctx, partitions, rf, configs, name)
		cancel()
		if err == nil {
			err = resp.Err
		}
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
			last = nil
			break
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	if last != nil {
		c.t.Fatalf("create topic %s: %v", name, last)
	}
	c.waitLeaders(name, partitions, 30*time.Second)
}

// waitLeaders waits until every running broker reports a live leader for
// every partition of topic, and they agree.
func (c *cluster) waitLeaders(topic string, partitions int32, timeout time.Duration) {
	c.t.Helper()
	waitFor(c.t, timeout, "leaders of "+topic, func() (bool, string) {
		var first map[int32]int32
		for _, b := range c.running() {
			md, err := c.metadata(b, []string{topic})
			if err != nil {
				return false, fmt.Sprintf("broker %d: %v", b.id, err)
			}
			leaders, err := leadersOf(md, topic)
			if err != nil {
				return false, fmt.Sprintf("broker %d: %v", b.id, err)
			}
			if int32(len(leaders)) != partitions {
				return false, fmt.Sprintf("broker %d knows %d partitions", b.id, len(leaders))
			}
			if first != nil && !maps.Equal(first, leaders) {
				return false, fmt.Sprintf("brokers disagree on leaders: %v vs %v", first, leaders)
			}
			first = leaders
		}
		return true, ""
	})
}

func leadersOf(md *kmsg.MetadataResponse, topic string) (map[int32]int32, error) {
	for _, t := range md.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return nil, err
		}
		out := map[int32]int32{}
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("partition %d: %w", p.Partition, err)
			}
			if p.Leader < 0 {
				return nil, fmt.Errorf("partition %d has no leader", p.Partition)
			}
			out[p.Partition] = p.Leader
		}
		return out, nil
	}
	return nil, fmt.Errorf("topic %s not in metadata", topic)
}

// leader returns the leader of topic-partition according to the metadata
// document in the bucket (the controller's decision), or -1.
func (c *cluster) leader(topic string, partition int32) int32 {
	c.t.Helper()
	doc, err := c.readMetadataDoc()
	if err != nil {
		c.t.Fatalf("reading the metadata document: %v", err)
	}
	t := doc.Topics[topic]
	if t == nil || int(partition) >= len(t.Partitions) {
		return -1
	}
	return t.Partitions[partition].Leader
}

// waitSettled waits until, for every partition of topics, the document
// names a leader and an ISR of every replica, and every running broker's
// Metadata agrees with the document's leader and epoch.
func (c *cluster) waitSettled(timeout time.Duration, topics ...string) {
	c.t.Helper()
	err := poll(timeout, func() (bool, string) { return c.settled(topics...) })
	if err != nil {
		c.diagnose(topics...)
		c.t.Fatalf("waiting for the cluster to settle (full ISR, agreed leaders) for %v: %v", topics, err)
	}
}

// diagnose logs every running broker's view of topics, then makes each
// dump its goroutines (SIGQUIT) into its log, for a failure report.
func (c *cluster) diagnose(topics ...string) {
	for _, b := range c.running() {
		md, err := c.metadata(b, topics)
		if err != nil {
			c.t.Logf("broker %d: metadata: %v", b.id, err)
			continue
		}
		var parts []string
		for _, mt := range md.Topics {
			for _, mp := range mt.Partitions {
				parts = append(parts, fmt.Sprintf("%s-%d leader %d epoch %d isr %v err %d", *mt.Topic, mp.Partition, mp.Leader, mp.LeaderEpoch, mp.ISR, mp.ErrorCode))
			}
		}
		c.t.Logf("broker %d sees controller %d, %d brokers: %s", b.id, md.ControllerID, len(md.Brokers), strings.Join(parts, "; "))
	}
	if doc, err := c.readMetadataDoc(); err == nil {
		for _, name := range topics {
			if t := doc.Topics[name]; t != nil {
				c.t.Logf("document v%d epoch %d: %s %+v", doc.Version, doc.ControllerEpoch, name, t.Partitions)
			}
		}
	}
	for _, b := range c.running() {
		b.signal(syscall.SIGQUIT)
	}
	time.Sleep(time.Second)
}

func (c *cluster) settled(topics ...string) (bool, string) {
	doc, err := c.readMetadataDoc()
	if err != nil {
		return false, err.Error()
	}
	for _, name := range topics {
		t := doc.Topics[name]
		if t == nil {
			return false, "document has no topic " + name
		}
		for i, p := range t.Partitions {
			if p.Leader < 0 || len(p.ISR) != len(p.Replicas) {
				return false, fmt.Sprintf("%s-%d: leader %d isr %v replicas %v", name, i, p.Leader, p.ISR, p.Replicas)
			}
		}
	}
	live := c.running()
	for _, b := range live {
		md, err := c.metadata(b, topics)
		if err != nil {
			return false, fmt.Sprintf("broker %d: %v", b.id, err)
		}
		if len(md.Brokers) != len(live) {
			return false, fmt.Sprintf("broker %d lists %d brokers, %d are running", b.id, len(md.Brokers), len(live))
		}
		for _, mt := range md.Topics {
			t := doc.Topics[*mt.Topic]
			if t == nil {
				return false, fmt.Sprintf("broker %d reports topic %s unknown to the document", b.id, *mt.Topic)
			}
			for _, mp := range mt.Partitions {
				dp := t.Partitions[mp.Partition]
				if mp.Leader != dp.Leader || mp.LeaderEpoch != dp.LeaderEpoch || mp.ErrorCode != 0 {
					return false, fmt.Sprintf("broker %d: %s-%d leader %d epoch %d err %d, document %d epoch %d",
						b.id, *mt.Topic, mp.Partition, mp.Leader, mp.LeaderEpoch, mp.ErrorCode, dp.Leader, dp.LeaderEpoch)
				}
			}
		}
	}
	return true, ""
}

// logs returns everything broker id logged so far, across restarts.
func (c *cluster) logs(id int32) string {
	b, _ := os.ReadFile(c.broker(id).logPath)
	return string(b)
}

func (c *cluster) copyLogs(dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		c.t.Logf("TIERCEL_CLUSTER_LOGS: %v", err)
		return
	}
	for _, b := range c.brokers {
		data, err := os.ReadFile(b.logPath)
		if err == nil {
			_ = os.WriteFile(filepath.Join(dir, filepath.Base(b.logPath)), data, 0o644)
		}
	}
	c.t.Logf("broker logs copied to %s", dir)
}

// broker is one broker process, restartable with the same arguments and
// data directory.
type broker struct {
	c       *cluster
	id      int32
	bin     string
	ns      string // network namespace, "" on loopback
	kafka   string
	gossip  string
	metrics string
	dataDir string
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	paused bool
	starts int
}

// args builds the command line: every other broker is a gossip seed.
func (b *broker) args() []string {
	var join []string
	for _, o := range b.c.brokers {
		if o != b {
			join = append(join, o.gossip)
		}
	}
	args := []string{"serve",
		"--node-id", strconv.Itoa(int(b.id)),
		"--listen", b.kafka,
		"--advertise", b.kafka,
		"--gossip-listen", b.gossip,
		"--join", strings.Join(join, ","),
		"--metrics-listen", b.metrics,
		"--data-dir", b.dataDir,
		"--object-store", b.c.storeURL(),
		"--s3-endpoint", b.c.endpoint,
		"--s3-region", b.c.minio.Region,
	}
	if lv := os.Getenv("TIERCEL_CLUSTER_LOG_LEVEL"); lv != "" {
		args = append(args, "--log-level", lv)
	}
	if os.Getenv("TIERCEL_CLUSTER_PPROF") != "" {
		args = append(args, "--pprof")
	}
	keys := slices.Sorted(maps.Keys(b.c.settings))
	for _, k := range keys {
		args = append(args, "--override", k+"="+b.c.settings[k])
	}
	return args
}

// start runs the broker and waits until its Kafka port accepts
// connections (gossip is up by then: the broker joins before it listens).
func (b *broker) start() {
	t := b.c.t
	t.Helper()
	if err := b.startErr(); err != nil {
		t.Fatal(err)
	}
}

func (b *broker) startErr() error {
	b.mu.Lock()
	if b.cmd != nil {
		b.mu.Unlock()
		return fmt.Errorf("broker %d is already running", b.id)
	}
	logf, err := os.OpenFile(b.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		b.mu.Unlock()
		return err
	}
	b.starts++
	fmt.Fprintf(logf, "==== test harness: start #%d of broker %d at %s ====\n", b.starts, b.id, time.Now().Format(time.RFC3339Nano))
	var cmd *exec.Cmd
	if b.ns != "" {
		cmd = exec.Command("ip", append([]string{"netns", "exec", b.ns, b.bin}, b.args()...)...)
	} else {
		cmd = exec.Command(b.bin, b.args()...)
	}
	cmd.Env = append(os.Environ(),
		"AWS_ACCESS_KEY_ID="+b.c.minio.AccessKey,
		"AWS_SECRET_ACCESS_KEY="+b.c.minio.SecretKey,
		"AWS_REGION="+b.c.minio.Region,
		"AWS_EC2_METADATA_DISABLED=true",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The broker dies with the test binary, whatever happens to it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	done := make(chan struct{})
	started := make(chan error, 1)
	go runLocked(cmd, logf, started, done)
	if err := <-started; err != nil {
		b.mu.Unlock()
		return fmt.Errorf("starting broker %d: %w", b.id, err)
	}
	b.cmd, b.done, b.paused = cmd, done, false
	b.mu.Unlock()

	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", b.kafka, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-done:
			b.mu.Lock()
			b.cmd = nil
			b.mu.Unlock()
			return fmt.Errorf("broker %d exited during start-up:\n%s", b.id, tail(b.logPath, 60))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("broker %d did not listen on %s within 30s:\n%s", b.id, b.kafka, tail(b.logPath, 60))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runLocked starts cmd on a goroutine locked to its OS thread and waits
// there: Pdeathsig follows the thread that forked the child.
func runLocked(cmd *exec.Cmd, logf *os.File, started chan<- error, done chan<- struct{}) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(done)
	defer logf.Close()
	if err := cmd.Start(); err != nil {
		started <- err
		return
	}
	started <- nil
	err := cmd.Wait()
	fmt.Fprintf(logf, "==== test harness: process exited at %s: %v ====\n", time.Now().Format(time.RFC3339Nano), err)
}

func (b *broker) isRunning() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cmd != nil
}

func (b *broker) isPaused() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.paused
}

func (b *broker) signal(sig syscall.Signal) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil && b.cmd.Process != nil {
		_ = b.cmd.Process.Signal(sig)
		switch sig {
		case syscall.SIGSTOP:
			b.paused = true
		case syscall.SIGCONT:
			b.paused = false
		}
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (b *broker) kill() {
	b.signal(syscall.SIGKILL)
	b.wait()
}

func (b *broker) wait() {
	b.mu.Lock()
	done := b.done
	b.mu.Unlock()
	if done == nil {
		return
	}
	<-done
	b.mu.Lock()
	if b.done == done {
		b.cmd, b.done, b.paused = nil, nil, false
	}
	b.mu.Unlock()
}

// term sends SIGTERM (controlled shutdown) and waits up to 40s.
func (b *broker) term() {
	b.c.t.Helper()
	b.mu.Lock()
	done := b.done
	b.mu.Unlock()
	if done == nil {
		return
	}
	b.signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(40 * time.Second):
		b.c.t.Errorf("broker %d did not stop within 40s of SIGTERM; killing it", b.id)
	}
	b.kill()
}

// pause and cont are SIGSTOP and SIGCONT.
func (b *broker) pause() { b.signal(syscall.SIGSTOP) }
func (b *broker) cont()  { b.signal(syscall.SIGCONT) }

// wipe removes the broker's data directory; the broker must be down.
func (b *broker) wipe() {
	b.c.t.Helper()
	if b.isRunning() {
		b.c.t.Fatalf("wipe of broker %d while it runs", b.id)
	}
	if err := os.RemoveAll(b.dataDir); err != nil {
		b.c.t.Fatal(err)
	}
}

// dataBytes is the size of the files under the data directory.
func (b *broker) dataBytes() int64 {
	var n int64
	_ = filepath.Walk(b.dataDir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// waitFor polls cond every 100ms until it holds, failing the test after
// timeout with the last reason cond gave.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	if err := poll(timeout, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// poll is waitFor returning an error instead of failing.
func poll(timeout time.Duration, cond func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	var why string
	for {
		ok, reason := cond()
		if ok {
			return nil
		}
		why = reason
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v; last: %s", timeout, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freeTCPAddr returns a loopback address whose TCP port was free.
func freeTCPAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// freeTCPUDPAddr returns a loopback address whose port was free for both
// TCP and UDP (gossip uses both on one port).
func freeTCPUDPAddr(t testing.TB) string {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err == nil {
			pc.Close()
			return addr
		}
	}
	t.Fatal("no port free for both TCP and UDP")
	return ""
}

// logTail is tail without the goroutine dump a SIGQUIT (diagnose) left.
func logTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	s := string(data)
	note := ""
	if i := strings.Index(s, "SIGQUIT: quit"); i >= 0 {
		s, note = s[:i], "\n(goroutine dump after SIGQUIT omitted; see the log file)"
	}
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + note
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' {
			return '_'
		}
		return r
	}, s)
}

// countLines counts lines of s containing substr.
func countLines(s, substr string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

// percentile returns the p-th percentile (0..100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func sortDurations(d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
}
