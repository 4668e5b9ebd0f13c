package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Helpers for the consumer group tests with franz-go.

// groupSettings are broker settings that keep group tests quick: no
// initial rebalance delay, and sessions as short as a second.
func groupSettings() []brokerOpt {
	return []brokerOpt{
		withSetting("group.initial.rebalance.delay.ms", "0"),
		withSetting("group.min.session.timeout.ms", "500"),
	}
}

// cutDialer lets a test kill a client the way kill -9 does: its
// connections close at once and it cannot reconnect, so it never sends
// LeaveGroup.
type cutDialer struct {
	mu    sync.Mutex
	dead  bool
	conns []net.Conn
}

func (d *cutDialer) dial(ctx context.Context, network, host string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dead {
		return nil, errors.New("cut: this client is dead")
	}
	c, err := (&net.Dialer{}).DialContext(ctx, network, host)
	if err == nil {
		d.conns = append(d.conns, c)
	}
	return c, err
}

func (d *cutDialer) cut() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dead = true
	for _, c := range d.conns {
		c.Close()
	}
}

// consumed records what a group consumed: per partition, per offset, by
// which member and how often.
type consumed struct {
	mu sync.Mutex
	by map[int32]map[int64][]string
	n  int
}

func newConsumed() *consumed { return &consumed{by: map[int32]map[int64][]string{}} }

func (c *consumed) add(member string, recs []*kgo.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range recs {
		m := c.by[r.Partition]
		if m == nil {
			m = map[int64][]string{}
			c.by[r.Partition] = m
		}
		m[r.Offset] = append(m[r.Offset], member)
		c.n++
	}
}

func (c *consumed) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// check verifies that every offset below ends[p] of every partition was
// consumed, and returns those consumed more than once.
func (c *consumed) check(t *testing.T, ends map[int32]int64) (dups map[int32][]int64) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	dups = map[int32][]int64{}
	for p, end := range ends {
		for o := int64(0); o < end; o++ {
			switch n := len(c.by[p][o]); {
			case n == 0:
				t.Fatalf("partition %d offset %d was never consumed (lost)", p, o)
			case n > 1:
				dups[p] = append(dups[p], o)
			}
		}
	}
	return dups
}

// firstAfter returns the lowest offset at or above from that member
// consumed in partition p, or -1.
func (c *consumed) firstBy(p int32, member string, from int64) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	best := int64(-1)
	for o, ms := range c.by[p] {
		if o < from {
			continue
		}
		for _, m := range ms {
			if m == member && (best < 0 || o < best) {
				best = o
			}
		}
	}
	return best
}

// groupConsumer is one member of a consumer group that processes every
// poll, commits it synchronously and only then lets a rebalance happen,
// so that what it consumed is exactly what it committed (unless told to
// stop committing).
type groupConsumer struct {
	name     string
	cl       *kgo.Client
	dialer   *cutDialer
	cancel   context.CancelFunc
	done     chan struct{}
	noCommit atomic.Bool
	// uncommitted are the records consumed while noCommit was set.
	mu          sync.Mutex
	uncommitted []*kgo.Record
	commitErrs  []string
	polls       atomic.Int64
	errs        atomic.Int64
}

type consumerOpt struct {
	balancer kgo.GroupBalancer
	instance string
	session  time.Duration
	extra    []kgo.Opt
}

func startGroupConsumer(t *testing.T, tb *testBroker, name, group, topic string, out *consumed, o consumerOpt) *groupConsumer {
	t.Helper()
	if o.session == 0 {
		o.session = 2 * time.Second
	}
	gc := &groupConsumer{name: name, dialer: &cutDialer{}, done: make(chan struct{})}
	opts := []kgo.Opt{
		kgo.SeedBrokers(tb.Addr),
		kgo.Dialer(gc.dialer.dial),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(o.session),
		kgo.HeartbeatInterval(o.session / 10),
		kgo.RebalanceTimeout(10 * time.Second),
		kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.RetryTimeout(30 * time.Second),
		kgo.ClientID(name),
	}
	if o.balancer != nil {
		opts = append(opts, kgo.Balancers(o.balancer))
	}
	if o.instance != "" {
		opts = append(opts, kgo.InstanceID(o.instance))
	}
	opts = append(opts, o.extra...)
	if os.Getenv("KGO_LOG") != "" {
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, func() string { return name + " " })))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	gc.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	gc.cancel = cancel
	go func() {
		defer close(gc.done)
		dirty := false
		for ctx.Err() == nil {
			// A bounded poll, so that a commit that failed is retried
			// even when no new record comes.
			pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
			fs := cl.PollRecords(pctx, 500)
			pcancel()
			if ctx.Err() != nil || fs.IsClientClosed() {
				return
			}
			fs.EachError(func(_ string, _ int32, err error) {
				if !errors.Is(err, context.DeadlineExceeded) {
					gc.errs.Add(1)
				}
			})
			recs := fs.Records()
			gc.polls.Add(1)
			out.add(name, recs)
			if gc.noCommit.Load() {
				gc.mu.Lock()
				gc.uncommitted = append(gc.uncommitted, recs...)
				gc.mu.Unlock()
				// Hold the rebalance as a stuck consumer would.
				continue
			}
			if len(recs) > 0 {
				dirty = true
			}
			if dirty {
				// Everything polled is processed: commit it. A commit
				// that fails (the broker restarting) is retried on the
				// next round; one refused because the group moved on
				// (REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION) leaves the
				// records to the next owner.
				if os.Getenv("COMMIT_LOG") != "" {
					fmt.Fprintf(os.Stderr, "%s %s commit %v\n", time.Now().Format("15:04:05.000"), name, cl.UncommittedOffsets())
				}
				if err := cl.CommitUncommittedOffsets(ctx); err != nil {
					if ctx.Err() == nil {
						gc.errs.Add(1)
						gc.mu.Lock()
						gc.commitErrs = append(gc.commitErrs, err.Error())
						gc.mu.Unlock()
					}
				} else {
					dirty = false
				}
			}
			cl.AllowRebalance()
		}
	}()
	t.Cleanup(func() { gc.stop(true) })
	return gc
}

// stop ends the poll loop; leave closes the client normally (a dynamic
// member sends LeaveGroup). A killed client is closed in the background.
func (gc *groupConsumer) stop(leave bool) {
	gc.cancel()
	<-gc.done
	if leave {
		gc.cl.AllowRebalance()
		gc.cl.Close()
	}
}

// kill cuts the member off without LeaveGroup, as kill -9 would.
func (gc *groupConsumer) kill() {
	gc.dialer.cut()
	gc.cancel()
	<-gc.done
	go gc.cl.Close() // its LeaveGroup cannot get out
}

// waitConsumed waits until the group consumed at least n records.
func waitConsumed(t *testing.T, c *consumed, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for c.total() < n {
		if time.Now().After(deadline) {
			t.Fatalf("consumed %d of %d records in %v", c.total(), n, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitAll waits until every offset below ends has been consumed.
func waitAll(t *testing.T, c *consumed, ends map[int32]int64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		missing := 0
		c.mu.Lock()
		for p, end := range ends {
			for o := int64(0); o < end; o++ {
				if len(c.by[p][o]) == 0 {
					missing++
				}
			}
		}
		c.mu.Unlock()
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records still not consumed after %v", missing, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// produceSpread produces n records per partition and returns the end
// offsets.
func produceSpread(t *testing.T, tb *testBroker, topic string, partitions int32, n int) map[int32]int64 {
	t.Helper()
	cl := tb.Client(kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(time.Millisecond))
	ctx := testCtx(t)
	var recs []*kgo.Record
	for p := int32(0); p < partitions; p++ {
		for i := 0; i < n; i++ {
			recs = append(recs, &kgo.Record{Partition: p, Value: []byte(fmt.Sprintf("p%d-%d", p, i))})
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	offs, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	ends := map[int32]int64{}
	offs.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
	return ends
}

// groupAssignment describes a group: its generation and state, and the
// partitions of topic each member (by client id) has.
type groupAssignment struct {
	state    string
	byClient map[string][]int32
	byMember map[string][]int32
}

func describeGroup(t *testing.T, adm *kadm.Client, group, topic string) groupAssignment {
	t.Helper()
	ds, err := adm.DescribeGroups(testCtx(t), group)
	if err != nil {
		t.Fatal(err)
	}
	d := ds[group]
	if d.Err != nil {
		t.Fatalf("describe %s: %v", group, d.Err)
	}
	ga := groupAssignment{state: d.State, byClient: map[string][]int32{}, byMember: map[string][]int32{}}
	for _, m := range d.Members {
		var ps []int32
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, at := range a.Topics {
				if at.Topic == topic {
					ps = append(ps, at.Partitions...)
				}
			}
		}
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		ga.byClient[m.ClientID] = ps
		ga.byMember[m.MemberID] = ps
	}
	return ga
}

// waitStable waits until the group is Stable with exactly these client
// ids as members, each with at least one partition, together covering all
// partitions once.
func waitStable(t *testing.T, adm *kadm.Client, group, topic string, partitions int32, clients ...string) groupAssignment {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var ga groupAssignment
	for {
		ga = describeGroup(t, adm, group, topic)
		if ga.state == "Stable" && len(ga.byClient) == len(clients) && covers(ga, partitions, clients) {
			return ga
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s not stable with %v: %+v", group, clients, ga)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func covers(ga groupAssignment, partitions int32, clients []string) bool {
	seen := map[int32]int{}
	for _, c := range clients {
		ps, ok := ga.byClient[c]
		if !ok || len(ps) == 0 {
			return false
		}
		for _, p := range ps {
			seen[p]++
		}
	}
	if len(seen) != int(partitions) {
		return false
	}
	for _, n := range seen {
		if n != 1 {
			return false
		}
	}
	return true
}

// committed returns the group's committed offsets of topic.
func committed(t *testing.T, adm *kadm.Client, group, topic string) map[int32]int64 {
	t.Helper()
	resp, err := adm.FetchOffsets(testCtx(t), group)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Err != nil {
			t.Fatalf("fetch offsets %s-%d: %v", o.Topic, o.Partition, o.Err)
		}
		if o.Topic == topic {
			out[o.Partition] = o.At
		}
	})
	return out
}
