package broker

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkRebalance10Members100Partitions measures one complete
// rebalance of a 10-member group on a 100-partition topic, as the
// coordinator does it: every member sends JoinGroup (over its own
// connection), the join phase ends when the last one arrives, the leader
// gets the members' subscriptions and sends a range assignment (10
// partitions each) with its SyncGroup, the assignment is stored in
// __consumer_offsets, and every member gets its partitions. One op is one
// rebalance, from the first JoinGroup sent to the last SyncGroup answer.
// Client-side delays (heartbeat intervals, assignor CPU) are not included.
func BenchmarkRebalance10Members100Partitions(b *testing.B) {
	const (
		members    = 10
		partitions = 100
		group      = "bench-rebalance"
		topic      = "bench-rebalance"
	)
	// The initial delay gathers the ten new members into the first
	// generation; later rounds are rebalances of a stable group, which
	// it does not apply to.
	tb := startBroker(b, withSetting("group.initial.rebalance.delay.ms", "300"))
	createTopic(b, tb, topic, partitions, nil)
	ctx := context.Background()
	clients := make([]*kgo.Client, members)
	for i := range clients {
		clients[i] = tb.Client()
	}
	ids := make([]string, members)

	// member runs the protocol for member i as a client does until it
	// holds an assignment: JoinGroup (again with the id it is given, or
	// afresh if the group forgot it), the leader's range assignment,
	// SyncGroup (and a new JoinGroup if a rebalance started meanwhile).
	member := func(i int, subBytes []byte) (int32, error) {
		for attempt := 0; attempt < 20; attempt++ {
			req := kmsg.NewPtrJoinGroupRequest()
			req.Group, req.MemberID = group, ids[i]
			req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 60000, 10000
			req.ProtocolType = "consumer"
			p := kmsg.NewJoinGroupRequestProtocol()
			p.Name, p.Metadata = "range", subBytes
			req.Protocols = append(req.Protocols, p)
			resp, err := req.RequestWith(ctx, clients[i])
			if err != nil {
				return 0, err
			}
			switch resp.ErrorCode {
			case 0:
			case kerr.MemberIDRequired.Code:
				ids[i] = resp.MemberID
				continue
			case kerr.UnknownMemberID.Code:
				ids[i] = ""
				continue
			case kerr.RebalanceInProgress.Code:
				continue
			default:
				return 0, kerr.ErrorForCode(resp.ErrorCode)
			}
			sync := kmsg.NewPtrSyncGroupRequest()
			sync.Group, sync.MemberID, sync.Generation = group, ids[i], resp.Generation
			if len(resp.Members) > 0 {
				sync.GroupAssignment = rangePlan(topic, partitions, resp.Members)
			}
			sresp, err := sync.RequestWith(ctx, clients[i])
			if err != nil {
				return 0, err
			}
			switch sresp.ErrorCode {
			case 0:
				if len(sresp.MemberAssignment) == 0 {
					return 0, fmt.Errorf("member %d: empty assignment", i)
				}
				return resp.Generation, nil
			case kerr.RebalanceInProgress.Code, kerr.IllegalGeneration.Code:
				continue
			case kerr.UnknownMemberID.Code:
				ids[i] = ""
				continue
			default:
				return 0, kerr.ErrorForCode(sresp.ErrorCode)
			}
		}
		return 0, fmt.Errorf("member %d: no stable generation after 20 attempts", i)
	}
	round := 0
	lastGen := int32(0)
	// rebalance runs one round: every member rejoins with metadata that
	// changed (new user data each round), so whichever JoinGroup arrives
	// first starts a rebalance and the others join it.
	rebalance := func() error {
		round++
		sub := kmsg.NewConsumerMemberMetadata()
		sub.Topics = []string{topic}
		sub.UserData = []byte(fmt.Sprint(round))
		subBytes := sub.AppendTo(nil)
		gens := make([]int32, members)
		errs := make([]error, members)
		var wg sync.WaitGroup
		for i := 0; i < members; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				gens[i], errs[i] = member(i, subBytes)
			}(i)
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				return fmt.Errorf("member %d: %w", i, err)
			}
			if gens[i] != gens[0] {
				return fmt.Errorf("members ended in generations %v", gens)
			}
		}
		lastGen = gens[0]
		return nil
	}
	// The members get their ids and settle in one generation.
	var err error
	for i := 0; i < 10; i++ {
		if err = rebalance(); err == nil {
			break
		}
	}
	if err != nil {
		b.Fatal(err)
	}
	firstGen := lastGen
	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := rebalance(); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms/rebalance")
	// One generation per round: every round was exactly one rebalance.
	b.ReportMetric(float64(lastGen-firstGen)/float64(b.N), "generations/op")
}

// rangePlan assigns the partitions in ranges to the members sorted by id.
func rangePlan(topic string, partitions int, members []kmsg.JoinGroupResponseMember) []kmsg.SyncGroupRequestGroupAssignment {
	ms := slices.Clone(members)
	slices.SortFunc(ms, func(a, b kmsg.JoinGroupResponseMember) int {
		if a.MemberID < b.MemberID {
			return -1
		}
		return 1
	})
	per := partitions / len(ms)
	var plan []kmsg.SyncGroupRequestGroupAssignment
	for k, m := range ms {
		a := kmsg.NewConsumerMemberAssignment()
		at := kmsg.NewConsumerMemberAssignmentTopic()
		at.Topic = topic
		for p := k * per; p < (k+1)*per || (k == len(ms)-1 && p < partitions); p++ {
			at.Partitions = append(at.Partitions, int32(p))
		}
		a.Topics = append(a.Topics, at)
		ga := kmsg.NewSyncGroupRequestGroupAssignment()
		ga.MemberID, ga.MemberAssignment = m.MemberID, a.AppendTo(nil)
		plan = append(plan, ga)
	}
	return plan
}

// BenchmarkCommit measures OffsetCommit throughput and latency: 16
// clients, each on its own connection, commit one partition's offset at a
// time (a standalone consumer's commit, generation -1) to groups spread
// over the partitions of __consumer_offsets. Each commit is answered once
// its record is in __consumer_offsets (acks=all). It reports commits per
// second and the median and 99th-percentile latency.
func BenchmarkCommit(b *testing.B) {
	const workers = 16
	tb := startBroker(b)
	createTopic(b, tb, "bench-commit", 16, nil)
	ctx := context.Background()
	clients := make([]*kgo.Client, workers)
	for i := range clients {
		clients[i] = tb.Client()
		// Find the coordinator (and create the topic) outside the clock.
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation = fmt.Sprintf("bench-commit-%d", i), -1
		if _, err := req.RequestWith(ctx, clients[i]); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([][]time.Duration, workers)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		n := b.N / workers
		if w < b.N%workers {
			n++
		}
		wg.Add(1)
		go func(w, n int) {
			defer wg.Done()
			lat[w] = make([]time.Duration, 0, n)
			for i := 0; i < n; i++ {
				req := kmsg.NewPtrOffsetCommitRequest()
				req.Group, req.Generation = fmt.Sprintf("bench-commit-%d", w), -1
				rt := kmsg.NewOffsetCommitRequestTopic()
				rt.Topic = "bench-commit"
				rp := kmsg.NewOffsetCommitRequestTopicPartition()
				rp.Partition, rp.Offset = int32(w), int64(i)
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
				t0 := time.Now()
				resp, err := req.RequestWith(ctx, clients[w])
				if err == nil {
					err = kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
				}
				if err != nil {
					errs <- err
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}(w, n)
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "commits/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
}
