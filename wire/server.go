// Package wire speaks the Kafka protocol: it frames requests and responses
// with size limits, parses request headers (v0 to v2), answers ApiVersions
// from the registered handlers, dispatches the rest, and writes responses
// in request order, splicing file ranges into the socket with sendfile.
//
// Messages are franz-go's kmsg types. The one body wire encodes by hand is
// the Fetch response (fetchresp.go), because its record sets must be able to
// point into segment files rather than memory.
package wire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrCloseConnection, returned by a Response, closes the connection
// without an answer.
var ErrCloseConnection = errors.New("close connection")

// Config configures a Server.
type Config struct {
	// Mux routes requests and defines the advertised API versions.
	Mux *Mux
	// MaxRequestSize is socket.request.max.bytes: a frame announcing more,
	// or a negative size, closes the connection before anything of that
	// size is allocated.
	MaxRequestSize int32
	// MaxInFlight bounds the responses a connection may have pending
	// before the reader stops reading more requests from it.
	MaxInFlight int
	// DisableSendfile forces file ranges through a user-space copy. It
	// exists to measure what sendfile saves.
	DisableSendfile bool
	// SendfileMinBytes is the smallest total of file bytes in one
	// response that goes out with sendfile(2). A smaller response has its
	// file ranges read into memory and leaves in one writev: a follower's
	// fetch of a few kilobytes would otherwise cost a cork, a writev and a
	// sendfile per partition and an uncork, which is more CPU than the
	// copy saves. 0 sends every file range with sendfile.
	SendfileMinBytes int64
	// Logger receives connection-level events.
	Logger *slog.Logger
	// Observe, if set, is called after each response is written (or
	// dropped) with the request, the message answered (a kmsg.Response,
	// a *FetchResponse, or nil when there was no answer), how long it took
	// from arrival, and the write error if any. Metrics hang here.
	Observe func(req *Request, msg any, took time.Duration, err error)
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		MaxRequestSize:   100 << 20,
		MaxInFlight:      64,
		SendfileMinBytes: 64 << 10,
		Logger:           slog.Default(),
	}
}

// Stats are cumulative counters, read with Server.Stats.
type Stats struct {
	Connections     int64 // currently open
	Accepted        int64
	Requests        int64
	SendfileBytes   int64 // file bytes sent with sendfile(2)
	CopiedFileBytes int64 // file bytes copied through user space
}

// Server serves the Kafka protocol on one or more listeners.
type Server struct {
	cfg Config

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // one per listener and per connection

	mu        sync.Mutex // guards listeners and conns
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}

	connections, accepted, requests atomic.Int64
	sendfileBytes, copiedBytes      atomic.Int64
}

// NewServer returns a server; call Serve to start it.
func NewServer(cfg Config) *Server {
	def := DefaultConfig()
	if cfg.MaxRequestSize <= 0 {
		cfg.MaxRequestSize = def.MaxRequestSize
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = def.MaxInFlight
	}
	if cfg.Logger == nil {
		cfg.Logger = def.Logger
	}
	if cfg.Mux == nil {
		cfg.Mux = NewMux()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg:       cfg,
		ctx:       ctx,
		cancel:    cancel,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
	}
}

// Serve accepts connections on ln until Close. It always returns a
// non-nil error; after Close it is net.ErrClosed.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		ln.Close()
		return net.ErrClosed
	}
	s.listeners[ln] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return net.ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTooManyFiles) {
				// Out of file descriptors and the like: back off rather
				// than spin, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.cfg.Logger.Warn("accept failed; retrying", "err", err, "backoff", backoff)
				select {
				case <-time.After(backoff):
				case <-s.ctx.Done():
					return net.ErrClosed
				}
				continue
			}
			return fmt.Errorf("wire: accept: %w", err)
		}
		backoff = 0
		s.startConn(nc)
	}
}

func (s *Server) startConn(nc net.Conn) {
	c := newConn(s, nc)
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		nc.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.accepted.Add(1)
	s.connections.Add(1)
	go func() {
		defer s.wg.Done()
		c.serve()
		s.connections.Add(-1)
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
}

// Close stops accepting, closes every connection, and waits for every
// goroutine the server started.
func (s *Server) Close() error {
	s.mu.Lock()
	s.cancel()
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	return Stats{
		Connections:     s.connections.Load(),
		Accepted:        s.accepted.Load(),
		Requests:        s.requests.Load(),
		SendfileBytes:   s.sendfileBytes.Load(),
		CopiedFileBytes: s.copiedBytes.Load(),
	}
}
