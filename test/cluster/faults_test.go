package cluster_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRepeatedFaults: 20 faults in a row against random brokers, under a
// continuous idempotent acks=all load, mixing
//
//   - kill: SIGKILL, down for 0.2-3 s, restart on the same disk;
//   - pause: SIGSTOP until the other brokers have declared it dead (and,
//     if it was the controller, elected another), then SIGCONT;
//   - isolate: the broker's link set down (it loses its peers, its
//     clients and the bucket) until the others declared it dead (and
//     replaced it as controller), then up again.
//
// The brokers run in network namespaces the test creates. After every
// round the cluster must settle (every partition led, every replica in
// the ISR, all brokers agreeing) and take new writes within a bound. At
// the end the queue checker runs over everything produced.
//
// The schedule comes from a seeded RNG; the seed is logged and can be
// replayed with TIERCEL_CLUSTER_SEED.
func TestRepeatedFaults(t *testing.T) {
	const (
		topic      = "faults"
		partitions = 4
		rounds     = 20
	)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("TIERCEL_CLUSTER_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("TIERCEL_CLUSTER_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("fault schedule seed %d (replay with TIERCEL_CLUSTER_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	start := time.Now()
	c := newCluster(t, clusterOpts{netns: true, settings: map[string]string{
		// Leadership also moves back to preferred replicas now and then,
		// one more source of leader changes under load.
		"tiercel.leader.rebalance.interval.ms": "10000",
	}})
	t.Logf("cluster of %d brokers in network namespaces formed in %v", len(c.brokers), time.Since(start).Round(time.Millisecond))
	c.createTopic(topic, partitions, nil)
	c.waitSettled(30*time.Second, topic)

	l := startLoad(t, c.seeds(), loadOpts{topic: topic, partitions: partitions, rate: 1500})
	l.waitAcked(1000, 60*time.Second)

	type stat struct {
		rounds, onController int
		settle               []time.Duration
	}
	kinds := []string{"kill", "pause", "isolate"}
	stats := map[string]*stat{}
	for _, k := range kinds {
		stats[k] = &stat{}
	}
	var schedule []string
	for round := 1; round <= rounds; round++ {
		kind := kinds[rng.IntN(len(kinds))]
		idx := rng.IntN(len(c.brokers))
		b := c.brokers[idx]
		ctrl := c.waitFormed(30 * time.Second)
		wasCtrl := ctrl == b.id
		ackedBefore := l.acked()
		roundStart := time.Now()
		detail := ""
		switch kind {
		case "kill":
			down := time.Duration(200+rng.IntN(2800)) * time.Millisecond
			b.kill()
			time.Sleep(down)
			b.start()
			detail = fmt.Sprintf("down %v", down)
		case "pause":
			b.pause()
			gone := c.waitDeclaredDead(b, wasCtrl, 30*time.Second)
			b.cont()
			detail = fmt.Sprintf("stopped %v (declared dead after %v)", time.Since(roundStart).Round(time.Millisecond), gone.Round(time.Millisecond))
		case "isolate":
			c.net.isolate(idx)
			gone := c.waitDeclaredDead(b, wasCtrl, 30*time.Second)
			c.net.heal(idx)
			detail = fmt.Sprintf("cut off %v (declared dead after %v)", time.Since(roundStart).Round(time.Millisecond), gone.Round(time.Millisecond))
		}
		faultEnd := time.Now()
		c.waitSettled(90*time.Second, topic)
		settle := time.Since(faultEnd)
		// The cluster must take writes again, not only look healthy.
		l.waitAcked(l.acked()+300, 30*time.Second)
		s := stats[kind]
		s.rounds++
		if wasCtrl {
			s.onController++
		}
		s.settle = append(s.settle, settle)
		line := fmt.Sprintf("round %2d: %-7s broker %d%s: %s; settled %v after; acked %d -> %d",
			round, kind, b.id, map[bool]string{true: " (controller)", false: ""}[wasCtrl], detail,
			settle.Round(time.Millisecond), ackedBefore, l.acked())
		schedule = append(schedule, line)
		t.Log(line)
	}
	l.stopLoad(60 * time.Second)
	c.waitSettled(60*time.Second, topic)
	read := readAll(t, c.seeds(), topic, 120*time.Second)
	rep := check(l.snapshot(), read)

	var summary []string
	for _, k := range kinds {
		s := stats[k]
		sortDurations(s.settle)
		summary = append(summary, fmt.Sprintf("%s: %d rounds (%d on the controller), settle median %v max %v",
			k, s.rounds, s.onController, percentile(s.settle, 50).Round(time.Millisecond), percentile(s.settle, 100).Round(time.Millisecond)))
	}
	t.Logf("schedule (seed %d):\n  %s", seed, strings.Join(schedule, "\n  "))
	t.Logf("fault counts (seed %d):\n  %s", seed, strings.Join(summary, "\n  "))
	t.Logf("load errors: %s", l.errorSummary())
	t.Logf("queue checker: %s", rep)
	for _, e := range rep.Examples {
		t.Log("  ", e)
	}
	if rep.violations() != 0 {
		t.Errorf("queue checker found %d violations (seed %d)", rep.violations(), seed)
	}
	if n := l.dataLoss.Load(); n != 0 {
		t.Errorf("the producer detected data loss %d times (seed %d)", n, seed)
	}
	for id := int32(1); id <= int32(len(c.brokers)); id++ {
		if n := countLines(c.logs(id), "panic"); n > 0 {
			t.Errorf("broker %d logged %d lines with 'panic'", id, n)
		}
	}
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}

// waitDeclaredDead waits until every other running broker has dropped b
// from its Metadata (gossip declared it dead) and, if b was the
// controller, until they agree on a new one. It returns how long it took.
func (c *cluster) waitDeclaredDead(b *broker, wasCtrl bool, timeout time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	waitFor(c.t, timeout, fmt.Sprintf("broker %d declared dead by the others", b.id), func() (bool, string) {
		ctrl := int32(-1)
		for _, o := range c.running() {
			if o == b {
				continue
			}
			md, err := c.metadata(o, nil)
			if err != nil {
				return false, fmt.Sprintf("broker %d: %v", o.id, err)
			}
			var ids []int32
			for _, br := range md.Brokers {
				ids = append(ids, br.NodeID)
			}
			if slices.Contains(ids, b.id) {
				return false, fmt.Sprintf("broker %d still lists %v", o.id, ids)
			}
			if wasCtrl {
				if md.ControllerID < 0 || md.ControllerID == b.id {
					return false, fmt.Sprintf("broker %d reports controller %d", o.id, md.ControllerID)
				}
				if ctrl >= 0 && ctrl != md.ControllerID {
					return false, "no agreement on the new controller"
				}
				ctrl = md.ControllerID
			}
		}
		return true, ""
	})
	return time.Since(start)
}
