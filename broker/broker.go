// Package broker is the Kafka-compatible server: one handler per Kafka API
// (one file each, headed by the versions it serves), the partitions this
// broker hosts with their logs, high watermarks and producer state, and the
// local view of the cluster metadata.
//
// State ownership:
//   - the controller owns the metadata document; the broker applies each
//     new version to its local state in apply, serialized by applyMu;
//   - the local state (topics and partitions) is an immutable snapshot
//     swapped atomically, so request handlers read it without locks;
//   - each partition owns its log, high watermark and producer state,
//     guarded by its own mutex.
//
// Lock order: applyMu, then partition.mu, then the log's locks. No lock is
// held while calling the controller, because its watchers call apply.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/tiercel/tiercel/broker/config"
	"github.com/tiercel/tiercel/broker/controller"
	plog "github.com/tiercel/tiercel/broker/log"
	"github.com/tiercel/tiercel/broker/replication"
	"github.com/tiercel/tiercel/cache"
	"github.com/tiercel/tiercel/gossip"
	"github.com/tiercel/tiercel/tiering"
	"github.com/tiercel/tiercel/tiering/objstore"
	"github.com/tiercel/tiercel/wire"
)

// Config configures a Broker.
type Config struct {
	// NodeID is this broker's id (--node-id).
	NodeID int32
	// Advertise is the host:port given to clients in Metadata.
	Advertise string
	// Rack is broker.rack, reported in Metadata.
	Rack string
	// DataDir holds the partition logs (--data-dir).
	DataDir string
	// Settings are the broker settings, with Kafka's names.
	Settings config.Broker
	// Store holds the cluster metadata document and, with tiering, the
	// offloaded segments.
	Store objstore.ObjectStore
	// Logger receives the broker's logs.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests move it.
	Now func() time.Time
	// Meter records the broker's metrics; nil records nothing.
	Meter metric.Meter
	// Tracer records spans for produce, fetch, offload and controller
	// decisions; nil records nothing.
	Tracer trace.Tracer
	// Connections reports the open client connections, for metrics.
	Connections func() int64
	// Gossip is cluster membership; nil runs a broker alone.
	Gossip *gossip.Gossip
}

// Broker is one Tiercel broker.
type Broker struct {
	cfg    Config
	logger *slog.Logger
	now    func() time.Time
	host   string
	port   int32

	ctrl *controller.Controller

	metrics *brokerMetrics
	tracer  trace.Tracer

	// Cluster: connections to peers, follower fetchers, and the signals
	// that wake clusterLoop.
	peers        peers
	fetchers     *replication.Manager
	offloadSem   chan struct{} // bounds the partitions doing remote work at once
	reconcileNow chan struct{}
	refreshNow   chan struct{}

	applyMu sync.Mutex // serializes apply; see the lock order above
	state   atomic.Pointer[localState]

	pids producerIDs

	// groups is the group coordinator and its internal topic (groups.go).
	groups *groups

	// tier is the remote tier, nil when remote.log.storage.system.enable
	// is off; cache is its chunk cache.
	tier  *tiering.Tier
	cache *cache.Cache
	// diskFull refuses produce; checkDisk sets it from diskUsage.
	diskFull  atomic.Bool
	diskUsage func() (float64, error)

	lastExpiry time.Time // housekeeping's own; no lock

	// hwAtStart holds the checkpointed high watermarks, read once.
	hwAtStart map[string]int64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // background loops
}

// localState is an immutable snapshot of what this broker hosts.
type localState struct {
	md     *controller.Metadata
	topics map[string]*topicState
	byID   map[controller.TopicID]*topicState
}

// topicState is one topic as this broker sees it.
type topicState struct {
	meta       *controller.Topic
	settings   *topicSettings
	partitions []*partition // by index; nil where this broker holds no replica
	// attrs labels this topic's metrics, built once.
	attrs metric.MeasurementOption
}

// New opens the broker: it claims the controller role (alone, for now),
// loads the cluster metadata and opens and recovers every local log.
func New(ctx context.Context, cfg Config) (*Broker, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	host, portStr, err := net.SplitHostPort(cfg.Advertise)
	if err != nil {
		return nil, fmt.Errorf("broker: advertised address %q: %w", cfg.Advertise, err)
	}
	port, err := strconv.ParseInt(portStr, 10, 32)
	if err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("broker: advertised address %q: bad port", cfg.Advertise)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("broker: data dir: %w", err)
	}
	if cfg.Tracer == nil {
		cfg.Tracer = tracenoop.NewTracerProvider().Tracer("tiercel")
	}
	if cfg.Store != nil {
		// Count object-store requests for the accounting document (accounting.go).
		cfg.Store = objstore.WithCounts(cfg.Store)
	}
	b := &Broker{cfg: cfg, logger: cfg.Logger, now: cfg.Now, host: host, port: int32(port), tracer: cfg.Tracer}
	b.diskUsage = func() (float64, error) { return statfsUsage(cfg.DataDir) }
	b.reconcileNow, b.refreshNow = make(chan struct{}, 1), make(chan struct{}, 1)
	b.offloadSem = make(chan struct{}, offloadParallelism)
	s := cfg.Settings
	b.fetchers = replication.NewManager(cfg.NodeID, replication.FetcherConfig{
		MaxWait:           time.Duration(s.ReplicaFetchWaitMaxMs) * time.Millisecond,
		MinBytes:          s.ReplicaFetchMinBytes,
		MaxBytes:          max(s.ReplicaFetchMaxBytes*10, 10<<20),
		PartitionMaxBytes: s.ReplicaFetchMaxBytes,
		Backoff:           time.Duration(s.ReplicaFetchBackoffMs) * time.Millisecond,
	}, func(leader int32) (replication.Transport, error) { return b.client(leader) }, cfg.Logger.With("component", "replication"))
	b.ctx, b.cancel = context.WithCancel(context.Background())
	if b.tier, b.cache, err = newTier(cfg); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	b.state.Store(&localState{md: &controller.Metadata{}, topics: map[string]*topicState{}, byID: map[controller.TopicID]*topicState{}})

	var liveBrokers func() []controller.BrokerInfo
	if cfg.Gossip != nil {
		liveBrokers = b.brokerInfos
	}
	ctrl, err := controller.Open(ctx, controller.Config{
		Store:       cfg.Store,
		NodeID:      cfg.NodeID,
		Rack:        cfg.Rack,
		LiveBrokers: liveBrokers,
		Lease: controller.LeaseConfig{
			TTL:           time.Duration(s.ControllerLeaseTTLMs) * time.Millisecond,
			RenewInterval: time.Duration(s.ControllerLeaseRenewMs) * time.Millisecond,
			PollInterval:  time.Duration(s.ControllerLeasePollMs) * time.Millisecond,
		},
		RefreshInterval: time.Duration(s.MetadataRefreshMs) * time.Millisecond,
		OnRoleChange:    b.onRoleChange,
		OnWrite:         b.onWrite,
		Logger:          cfg.Logger.With("component", "controller"),
		Tracer:          cfg.Tracer,
	})
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	b.ctrl = ctrl
	b.pids.b = b
	if b.metrics, err = newBrokerMetrics(b, cfg.Meter); err != nil {
		return nil, fmt.Errorf("broker: metrics: %w", err)
	}
	b.hwAtStart = readHWCheckpoint(cfg.DataDir)
	b.groups = b.newGroups()
	ctrl.Watch(b.apply)
	b.apply(ctrl.Current())
	if cfg.Gossip != nil {
		cfg.Gossip.OnMessage(b.onAnnouncement)
	}
	ctrl.Start(b.ctx)
	b.wg.Add(1)
	go b.clusterLoop()
	if err := b.removeStrayLogs(); err != nil {
		b.logger.Warn("cleaning stray partition directories failed", "err", err)
	}
	b.wg.Add(1)
	go b.housekeeping()
	b.wg.Add(1)
	go b.accountingLoop()
	if b.tier != nil {
		b.wg.Add(1)
		go b.remoteLoop()
	}
	return b, nil
}

// Close stops the background loops and closes every log cleanly.
func (b *Broker) Close() error {
	b.cancel()
	b.closeGroups()
	b.ctrl.Close()
	b.fetchers.Close()
	b.wg.Wait()
	b.closePeers()
	if b.cache != nil {
		b.cache.Close()
	}
	if err := b.writeHWCheckpoint(); err != nil {
		b.logger.Warn("high watermark checkpoint failed", "err", err)
	}
	b.applyMu.Lock()
	defer b.applyMu.Unlock()
	var errs []error
	for _, t := range b.state.Load().topics {
		for _, p := range t.partitions {
			if p == nil {
				continue
			}
			p.mu.Lock()
			p.snapshotProducersLocked(p.log.EndOffset())
			p.mu.Unlock()
			if err := p.log.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close %s-%d: %w", p.topic, p.index, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Mux returns the request router with every API this broker serves.
func (b *Broker) Mux() *wire.Mux {
	m := wire.NewMux()
	b.register(m)
	return m
}

// Controller exposes the controller, for tools and tests.
func (b *Broker) Controller() *controller.Controller { return b.ctrl }

func (b *Broker) current() *localState { return b.state.Load() }

// partitionDir is Kafka's layout: <data>/<topic>-<partition>.
func (b *Broker) partitionDir(topic string, index int32) string {
	return filepath.Join(b.cfg.DataDir, fmt.Sprintf("%s-%d", topic, index))
}

// apply brings local state in line with a metadata version: it opens logs
// for new partitions, applies config and leadership changes, and deletes
// the logs of deleted topics. It is the only writer of b.state.
func (b *Broker) apply(md *controller.Metadata) {
	b.applyMu.Lock()
	defer b.applyMu.Unlock()
	old := b.state.Load()
	if md.Version != 0 && md.Version <= old.md.Version {
		return // stale or repeated announcement
	}
	next := &localState{md: md, topics: make(map[string]*topicState, len(md.Topics)), byID: make(map[controller.TopicID]*topicState, len(md.Topics))}
	for name, t := range md.Topics {
		settings, err := b.settingsFor(t)
		if err != nil {
			// Configs were validated when set; a document written by a
			// newer release could still carry one we reject. Keep serving
			// with the defaults rather than dropping the topic.
			b.logger.Error("topic configs invalid; using defaults", "topic", name, "err", err)
			settings, _ = newTopicSettings(b.cfg.Settings, nil)
		}
		ts := &topicState{meta: t, settings: settings, partitions: make([]*partition, len(t.Partitions)),
			attrs: metric.WithAttributes(attribute.String("topic", name))}
		prev := old.topics[name]
		if prev != nil && prev.meta.ID != t.ID {
			// Deleted and recreated under the same name while we looked
			// away: the old logs belong to the old topic.
			b.dropTopic(prev)
			prev = nil
		}
		for i, pa := range t.Partitions {
			if !containsID(pa.Replicas, b.cfg.NodeID) {
				continue
			}
			var p *partition
			if prev != nil && i < len(prev.partitions) {
				p = prev.partitions[i]
			}
			if p == nil {
				var err error
				p, err = b.openPartition(t, int32(i), settings)
				if err != nil {
					b.logger.Error("cannot open partition log", "topic", name, "partition", i, "err", err)
					continue
				}
			} else if p.settings() != settings {
				p.cfg.Store(settings)
				p.log.SetConfig(settings.logConfig)
			}
			role, err := p.applyAssignment(b.cfg.NodeID, pa, time.Duration(b.cfg.Settings.ReplicaLagTimeMaxMs)*time.Millisecond)
			if err != nil {
				b.logger.Error("cannot apply partition assignment", "topic", name, "partition", i, "err", err)
			}
			switch role {
			case roleLeader, roleNone:
				b.fetchers.Unfollow(p.replicaKey())
			case roleFollower:
				b.fetchers.Follow(p.replicaKey(), pa.Leader, (*followerReplica)(p))
			}
			ts.partitions[i] = p
		}
		next.topics[name] = ts
		next.byID[t.ID] = ts
	}
	b.state.Store(next)
	for name, prev := range old.topics {
		if cur, ok := next.topics[name]; !ok || cur.meta.ID != prev.meta.ID {
			b.dropTopic(prev)
		}
	}
	b.groupsApplied(next)
}

func containsID(ids []int32, id int32) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// openPartition opens (and recovers) a partition's log and rebuilds its
// producer state.
func (b *Broker) openPartition(t *controller.Topic, index int32, s *topicSettings) (*partition, error) {
	dir := b.partitionDir(t.Name, index)
	if err := checkPartitionMetadata(dir, t.ID); err != nil {
		return nil, err
	}
	p := &partition{
		topic:   t.Name,
		topicID: t.ID,
		index:   index,
		selfID:  b.cfg.NodeID,
		logger:  b.logger.With("topic", t.Name, "partition", index),
		now:     b.now,
		leader:  -1,
	}
	p.cfg.Store(s)
	p.remoteLoadedEpoch.Store(-1)
	l, err := plog.Open(dir, s.logConfig, plog.Options{
		Logger: p.logger,
		Now:    b.now,
		// The roll callback runs on the appending goroutine, which holds
		// p.mu, so the producer state it snapshots is exactly the state
		// below the new segment.
		OnRoll: func(base int64) { p.snapshotProducersLocked(base) },
	})
	if err != nil {
		return nil, err
	}
	p.log = l
	if err := writePartitionMetadata(dir, t.ID); err != nil {
		l.Close()
		return nil, err
	}
	if b.tier != nil {
		p.remote = b.tier.Log(partitionID(t, index))
		// A local log behind its remote copy lost its disk: continue from
		// the remote end. A store that cannot be read now is retried by
		// the offload loop; the local log serves meanwhile.
		ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
		err := p.restoreFromRemote(ctx)
		cancel()
		if err != nil {
			p.logger.Warn("remote manifest unreadable at start-up", "err", err)
		}
	}
	if err := p.restoreProducers(); err != nil {
		l.Close()
		return nil, fmt.Errorf("rebuild producer state: %w", err)
	}
	if hw, ok := b.hwAtStart[fmt.Sprintf("%s-%d", t.Name, index)]; ok {
		p.hw.Store(min(hw, p.log.EndOffset()))
	}
	return p, nil
}

// dropTopic closes and deletes the local logs of a deleted topic, and its
// remote data.
func (b *Broker) dropTopic(t *topicState) {
	b.deleteRemoteTopic(t.meta)
	for _, p := range t.partitions {
		if p == nil {
			continue
		}
		if p.remote != nil {
			b.tier.Forget(p.remote.ID())
		}
		b.fetchers.Unfollow(p.replicaKey())
		if err := p.log.Delete(); err != nil {
			b.logger.Warn("deleting partition log failed", "topic", p.topic, "partition", p.index, "err", err)
		}
		p.wake()
	}
}

// partitionMetadataFile records the topic id in each partition directory,
// as Kafka's partition.metadata does, so a directory left by a deleted
// topic is never mistaken for one of a new topic with the same name.
const partitionMetadataFile = "partition.metadata"

func checkPartitionMetadata(dir string, id controller.TopicID) error {
	b, err := os.ReadFile(filepath.Join(dir, partitionMetadataFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "topic_id: "); ok && strings.TrimSpace(v) != id.String() {
			// The directory belongs to an older incarnation of the topic.
			if err := os.RemoveAll(dir); err != nil {
				return fmt.Errorf("remove stale partition directory: %w", err)
			}
		}
	}
	return nil
}

func writePartitionMetadata(dir string, id controller.TopicID) error {
	path := filepath.Join(dir, partitionMetadataFile)
	want := fmt.Sprintf("version: 0\ntopic_id: %s\n", id)
	if b, err := os.ReadFile(path); err == nil && string(b) == want {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(want), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// removeStrayLogs deletes partition directories of topics that no longer
// exist (deleted while this broker was down).
func (b *Broker) removeStrayLogs() error {
	entries, err := os.ReadDir(b.cfg.DataDir)
	if err != nil {
		return err
	}
	st := b.current()
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		name := e.Name()
		i := strings.LastIndexByte(name, '-')
		if i <= 0 {
			continue
		}
		idx, err := strconv.Atoi(name[i+1:])
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(b.cfg.DataDir, name, partitionMetadataFile)); err != nil {
			continue // not ours
		}
		t := st.topics[name[:i]]
		if t == nil || idx >= len(t.partitions) || t.partitions[idx] == nil {
			b.logger.Info("removing partition directory of a deleted topic", "dir", name)
			if err := os.RemoveAll(filepath.Join(b.cfg.DataDir, name)); err != nil {
				return err
			}
		}
	}
	return nil
}

// lookup finds a hosted partition by topic name.
func (b *Broker) lookup(topic string, index int32) (*topicState, *partition) {
	t := b.current().topics[topic]
	if t == nil || index < 0 || int(index) >= len(t.partitions) {
		return t, nil
	}
	return t, t.partitions[index]
}

// housekeeping runs the periodic work: retention, flushes, segment.ms
// rolls and producer expiry. It ends when the broker closes.
func (b *Broker) housekeeping() {
	defer b.wg.Done()
	retention := time.NewTicker(time.Duration(b.cfg.Settings.LogRetentionCheckIntervalMs) * time.Millisecond)
	defer retention.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-retention.C:
			b.applyRetention()
		case <-tick.C:
			b.tickPartitions()
		}
	}
}

func (b *Broker) forEachPartition(fn func(t *topicState, p *partition)) {
	for _, t := range b.current().topics {
		for _, p := range t.partitions {
			if p != nil {
				fn(t, p)
			}
		}
	}
}
