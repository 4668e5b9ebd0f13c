// Package group is the group coordinator: Kafka's classic group protocol
// (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), committed offsets
// (OffsetCommit, OffsetFetch, OffsetDelete) and the group admin APIs
// (DescribeGroups, ListGroups, DeleteGroups).
//
// Durability. Group metadata and committed offsets are records of the
// internal topic __consumer_offsets, in Kafka's own format (records.go).
// A group belongs to partition abs(javaHashCode(groupId)) % partitions,
// and the broker leading that partition is the group's coordinator. When
// a broker becomes leader of such a partition it replays it from the
// start (load.go) and answers COORDINATOR_LOAD_IN_PROGRESS for its groups
// until the replay is done; when it loses leadership it drops them. Every
// change is appended to the partition before it takes effect: a commit is
// visible to OffsetFetch, and an assignment is handed out, only once the
// high watermark has passed its record (acks=all). The Log interface is
// the broker's side of that contract.
//
// State machine, per group, as Kafka's GroupCoordinator has it:
//
//	Empty ──join──▶ PreparingRebalance ──all joined / rebalance timeout──▶ CompletingRebalance
//	  ▲                   ▲   │ (no member left)                                  │ leader's SyncGroup
//	  │                   │   └──────────────────────────▶ Empty                  ▼ stored
//	  │                   └──── join / leave / session timeout / sync timeout ── Stable
//	  └──────────────── last member leaves or expires (through PreparingRebalance)
//	Dead: deleted (DeleteGroups, offsets expired) or unloaded; never left.
//
// The first rebalance of an empty group waits group.initial.rebalance.delay.ms
// for more members (extended while members keep arriving, up to the
// rebalance timeout). Members that do not rejoin within the rebalance timeout
// are removed (static members are kept, as in Kafka); members that do not
// send SyncGroup within the rebalance timeout after the join are removed and
// the group rebalances again; members whose session times out without a
// heartbeat are removed.
//
// Concurrency. Each group has its own mutex, which guards all of its state;
// handlers, timers and append completions take it. The table of
// __consumer_offsets partitions (shards) and each shard's map of groups have
// their own locks. Lock order, outermost first:
//
//	Coordinator.mu   the shard table (replaced when the partition count changes)
//	shard.mu         one partition's load state and its map of groups
//	group.mu         one group
//	(Log)            the broker's partition and log locks, taken by Append
//
// A goroutine holding group.mu never takes shard.mu or Coordinator.mu: a
// group that dies is marked Dead under its own lock and dropped from its
// shard's map afterwards (lockGroup does that lazily). Timers run on one
// scheduler goroutine (timer.go); loads and the waits for appends to be
// replicated run on goroutines of their own; Close ends all of them and
// waits for them.
package group

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Record is one record of __consumer_offsets.
type Record struct {
	// Offset is its offset in the partition; set by Read, ignored by
	// Append.
	Offset int64
	// Timestamp is its timestamp in milliseconds.
	Timestamp int64
	Key       []byte
	// Value is nil for a tombstone.
	Value []byte
}

// Appended describes records the Log accepted.
type Appended struct {
	// FirstOffset is the offset of the first record.
	FirstOffset int64
	// Done reports that the records were already committed (the high
	// watermark passed them) when Append returned; Wait is then not
	// needed.
	Done bool
	// Wait blocks until the records are committed. It fails when the
	// broker lost leadership, the wait timed out or ctx ended.
	Wait func(ctx context.Context) error
}

// Log is the coordinator's access to the partitions of __consumer_offsets,
// implemented by the broker.
type Log interface {
	// Append writes the records to the partition as one batch, as long as
	// this broker still leads it at epoch. Errors carry the kerr code
	// Kafka's replica manager would give (NOT_LEADER_OR_FOLLOWER,
	// MESSAGE_TOO_LARGE, NOT_ENOUGH_REPLICAS, KAFKA_STORAGE_ERROR...).
	Append(partition, epoch int32, recs []Record) (Appended, error)
	// Read calls fn for every record of the partition, in offset order,
	// from its start to its end as of the call.
	Read(ctx context.Context, partition int32, fn func(Record) error) error
}

// Config configures a Coordinator.
type Config struct {
	Log Log
	// MinSessionTimeout and MaxSessionTimeout are
	// group.min.session.timeout.ms and group.max.session.timeout.ms.
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms.
	InitialRebalanceDelay time.Duration
	// OffsetsRetention is offsets.retention.minutes.
	OffsetsRetention time.Duration
	// OffsetsRetentionCheckInterval is offsets.retention.check.interval.ms.
	OffsetsRetentionCheckInterval time.Duration
	// NewMemberJoinTimeout bounds how long a new member's first JoinGroup
	// may wait for a rebalance: a client that gave up and retried would
	// otherwise leave a defunct member behind. Kafka: 5 minutes.
	NewMemberJoinTimeout time.Duration
	// MaxOffsetMetadataBytes is offset.metadata.max.bytes (Kafka: 4096).
	MaxOffsetMetadataBytes int
	// MaxRecordBytes is the largest record batch __consumer_offsets takes
	// (its max.message.bytes). A member whose protocol metadata alone
	// could never be stored is refused at JoinGroup.
	MaxRecordBytes int
	// PartitionExists reports whether a topic partition exists, for
	// OffsetCommit's UNKNOWN_TOPIC_OR_PARTITION. Nil accepts everything.
	PartitionExists func(topic string, partition int32) bool
	Logger          *slog.Logger
	// Now is the wall clock for timestamps; nil means time.Now.
	Now func() time.Time
}

// Defaults Kafka applies that have no broker setting here.
const (
	defaultNewMemberJoinTimeout   = 5 * time.Minute
	defaultMaxOffsetMetadataBytes = 4096
)

// Coordinator coordinates the groups of the __consumer_offsets partitions
// this broker leads.
type Coordinator struct {
	cfg    Config
	logger *slog.Logger
	sched  *scheduler

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool

	mu     sync.RWMutex
	shards []*shard
}

// shard is one partition of __consumer_offsets.
type shard struct {
	index int32

	mu     sync.Mutex
	state  shardState
	groups map[string]*group
	// loadCancel stops a load in progress; loadSeq tells a load that
	// finishes whether it is still the one wanted.
	loadCancel context.CancelFunc
	loadSeq    uint64
	// epoch is the leader epoch this broker loaded the partition at. It
	// is read without mu (by appends under a group lock).
	epoch atomic.Int32
}

type shardState int8

const (
	shardNotOwned shardState = iota
	shardLoading
	shardLoaded
)

// New starts a coordinator. It owns no partition until UpdatePartition
// says this broker leads one.
func New(cfg Config) *Coordinator {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewMemberJoinTimeout <= 0 {
		cfg.NewMemberJoinTimeout = defaultNewMemberJoinTimeout
	}
	if cfg.MaxOffsetMetadataBytes <= 0 {
		cfg.MaxOffsetMetadataBytes = defaultMaxOffsetMetadataBytes
	}
	if cfg.OffsetsRetentionCheckInterval <= 0 {
		cfg.OffsetsRetentionCheckInterval = 10 * time.Minute
	}
	c := &Coordinator{cfg: cfg, logger: cfg.Logger, sched: newScheduler()}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.sched.run(c.ctx)
	}()
	c.sched.after(cfg.OffsetsRetentionCheckInterval, c.expireTick)
	return c
}

// Close drops every group (waiting requests are answered
// NOT_COORDINATOR), stops the timers and waits for every goroutine of the
// coordinator to end.
func (c *Coordinator) Close() {
	if c.closed.Swap(true) {
		return
	}
	c.mu.Lock()
	for _, s := range c.shards {
		c.unload(s)
	}
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
}

// goAsync runs fn on a goroutine that Close waits for.
func (c *Coordinator) goAsync(fn func(ctx context.Context)) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn(c.ctx)
	}()
}

// PartitionFor is the __consumer_offsets partition of a group: Kafka's
// Utils.abs(groupId.hashCode()) % n, with Java's String.hashCode over
// UTF-16 code units, so that a group has the same coordinator partition as
// on Kafka.
func PartitionFor(group string, n int) int32 {
	if n <= 0 {
		return 0
	}
	var h int32
	for _, r := range group {
		if r >= 0x10000 {
			hi, lo := utf16.EncodeRune(r)
			h = 31*h + hi
			h = 31*h + lo
			continue
		}
		h = 31*h + r
	}
	// Kafka's Utils.abs maps Integer.MIN_VALUE to 0 rather than to itself.
	if h == math.MinInt32 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % int32(n)
}

// Partitions returns the partition count the coordinator works with.
func (c *Coordinator) Partitions() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.shards)
}

// SetPartitions tells the coordinator how many partitions __consumer_offsets
// has (0 while it does not exist). Partitions that disappear are unloaded.
func (c *Coordinator) SetPartitions(n int) {
	if n < 0 {
		n = 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n == len(c.shards) {
		return
	}
	for _, s := range c.shards[min(n, len(c.shards)):] {
		c.unload(s)
	}
	next := make([]*shard, n)
	copy(next, c.shards)
	for i := len(c.shards); i < n; i++ {
		next[i] = &shard{index: int32(i), groups: map[string]*group{}}
	}
	c.shards = next
}

// UpdatePartition tells the coordinator whether this broker leads
// partition p of __consumer_offsets, and at which leader epoch. Becoming
// leader starts a load in the background; losing leadership unloads the
// partition's groups at once. It does not block on I/O, so the broker may
// call it while applying a metadata change.
func (c *Coordinator) UpdatePartition(p int32, leader bool, epoch int32) {
	if c.closed.Load() {
		return
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if p < 0 || int(p) >= len(c.shards) {
		return
	}
	s := c.shards[p]
	s.mu.Lock()
	defer s.mu.Unlock()
	if !leader {
		if s.state != shardNotOwned {
			c.logger.Info("resigned as group coordinator of __consumer_offsets partition", "partition", p, "groups", len(s.groups))
			c.unloadLocked(s)
		}
		return
	}
	if s.state != shardNotOwned {
		// Still leader, perhaps at a newer epoch: the groups in memory
		// are those of the log we lead; appends carry the new epoch.
		s.epoch.Store(epoch)
		return
	}
	s.epoch.Store(epoch)
	s.state = shardLoading
	ctx, cancel := context.WithCancel(c.ctx)
	s.loadCancel = cancel
	s.loadSeq++
	seq := s.loadSeq
	c.goAsync(func(context.Context) { c.load(ctx, s, seq) })
}

// unload drops a shard's groups; see unloadLocked.
func (c *Coordinator) unload(s *shard) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.unloadLocked(s)
}

// unloadLocked marks every group of the shard Dead, answers the requests
// waiting on them NOT_COORDINATOR and stops their timers, as Kafka does on
// resignation. The caller holds s.mu.
func (c *Coordinator) unloadLocked(s *shard) {
	if s.loadCancel != nil {
		s.loadCancel()
		s.loadCancel = nil
	}
	for _, g := range s.groups {
		g.mu.Lock()
		g.unload()
		g.mu.Unlock()
	}
	s.groups = map[string]*group{}
	s.state = shardNotOwned
}

// Errors the coordinator answers with when it cannot serve a group.
var (
	errNotCoordinator = kerr.NotCoordinator
	errLoading        = kerr.CoordinatorLoadInProgress
	errNotAvailable   = kerr.CoordinatorNotAvailable
)

// shardFor returns the shard of a group, or the error to answer.
func (c *Coordinator) shardFor(id string) (*shard, error) {
	if c.closed.Load() {
		return nil, errNotAvailable
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if len(c.shards) == 0 {
		// __consumer_offsets does not exist yet: not ours. The client
		// goes back to FindCoordinator, which creates it.
		return nil, errNotCoordinator
	}
	return c.shards[PartitionFor(id, len(c.shards))], nil
}

// checkShard returns the error for a group whose shard is not loaded.
func (c *Coordinator) checkShard(id string) error {
	s, err := c.shardFor(id)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready()
}

// ready is the coordinator error for the shard's state. Caller holds s.mu.
func (s *shard) ready() error {
	switch s.state {
	case shardNotOwned:
		return errNotCoordinator
	case shardLoading:
		return errLoading
	}
	return nil
}

// lockGroup returns the group, locked by the caller's goroutine, creating
// it (Empty) when create is set and it does not exist. It returns nil and
// no error when the group does not exist, and the coordinator error when
// this broker cannot serve the group. A Dead group found in the map (deleted
// or expired since) is dropped and the lookup starts over.
func (c *Coordinator) lockGroup(id string, create bool) (*group, error) {
	s, err := c.shardFor(id)
	if err != nil {
		return nil, err
	}
	for {
		s.mu.Lock()
		if err := s.ready(); err != nil {
			s.mu.Unlock()
			return nil, err
		}
		g := s.groups[id]
		if g == nil {
			if !create {
				s.mu.Unlock()
				return nil, nil
			}
			g = newGroup(c, s, id)
			s.groups[id] = g
		}
		s.mu.Unlock()
		g.mu.Lock()
		if g.state != Dead {
			return g, nil
		}
		g.mu.Unlock()
		s.mu.Lock()
		if s.groups[id] == g {
			delete(s.groups, id)
		}
		s.mu.Unlock()
	}
}

// forget drops a Dead group from its shard's map. The caller must not hold
// the group's lock.
func (c *Coordinator) forget(g *group) {
	s := g.shard
	s.mu.Lock()
	if s.groups[g.id] == g {
		delete(s.groups, g.id)
	}
	s.mu.Unlock()
}

// loadedGroups snapshots the groups of every loaded shard, and reports
// whether any shard this broker leads is still loading.
func (c *Coordinator) loadedGroups() (gs []*group, loading bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, s := range c.shards {
		s.mu.Lock()
		switch s.state {
		case shardLoaded:
			for _, g := range s.groups {
				gs = append(gs, g)
			}
		case shardLoading:
			loading = true
		}
		s.mu.Unlock()
	}
	return gs, loading
}

// kerrOf returns the kerr error in err, or nil.
func kerrOf(err error) *kerr.Error {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke
	}
	return nil
}

// appendError maps a failed append of group metadata to the code Kafka
// answers with (GroupMetadataManager.storeGroup).
func appendGroupError(err error) *kerr.Error {
	ke := kerrOf(err)
	switch ke {
	case nil:
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return kerr.CoordinatorNotAvailable
		}
		return kerr.UnknownServerError
	case kerr.UnknownTopicOrPartition, kerr.NotEnoughReplicas, kerr.NotEnoughReplicasAfterAppend, kerr.RequestTimedOut:
		return kerr.CoordinatorNotAvailable
	case kerr.NotLeaderForPartition, kerr.KafkaStorageError:
		return kerr.NotCoordinator
	case kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidFetchSize:
		return kerr.UnknownServerError
	}
	return ke
}

// appendOffsetError maps a failed append of offsets (storeOffsets).
func appendOffsetError(err error) *kerr.Error {
	ke := kerrOf(err)
	switch ke {
	case nil:
		if errors.Is(err, context.Canceled) {
			return kerr.CoordinatorNotAvailable
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return kerr.RequestTimedOut
		}
		return kerr.UnknownServerError
	case kerr.UnknownTopicOrPartition, kerr.NotEnoughReplicas, kerr.NotEnoughReplicasAfterAppend:
		return kerr.CoordinatorNotAvailable
	case kerr.NotLeaderForPartition, kerr.KafkaStorageError:
		return kerr.NotCoordinator
	case kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidFetchSize:
		return kerr.InvalidCommitOffsetSize
	}
	return ke
}
