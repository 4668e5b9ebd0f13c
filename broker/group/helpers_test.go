package group

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// memLog is an in-memory __consumer_offsets for the coordinator: records
// per partition, with switches for the paths a real broker takes
// (replication that completes later, failed appends, slow loads).
type memLog struct {
	mu    sync.Mutex
	parts map[int32][]Record
	next  map[int32]int64
	// hold makes appends wait for release (replication in progress).
	hold    bool
	release chan struct{}
	// fail makes appends fail.
	fail error
	// readGate, if set, blocks Read until closed.
	readGate chan struct{}
}

func newMemLog() *memLog {
	return &memLog{parts: map[int32][]Record{}, next: map[int32]int64{}, release: make(chan struct{})}
}

func (m *memLog) Append(p, epoch int32, recs []Record) (Appended, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return Appended{}, m.fail
	}
	first := m.next[p]
	for i, r := range recs {
		r.Offset = first + int64(i)
		m.parts[p] = append(m.parts[p], r)
	}
	m.next[p] = first + int64(len(recs))
	if !m.hold {
		return Appended{FirstOffset: first, Done: true}, nil
	}
	rel := m.release
	return Appended{FirstOffset: first, Wait: func(ctx context.Context) error {
		select {
		case <-rel:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}, nil
}

func (m *memLog) Read(ctx context.Context, p int32, fn func(Record) error) error {
	m.mu.Lock()
	gate := m.readGate
	m.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m.mu.Lock()
	recs := append([]Record(nil), m.parts[p]...)
	m.mu.Unlock()
	for _, r := range recs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (m *memLog) records(p int32) []Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Record(nil), m.parts[p]...)
}

func testLogger() *slog.Logger {
	if os.Getenv("TIERCEL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func testConfig(l Log) Config {
	return Config{
		Log:                           l,
		MinSessionTimeout:             50 * time.Millisecond,
		MaxSessionTimeout:             time.Minute,
		InitialRebalanceDelay:         0,
		OffsetsRetention:              time.Hour,
		OffsetsRetentionCheckInterval: time.Hour,
		MaxRecordBytes:                1 << 20,
		Logger:                        testLogger(),
	}
}

// newTestCoordinator starts a coordinator that leads every one of n
// partitions and waits until they are loaded.
func newTestCoordinator(t *testing.T, cfg Config, n int) *Coordinator {
	t.Helper()
	c := New(cfg)
	t.Cleanup(c.Close)
	c.SetPartitions(n)
	for i := 0; i < n; i++ {
		c.UpdatePartition(int32(i), true, 0)
	}
	waitLoaded(t, c)
	return c
}

func waitLoaded(t *testing.T, c *Coordinator) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, loading := c.loadedGroups()
		if !loading {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("partitions did not load")
		}
		time.Sleep(time.Millisecond)
	}
}

// wait returns a Result's answer within a few seconds.
func wait[T any](t *testing.T, r *Result[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := r.Wait(ctx)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	return v
}

// notReady asserts a Result has no answer yet.
func notReady[T any](t *testing.T, r *Result[T]) {
	t.Helper()
	if _, ok := r.Ready(); ok {
		t.Fatal("answered, want waiting")
	}
}

func joinReq(group, member string, instance *string, session, rebalance int32, protocols ...string) *kmsg.JoinGroupRequest {
	in := kmsg.NewPtrJoinGroupRequest()
	in.Group, in.MemberID, in.InstanceID = group, member, instance
	in.SessionTimeoutMillis, in.RebalanceTimeoutMillis = session, rebalance
	in.ProtocolType = "consumer"
	for _, p := range protocols {
		jp := kmsg.NewJoinGroupRequestProtocol()
		jp.Name, jp.Metadata = p, []byte("md-"+p)
		in.Protocols = append(in.Protocols, jp)
	}
	return in
}

// joinNew joins a dynamic member the v4+ way (MEMBER_ID_REQUIRED, then
// again with the id) and returns the pending second join.
func joinNew(t *testing.T, c *Coordinator, group string, session, rebalance int32) (string, *Result[*kmsg.JoinGroupResponse]) {
	t.Helper()
	r := wait(t, c.JoinGroup(joinReq(group, "", nil, session, rebalance, "range"), 9, "client", "/127.0.0.1"))
	if r.ErrorCode != kerr.MemberIDRequired.Code || r.MemberID == "" {
		t.Fatalf("first join: code %d member %q, want MEMBER_ID_REQUIRED with an id", r.ErrorCode, r.MemberID)
	}
	return r.MemberID, c.JoinGroup(joinReq(group, r.MemberID, nil, session, rebalance, "range"), 9, "client", "/127.0.0.1")
}

func syncReq(group, member string, gen int32, assignments map[string]string) *kmsg.SyncGroupRequest {
	in := kmsg.NewPtrSyncGroupRequest()
	in.Group, in.MemberID, in.Generation = group, member, gen
	for m, a := range assignments {
		ga := kmsg.NewSyncGroupRequestGroupAssignment()
		ga.MemberID, ga.MemberAssignment = m, []byte(a)
		in.GroupAssignment = append(in.GroupAssignment, ga)
	}
	return in
}

func heartbeat(c *Coordinator, group, member string, gen int32) int16 {
	in := kmsg.NewPtrHeartbeatRequest()
	in.Group, in.MemberID, in.Generation = group, member, gen
	return c.Heartbeat(in, 4).ErrorCode
}

func commitReq(group, member string, gen int32, topic string, offsets map[int32]int64) *kmsg.OffsetCommitRequest {
	in := kmsg.NewPtrOffsetCommitRequest()
	in.Group, in.MemberID, in.Generation = group, member, gen
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	for p, o := range offsets {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = p, o
		rt.Partitions = append(rt.Partitions, rp)
	}
	in.Topics = append(in.Topics, rt)
	return in
}

// commitCodes returns the codes of a commit, by partition.
func commitCodes(r *kmsg.OffsetCommitResponse) map[int32]int16 {
	out := map[int32]int16{}
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			out[p.Partition] = p.ErrorCode
		}
	}
	return out
}

// fetchOffsets returns a group's committed offsets of a topic (v8).
func fetchOffsets(t *testing.T, c *Coordinator, group, topic string) map[int32]int64 {
	t.Helper()
	in := kmsg.NewPtrOffsetFetchRequest()
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	in.Groups = append(in.Groups, rg)
	resp := c.OffsetFetch(in, 8)
	if len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 {
		t.Fatalf("offset fetch: %+v", resp.Groups)
	}
	out := map[int32]int64{}
	for _, rt := range resp.Groups[0].Topics {
		if rt.Topic != topic {
			continue
		}
		for _, p := range rt.Partitions {
			out[p.Partition] = p.Offset
		}
	}
	return out
}

func describe(t *testing.T, c *Coordinator, group string) kmsg.DescribeGroupsResponseGroup {
	t.Helper()
	in := kmsg.NewPtrDescribeGroupsRequest()
	in.Groups = []string{group}
	resp := c.DescribeGroups(in, 5)
	return resp.Groups[0]
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
