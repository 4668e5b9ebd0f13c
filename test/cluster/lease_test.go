package cluster_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestLeaseRace: two brokers start at the same instant against an empty
// bucket. Exactly one becomes controller: the lease object names it, and
// both brokers report it in Metadata and DescribeCluster. Then the
// controller is paused (SIGSTOP) past the lease TTL: the other takes the
// lease over with a higher epoch and creates a topic. A CreateTopics
// request is queued on the paused ex-controller's socket, and it is
// resumed: whatever it does, the metadata document's controller epoch
// never goes back (a watcher reads it every 50 ms with minio-go
// throughout), no version is written with the old epoch after the new
// one, and the ex-controller stops claiming the role.
func TestLeaseRace(t *testing.T) {
	start := time.Now()
	c := newCluster(t, clusterOpts{brokers: 2, noStart: true})

	// A watcher of the bucket, from before the first broker starts.
	w := startDocWatcher(c)
	defer w.stop()

	var wg sync.WaitGroup
	errs := make([]error, len(c.brokers))
	gate := make(chan struct{})
	for i, b := range c.brokers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			errs[i] = b.startErr()
		}()
	}
	close(gate)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	first := c.waitFormed(60 * time.Second)
	lease, err := c.readLease()
	if err != nil {
		t.Fatalf("reading the lease object: %v", err)
	}
	if lease.Holder != first {
		t.Fatalf("the lease object names %d, the brokers report controller %d", lease.Holder, first)
	}
	for _, b := range c.brokers {
		dc, err := c.describeCluster(b)
		if err != nil {
			t.Fatalf("DescribeCluster on broker %d: %v", b.id, err)
		}
		if dc.ControllerID != first {
			t.Errorf("broker %d: DescribeCluster says controller %d, want %d", b.id, dc.ControllerID, first)
		}
	}
	// Exactly one broker ever acquired the lease in the race.
	acquired := 0
	for _, b := range c.brokers {
		acquired += countLines(c.logs(b.id), "controller lease acquired")
	}
	if acquired != 1 {
		t.Errorf("%d lease acquisitions logged in the race, want exactly 1", acquired)
	}
	t.Logf("race won by broker %d at controller epoch %d (%v after start)", first, lease.Epoch, time.Since(start).Round(time.Millisecond))

	old := c.broker(first)
	var other *broker
	for _, b := range c.brokers {
		if b != old {
			other = b
		}
	}
	c.createTopic("before", 1, nil)

	// Pause the controller past its TTL.
	old.pause()
	paused := time.Now()
	var newLease leaseDoc
	waitFor(t, 30*time.Second, fmt.Sprintf("broker %d taking the lease over", other.id), func() (bool, string) {
		l, err := c.readLease()
		if err != nil {
			return false, err.Error()
		}
		md, err := c.metadata(other, nil)
		if err != nil {
			return false, err.Error()
		}
		newLease = l
		return l.Holder == other.id && l.Epoch > lease.Epoch && md.ControllerID == other.id,
			fmt.Sprintf("lease %+v, broker %d reports controller %d", l, other.id, md.ControllerID)
	})
	t.Logf("broker %d took the lease over at epoch %d, %v after broker %d was paused (TTL %s ms)",
		other.id, newLease.Epoch, time.Since(paused).Round(time.Millisecond), old.id, c.settings["tiercel.controller.lease.ttl.ms"])

	// Topic creation works through the new controller alone (broker 2
	// of 2 is paused, so RF 1 here).
	createThrough(t, c, other, "after-takeover")
	doc, err := c.readMetadataDoc()
	if err != nil {
		t.Fatal(err)
	}
	if doc.Topics["after-takeover"] == nil || doc.ControllerEpoch != newLease.Epoch {
		t.Fatalf("document v%d at controller epoch %d has topics %v; want after-takeover written at epoch %d",
			doc.Version, doc.ControllerEpoch, keys(doc.Topics), newLease.Epoch)
	}

	// Queue a CreateTopics on the paused ex-controller's socket, so it is
	// the first thing it handles when it resumes, then resume it.
	conn, err := net.DialTimeout("tcp", old.kafka, 2*time.Second)
	if err != nil {
		t.Fatalf("connecting to the paused broker: %v", err)
	}
	defer conn.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 4
	req.TimeoutMillis = 10000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "from-old-controller", 1, 1
	req.Topics = append(req.Topics, rt)
	if _, err := conn.Write(kmsg.NewRequestFormatter(kmsg.FormatterClientID("lease-test")).AppendRequest(nil, req, 7)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	old.cont()
	resumed := time.Now()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	resp := kmsg.NewPtrCreateTopicsResponse()
	resp.Version = 4
	if err := readResponse(conn, 7, resp); err != nil {
		t.Fatalf("the resumed ex-controller did not answer the queued CreateTopics: %v", err)
	}
	code := resp.Topics[0].ErrorCode
	t.Logf("queued CreateTopics on the resumed ex-controller: %v", kerr.ErrorForCode(code))

	// It stops claiming to be controller.
	waitFor(t, 20*time.Second, fmt.Sprintf("broker %d to report %d as controller", old.id, other.id), func() (bool, string) {
		md, err := c.metadata(old, nil)
		if err != nil {
			return false, err.Error()
		}
		dc, err := c.describeCluster(old)
		if err != nil {
			return false, err.Error()
		}
		return md.ControllerID == other.id && dc.ControllerID == other.id,
			fmt.Sprintf("Metadata says %d, DescribeCluster %d", md.ControllerID, dc.ControllerID)
	})
	t.Logf("broker %d reports broker %d as controller %v after it resumed", old.id, other.id, time.Since(resumed).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // let a stale write, if any, land where the watcher sees it
	w.stop()

	doc, err = c.readMetadataDoc()
	if err != nil {
		t.Fatal(err)
	}
	if doc.ControllerEpoch < newLease.Epoch {
		t.Errorf("the document went back to controller epoch %d after epoch %d", doc.ControllerEpoch, newLease.Epoch)
	}
	if doc.Topics["from-old-controller"] != nil && code != 0 {
		t.Errorf("the ex-controller answered %v, yet the topic is in the document", kerr.ErrorForCode(code))
	}
	if code == 0 && doc.Topics["from-old-controller"] == nil {
		t.Errorf("the ex-controller acknowledged the topic, but the document does not have it")
	}
	if l, err := c.readLease(); err != nil || l.Holder != other.id || l.Epoch != newLease.Epoch {
		t.Errorf("lease after the ex-controller resumed: %+v (%v), want holder %d epoch %d", l, err, other.id, newLease.Epoch)
	}
	for _, v := range w.violations() {
		t.Error(v)
	}
	t.Logf("document watcher: %d reads, versions %d..%d, controller epochs seen %v; lease epochs seen %v",
		w.reads, w.firstVersion, w.lastVersion, w.epochs, w.leaseEpochs)
	oldLog := c.logs(old.id)
	for _, s := range []string{"stepping down", "no longer the controller", "lease lost", "fenced"} {
		if n := countLines(oldLog, s); n > 0 {
			t.Logf("ex-controller logged %d line(s) with %q", n, s)
		}
	}
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

// createThrough creates topic with RF 1 through broker b only.
func createThrough(t *testing.T, c *cluster, b *broker, topic string) {
	t.Helper()
	waitFor(t, 20*time.Second, "creating "+topic+" through broker "+fmt.Sprint(b.id), func() (bool, string) {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 10000
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 1, 1
		req.Topics = append(req.Topics, rt)
		raw, err := c.request(b, req, 15*time.Second)
		if err != nil {
			return false, err.Error()
		}
		err = kerr.ErrorForCode(raw.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode)
		return err == nil || err == kerr.TopicAlreadyExists, fmt.Sprint(err)
	})
}

// readResponse reads one non-flexible response frame for correlation id
// corr into resp.
func readResponse(conn net.Conn, corr int32, resp kmsg.Response) error {
	br := bufio.NewReader(conn)
	var size [4]byte
	if _, err := io.ReadFull(br, size[:]); err != nil {
		return err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(br, body); err != nil {
		return err
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != corr {
		return fmt.Errorf("correlation id %d, want %d", got, corr)
	}
	return resp.ReadFrom(body[4:])
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// docWatcher reads the metadata document and the lease every 50 ms and
// records any step back: a lower version, a lower controller epoch, or a
// version written at an epoch older than one already seen.
type docWatcher struct {
	c    *cluster
	quit chan struct{}
	done chan struct{}
	once sync.Once

	mu                        sync.Mutex
	reads                     int
	firstVersion, lastVersion int64
	lastEpoch, lastLease      int64
	epochs, leaseEpochs       []int64
	bad                       []string
}

func startDocWatcher(c *cluster) *docWatcher {
	w := &docWatcher{c: c, quit: make(chan struct{}), done: make(chan struct{}), firstVersion: -1}
	go w.run()
	return w
}

func (w *docWatcher) run() {
	defer close(w.done)
	for {
		select {
		case <-w.quit:
			return
		case <-time.After(50 * time.Millisecond):
		}
		doc, err := w.c.readMetadataDoc()
		lease, lerr := w.c.readLease()
		w.mu.Lock()
		if err == nil {
			w.reads++
			if w.firstVersion < 0 {
				w.firstVersion = doc.Version
			}
			if doc.Version < w.lastVersion {
				w.bad = append(w.bad, fmt.Sprintf("document version went back from %d to %d", w.lastVersion, doc.Version))
			}
			if doc.ControllerEpoch < w.lastEpoch {
				w.bad = append(w.bad, fmt.Sprintf("document v%d written at controller epoch %d after epoch %d was seen", doc.Version, doc.ControllerEpoch, w.lastEpoch))
			}
			if doc.ControllerEpoch > w.lastEpoch {
				w.epochs = append(w.epochs, doc.ControllerEpoch)
				w.lastEpoch = doc.ControllerEpoch
			}
			w.lastVersion = max(w.lastVersion, doc.Version)
		} else if !strings.Contains(err.Error(), "does not exist") {
			w.bad = append(w.bad, "reading the document: "+err.Error())
		}
		if lerr == nil {
			if lease.Epoch < w.lastLease {
				w.bad = append(w.bad, fmt.Sprintf("lease epoch went back from %d to %d", w.lastLease, lease.Epoch))
			}
			if lease.Epoch > w.lastLease {
				w.leaseEpochs = append(w.leaseEpochs, lease.Epoch)
				w.lastLease = lease.Epoch
			}
		}
		w.mu.Unlock()
	}
}

func (w *docWatcher) stop() {
	w.once.Do(func() { close(w.quit) })
	<-w.done
}

func (w *docWatcher) violations() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.bad...)
}
