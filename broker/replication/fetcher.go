package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Key names a partition.
type Key struct {
	Topic     string
	TopicID   [16]byte
	Partition int32
}

func (k Key) String() string { return fmt.Sprintf("%s-%d", k.Topic, k.Partition) }

// Replica is the follower side of one partition, implemented by the
// broker. Its methods are called from the fetcher's goroutine only.
type Replica interface {
	// FetchPosition is where to fetch from: the local log end, the
	// epoch of the last local batch (-1 if none), the leader epoch this
	// broker knows, and the local log start.
	FetchPosition() (offset int64, lastFetchedEpoch, leaderEpoch int32, logStart int64)
	// Append stores batches fetched from the leader, as they are, and
	// moves the follower's high watermark to min(leaderHW, local end).
	Append(records []byte, leaderHW int64) error
	// Truncate cuts the local log where it diverged from the leader's
	// (the leader's end offset for epoch, KIP-320).
	Truncate(epoch int32, endOffset int64) error
	// OffsetMovedToTiered is called when the fetch offset is below the
	// leader's local log start: the replica rebuilds its state from the
	// remote tier and continues from the leader's local start.
	OffsetMovedToTiered(ctx context.Context, leader Transport, key Key) error
	// OutOfRange is called when the fetch offset is outside the leader's
	// log altogether (e.g. above it after an unclean election).
	OutOfRange(ctx context.Context, leader Transport, key Key) error
}

// Transport sends requests to one broker.
type Transport interface {
	Request(ctx context.Context, req kmsg.Request) (kmsg.Response, error)
	// RequestInto is Request reading the response into buf if it fits,
	// returning the buffer used; the response may point into it, so buf
	// is passed again only once the response is no longer used.
	RequestInto(ctx context.Context, req kmsg.Request, buf []byte) (kmsg.Response, []byte, error)
}

// maxKeptResponse bounds the response buffer a fetcher keeps between
// fetches (one per leader followed).
const maxKeptResponse = 16 << 20

// FetcherConfig tunes follower fetches (Kafka's replica.fetch.* names).
type FetcherConfig struct {
	// MaxWait is replica.fetch.wait.max.ms.
	MaxWait time.Duration
	// MinBytes is replica.fetch.min.bytes.
	MinBytes int32
	// MaxBytes is replica.fetch.response.max.bytes.
	MaxBytes int32
	// PartitionMaxBytes is replica.fetch.max.bytes.
	PartitionMaxBytes int32
	// Backoff is replica.fetch.backoff.ms, after an error.
	Backoff time.Duration
}

// DefaultFetcherConfig returns Kafka's defaults.
func DefaultFetcherConfig() FetcherConfig {
	return FetcherConfig{MaxWait: 500 * time.Millisecond, MinBytes: 1, MaxBytes: 10 << 20, PartitionMaxBytes: 1 << 20, Backoff: time.Second}
}

// Manager runs one fetcher per leader broker this broker follows.
//
// Lock order: Manager.mu, then fetcher.mu.
type Manager struct {
	self      int32
	cfg       FetcherConfig
	logger    *slog.Logger
	transport func(leader int32) (Transport, error)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	fetchers map[int32]*fetcher
	leaderOf map[Key]int32
}

// NewManager returns a manager; transport resolves a leader's id to a
// connection.
func NewManager(self int32, cfg FetcherConfig, transport func(leader int32) (Transport, error), logger *slog.Logger) *Manager {
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{self: self, cfg: cfg, logger: logger, transport: transport, ctx: ctx, cancel: cancel,
		fetchers: map[int32]*fetcher{}, leaderOf: map[Key]int32{}}
}

// Follow makes this broker fetch key from leader, moving it from another
// leader's fetcher if needed.
func (m *Manager) Follow(key Key, leader int32, r Replica) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx.Err() != nil {
		return
	}
	if old, ok := m.leaderOf[key]; ok && old != leader {
		m.fetchers[old].remove(key)
	}
	m.leaderOf[key] = leader
	f := m.fetchers[leader]
	if f == nil {
		f = &fetcher{m: m, leader: leader, parts: map[Key]Replica{}, wake: make(chan struct{}, 1)}
		m.fetchers[leader] = f
		m.wg.Add(1)
		go f.run()
	}
	f.add(key, r)
}

// Unfollow stops fetching key (this broker became its leader, or lost
// its replica).
func (m *Manager) Unfollow(key Key) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if leader, ok := m.leaderOf[key]; ok {
		m.fetchers[leader].remove(key)
		delete(m.leaderOf, key)
	}
}

// Following reports the leader key is fetched from.
func (m *Manager) Following(key Key) (int32, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.leaderOf[key]
	return l, ok
}

// Close stops every fetcher and waits for them.
func (m *Manager) Close() {
	m.cancel()
	m.wg.Wait()
}

// fetcher fetches every partition followed from one leader, one Fetch
// request at a time.
type fetcher struct {
	m      *Manager
	leader int32

	mu    sync.Mutex
	parts map[Key]Replica
	wake  chan struct{}

	// delayed holds partitions that failed, until when they sit out (the
	// fetcher goroutine's own): a partition answering NOT_LEADER until
	// the metadata catches up must not spin the others' fetches.
	delayed map[Key]time.Time

	// Reused from one fetch to the next (the fetcher goroutine's own): a
	// follower of a busy leader fetches thousands of times a second, and
	// allocating these each time was most of a broker's garbage.
	snap    map[Key]Replica
	req     *kmsg.FetchRequest
	byTopic map[[16]byte]int
	keys    map[Key]bool
	buf     []byte // the last response's frame
}

func (f *fetcher) add(key Key, r Replica) {
	f.mu.Lock()
	f.parts[key] = r
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *fetcher) remove(key Key) {
	f.mu.Lock()
	delete(f.parts, key)
	f.mu.Unlock()
}

// snapshot copies the followed partitions into the fetcher's reused map;
// the copy is valid until the next call.
func (f *fetcher) snapshot() map[Key]Replica {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.snap == nil {
		f.snap = make(map[Key]Replica, len(f.parts))
	}
	clear(f.snap)
	for k, r := range f.parts {
		f.snap[k] = r
	}
	return f.snap
}

// still reports whether key is still followed from this leader with r.
func (f *fetcher) still(key Key, r Replica) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.parts[key] == r
}

func (f *fetcher) run() {
	defer f.m.wg.Done()
	ctx := f.m.ctx
	backoff := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(f.m.cfg.Backoff):
			return true
		}
	}
	for ctx.Err() == nil {
		parts := f.snapshot()
		now := time.Now()
		var soonest time.Time
		for k := range parts {
			if until, ok := f.delayed[k]; ok {
				if now.Before(until) {
					delete(parts, k)
					if soonest.IsZero() || until.Before(soonest) {
						soonest = until
					}
					continue
				}
				delete(f.delayed, k)
			}
		}
		if len(parts) == 0 {
			var timer <-chan time.Time
			if !soonest.IsZero() {
				timer = time.After(time.Until(soonest))
			}
			select {
			case <-ctx.Done():
				return
			case <-f.wake:
			case <-timer:
			}
			continue
		}
		t, err := f.m.transport(f.leader)
		if err != nil {
			f.m.logger.Debug("no connection to the leader", "leader", f.leader, "err", err)
			if !backoff() {
				return
			}
			continue
		}
		if err := f.fetchOnce(ctx, t, parts); err != nil && ctx.Err() == nil {
			f.m.logger.Debug("follower fetch failed", "leader", f.leader, "err", err)
			if !backoff() {
				return
			}
		}
	}
}

func (f *fetcher) fetchOnce(ctx context.Context, t Transport, parts map[Key]Replica) error {
	cfg := f.m.cfg
	if f.req == nil {
		f.req = kmsg.NewPtrFetchRequest()
		f.byTopic, f.keys = map[[16]byte]int{}, map[Key]bool{}
	}
	req := f.req
	topics := req.Topics[:0]
	*req = kmsg.NewFetchRequest()
	req.ReplicaID = f.m.self
	req.ReplicaState.ID = f.m.self
	req.ReplicaState.Epoch = -1
	req.MaxWaitMillis = int32(cfg.MaxWait / time.Millisecond)
	req.MinBytes = cfg.MinBytes
	req.MaxBytes = cfg.MaxBytes
	req.SessionEpoch = -1 // no fetch session
	byTopic, keys := f.byTopic, f.keys
	clear(byTopic)
	clear(keys)
	for key, r := range parts {
		off, lastEpoch, leaderEpoch, logStart := r.FetchPosition()
		i, ok := byTopic[key.TopicID]
		if !ok {
			// Reuse the topic entries (and their partition arrays) of
			// earlier requests.
			var ps []kmsg.FetchRequestTopicPartition
			if len(topics) < cap(topics) {
				ps = topics[:len(topics)+1][len(topics)].Partitions[:0]
			}
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID, rt.Partitions = key.Topic, key.TopicID, ps
			topics = append(topics, rt)
			i = len(topics) - 1
			byTopic[key.TopicID] = i
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = key.Partition
		rp.CurrentLeaderEpoch = leaderEpoch
		rp.FetchOffset = off
		rp.LastFetchedEpoch = lastEpoch
		rp.LogStartOffset = logStart
		rp.PartitionMaxBytes = cfg.PartitionMaxBytes
		topics[i].Partitions = append(topics[i].Partitions, rp)
		keys[key] = true
	}
	req.Topics = topics
	rctx, cancel := context.WithTimeout(ctx, cfg.MaxWait+30*time.Second)
	defer cancel()
	raw, buf, err := t.RequestInto(rctx, req, f.buf)
	if cap(buf) <= maxKeptResponse {
		f.buf = buf // the response below is done with before the next fetch
	} else {
		f.buf = nil
	}
	if err != nil {
		return err
	}
	resp := raw.(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 {
		return fmt.Errorf("fetch from %d: %w", f.leader, kerr.ErrorForCode(resp.ErrorCode))
	}
	failed := 0
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			key := Key{Topic: rt.Topic, TopicID: rt.TopicID, Partition: rp.Partition}
			if key.Topic == "" || key.TopicID == ([16]byte{}) {
				key = f.resolve(parts, rt.Topic, rt.TopicID, rp.Partition)
			}
			r := parts[key]
			if r == nil || !f.still(key, r) {
				continue
			}
			if err := f.handle(ctx, t, key, r, &rp); err != nil {
				failed++
				if f.delayed == nil {
					f.delayed = map[Key]time.Time{}
				}
				f.delayed[key] = time.Now().Add(f.m.cfg.Backoff)
				f.m.logger.Debug("follower fetch of a partition failed; backing off", "partition", key.String(), "leader", f.leader, "err", err)
			}
		}
	}
	if failed > 0 && failed == len(keys) {
		return errors.New("every partition failed")
	}
	return nil
}

// resolve finds the key for a response entry that carries only a name
// or only an id (the version decides which).
func (f *fetcher) resolve(parts map[Key]Replica, topic string, id [16]byte, p int32) Key {
	for k := range parts {
		if k.Partition == p && (k.Topic == topic || (id != [16]byte{} && k.TopicID == id)) {
			return k
		}
	}
	return Key{Topic: topic, TopicID: id, Partition: p}
}

func (f *fetcher) handle(ctx context.Context, t Transport, key Key, r Replica, rp *kmsg.FetchResponseTopicPartition) error {
	if rp.DivergingEpoch.EndOffset >= 0 && rp.DivergingEpoch.Epoch >= 0 {
		return r.Truncate(rp.DivergingEpoch.Epoch, rp.DivergingEpoch.EndOffset)
	}
	switch err := kerr.ErrorForCode(rp.ErrorCode); {
	case err == nil:
	case errors.Is(err, kerr.OffsetMovedToTieredStorage):
		return r.OffsetMovedToTiered(ctx, t, key)
	case errors.Is(err, kerr.OffsetOutOfRange):
		return r.OutOfRange(ctx, t, key)
	default:
		// NOT_LEADER, FENCED or UNKNOWN_LEADER_EPOCH: the metadata will
		// move us; until then, keep asking.
		return err
	}
	if len(rp.RecordBatches) == 0 {
		return r.Append(nil, rp.HighWatermark)
	}
	return r.Append(rp.RecordBatches, rp.HighWatermark)
}
