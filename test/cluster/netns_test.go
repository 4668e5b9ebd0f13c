package cluster_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// network is a set of network namespaces the test creates, one per
// broker, each with a veth pair whose host end sits on a bridge in the
// root namespace. The bridge has the address .1 of a 10.213.X.0/24
// subnet; broker i has .10+i. Setting a host end down cuts that broker
// off from everything (peers, clients, and MinIO, which the brokers reach
// through a forwarder on the bridge address), as a network partition
// would; setting it up heals it.
type network struct {
	t      testing.TB
	tag    string // random, names every interface and namespace
	subnet int    // X of 10.213.X.0/24
	bridge string
	n      int

	mu      sync.Mutex
	lns     []net.Listener
	conns   map[net.Conn]struct{}
	stopped bool
}

// newNetwork creates the bridge and n namespaces, and removes them all
// at cleanup, whatever happened. It fails the test when namespaces
// cannot be created: isolation faults are part of what is verified.
func newNetwork(t testing.TB, n int) *network {
	t.Helper()
	var tag [3]byte
	_, _ = rand.Read(tag[:])
	nw := &network{t: t, tag: hex.EncodeToString(tag[:]), n: n, conns: map[net.Conn]struct{}{}}
	nw.bridge = "tcb" + nw.tag
	nw.subnet = nw.freeSubnet()
	t.Cleanup(nw.destroy)
	nw.must("ip", "link", "add", nw.bridge, "type", "bridge")
	nw.must("ip", "addr", "add", fmt.Sprintf("10.213.%d.1/24", nw.subnet), "dev", nw.bridge)
	nw.must("ip", "link", "set", nw.bridge, "up")
	for i := range n {
		ns, host, peer := nw.ns(i), nw.hostIf(i), nw.peerIf(i)
		nw.must("ip", "netns", "add", ns)
		nw.must("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
		nw.must("ip", "link", "set", peer, "netns", ns)
		nw.must("ip", "link", "set", host, "master", nw.bridge)
		nw.must("ip", "link", "set", host, "up")
		nw.must("ip", "-n", ns, "addr", "add", nw.ip(i)+"/24", "dev", peer)
		nw.must("ip", "-n", ns, "link", "set", peer, "up")
		nw.must("ip", "-n", ns, "link", "set", "lo", "up")
	}
	// Check the plumbing before any broker relies on it: a listener in
	// the first namespace must be reachable from here.
	nw.checkReachable()
	return nw
}

func (nw *network) ns(i int) string     { return fmt.Sprintf("tcl-%s-%d", nw.tag, i+1) }
func (nw *network) hostIf(i int) string { return fmt.Sprintf("tcv%s%d", nw.tag, i+1) }
func (nw *network) peerIf(i int) string { return fmt.Sprintf("tcp%s%d", nw.tag, i+1) }
func (nw *network) ip(i int) string     { return fmt.Sprintf("10.213.%d.%d", nw.subnet, 10+i) }
func (nw *network) bridgeIP() string    { return fmt.Sprintf("10.213.%d.1", nw.subnet) }

// freeSubnet picks a 10.213.X.0/24 that no interface here uses.
func (nw *network) freeSubnet() int {
	out, err := exec.Command("ip", "-4", "-o", "addr").CombinedOutput()
	if err != nil {
		nw.t.Fatalf("network namespaces are required for the isolation faults, and `ip -4 -o addr` failed: %v\n%s", err, out)
	}
	var b [1]byte
	for range 256 {
		_, _ = rand.Read(b[:])
		x := 1 + int(b[0])%254
		if !strings.Contains(string(out), fmt.Sprintf(" 10.213.%d.", x)) {
			return x
		}
	}
	nw.t.Fatal("no free 10.213.X.0/24 subnet")
	return 0
}

func (nw *network) must(args ...string) {
	nw.t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		nw.t.Fatalf("network namespaces are required for the isolation faults (run as root with iproute2); `%s` failed: %v\n%s",
			strings.Join(args, " "), err, out)
	}
}

func (nw *network) checkReachable() {
	nw.t.Helper()
	// A listener inside the namespace, run by the ip tool, needs a
	// program; instead dial the namespace address on a closed port and
	// expect "connection refused" (an RST from the namespace's stack)
	// rather than a timeout.
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(nw.ip(0), "1"), 2*time.Second)
	if err == nil {
		conn.Close()
		return
	}
	if strings.Contains(err.Error(), "refused") {
		return
	}
	nw.t.Fatalf("network namespaces: %s is not reachable from the root namespace over bridge %s: %v", nw.ip(0), nw.bridge, err)
}

// isolate cuts broker i (0-based) off; heal reconnects it.
func (nw *network) isolate(i int) {
	nw.t.Helper()
	nw.must("ip", "link", "set", nw.hostIf(i), "down")
}

func (nw *network) heal(i int) {
	nw.t.Helper()
	nw.must("ip", "link", "set", nw.hostIf(i), "up")
}

// forward listens on the bridge address and forwards every connection to
// target (MinIO on 127.0.0.1, which the namespaces cannot reach). It
// returns the listening address.
func (nw *network) forward(t testing.TB, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(nw.bridgeIP(), "0"))
	if err != nil {
		t.Fatalf("listening on the bridge address: %v", err)
	}
	nw.mu.Lock()
	nw.lns = append(nw.lns, ln)
	nw.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go nw.pipe(c, target)
		}
	}()
	return ln.Addr().String()
}

func (nw *network) track(c net.Conn) bool {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if nw.stopped {
		return false
	}
	nw.conns[c] = struct{}{}
	return true
}

func (nw *network) untrack(c net.Conn) {
	nw.mu.Lock()
	delete(nw.conns, c)
	nw.mu.Unlock()
}

func (nw *network) pipe(c net.Conn, target string) {
	defer c.Close()
	up, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	if !nw.track(c) || !nw.track(up) {
		return
	}
	defer nw.untrack(c)
	defer nw.untrack(up)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}

// destroy removes the namespaces and the bridge (the veth pairs go with
// their namespaces) and stops the forwarder.
func (nw *network) destroy() {
	nw.mu.Lock()
	nw.stopped = true
	for _, ln := range nw.lns {
		ln.Close()
	}
	for c := range nw.conns {
		c.Close()
	}
	nw.mu.Unlock()
	for i := range nw.n {
		_ = exec.Command("ip", "link", "del", nw.hostIf(i)).Run()
		if out, err := exec.Command("ip", "netns", "del", nw.ns(i)).CombinedOutput(); err != nil &&
			!strings.Contains(string(out), "No such file") {
			nw.t.Logf("removing namespace %s: %v %s", nw.ns(i), err, out)
		}
	}
	if out, err := exec.Command("ip", "link", "del", nw.bridge).CombinedOutput(); err != nil &&
		!strings.Contains(string(out), "Cannot find device") {
		nw.t.Logf("removing bridge %s: %v %s", nw.bridge, err, out)
	}
}
