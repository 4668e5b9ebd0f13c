package cluster_test

import (
	"testing"
	"time"
)

// TestLeaderKilledUnderLoad: three brokers, a topic with RF 3 and
// min.insync.replicas 2, an idempotent acks=all producer writing a known
// sequence to four partitions. Mid-load the leader of partition 0 is
// killed with SIGKILL; the load goes on until 20000 records are
// acknowledged. The killed broker is restarted and must rejoin the ISR.
// Then a fresh client reads everything and the queue checker must find no
// acknowledged record lost, none duplicated, each at the offset its
// acknowledgement gave, and per-partition order kept.
func TestLeaderKilledUnderLoad(t *testing.T) {
	const (
		topic      = "leader-kill"
		partitions = 4
		target     = 20000
	)
	start := time.Now()
	c := newCluster(t, clusterOpts{})
	t.Logf("cluster formed in %v", time.Since(start).Round(time.Millisecond))
	c.createTopic(topic, partitions, nil)
	c.waitSettled(30*time.Second, topic)

	l := startLoad(t, c.seeds(), loadOpts{topic: topic, partitions: partitions, rate: 3000})
	l.waitAcked(target/3, 60*time.Second)

	victim := c.leader(topic, 0)
	if victim < 0 {
		t.Fatal("partition 0 has no leader")
	}
	ackedBefore := l.acked()
	killedAt := time.Now()
	c.broker(victim).kill()
	t.Logf("killed broker %d (leader of %s-0) with SIGKILL after %d acknowledged records", victim, topic, ackedBefore)

	l.waitAcked(target, 120*time.Second)
	if at, ok := l.firstAckAfter(0, killedAt); ok {
		t.Logf("partition 0: first acknowledgement %v after the kill", at.Sub(killedAt).Round(time.Millisecond))
	}
	newLeader := c.leader(topic, 0)
	if newLeader == victim || newLeader < 0 {
		t.Errorf("partition 0 is led by %d after its leader %d was killed", newLeader, victim)
	}
	l.stopLoad(30 * time.Second)
	t.Logf("load: %d acknowledged, %d failed; errors: %s", l.acked(), l.nFailed.Load(), l.errorSummary())

	// The killed broker comes back with its disk and must rejoin the ISR
	// of every partition.
	c.broker(victim).start()
	c.waitSettled(60*time.Second, topic)

	read := readAll(t, c.seeds(), topic, 60*time.Second)
	rep := check(l.snapshot(), read)
	t.Logf("queue checker: %s", rep)
	for _, e := range rep.Examples {
		t.Log("  ", e)
	}
	if rep.violations() != 0 {
		t.Errorf("queue checker found %d violations", rep.violations())
	}
	if rep.Acked < target {
		t.Errorf("only %d records acknowledged, want %d", rep.Acked, target)
	}
	if n := l.dataLoss.Load(); n != 0 {
		t.Errorf("the producer detected data loss %d times", n)
	}
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}
