package gossip

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"
)

func freePort(t *testing.T) string {
	t.Helper()
	// memberlist needs the same port free for TCP and UDP.
	for i := 0; i < 20; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		pc, err := net.ListenPacket("udp", addr)
		if err == nil {
			pc.Close()
			return addr
		}
	}
	t.Fatal("no free port for TCP and UDP")
	return ""
}

func fast(id int32, join ...string) Config {
	return Config{
		NodeID: id, Join: join, KafkaAddr: "127.0.0.1:" + strconv.Itoa(9000+int(id)), Rack: "r" + strconv.Itoa(int(id)%2),
		ProbeInterval: 100 * time.Millisecond, ProbeTimeout: 50 * time.Millisecond, SuspicionMult: 2,
		GossipInterval: 20 * time.Millisecond,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func start(t *testing.T, cfg Config) *Gossip {
	t.Helper()
	cfg.Bind = freePort(t)
	g, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

func waitMembers(t *testing.T, g *Gossip, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(g.Members()) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d members, want %d", len(g.Members()), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestJoinEventsAndMetadata(t *testing.T) {
	a := start(t, fast(1))
	events, stop := a.Subscribe()
	defer stop()
	b := start(t, fast(2, a.cfg.Bind))
	c := start(t, fast(3, b.cfg.Bind))
	waitMembers(t, a, 3)
	ms := a.Members()
	if ms[1].NodeID != 2 || ms[1].KafkaAddr != "127.0.0.1:9002" || ms[1].Rack != "r0" {
		t.Fatalf("members %+v", ms)
	}
	// Member(id) agrees with the list (twice: the second comes from the memo).
	for range 2 {
		if m, ok := a.Member(2); !ok || m != ms[1] {
			t.Fatalf("Member(2) = %+v, %v; want %+v", m, ok, ms[1])
		}
	}
	if m, ok := a.Member(7); ok {
		t.Fatalf("Member(7) = %+v, want none", m)
	}
	// Node 1 joined itself before the subscription.
	joined := map[int32]bool{}
	deadline := time.After(5 * time.Second)
	for len(joined) < 2 {
		select {
		case e := <-events:
			if e.Type == Joined {
				joined[e.Member.NodeID] = true
			}
		case <-deadline:
			t.Fatalf("joined events %v", joined)
		}
	}
	// A graceful leave and a failure are told apart.
	if err := b.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	c.Close() // no leave: a failure
	got := map[int32]EventType{}
	deadline = time.After(10 * time.Second)
	for len(got) < 2 {
		select {
		case e := <-events:
			if e.Type == Left || e.Type == Failed {
				got[e.Member.NodeID] = e.Type
			}
		case <-deadline:
			t.Fatalf("leave/fail events %v", got)
		}
	}
	if got[2] != Left || got[3] != Failed {
		t.Fatalf("events %v: want 2 left, 3 failed", got)
	}
}

func TestBroadcast(t *testing.T) {
	a := start(t, fast(1))
	b := start(t, fast(2, a.cfg.Bind))
	waitMembers(t, a, 2)
	got := make(chan string, 1)
	b.OnMessage(func(m []byte) {
		select {
		case got <- string(m):
		default:
		}
	})
	a.Broadcast([]byte("metadata v7"))
	select {
	case m := <-got:
		if m != "metadata v7" {
			t.Fatalf("got %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("broadcast not received")
	}
}

func TestDuplicateNodeIDRefused(t *testing.T) {
	a := start(t, fast(1))
	cfg := fast(1, a.cfg.Bind)
	cfg.Bind = freePort(t)
	g, err := Start(cfg)
	if err == nil {
		g.Close()
		t.Fatal("a second broker with node id 1 was accepted")
	}
	if !errors.Is(err, ErrNodeIDTaken) {
		t.Fatalf("got %v", err)
	}
}
