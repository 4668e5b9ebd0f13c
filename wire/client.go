package wire

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Client is a minimal Kafka protocol client for broker-to-broker calls
// (follower fetches, ISR changes sent to the controller): one connection,
// one request at a time, versions negotiated with ApiVersions on connect.
// It reconnects after any error.
type Client struct {
	addr     string
	clientID string
	dialer   net.Dialer

	mu       sync.Mutex // one request at a time
	conn     net.Conn
	br       *bufio.Reader
	corr     int32
	versions map[int16]int16 // max version the peer serves, by key
	format   *kmsg.RequestFormatter
	wbuf     []byte // the encoded request, reused (guarded by mu)
}

// maxKeptRequest bounds the request buffer a client keeps between calls.
const maxKeptRequest = 1 << 20

// NewClient returns a client for the broker at addr; it connects on first use.
func NewClient(addr, clientID string) *Client {
	return &Client{addr: addr, clientID: clientID, dialer: net.Dialer{Timeout: 5 * time.Second},
		format: kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID))}
}

// Addr is the peer's address.
func (c *Client) Addr() string { return c.addr }

// Close drops the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeLocked()
}

func (c *Client) closeLocked() error {
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn, c.br = nil, nil
	return err
}

// ErrUnsupported means the peer does not serve the request's API.
var ErrUnsupported = errors.New("wire: API not supported by the peer")

// Request sends req at the highest version both sides speak and returns
// the decoded response. ctx bounds the whole exchange.
func (c *Client) Request(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	resp, _, err := c.RequestInto(ctx, req, nil)
	return resp, err
}

// RequestInto is Request reading the response frame into buf when it is
// large enough (else into a new buffer), and returning the buffer used.
// The response may point into that buffer (a Fetch response's records
// do), so the caller passes it to the next call only when done with the
// response: a follower fetching thousands of times a second then reads
// every response into the same memory instead of a new allocation each.
func (c *Client) RequestInto(ctx context.Context, req kmsg.Request, buf []byte) (kmsg.Response, []byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		if err := c.connectLocked(ctx); err != nil {
			return nil, buf, err
		}
	}
	max, ok := c.versions[req.Key()]
	if !ok {
		return nil, buf, fmt.Errorf("%w: %s", ErrUnsupported, kmsg.NameForKey(req.Key()))
	}
	req.SetVersion(min(max, req.MaxVersion()))
	resp, buf, err := c.roundTripLocked(ctx, req, buf)
	if err != nil {
		c.closeLocked()
	}
	return resp, buf, err
}

func (c *Client) connectLocked(ctx context.Context) error {
	conn, err := c.dialer.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return err
	}
	c.conn, c.br = conn, bufio.NewReaderSize(conn, 64<<10)
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	av.ClientSoftwareName, av.ClientSoftwareVersion = "tiercel", "1"
	resp, _, err := c.roundTripLocked(ctx, av, nil)
	if err != nil {
		c.closeLocked()
		return fmt.Errorf("wire: ApiVersions with %s: %w", c.addr, err)
	}
	r := resp.(*kmsg.ApiVersionsResponse)
	if r.ErrorCode != 0 {
		c.closeLocked()
		return fmt.Errorf("wire: ApiVersions with %s: error code %d", c.addr, r.ErrorCode)
	}
	c.versions = make(map[int16]int16, len(r.ApiKeys))
	for _, k := range r.ApiKeys {
		c.versions[k.ApiKey] = k.MaxVersion
	}
	return nil
}

func (c *Client) roundTripLocked(ctx context.Context, req kmsg.Request, into []byte) (kmsg.Response, []byte, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.conn.SetDeadline(dl)
	} else {
		_ = c.conn.SetDeadline(time.Time{})
	}
	// A cancelled context interrupts blocked I/O through the deadline.
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Now()) })
	defer stop()
	c.corr++
	corr := c.corr
	c.wbuf = c.format.AppendRequest(c.wbuf[:0], req, corr)
	_, err := c.conn.Write(c.wbuf)
	if cap(c.wbuf) > maxKeptRequest {
		c.wbuf = nil
	}
	if err != nil {
		return nil, into, ctxErr(ctx, err)
	}
	var size [4]byte
	if _, err := io.ReadFull(c.br, size[:]); err != nil {
		return nil, into, ctxErr(ctx, err)
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 1<<30 {
		return nil, into, fmt.Errorf("wire: response frame of %d bytes", n)
	}
	if uint32(cap(into)) < n {
		into = make([]byte, n)
	}
	body := into[:n]
	if _, err := io.ReadFull(c.br, body); err != nil {
		return nil, into, ctxErr(ctx, err)
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != corr {
		return nil, into, fmt.Errorf("wire: response correlation id %d, want %d", got, corr)
	}
	body = body[4:]
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() && req.Key() != apiVersionsKey {
		if len(body) == 0 {
			return nil, into, errors.New("wire: response without its tag buffer")
		}
		// Skip the response header's tag buffer (always empty from us).
		tags, used := binary.Uvarint(body)
		if used <= 0 || tags != 0 {
			return nil, into, errors.New("wire: unexpected response header tags")
		}
		body = body[used:]
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, into, fmt.Errorf("wire: decode %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	return resp, into, nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
