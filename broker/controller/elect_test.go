package controller

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/tiercel/tiercel/tiering/objstore"
)

func TestReconcilePartition(t *testing.T) {
	live := func(ids ...int32) map[int32]bool {
		m := map[int32]bool{}
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	cases := []struct {
		name      string
		p         Partition
		live      map[int32]bool
		unclean   bool
		leader    int32
		isr       []int32
		epochBump bool
		changed   bool
	}{
		{"leader alive, nothing to do", Partition{Replicas: []int32{1, 2, 3}, Leader: 1, ISR: []int32{1, 2, 3}}, live(1, 2, 3), false, 1, []int32{1, 2, 3}, false, false},
		{"dead follower leaves ISR", Partition{Replicas: []int32{1, 2, 3}, Leader: 1, ISR: []int32{1, 2, 3}}, live(1, 2), false, 1, []int32{1, 2}, false, true},
		{"dead leader: next in ISR, replica order", Partition{Replicas: []int32{1, 2, 3}, Leader: 1, ISR: []int32{3, 1, 2}}, live(2, 3), false, 2, []int32{3, 2}, true, true},
		{"dead leader, out-of-sync survivor stays out", Partition{Replicas: []int32{1, 2, 3}, Leader: 1, ISR: []int32{1}}, live(2, 3), false, -1, []int32{1}, true, true},
		{"unclean allowed", Partition{Replicas: []int32{1, 2, 3}, Leader: 1, ISR: []int32{1}}, live(3), true, 3, []int32{3}, true, true},
		{"offline stays offline", Partition{Replicas: []int32{1, 2}, Leader: -1, ISR: []int32{1}}, live(2), false, -1, []int32{1}, false, false},
		{"offline, last ISR member back", Partition{Replicas: []int32{1, 2}, Leader: -1, ISR: []int32{1}}, live(1, 2), false, 1, []int32{1}, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			before := p.LeaderEpoch
			var res ElectionResult
			changed := reconcilePartition(&p, tc.live, tc.unclean, &res)
			if changed != tc.changed || p.Leader != tc.leader || !slices.Equal(p.ISR, tc.isr) || (p.LeaderEpoch > before) != tc.epochBump {
				t.Fatalf("got changed=%v leader=%d isr=%v epoch %d→%d", changed, p.Leader, p.ISR, before, p.LeaderEpoch)
			}
		})
	}
}

func TestAlterISRChecks(t *testing.T) {
	c := openController(t, objstore.NewMem(), 1)
	c.Start(context.Background())
	defer c.Close()
	_, err := c.CreateTopics(context.Background(), []TopicSpec{{Name: "t", Assignment: [][]int32{{1}}}}, false)
	if err != nil {
		t.Fatal(err)
	}
	live := map[int32]bool{1: true}
	p := c.Current().Topics["t"].Partitions[0]
	if _, err := c.AlterISR(context.Background(), 2, "t", 0, p.LeaderEpoch, p.PartitionEpoch, []int32{1}, live); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("not leader: %v", err)
	}
	if _, err := c.AlterISR(context.Background(), 1, "t", 0, p.LeaderEpoch+1, p.PartitionEpoch, []int32{1}, live); !errors.Is(err, ErrFencedLeaderEpoch) {
		t.Fatalf("stale epoch: %v", err)
	}
	if _, err := c.AlterISR(context.Background(), 1, "t", 0, p.LeaderEpoch, p.PartitionEpoch+3, []int32{1}, live); !errors.Is(err, ErrInvalidUpdateVersion) {
		t.Fatalf("stale partition epoch: %v", err)
	}
	if _, err := c.AlterISR(context.Background(), 1, "t", 0, p.LeaderEpoch, p.PartitionEpoch, []int32{1, 5}, live); !errors.Is(err, ErrIneligibleReplica) {
		t.Fatalf("ineligible: %v", err)
	}
}
