// Package gossip is cluster membership: brokers find each other through
// hashicorp/memberlist, gossip their node id, Kafka address and rack, learn
// of members joining, leaving and failing, and broadcast small messages
// (announcements of new metadata versions). It knows nothing of topics or
// partitions.
package gossip

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"go.opentelemetry.io/otel/metric"
)

// ErrNodeIDTaken means another live broker already uses this node id.
var ErrNodeIDTaken = errors.New("gossip: node id already in use by a live broker")

// Config configures a Gossip. Zero durations take memberlist's LAN
// defaults.
type Config struct {
	// NodeID is the broker id; it names the member, so two live brokers
	// cannot share it.
	NodeID int32
	// Bind is the gossip listener (--gossip-listen), TCP and UDP.
	Bind string
	// Advertise is the address other members use; default Bind.
	Advertise string
	// Join lists seed members (--join). Empty starts a new cluster.
	Join []string
	// KafkaAddr and Rack are gossiped to every member.
	KafkaAddr string
	Rack      string
	// ProbeInterval, ProbeTimeout and SuspicionMult tune failure
	// detection; tests shorten them.
	ProbeInterval time.Duration
	ProbeTimeout  time.Duration
	SuspicionMult int
	// GossipInterval is how often broadcasts are piggybacked out.
	GossipInterval time.Duration
	// Logger receives memberlist's logs, as slog records.
	Logger *slog.Logger
	// Meter receives memberlist's metrics; nil drops them.
	Meter metric.Meter
}

// DefaultConfig returns memberlist's LAN timings.
func DefaultConfig() Config {
	lan := memberlist.DefaultLANConfig()
	return Config{ProbeInterval: lan.ProbeInterval, ProbeTimeout: lan.ProbeTimeout,
		SuspicionMult: lan.SuspicionMult, GossipInterval: lan.GossipInterval, Logger: slog.Default()}
}

// Member is one broker as gossiped.
type Member struct {
	NodeID     int32  `json:"nodeId"`
	KafkaAddr  string `json:"kafka"`
	Rack       string `json:"rack,omitempty"`
	GossipAddr string `json:"-"`
}

// EventType says what happened to a member.
type EventType int

const (
	// Joined: a member is alive (new, or back after a failure).
	Joined EventType = iota
	// Updated: a member's metadata changed.
	Updated
	// Left: a member left gracefully.
	Left
	// Failed: a member stopped answering and was declared dead.
	Failed
)

func (t EventType) String() string {
	return [...]string{"joined", "updated", "left", "failed"}[t]
}

// Event is a membership change.
type Event struct {
	Type   EventType
	Member Member
}

// Gossip is this broker's membership agent.
//
// Lock order: mu and metaMu are never held together. memberlist calls
// its event delegate with its node lock held, and that may take mu or
// metaMu; we never call memberlist holding either.
type Gossip struct {
	cfg    Config
	ml     *memberlist.Memberlist
	logger *slog.Logger
	meta   []byte
	queue  *memberlist.TransmitLimitedQueue

	mu        sync.Mutex
	subs      map[chan Event]struct{}
	onMessage []func([]byte)
	conflict  error
	closed    bool
	// leaving holds members that announced a graceful leave, so their
	// departure is reported as Left rather than Failed. (memberlist's own
	// node state is not visible to the leave callback.)
	leaving map[string]bool
	// failed holds the last address of members declared dead, by name:
	// the reconnect loop keeps trying them, because memberlist by itself
	// never contacts a dead member again, so two sides of a healed network
	// partition would stay apart.
	failed map[string]failedMember

	// live holds the alive members' decoded metadata by memberlist node
	// name. It is kept from memberlist's callbacks, which run under
	// memberlist's node lock: a Node's Meta read anywhere else races with
	// memberlist replacing it. Member is on the follower-fetch path (a
	// leader's address, per fetch), so it is a map read, not a decode.
	metaMu sync.Mutex
	live   map[string]Member

	stop chan struct{}
	wg   sync.WaitGroup
}

type failedMember struct {
	addr  string
	since time.Time
}

// reconnectFor bounds how long a failed member's address is retried.
const reconnectFor = 24 * time.Hour

// Message kinds, the first byte of every gossip message.
const (
	msgUser    byte = 0
	msgLeaving byte = 1
)

func nodeName(id int32) string { return "tiercel-" + strconv.Itoa(int(id)) }

// Start joins (or starts) the cluster. It fails with ErrNodeIDTaken when a
// live member already has this node id.
func Start(cfg Config) (*Gossip, error) {
	def := DefaultConfig()
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = def.ProbeInterval
	}
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = def.ProbeTimeout
	}
	if cfg.SuspicionMult <= 0 {
		cfg.SuspicionMult = def.SuspicionMult
	}
	if cfg.GossipInterval <= 0 {
		cfg.GossipInterval = def.GossipInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = def.Logger
	}
	if cfg.Advertise == "" {
		cfg.Advertise = cfg.Bind
	}
	bindHost, bindPort, err := splitHostPort(cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("gossip: listen address %q: %w", cfg.Bind, err)
	}
	advHost, advPort, err := splitHostPort(cfg.Advertise)
	if err != nil {
		return nil, fmt.Errorf("gossip: advertise address %q: %w", cfg.Advertise, err)
	}
	meta, err := json.Marshal(Member{NodeID: cfg.NodeID, KafkaAddr: cfg.KafkaAddr, Rack: cfg.Rack})
	if err != nil {
		return nil, err
	}
	if len(meta) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("gossip: node metadata is %d bytes, memberlist allows %d", len(meta), memberlist.MetaMaxSize)
	}
	g := &Gossip{cfg: cfg, logger: cfg.Logger, meta: meta, subs: map[chan Event]struct{}{}, leaving: map[string]bool{},
		failed: map[string]failedMember{}, stop: make(chan struct{})}
	installMetrics(cfg.Meter)

	mc := memberlist.DefaultLANConfig()
	mc.Name = nodeName(cfg.NodeID)
	mc.BindAddr, mc.BindPort = bindHost, bindPort
	mc.AdvertiseAddr, mc.AdvertisePort = advHost, advPort
	mc.ProbeInterval, mc.ProbeTimeout = cfg.ProbeInterval, cfg.ProbeTimeout
	mc.SuspicionMult = cfg.SuspicionMult
	mc.GossipInterval = cfg.GossipInterval
	mc.Delegate = (*delegate)(g)
	mc.Events = (*events)(g)
	mc.Conflict = (*conflicts)(g)
	mc.Logger = newStdLogger(cfg.Logger)
	mc.LogOutput = nil
	g.queue = &memberlist.TransmitLimitedQueue{NumNodes: func() int { return g.numMembers() }, RetransmitMult: mc.RetransmitMult}

	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("gossip: start on %s: %w", cfg.Bind, err)
	}
	g.ml = ml
	if len(cfg.Join) > 0 {
		n, err := ml.Join(cfg.Join)
		if err != nil && n == 0 {
			// The first broker of a cluster has no one to join; it will
			// be joined by the others. Not fatal.
			g.logger.Warn("no gossip seed answered; continuing alone until another broker joins", "join", strings.Join(cfg.Join, ","), "err", err)
		}
	}
	// A live member with our name and another address means our node id
	// is taken: memberlist reports it as a conflict.
	time.Sleep(10 * time.Millisecond)
	g.mu.Lock()
	conflict := g.conflict
	g.mu.Unlock()
	if conflict == nil {
		for _, m := range ml.Members() {
			if m.Name == mc.Name && m.Address() != net.JoinHostPort(advHost, strconv.Itoa(advPort)) {
				conflict = fmt.Errorf("%w: node %d is alive at %s", ErrNodeIDTaken, cfg.NodeID, m.Address())
			}
		}
	}
	if conflict != nil {
		_ = ml.Shutdown()
		return nil, conflict
	}
	g.logger.Info("gossip started", "node", cfg.NodeID, "listen", cfg.Bind, "members", ml.NumMembers())
	g.wg.Add(1)
	go g.reconnectLoop()
	return g, nil
}

// reconnectLoop periodically joins failed members' last addresses, and the
// seeds when alone, so that membership heals after a network partition.
func (g *Gossip) reconnectLoop() {
	defer g.wg.Done()
	interval := max(5*g.cfg.ProbeInterval, 500*time.Millisecond)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
		}
		g.mu.Lock()
		var addrs []string
		for name, f := range g.failed {
			if time.Since(f.since) > reconnectFor {
				delete(g.failed, name)
				continue
			}
			addrs = append(addrs, f.addr)
		}
		g.mu.Unlock()
		if g.ml.NumMembers() <= 1 {
			addrs = append(addrs, g.cfg.Join...)
		}
		for _, a := range addrs {
			// A join that fails costs one connection attempt; one that
			// succeeds merges both sides' state.
			if n, err := g.ml.Join([]string{a}); err == nil && n > 0 {
				g.logger.Debug("gossip reconnected", "addr", a)
			}
		}
	}
}

func splitHostPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("bad port %q", port)
	}
	return host, p, nil
}

func (g *Gossip) numMembers() int {
	if g.ml == nil {
		return 1
	}
	return g.ml.NumMembers()
}

// Members returns the live members, this broker included, by node id.
func (g *Gossip) Members() []Member {
	g.metaMu.Lock()
	out := make([]Member, 0, len(g.live))
	for _, m := range g.live {
		out = append(out, m)
	}
	g.metaMu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out
}

// Member returns the live member with node id, if there is one. It is
// Members for one id, without building and sorting the list.
func (g *Gossip) Member(id int32) (Member, bool) {
	g.metaMu.Lock()
	defer g.metaMu.Unlock()
	for _, m := range g.live {
		if m.NodeID == id {
			return m, true
		}
	}
	return Member{}, false
}

// setLive records (ok) or forgets a member; memberlist's callbacks call
// it, under memberlist's node lock.
func (g *Gossip) setLive(name string, m Member, ok bool) {
	g.metaMu.Lock()
	defer g.metaMu.Unlock()
	if !ok {
		delete(g.live, name)
		return
	}
	if g.live == nil {
		g.live = map[string]Member{}
	}
	g.live[name] = m
}

func unmarshalMeta(meta []byte) (Member, error) {
	var m Member
	err := json.Unmarshal(meta, &m)
	return m, err
}

func decodeMember(n *memberlist.Node) (Member, bool) {
	m, err := unmarshalMeta(n.Meta)
	if err != nil {
		return m, false
	}
	m.GossipAddr = n.Address()
	return m, true
}

// Subscribe returns a channel of membership events and a function that
// ends the subscription. Events are hints: a slow subscriber may miss
// some (a warning is logged), so subscribers reconcile with Members().
func (g *Gossip) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, 256)
	g.mu.Lock()
	g.subs[ch] = struct{}{}
	g.mu.Unlock()
	return ch, func() {
		g.mu.Lock()
		if _, ok := g.subs[ch]; ok {
			delete(g.subs, ch)
			close(ch)
		}
		g.mu.Unlock()
	}
}

func (g *Gossip) publish(e Event) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	for ch := range g.subs {
		select {
		case ch <- e:
		default:
			g.logger.Warn("gossip subscriber is slow; event dropped", "event", e.Type.String(), "node", e.Member.NodeID)
		}
	}
}

// OnMessage registers fn for broadcast messages from other members. It
// runs on memberlist's goroutine and must not block.
func (g *Gossip) OnMessage(fn func([]byte)) {
	g.mu.Lock()
	g.onMessage = append(g.onMessage, fn)
	g.mu.Unlock()
}

// Broadcast sends msg to every member, best effort: it is piggybacked on
// gossip and retransmitted a few times; a member may still miss it.
func (g *Gossip) Broadcast(msg []byte) {
	g.queue.QueueBroadcast(broadcast(append([]byte{msgUser}, msg...)))
}

// Leave announces a graceful departure and stops gossiping. Each member
// is told directly first, so that it reports Left rather than Failed.
func (g *Gossip) Leave(timeout time.Duration) error {
	notice := append([]byte{msgLeaving}, nodeName(g.cfg.NodeID)...)
	for _, n := range g.ml.Members() {
		if n.Name != nodeName(g.cfg.NodeID) {
			_ = g.ml.SendReliable(n, notice)
		}
	}
	err := g.ml.Leave(timeout)
	return errors.Join(err, g.Close())
}

// Close stops gossiping without announcing.
func (g *Gossip) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	close(g.stop)
	for ch := range g.subs {
		delete(g.subs, ch)
		close(ch)
	}
	g.mu.Unlock()
	g.wg.Wait()
	return g.ml.Shutdown()
}

type broadcast []byte

func (b broadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b broadcast) Message() []byte                       { return b }
func (b broadcast) Finished()                             {}

// delegate carries node metadata and broadcasts.
type delegate Gossip

func (d *delegate) NodeMeta(limit int) []byte { return d.meta }

func (d *delegate) NotifyMsg(b []byte) {
	g := (*Gossip)(d)
	if len(b) == 0 {
		return
	}
	kind := b[0]
	b = b[1:]
	if kind == msgLeaving {
		g.mu.Lock()
		g.leaving[string(b)] = true
		g.mu.Unlock()
		return
	}
	if kind != msgUser {
		return
	}
	g.mu.Lock()
	fns := append([](func([]byte)){}, g.onMessage...)
	g.mu.Unlock()
	msg := append([]byte(nil), b...)
	for _, fn := range fns {
		fn(msg)
	}
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.queue.GetBroadcasts(overhead, limit)
}

func (d *delegate) LocalState(join bool) []byte            { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool) {}

// events turns memberlist's callbacks into Events.
type events Gossip

func (e *events) NotifyJoin(n *memberlist.Node) {
	g := (*Gossip)(e)
	g.mu.Lock()
	delete(g.failed, n.Name)
	g.mu.Unlock()
	e.emit(Joined, n)
}

func (e *events) NotifyLeave(n *memberlist.Node) {
	g := (*Gossip)(e)
	g.setLive(n.Name, Member{}, false)
	g.mu.Lock()
	left := g.leaving[n.Name]
	delete(g.leaving, n.Name)
	g.mu.Unlock()
	if left {
		e.emit(Left, n)
		return
	}
	g.mu.Lock()
	g.failed[n.Name] = failedMember{addr: n.Address(), since: time.Now()}
	g.mu.Unlock()
	e.emit(Failed, n)
}

func (e *events) NotifyUpdate(n *memberlist.Node) { e.emit(Updated, n) }

func (e *events) emit(t EventType, n *memberlist.Node) {
	g := (*Gossip)(e)
	m, ok := decodeMember(n)
	if !ok {
		g.logger.Warn("gossip member with unreadable metadata", "member", n.Name, "addr", n.Address())
		return
	}
	if t == Joined || t == Updated {
		g.setLive(n.Name, m, true)
	}
	g.logger.Info("gossip membership", "event", t.String(), "node", m.NodeID, "kafka", m.KafkaAddr, "rack", m.Rack)
	g.publish(Event{Type: t, Member: m})
}

// conflicts records a member that claims our name from another address.
type conflicts Gossip

func (c *conflicts) NotifyConflict(existing, other *memberlist.Node) {
	g := (*Gossip)(c)
	g.logger.Error("another broker claims this node id", "node", g.cfg.NodeID, "existing", existing.Address(), "other", other.Address())
	g.mu.Lock()
	if g.conflict == nil {
		g.conflict = fmt.Errorf("%w: node %d is claimed by %s and %s", ErrNodeIDTaken, g.cfg.NodeID, existing.Address(), other.Address())
	}
	g.mu.Unlock()
}
