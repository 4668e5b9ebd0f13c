// Package faultproxy is a Kafka-aware TCP proxy for tests. It forwards
// frames between clients and one broker and can break the conversation
// in the places that matter for exactly-once claims: after a request has
// reached the broker but before its response reaches the client.
package faultproxy

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// Action is what to do with one request's response.
type Action int

const (
	// Forward passes the response through.
	Forward Action = iota
	// DropAndCut forwards the request, swallows its response and closes
	// the client connection: the client cannot know whether the request
	// took effect.
	DropAndCut
	// CutBeforeRequest closes the client connection without forwarding
	// the request.
	CutBeforeRequest
)

// Rule decides, per request, what happens. key is the API key; n counts
// requests with that key across all connections, from 1.
type Rule func(key int16, n int64) Action

// Proxy listens on a loopback port and forwards to Target.
type Proxy struct {
	ln     net.Listener
	target atomic.Value // string

	mu    sync.Mutex
	rule  Rule
	count map[int16]int64
	conns map[net.Conn]struct{}

	wg     sync.WaitGroup
	closed atomic.Bool

	// Cuts counts connections the proxy broke on purpose.
	Cuts atomic.Int64
}

// New listens on 127.0.0.1 with a free port. Set the target before the
// first client connects.
func New() (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, count: map[int16]int64{}, conns: map[net.Conn]struct{}{}}
	p.target.Store("")
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's address, to advertise to clients.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetTarget sets the broker address connections are forwarded to.
func (p *Proxy) SetTarget(addr string) { p.target.Store(addr) }

// SetRule replaces the rule; nil forwards everything.
func (p *Proxy) SetRule(r Rule) {
	p.mu.Lock()
	p.rule = r
	p.mu.Unlock()
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	p.closed.Store(true)
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	if on {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c)
		}()
	}
}

func (p *Proxy) decide(key int16) Action {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.count[key]++
	if p.rule == nil {
		return Forward
	}
	return p.rule(key, p.count[key])
}

func readFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > 256<<20 {
		return nil, errors.New("faultproxy: frame too large")
	}
	buf := make([]byte, 4+n)
	copy(buf, size[:])
	_, err := io.ReadFull(r, buf[4:])
	return buf, err
}

// serve forwards one client connection. Requests and responses are
// matched in order, as Kafka answers in order on a connection.
func (p *Proxy) serve(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", p.target.Load().(string))
	if err != nil {
		return
	}
	defer server.Close()
	p.track(client, true)
	p.track(server, true)
	defer p.track(client, false)
	defer p.track(server, false)

	actions := make(chan Action, 1024)
	done := make(chan struct{})
	go func() {
		// Responses: broker → client.
		defer close(done)
		defer client.Close()
		for {
			frame, err := readFrame(server)
			if err != nil {
				return
			}
			var a Action
			select {
			case a = <-actions:
			default:
				// A response with no pending request: forward it.
			}
			if a == DropAndCut {
				p.Cuts.Add(1)
				return
			}
			if _, err := client.Write(frame); err != nil {
				return
			}
		}
	}()
	for {
		frame, err := readFrame(client)
		if err != nil {
			break
		}
		if len(frame) < 8 {
			break
		}
		key := int16(binary.BigEndian.Uint16(frame[4:]))
		a := p.decide(key)
		if a == CutBeforeRequest {
			p.Cuts.Add(1)
			break
		}
		// acks=0 produce requests get no response; this proxy is for
		// acks>0 traffic and ignores that case.
		actions <- a
		if _, err := server.Write(frame); err != nil {
			break
		}
	}
	client.Close()
	server.Close()
	<-done
}
