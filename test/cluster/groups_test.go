package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestGroupAcrossCoordinatorFailover: a consumer group of two kgo members
// consumes a topic (RF 3) while an idempotent producer keeps writing to
// it; each member commits synchronously after every poll. Mid-way the
// broker hosting the group's coordinator (the leader of the group's
// __consumer_offsets partition) is killed with SIGKILL. The group must go
// on to consume every acknowledged record, and:
//
//   - committed offsets never go back (a watcher reads them every 200 ms
//     with OffsetFetch), and the first committed offsets the new
//     coordinator serves are at least the last ones confirmed before the
//     kill;
//   - a record delivered twice was not committed when the member that got
//     it the second time was assigned its partition (duplicates only
//     within what was not yet committed);
//   - at the end the committed offsets equal the end offsets.
func TestGroupAcrossCoordinatorFailover(t *testing.T) {
	const (
		topic      = "group-failover"
		group      = "failover-group"
		partitions = 4
		target     = 15000
	)
	start := time.Now()
	c := newCluster(t, clusterOpts{})
	c.createTopic(topic, partitions, nil)
	c.waitSettled(30*time.Second, topic)
	adm := c.admin()

	l := startLoad(t, c.seeds(), loadOpts{topic: topic, partitions: partitions, rate: 1500})
	l.waitAcked(2000, 60*time.Second)

	g := newGroupRun(t, c, topic, group)
	defer g.close()
	g.startMember("member-a")
	g.startMember("member-b")

	// The coordinator, and the __consumer_offsets partition it leads.
	var coord int32 = -1
	waitFor(t, 60*time.Second, "the group's coordinator", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp := adm.FindGroupCoordinators(ctx, group)
		r, ok := resp[group]
		if !ok || r.Err != nil {
			if ok && errors.Is(r.Err, kerr.UnsupportedVersion) {
				t.Fatalf("FindCoordinator for groups is not served: %v", r.Err)
			}
			return false, fmt.Sprintf("%+v", r)
		}
		coord = r.NodeID
		return true, ""
	})
	offsetsPart := javaPartitionFor(group, offsetsPartitions(c))
	waitFor(t, 30*time.Second, "__consumer_offsets to be settled", func() (bool, string) { return c.settled("__consumer_offsets") })
	if l := c.leader("__consumer_offsets", offsetsPart); l != coord {
		t.Errorf("coordinator is broker %d, but __consumer_offsets-%d is led by %d", coord, offsetsPart, l)
	}
	if doc, err := c.readMetadataDoc(); err == nil && doc.Topics["__consumer_offsets"] != nil {
		p := doc.Topics["__consumer_offsets"].Partitions[offsetsPart]
		t.Logf("__consumer_offsets-%d: replicas %v, leader %d, isr %v", offsetsPart, p.Replicas, p.Leader, p.ISR)
		if len(p.Replicas) != 3 {
			t.Errorf("__consumer_offsets-%d has %d replicas; offsets.topic.replication.factor is 3", offsetsPart, len(p.Replicas))
		}
	}
	g.waitConsumed(target/3, 90*time.Second)
	g.waitCommitted(60 * time.Second)

	before := g.lastConfirmed()
	killedAt := time.Now()
	c.broker(coord).kill()
	t.Logf("killed broker %d, coordinator of %s (__consumer_offsets-%d), after %d records consumed; confirmed commits %v",
		coord, group, offsetsPart, g.consumedCount(), before)

	// The new coordinator must serve what was committed before.
	var after map[int32]int64
	waitFor(t, 60*time.Second, "committed offsets from the new coordinator", func() (bool, string) {
		got, err := c.fetchCommitted(group, topic)
		if err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			fc := adm.FindGroupCoordinators(ctx, group)[group]
			var each []string
			for _, b := range c.running() {
				req := kmsg.NewPtrFindCoordinatorRequest()
				req.CoordinatorKey = group
				req.CoordinatorKeys = []string{group}
				raw, err := c.request(b, req, 3*time.Second)
				if err != nil {
					each = append(each, fmt.Sprintf("broker %d: %v", b.id, err))
					continue
				}
				r := raw.(*kmsg.FindCoordinatorResponse)
				if len(r.Coordinators) > 0 {
					each = append(each, fmt.Sprintf("broker %d says %d at %s:%d (err %d)", b.id, r.Coordinators[0].NodeID, r.Coordinators[0].Host, r.Coordinators[0].Port, r.Coordinators[0].ErrorCode))
				} else {
					each = append(each, fmt.Sprintf("broker %d says %d at %s:%d (err %d)", b.id, r.NodeID, r.Host, r.Port, r.ErrorCode))
				}
			}
			return false, fmt.Sprintf("%v (FindCoordinator: node %d, err %v; %v; document leader of __consumer_offsets-%d: %d)",
				err, fc.NodeID, fc.Err, each, offsetsPart, c.leader("__consumer_offsets", offsetsPart))
		}
		after = got
		return true, ""
	})
	for p, off := range before {
		if after[p] < off {
			t.Errorf("partition %d: committed %d was confirmed before the failover, the new coordinator has %d", p, off, after[p])
		}
	}
	t.Logf("new coordinator serves committed offsets %v, %v after the kill", after, time.Since(killedAt).Round(time.Millisecond))

	l.waitAcked(target, 120*time.Second)
	l.stopLoad(30 * time.Second)
	produced := l.snapshot()
	g.waitAllAcked(produced, 120*time.Second)
	g.waitCommitted(60 * time.Second)
	g.stopMembers()

	// Committed offsets at the end: the end offsets.
	ends := map[int32]int64{}
	read := readAll(t, c.seeds(), topic, 60*time.Second)
	for p, rs := range read {
		if len(rs) > 0 {
			ends[p] = rs[len(rs)-1].offset + 1
		}
	}
	final, err := c.fetchCommitted(group, topic)
	if err != nil {
		t.Fatalf("final committed offsets: %v", err)
	}
	for p, end := range ends {
		if final[p] != end {
			t.Errorf("partition %d: committed %d at the end, end offset %d", p, final[p], end)
		}
	}
	rep := g.check(produced)
	t.Logf("group: %s", rep)
	for _, e := range rep.examples {
		t.Log("  ", e)
	}
	if rep.lost+rep.committedDuplicates+rep.committedRegressions != 0 {
		t.Errorf("group checker found violations")
	}
	// The queue checker over the topic itself, too.
	qrep := check(produced, read)
	t.Logf("queue checker on the topic: %s", qrep)
	if qrep.violations() != 0 {
		t.Errorf("queue checker found %d violations", qrep.violations())
	}
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

// offsetsPartitions is offsets.topic.num.partitions of the cluster.
func offsetsPartitions(c *cluster) int32 {
	var n int32
	fmt.Sscan(c.settings["offsets.topic.num.partitions"], &n)
	return n
}

// javaPartitionFor is Kafka's partitionFor(groupId): Utils.abs of Java's
// String.hashCode, modulo the partition count.
func javaPartitionFor(group string, n int32) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(group)) {
		h = 31*h + int32(u)
	}
	if h == -1<<31 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % n
}

// fetchCommitted reads the group's committed offsets with a fresh client
// seeded with the running brokers only: a long-lived kgo client can keep
// a dead coordinator cached (see the report), which is not what is tested.
func (c *cluster) fetchCommitted(group, topic string) (map[int32]int64, error) {
	var seeds []string
	for _, b := range c.running() {
		seeds = append(seeds, b.kafka)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RequestTimeoutOverhead(2*time.Second), kgo.RetryTimeout(3*time.Second))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		return nil, err
	}
	if err := resp.Error(); err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	for p, r := range resp[topic] {
		out[p] = r.At
	}
	return out, nil
}

// groupRun is the consumer group under test and what it did.
type groupRun struct {
	t            testing.TB
	c            *cluster
	seeds        []string // of the members: every broker
	topic, group string
	ctx          context.Context
	cancel       context.CancelFunc
	wg           sync.WaitGroup

	mu         sync.Mutex
	clients    []*kgo.Client
	deliveries map[int32][]delivery  // by partition
	ids        map[int64]int         // record id -> times delivered
	assigned   map[string][]assigned // by member
	confirmed  []commit              // commits that returned success
	watched    map[int32]int64       // highest committed offset seen by the watcher
	regress    []string
	commitErrs map[string]int
}

type delivery struct {
	offset int64
	member string
	at     time.Time
}

type assigned struct {
	partition int32
	at        time.Time
}

type commit struct {
	partition int32
	offset    int64 // the next offset to consume
	at        time.Time
}

func newGroupRun(t testing.TB, c *cluster, topic, group string) *groupRun {
	ctx, cancel := context.WithCancel(context.Background())
	g := &groupRun{t: t, c: c, seeds: c.seeds(), topic: topic, group: group, ctx: ctx, cancel: cancel,
		deliveries: map[int32][]delivery{}, ids: map[int64]int{}, assigned: map[string][]assigned{},
		watched: map[int32]int64{}, commitErrs: map[string]int{}}
	g.wg.Add(1)
	go g.watch()
	return g
}

// startMember starts one group member that commits after every poll.
func (g *groupRun) startMember(name string) {
	g.t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(g.seeds...),
		kgo.ConsumerGroup(g.group),
		kgo.ConsumeTopics(g.topic),
		kgo.ClientID(name),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(6*time.Second),
		kgo.HeartbeatInterval(500*time.Millisecond),
		kgo.RebalanceTimeout(15*time.Second),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.RequestTimeoutOverhead(3*time.Second),
		kgo.MetadataMinAge(200*time.Millisecond),
		kgo.RetryTimeout(5*time.Second),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			now := time.Now()
			g.mu.Lock()
			for _, p := range m[g.topic] {
				g.assigned[name] = append(g.assigned[name], assigned{partition: p, at: now})
			}
			g.mu.Unlock()
		}),
	)
	if err != nil {
		g.t.Fatal(err)
	}
	g.mu.Lock()
	g.clients = append(g.clients, cl)
	g.mu.Unlock()
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for g.ctx.Err() == nil {
			fs := cl.PollFetches(g.ctx)
			if g.ctx.Err() != nil {
				return
			}
			var rs []*kgo.Record
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				rs = append(rs, r)
			})
			if len(rs) == 0 {
				continue
			}
			g.mu.Lock()
			for _, r := range rs {
				g.deliveries[r.Partition] = append(g.deliveries[r.Partition], delivery{offset: r.Offset, member: name, at: now})
				if id, err := parseID(r.Value); err == nil {
					g.ids[id]++
				}
			}
			g.mu.Unlock()
			cctx, cancel := context.WithTimeout(g.ctx, 15*time.Second)
			err := cl.CommitRecords(cctx, rs...)
			cancel()
			done := time.Now()
			g.mu.Lock()
			if err != nil {
				g.commitErrs[errKey(err)]++
			} else {
				next := map[int32]int64{}
				for _, r := range rs {
					next[r.Partition] = max(next[r.Partition], r.Offset+1)
				}
				for p, o := range next {
					g.confirmed = append(g.confirmed, commit{partition: p, offset: o, at: done})
				}
			}
			g.mu.Unlock()
		}
	}()
}

// watch reads the committed offsets every 200 ms and records any that
// went back.
func (g *groupRun) watch() {
	defer g.wg.Done()
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
		got, err := g.c.fetchCommitted(g.group, g.topic)
		if err != nil {
			continue
		}
		g.mu.Lock()
		for p, o := range got {
			if o < g.watched[p] {
				g.regress = append(g.regress, fmt.Sprintf("partition %d: committed offset went back from %d to %d at %s", p, g.watched[p], o, time.Now().Format("15:04:05.000")))
			}
			g.watched[p] = max(g.watched[p], o)
		}
		g.mu.Unlock()
	}
}

func (g *groupRun) consumedCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.ids)
}

func (g *groupRun) waitConsumed(n int, timeout time.Duration) {
	g.t.Helper()
	waitFor(g.t, timeout, fmt.Sprintf("the group to consume %d records", n), func() (bool, string) {
		got := g.consumedCount()
		return got >= n, fmt.Sprintf("%d consumed; commit errors %v", got, g.errs())
	})
}

func (g *groupRun) errs() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]int{}
	for k, v := range g.commitErrs {
		out[k] = v
	}
	return out
}

// waitAllAcked waits until every acknowledged record was consumed.
func (g *groupRun) waitAllAcked(produced []recState, timeout time.Duration) {
	g.t.Helper()
	waitFor(g.t, timeout, "the group to consume every acknowledged record", func() (bool, string) {
		g.mu.Lock()
		defer g.mu.Unlock()
		missing := 0
		for id, s := range produced {
			if s.status == acked && g.ids[int64(id)] == 0 {
				missing++
			}
		}
		return missing == 0, fmt.Sprintf("%d acknowledged records not consumed yet", missing)
	})
}

// lastConfirmed is, per partition, the highest committed offset a
// commit confirmed so far.
func (g *groupRun) lastConfirmed() map[int32]int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[int32]int64{}
	for _, cm := range g.confirmed {
		out[cm.partition] = max(out[cm.partition], cm.offset)
	}
	return out
}

// waitCommitted waits until the committed offsets cover everything
// delivered so far (each member commits after each poll).
func (g *groupRun) waitCommitted(timeout time.Duration) {
	g.t.Helper()
	waitFor(g.t, timeout, "commits to cover what was delivered", func() (bool, string) {
		g.mu.Lock()
		defer g.mu.Unlock()
		conf := map[int32]int64{}
		for _, cm := range g.confirmed {
			conf[cm.partition] = max(conf[cm.partition], cm.offset)
		}
		for p, ds := range g.deliveries {
			top := int64(-1)
			for _, d := range ds {
				top = max(top, d.offset)
			}
			if conf[p] < top+1 {
				return false, fmt.Sprintf("partition %d: delivered up to %d, committed %d", p, top, conf[p])
			}
		}
		return true, ""
	})
}

func (g *groupRun) stopMembers() {
	g.mu.Lock()
	cls := g.clients
	g.clients = nil
	g.mu.Unlock()
	g.cancel()
	for _, cl := range cls {
		cl.Close()
	}
	g.wg.Wait()
}

func (g *groupRun) close() { g.stopMembers() }

type groupReport struct {
	consumed, delivered, duplicates int
	lost                            int // acknowledged, never delivered to the group
	committedDuplicates             int // re-delivered although committed when the member got the partition
	committedRegressions            int
	examples                        []string
}

func (r groupReport) String() string {
	return fmt.Sprintf("consumed=%d delivered=%d duplicate-deliveries=%d lost=%d duplicates-of-committed=%d committed-regressions=%d",
		r.consumed, r.delivered, r.duplicates, r.lost, r.committedDuplicates, r.committedRegressions)
}

func (g *groupRun) check(produced []recState) groupReport {
	g.mu.Lock()
	defer g.mu.Unlock()
	var r groupReport
	r.consumed = len(g.ids)
	for id, s := range produced {
		if s.status == acked && g.ids[int64(id)] == 0 {
			r.lost++
			if len(r.examples) < 10 {
				r.examples = append(r.examples, fmt.Sprintf("id %d (partition %d, offset %d) acknowledged, never consumed by the group", id, s.partition, s.offset))
			}
		}
	}
	sort.Slice(g.confirmed, func(i, j int) bool { return g.confirmed[i].at.Before(g.confirmed[j].at) })
	committedBefore := func(p int32, t time.Time) int64 {
		c := int64(0)
		for _, cm := range g.confirmed {
			if cm.at.After(t) {
				break
			}
			if cm.partition == p {
				c = max(c, cm.offset)
			}
		}
		return c
	}
	assignedAt := func(member string, p int32, t time.Time) time.Time {
		var at time.Time
		for _, a := range g.assigned[member] {
			if a.partition == p && !a.at.After(t) {
				at = a.at
			}
		}
		return at
	}
	for p, ds := range g.deliveries {
		seen := map[int64]bool{}
		for _, d := range ds {
			r.delivered++
			if !seen[d.offset] {
				seen[d.offset] = true
				continue
			}
			r.duplicates++
			at := assignedAt(d.member, p, d.at)
			if c := committedBefore(p, at); d.offset < c {
				r.committedDuplicates++
				if len(r.examples) < 10 {
					r.examples = append(r.examples, fmt.Sprintf("partition %d offset %d delivered again to %s, but offset %d was committed before it got the partition at %s",
						p, d.offset, d.member, c, at.Format("15:04:05.000")))
				}
			}
		}
	}
	r.committedRegressions = len(g.regress)
	r.examples = append(r.examples, g.regress...)
	return r
}
