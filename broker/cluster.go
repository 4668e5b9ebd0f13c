package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/broker/config"
	"github.com/tiercel/tiercel/broker/controller"
	"github.com/tiercel/tiercel/gossip"
	"github.com/tiercel/tiercel/wire"
)

// The cluster, seen from one broker: who is alive (gossip), who is
// controller (the lease), announcements of new metadata versions, the
// controller's reactions to membership changes, and connections to peers.

// announcement is the gossip message sent after each metadata write.
type announcement struct {
	Version int64 `json:"v"`
	Epoch   int64 `json:"e"`
}

// liveBrokers lists the brokers clients can reach, sorted by id: the
// gossip members, or this broker alone without gossip.
func (b *Broker) liveBrokers() []brokerEndpoint {
	if b.cfg.Gossip == nil {
		var rack *string
		if b.cfg.Rack != "" {
			r := b.cfg.Rack
			rack = &r
		}
		return []brokerEndpoint{{ID: b.cfg.NodeID, Host: b.host, Port: b.port, Rack: rack}}
	}
	var out []brokerEndpoint
	for _, m := range b.cfg.Gossip.Members() {
		host, portStr, err := net.SplitHostPort(m.KafkaAddr)
		if err != nil {
			continue
		}
		port, err := strconv.Atoi(portStr)
		if err != nil {
			continue
		}
		var rack *string
		if m.Rack != "" {
			r := m.Rack
			rack = &r
		}
		out = append(out, brokerEndpoint{ID: m.NodeID, Host: host, Port: int32(port), Rack: rack})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// liveSet is the ids of the live brokers.
func (b *Broker) liveSet() map[int32]bool {
	out := map[int32]bool{}
	for _, br := range b.liveBrokers() {
		out[br.ID] = true
	}
	return out
}

// brokerInfos feeds the controller's replica assignment.
func (b *Broker) brokerInfos() []controller.BrokerInfo {
	var out []controller.BrokerInfo
	for _, br := range b.liveBrokers() {
		rack := ""
		if br.Rack != nil {
			rack = *br.Rack
		}
		out = append(out, controller.BrokerInfo{ID: br.ID, Rack: rack})
	}
	return out
}

// brokerClientPrefix starts the client id of broker-to-broker requests,
// which may do what clients may not (create internal topics).
const brokerClientPrefix = "tiercel-broker-"

// isBrokerClient reports a request sent by another broker.
func isBrokerClient(req *wire.Request) bool {
	return strings.HasPrefix(req.ClientID, brokerClientPrefix)
}

// peers holds one connection per peer broker.
type peers struct {
	mu      sync.Mutex
	clients map[int32]*wire.Client
}

// client returns a connection to broker id, at the address gossip gives.
func (b *Broker) client(id int32) (*wire.Client, error) {
	var addr string
	if b.cfg.Gossip != nil {
		// The per-fetch path: one member, no list (liveBrokers parses all).
		if m, ok := b.cfg.Gossip.Member(id); ok {
			if _, _, err := net.SplitHostPort(m.KafkaAddr); err == nil {
				addr = m.KafkaAddr
			}
		}
	} else if id == b.cfg.NodeID {
		addr = net.JoinHostPort(b.host, strconv.Itoa(int(b.port)))
	}
	if addr == "" {
		return nil, fmt.Errorf("broker %d is not alive", id)
	}
	b.peers.mu.Lock()
	defer b.peers.mu.Unlock()
	if b.peers.clients == nil {
		b.peers.clients = map[int32]*wire.Client{}
	}
	c := b.peers.clients[id]
	if c == nil || c.Addr() != addr {
		if c != nil {
			c.Close()
		}
		c = wire.NewClient(addr, fmt.Sprintf("%s%d", brokerClientPrefix, b.cfg.NodeID))
		b.peers.clients[id] = c
	}
	return c, nil
}

func (b *Broker) closePeers() {
	b.peers.mu.Lock()
	defer b.peers.mu.Unlock()
	for id, c := range b.peers.clients {
		c.Close()
		delete(b.peers.clients, id)
	}
}

// controllerRequest sends req to the controller, wherever it is. The
// caller handles NOT_CONTROLLER and the like in the response.
func (b *Broker) controllerRequest(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	id := b.controllerID()
	if id < 0 {
		return nil, fmt.Errorf("%w: no controller is known", kerr.NotController)
	}
	if id == b.cfg.NodeID {
		return nil, errors.New("broker: controller request to self")
	}
	c, err := b.client(id)
	if err != nil {
		return nil, err
	}
	return c.Request(ctx, req)
}

// uncleanAllowed answers unclean.leader.election.enable for a topic.
func (b *Broker) uncleanAllowed(t *controller.Topic) bool {
	tc, err := config.ResolveTopic(b.cfg.Settings, t.Configs)
	return err == nil && tc.UncleanLeaderElectionEnable
}

// onRoleChange runs when this broker wins or loses the controller role.
func (b *Broker) onRoleChange(active bool, epoch int64) {
	if active {
		select {
		case b.reconcileNow <- struct{}{}:
		default:
		}
	}
}

// onWrite announces a new metadata version to the other brokers.
func (b *Broker) onWrite(md *controller.Metadata) {
	if b.cfg.Gossip == nil {
		return
	}
	msg, _ := json.Marshal(announcement{Version: md.Version, Epoch: md.ControllerEpoch})
	b.cfg.Gossip.Broadcast(msg)
}

// onAnnouncement rereads the document when a newer version is announced.
func (b *Broker) onAnnouncement(msg []byte) {
	var a announcement
	if json.Unmarshal(msg, &a) != nil {
		return
	}
	if a.Version <= b.ctrl.Current().Version {
		return
	}
	select {
	case b.refreshNow <- struct{}{}:
	default:
	}
}

// clusterLoop reacts to membership changes and announcements, and, on the
// controller, keeps leadership in line with the live brokers. It ends
// when the broker closes.
func (b *Broker) clusterLoop() {
	defer b.wg.Done()
	var events <-chan gossip.Event
	if b.cfg.Gossip != nil {
		ch, stop := b.cfg.Gossip.Subscribe()
		defer stop()
		events = ch
	}
	tick := time.NewTicker(reconcileInterval)
	defer tick.Stop()
	rebalance := time.Duration(b.cfg.Settings.LeaderRebalanceIntervalMs) * time.Millisecond
	lastRebalance := time.Now()
	for {
		select {
		case <-b.ctx.Done():
			return
		case e, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			switch e.Type {
			case gossip.Joined:
				b.reconcile()
				if e.Member.NodeID != b.cfg.NodeID {
					b.brokerJoined()
				}
			case gossip.Left:
				b.reconcile()
			case gossip.Failed:
				// A failure seen during a membership flap (a paused
				// broker coming back spreads stale suspicions) is often
				// refuted within a probe or two: wait a moment before
				// electing, and reconcile against the membership then.
				time.AfterFunc(failureDebounce, func() {
					select {
					case b.reconcileNow <- struct{}{}:
					default:
					}
				})
			}
		case <-b.reconcileNow:
			b.reconcile()
		case <-b.refreshNow:
			ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
			if err := b.ctrl.Refresh(ctx); err != nil && b.ctx.Err() == nil {
				b.logger.Warn("cannot reread the metadata document", "err", err)
			}
			cancel()
		case <-tick.C:
			b.reconcile()
			if rebalance > 0 && time.Since(lastRebalance) >= rebalance && b.ctrl.Active() {
				lastRebalance = time.Now()
				ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
				if _, err := b.ctrl.PreferredLeaders(ctx, b.liveSet()); err != nil && b.ctx.Err() == nil {
					b.logger.Warn("preferred leader election failed", "err", err)
				}
				cancel()
			}
		}
	}
}

// reconcileInterval bounds how long a missed membership event can leave
// a partition without a live leader.
const reconcileInterval = 2 * time.Second

// failureDebounce delays elections after a member is declared failed.
const failureDebounce = 500 * time.Millisecond

// reconcile, on the controller, elects leaders for partitions whose
// leader died and drops dead brokers from ISRs.
func (b *Broker) reconcile() {
	if !b.ctrl.Active() {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	_, span := b.tracer.Start(ctx, "controller.reconcile")
	defer span.End()
	if _, err := b.ctrl.Reconcile(ctx, b.liveSet(), b.uncleanAllowed); err != nil && b.ctx.Err() == nil &&
		!errors.Is(err, controller.ErrNotController) {
		b.logger.Warn("leader election failed; will retry", "err", err)
	}
}
