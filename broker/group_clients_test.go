package broker

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGroupThreeMembers runs three franz-go members of one group on a
// 12-partition topic, with the cooperative-sticky and the range
// balancers:
//
//  1. everything produced is consumed exactly once across the members;
//  2. one member is killed (its connections cut, no LeaveGroup) after
//     consuming records it did not commit: after its session times out
//     the others take its partitions over from its last commit, so the
//     only records read twice are those it had not committed;
//  3. a fourth member joins, the group rebalances, and nothing is lost
//     or read twice.
func TestGroupThreeMembers(t *testing.T) {
	for _, bal := range []struct {
		name string
		b    kgo.GroupBalancer
	}{
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
		{"range", kgo.RangeBalancer()},
	} {
		t.Run(bal.name, func(t *testing.T) {
			t.Parallel()
			testGroupThreeMembers(t, bal.b)
		})
	}
}

func testGroupThreeMembers(t *testing.T, balancer kgo.GroupBalancer) {
	const (
		topic      = "twelve"
		group      = "three"
		partitions = 12
		perPart    = 400
	)
	tb := startBroker(t, groupSettings()...)
	createTopic(t, tb, topic, partitions, nil)
	adm := tb.Admin()
	ends := produceSpread(t, tb, topic, partitions, perPart)

	// 1. Three members; every record exactly once.
	seen := newConsumed()
	opt := consumerOpt{balancer: balancer, session: 2 * time.Second}
	a := startGroupConsumer(t, tb, "member-a", group, topic, seen, opt)
	b := startGroupConsumer(t, tb, "member-b", group, topic, seen, opt)
	c := startGroupConsumer(t, tb, "member-c", group, topic, seen, opt)
	ga := waitStable(t, adm, group, topic, partitions, "member-a", "member-b", "member-c")
	for _, ps := range ga.byClient {
		if len(ps) != 4 {
			t.Fatalf("unbalanced assignment: %v", ga.byClient)
		}
	}
	waitAll(t, seen, ends, 30*time.Second)
	waitCommitted(t, adm, group, topic, ends)
	if dups := seen.check(t, ends); len(dups) != 0 {
		t.Fatalf("records consumed twice with three members: %v", dups)
	}

	// 2. Kill member c after it consumed records it did not commit.
	cParts := describeGroup(t, adm, group, topic).byClient["member-c"]
	c.noCommit.Store(true)
	ends = produceSpread(t, tb, topic, partitions, perPart)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c.mu.Lock()
		n := len(c.uncommitted)
		c.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("member c consumed nothing of the second batch")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.kill()
	cCommitted := committed(t, adm, group, topic)
	waitStable(t, adm, group, topic, partitions, "member-a", "member-b")
	total := 2 * partitions * perPart
	c.mu.Lock()
	uncommitted := map[int32]map[int64]bool{}
	for _, r := range c.uncommitted {
		if uncommitted[r.Partition] == nil {
			uncommitted[r.Partition] = map[int64]bool{}
		}
		uncommitted[r.Partition][r.Offset] = true
	}
	c.mu.Unlock()
	waitAll(t, seen, ends, 30*time.Second)
	waitConsumed(t, seen, total+countNested(uncommitted), 10*time.Second)
	dups := seen.check(t, ends)
	for p, offs := range dups {
		for _, o := range offs {
			if !uncommitted[p][o] {
				t.Fatalf("partition %d offset %d consumed twice but member c had committed it", p, o)
			}
		}
	}
	// The survivors resumed each of c's partitions at c's last commit.
	for _, p := range cParts {
		first := int64(-1)
		for _, m := range []string{"member-a", "member-b"} {
			if o := seen.firstBy(p, m, cCommitted[p]); o >= 0 && (first < 0 || o < first) {
				first = o
			}
		}
		if first != cCommitted[p] {
			t.Fatalf("partition %d: taken over at %d, member c had committed %d", p, first, cCommitted[p])
		}
	}
	t.Logf("member c had %d uncommitted records; %d were read again by the survivors", countNested(uncommitted), countNested(dups))
	waitCommitted(t, adm, group, topic, ends)

	// 3. A fourth member: a rebalance, then exactly once again.
	before := seen.total()
	d := startGroupConsumer(t, tb, "member-d", group, topic, seen, opt)
	ga = waitStable(t, adm, group, topic, partitions, "member-a", "member-b", "member-d")
	for _, ps := range ga.byClient {
		if len(ps) != 4 {
			t.Fatalf("unbalanced assignment with a new member: %v", ga.byClient)
		}
	}
	prevEnds := ends
	ends = produceSpread(t, tb, topic, partitions, perPart)
	waitAll(t, seen, ends, 30*time.Second)
	waitConsumed(t, seen, before+partitions*perPart, 10*time.Second)
	time.Sleep(200 * time.Millisecond) // let a stray duplicate show up
	for p, offs := range seen.check(t, ends) {
		for _, o := range offs {
			if o >= prevEnds[p] {
				t.Fatalf("partition %d offset %d (after member d joined) consumed twice", p, o)
			}
		}
	}
	_ = a
	_ = b
	_ = d
}

func countNested[T any](m map[int32]T) int {
	n := 0
	for _, v := range m {
		switch x := any(v).(type) {
		case map[int64]bool:
			n += len(x)
		case []int64:
			n += len(x)
		}
	}
	return n
}

// waitCommitted waits until the group's commits reach ends.
func waitCommitted(t *testing.T, adm *kadm.Client, group, topic string, ends map[int32]int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := committed(t, adm, group, topic)
		if mapsEqual(got, ends) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("commits %v never reached %v", got, ends)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestGroupBrokerRestart restarts the broker in the middle of consumption.
// Committed offsets survive it (they are records of __consumer_offsets,
// replayed at start-up): members killed before the restart are replaced by
// new ones that resume from the commits, reading again only what had not
// been committed; members that live through a restart carry on in the
// same generation, losing nothing.
func TestGroupBrokerRestart(t *testing.T) {
	const (
		topic      = "restart"
		group      = "survivors"
		partitions = 6
		perPart    = 500
	)
	tb := startBroker(t, groupSettings()...)
	createTopic(t, tb, topic, partitions, nil)
	ends := produceSpread(t, tb, topic, partitions, perPart)
	seen := newConsumed()
	opt := consumerOpt{balancer: kgo.RangeBalancer(), session: 3 * time.Second}

	// Two members consume about half, committing, then some more without
	// committing, and die.
	m1 := startGroupConsumer(t, tb, "m1", group, topic, seen, opt)
	m2 := startGroupConsumer(t, tb, "m2", group, topic, seen, opt)
	waitConsumed(t, seen, partitions*perPart/2, 30*time.Second)
	m1.noCommit.Store(true)
	m2.noCommit.Store(true)
	time.Sleep(300 * time.Millisecond)
	m1.kill()
	m2.kill()
	uncommitted := map[int32]map[int64]bool{}
	for _, m := range []*groupConsumer{m1, m2} {
		for _, r := range m.uncommitted {
			if uncommitted[r.Partition] == nil {
				uncommitted[r.Partition] = map[int64]bool{}
			}
			uncommitted[r.Partition][r.Offset] = true
		}
	}
	before := committed(t, tb.Admin(), group, topic)
	if len(before) == 0 {
		t.Fatal("nothing committed before the restart")
	}

	tb.Restart()
	adm := tb.Admin()
	if after := committed(t, adm, group, topic); !mapsEqual(after, before) {
		t.Fatalf("committed offsets changed across the restart:\nbefore %v\nafter  %v", before, after)
	}

	// New members take over from the commits (after the dead members'
	// sessions, replayed with the group, expire).
	m3 := startGroupConsumer(t, tb, "m3", group, topic, seen, opt)
	m4 := startGroupConsumer(t, tb, "m4", group, topic, seen, opt)
	waitStable(t, adm, group, topic, partitions, "m3", "m4")
	waitAll(t, seen, ends, 30*time.Second)
	waitConsumed(t, seen, partitions*perPart+countNested(uncommitted), 10*time.Second)
	for p, offs := range seen.check(t, ends) {
		for _, o := range offs {
			if !uncommitted[p][o] {
				t.Fatalf("partition %d offset %d read twice although it was committed", p, o)
			}
		}
	}

	// Restart again with m3 and m4 consuming: they carry on.
	_, genBefore := m3.cl.GroupMetadata()
	base := seen.total()
	ends = produceSpread(t, tb, topic, partitions, perPart)
	for seen.total() == base {
		time.Sleep(time.Millisecond) // consumption is under way
	}
	tb.Restart()
	waitAll(t, seen, ends, 60*time.Second)
	dups := seen.check(t, ends)
	ga := waitStable(t, tb.Admin(), group, topic, partitions, "m3", "m4")
	_, gen := m3.cl.GroupMetadata()
	t.Logf("live members through a restart: generation %d -> %d, %d records read twice, assignment %v",
		genBefore, gen, countNested(dups), ga.byClient)
	for _, m := range []*groupConsumer{m3, m4} {
		m.mu.Lock()
		if len(m.commitErrs) > 0 {
			t.Logf("%s: commits that failed (and were retried): %v", m.name, m.commitErrs)
		}
		m.mu.Unlock()
	}
	waitCommitted(t, tb.Admin(), group, topic, ends)
	_ = m4
}

func mapsEqual(a, b map[int32]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestGroupStaticMembership: a static member (group.instance.id) that
// restarts within its session timeout gets its partitions back with no
// rebalance: the generation does not change and the other member keeps
// its partitions throughout.
func TestGroupStaticMembership(t *testing.T) {
	const (
		topic      = "static"
		group      = "statics"
		partitions = 6
	)
	tb := startBroker(t, groupSettings()...)
	createTopic(t, tb, topic, partitions, nil)
	adm := tb.Admin()
	produceSpread(t, tb, topic, partitions, 10)
	seen := newConsumed()
	// a must see no rebalance while b restarts: no revocation, no
	// assignment, no new generation.
	var aChanges atomic.Int64
	optA := consumerOpt{balancer: kgo.RangeBalancer(), instance: "instance-a", session: 10 * time.Second,
		extra: []kgo.Opt{
			kgo.OnPartitionsRevoked(func(context.Context, *kgo.Client, map[string][]int32) { aChanges.Add(1) }),
			kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) { aChanges.Add(1) }),
		}}
	optB := consumerOpt{balancer: kgo.RangeBalancer(), instance: "instance-b", session: 10 * time.Second}
	a := startGroupConsumer(t, tb, "static-a", group, topic, seen, optA)
	waitStable(t, adm, group, topic, partitions, "static-a")
	b := startGroupConsumer(t, tb, "static-b", group, topic, seen, optB)
	ga := waitStable(t, adm, group, topic, partitions, "static-a", "static-b")
	_, gen := a.cl.GroupMetadata()
	changesBefore := aChanges.Load()

	// b restarts: closing a static member does not leave the group.
	b.stop(true)
	b2 := startGroupConsumer(t, tb, "static-b", group, topic, seen, optB)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, g := b2.cl.GroupMetadata(); g > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("restarted static member did not rejoin")
		}
		time.Sleep(20 * time.Millisecond)
	}
	after := waitStable(t, adm, group, topic, partitions, "static-a", "static-b")
	if !slices.Equal(after.byClient["static-b"], ga.byClient["static-b"]) || !slices.Equal(after.byClient["static-a"], ga.byClient["static-a"]) {
		t.Fatalf("assignment changed: before %v, after %v", ga.byClient, after.byClient)
	}
	if _, g := b2.cl.GroupMetadata(); g != gen {
		t.Fatalf("restarted static member is in generation %d, the group was in %d: a rebalance happened", g, gen)
	}
	time.Sleep(500 * time.Millisecond)
	if _, g := a.cl.GroupMetadata(); g != gen {
		t.Fatalf("the other member moved to generation %d from %d", g, gen)
	}
	if aChanges.Load() != changesBefore {
		t.Fatal("the other member saw its partitions revoked or assigned while b restarted")
	}
}
