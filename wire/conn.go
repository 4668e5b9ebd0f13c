package wire

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"
)

var errTooManyFiles = syscall.EMFILE

const (
	apiVersionsKey = 18
	apiVersionsMax = 4
)

// pending is a response waiting for its turn to be written.
type pending struct {
	req  *Request
	resp Response
	// flexibleHeader: response header v1 (with a tag buffer). ApiVersions
	// always answers with header v0 so that old clients can parse it.
	flexibleHeader bool
}

// conn is one client connection. The reader goroutine reads, decodes and
// handles requests in order; the writer goroutine resolves and writes the
// responses in the same order. The queue between them is bounded by
// MaxInFlight, which is the connection's only back-pressure.
type conn struct {
	s      *Server
	nc     net.Conn
	raw    syscall.RawConn // nil when sendfile cannot be used
	tcp    *net.TCPConn
	client ClientInfo

	ctx    context.Context
	cancel context.CancelFunc
	queue  chan pending

	// The writer goroutine's own, reused from one response to the next.
	bufs net.Buffers // the parts of a gathered frame
}

func newConn(s *Server, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(s.ctx)
	c := &conn{
		s:      s,
		nc:     nc,
		ctx:    ctx,
		cancel: cancel,
		queue:  make(chan pending, s.cfg.MaxInFlight),
		client: ClientInfo{Addr: nc.RemoteAddr().String()},
	}
	if _, ok := nc.(*tls.Conn); ok {
		c.client.TLS = true
	}
	if tc, ok := nc.(*net.TCPConn); ok && !s.cfg.DisableSendfile {
		if rc, err := tc.SyscallConn(); err == nil {
			c.raw, c.tcp = rc, tc
		}
	}
	return c
}

func (c *conn) serve() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.write()
	}()
	err := c.read()
	// The peer is gone or broke the protocol: nothing pending will be
	// read, so stop waiting for it. The writer drains what is queued to
	// release the resources responses hold.
	c.cancel()
	close(c.queue)
	<-done
	c.nc.Close()
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && c.s.ctx.Err() == nil {
		c.s.cfg.Logger.Debug("connection closed", "client", c.client.Addr, "err", err)
	}
}

// read is the reader loop. It returns when the connection must close.
func (c *conn) read() error {
	br := bufio.NewReaderSize(c.nc, 64<<10)
	var sizeBuf [4]byte
	for {
		if _, err := io.ReadFull(br, sizeBuf[:]); err != nil {
			return err
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		// Check before allocating: a hostile or confused peer must not
		// make us allocate what it announces.
		if size < 8 || size > c.s.cfg.MaxRequestSize {
			c.s.cfg.Logger.Warn("closing connection: bad request frame size",
				"client", c.client.Addr, "size", size, "socket.request.max.bytes", c.s.cfg.MaxRequestSize)
			return fmt.Errorf("frame size %d outside [8, %d]", size, c.s.cfg.MaxRequestSize)
		}
		var body []byte
		var pooled *[]byte
		if key, err := br.Peek(2); err == nil {
			if a, ok := c.s.cfg.Mux.lookup(int16(binary.BigEndian.Uint16(key))); ok && a.reusable {
				pooled = getBuffer(int(size))
				body = (*pooled)[:size]
			}
		}
		if body == nil {
			body = make([]byte, size)
		}
		if _, err := io.ReadFull(br, body); err != nil {
			putBuffer(pooled)
			return err
		}
		received := time.Now()
		c.s.requests.Add(1)

		req, resp, err := c.decode(body)
		if err != nil {
			putBuffer(pooled)
			c.s.cfg.Logger.Debug("closing connection: undecodable request", "client", c.client.Addr, "err", err)
			return err
		}
		req.Received = received
		flexible := req.Key != apiVersionsKey && req.Msg.IsFlexible()
		if resp == nil {
			resp, err = c.handle(req)
			if pooled != nil {
				// The handler promised to keep nothing of the body.
				req.Msg = nil
				putBuffer(pooled)
			}
			if err != nil {
				return err
			}
		}
		p := pending{req: req, resp: resp, flexibleHeader: flexible}
		select {
		case c.queue <- p:
		case <-c.ctx.Done():
			return c.ctx.Err()
		}
	}
}

// handle runs the request's handler. A panic in a handler is a bug; it
// costs the connection, not the broker.
func (c *conn) handle(req *Request) (resp Response, err error) {
	defer func() {
		if r := recover(); r != nil {
			c.s.cfg.Logger.Error("handler panicked; closing connection", "api", kmsg.NameForKey(req.Key),
				"version", req.Version, "client", c.client.Addr, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panic: %v", r)
		}
	}()
	a, _ := c.s.cfg.Mux.lookup(req.Key)
	resp = a.handle(c.ctx, req)
	if resp == nil {
		return nil, fmt.Errorf("%s handler returned no response", kmsg.NameForKey(req.Key))
	}
	return resp, nil
}

// ParseRequest decodes one request frame body (without the size prefix).
// versionOK reports whether the API and version are served; it is nil to
// accept anything kmsg can decode. It exists for the server and for fuzzing.
func ParseRequest(body []byte, versionOK func(key, version int16) bool) (*Request, error) {
	r := kbin.Reader{Src: body}
	key := r.Int16()
	version := r.Int16()
	corr := r.Int32()
	if !r.Ok() {
		return nil, fmt.Errorf("short request header")
	}
	kreq := kmsg.RequestForKey(key)
	if kreq == nil {
		return nil, fmt.Errorf("unknown API key %d", key)
	}
	req := &Request{Key: key, Version: version, CorrelationID: corr, Size: len(body)}
	if versionOK != nil && !versionOK(key, version) {
		return req, errUnsupportedVersion
	}
	if version < 0 || version > kreq.MaxVersion() {
		return req, errUnsupportedVersion
	}
	kreq.SetVersion(version)
	// Request header v1 and v2 carry a nullable client id; v2, used by
	// flexible versions, adds a tag buffer. Header v0 belongs only to
	// ControlledShutdown v0, which no current client sends.
	if cid := r.NullableString(); cid != nil {
		req.ClientID = *cid
	}
	if kreq.IsFlexible() {
		kmsg.SkipTags(&r)
	}
	if !r.Ok() {
		return req, fmt.Errorf("%s v%d: short request header", kmsg.NameForKey(key), version)
	}
	if err := kreq.ReadFrom(r.Src); err != nil {
		return req, fmt.Errorf("%s v%d: %w", kmsg.NameForKey(key), version, err)
	}
	req.Msg = kreq
	return req, nil
}

var errUnsupportedVersion = errors.New("unsupported version")

// decode parses a frame. It answers ApiVersions itself (resp != nil);
// otherwise resp is nil and the mux handles the request.
func (c *conn) decode(body []byte) (*Request, Response, error) {
	mux := c.s.cfg.Mux
	req, err := ParseRequest(body, func(key, version int16) bool {
		if key == apiVersionsKey {
			return version >= 0 && version <= apiVersionsMax
		}
		a, ok := mux.lookup(key)
		return ok && version >= a.min && version <= a.max
	})
	if req != nil {
		req.Client = &c.client
	}
	switch {
	case errors.Is(err, errUnsupportedVersion) && req.Key == apiVersionsKey:
		// A client newer than us: answer in v0, which every client can
		// read, with our ranges, so it retries at a version we speak.
		resp := &kmsg.ApiVersionsResponse{Version: 0, ErrorCode: 35 /* UNSUPPORTED_VERSION */, ApiKeys: mux.Versions()}
		req.Msg = &kmsg.ApiVersionsRequest{Version: 0}
		return req, Msg(resp), nil
	case errors.Is(err, errUnsupportedVersion):
		return req, nil, fmt.Errorf("%s v%d is not supported", kmsg.NameForKey(req.Key), req.Version)
	case err != nil:
		return req, nil, err
	}
	if req.Key == apiVersionsKey {
		return req, c.apiVersions(req), nil
	}
	if _, ok := mux.lookup(req.Key); !ok {
		return req, nil, fmt.Errorf("API %s (%d) is not served", kmsg.NameForKey(req.Key), req.Key)
	}
	return req, nil, nil
}

func (c *conn) apiVersions(req *Request) Response {
	in := req.Msg.(*kmsg.ApiVersionsRequest)
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = req.Version
	if req.Version >= 3 {
		c.client.SoftwareName = in.ClientSoftwareName
		c.client.SoftwareVersion = in.ClientSoftwareVersion
		// KIP-511: names and versions are restricted to a simple charset.
		if !validSoftwareField(in.ClientSoftwareName) || !validSoftwareField(in.ClientSoftwareVersion) {
			resp.ErrorCode = 42 // INVALID_REQUEST
			return Msg(resp)
		}
	}
	resp.ApiKeys = c.s.cfg.Mux.Versions()
	return Msg(resp)
}

func validSoftwareField(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '-') {
			return false
		}
	}
	return s[0] != '.' && s[0] != '-' && s[len(s)-1] != '.' && s[len(s)-1] != '-'
}

// write is the writer loop: it resolves responses in request order and
// writes them. After a write error it keeps draining the queue, so that
// pending responses release what they hold, but writes nothing more.
func (c *conn) write() {
	var broken error
	hdr := make([]byte, 0, 16)
	for p := range c.queue {
		if broken != nil {
			c.drop(p, broken)
			continue
		}
		f, err := p.resp.Frame(c.ctx)
		if err == nil && f == nil {
			c.observe(p.req, nil, nil) // acks=0: nothing to write
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrCloseConnection) && c.ctx.Err() == nil {
				c.s.cfg.Logger.Warn("closing connection: response failed", "client", c.client.Addr,
					"api", kmsg.NameForKey(p.req.Key), "err", err)
			}
			broken = err
			c.observe(p.req, nil, err)
			c.nc.Close() // also unblocks the reader
			continue
		}
		hdr = hdr[:0]
		hdr = binary.BigEndian.AppendUint32(hdr, 0)
		hdr = binary.BigEndian.AppendUint32(hdr, uint32(p.req.CorrelationID))
		if p.flexibleHeader {
			hdr = append(hdr, 0) // empty tag buffer
		}
		binary.BigEndian.PutUint32(hdr, uint32(int64(len(hdr)-4)+f.Size()))
		err = c.writeFrame(hdr, f)
		f.Release()
		c.observe(p.req, f.Msg, err)
		if err != nil {
			broken = err
			c.nc.Close()
		}
	}
}

func (c *conn) drop(p pending, cause error) {
	// Resolve with a cancelled context only to release resources.
	ctx, cancel := context.WithCancel(c.ctx)
	cancel()
	if f, _ := p.resp.Frame(ctx); f != nil {
		f.Release()
	}
	c.observe(p.req, nil, cause)
}

func (c *conn) observe(req *Request, msg any, err error) {
	if c.s.cfg.Observe != nil {
		c.s.cfg.Observe(req, msg, time.Since(req.Received), err)
	}
}

// writeFrame writes the header and the frame's parts. A frame with few
// file bytes (below SendfileMinBytes) is gathered into memory and leaves in
// one writev. Otherwise byte parts are gathered into writevs and file parts
// go through sendfile with the socket corked, so the header and the file
// bytes leave in full segments.
func (c *conn) writeFrame(hdr []byte, f *Frame) error {
	var fileBytes int64
	for _, p := range f.parts {
		if p.file != nil {
			fileBytes += p.n
		}
	}
	if fileBytes == 0 || fileBytes < c.s.cfg.SendfileMinBytes {
		return c.writeGathered(hdr, f, fileBytes)
	}
	bufs := net.Buffers{hdr}
	if fileBytes > 0 && c.raw != nil {
		c.setCork(true)
		defer c.setCork(false)
	}
	for _, p := range f.parts {
		if p.file == nil {
			bufs = append(bufs, p.b)
			continue
		}
		if len(bufs) > 0 {
			if _, err := bufs.WriteTo(c.nc); err != nil {
				return err
			}
			bufs = bufs[:0]
		}
		if c.raw != nil {
			n, err := sendFile(c.raw, p.file, p.off, p.n)
			c.s.sendfileBytes.Add(n)
			if err != nil {
				return err
			}
			continue
		}
		n, err := io.Copy(c.nc, io.NewSectionReader(p.file, p.off, p.n))
		c.s.copiedBytes.Add(n)
		if err != nil {
			return err
		}
		if n != p.n {
			return fmt.Errorf("file range: %w after %d of %d bytes", io.ErrUnexpectedEOF, n, p.n)
		}
	}
	if len(bufs) > 0 {
		if _, err := bufs.WriteTo(c.nc); err != nil {
			return err
		}
	}
	return nil
}

// writeGathered reads the frame's file ranges into the writer's scratch
// buffer and writes the header and every part with one writev.
func (c *conn) writeGathered(hdr []byte, f *Frame, fileBytes int64) error {
	var scratch []byte
	if fileBytes > 0 {
		// Shared by all connections: a connection keeps no buffer while
		// it has nothing to send (thousands of idle consumers).
		sp := getBuffer(int(fileBytes))
		defer putBuffer(sp)
		scratch = (*sp)[:fileBytes]
	}
	c.bufs = append(c.bufs[:0], hdr)
	for _, p := range f.parts {
		if p.file == nil {
			c.bufs = append(c.bufs, p.b)
			continue
		}
		dst := scratch[:p.n]
		scratch = scratch[p.n:]
		n, err := p.file.ReadAt(dst, p.off)
		c.s.copiedBytes.Add(int64(n))
		if n < len(dst) {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("file range: %w after %d of %d bytes", err, n, p.n)
		}
		c.bufs = append(c.bufs, dst)
	}
	bufs := c.bufs // WriteTo consumes its receiver; c.bufs keeps the array
	_, err := bufs.WriteTo(c.nc)
	clear(c.bufs) // drop references to the frame's bytes
	return err
}

func (c *conn) setCork(on bool) {
	v := 0
	if on {
		v = 1
	}
	_ = c.raw.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK, v)
	})
}

// Frame buffers for requests whose handlers keep nothing of them. Buffers
// above maxPooledBuffer are not kept, so one huge request does not pin
// its memory forever.
const maxPooledBuffer = 16 << 20

var bufferPool sync.Pool

func getBuffer(size int) *[]byte {
	if b, ok := bufferPool.Get().(*[]byte); ok && cap(*b) >= size {
		return b
	}
	b := make([]byte, size)
	return &b
}

func putBuffer(b *[]byte) {
	if b != nil && cap(*b) <= maxPooledBuffer {
		bufferPool.Put(b)
	}
}
