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
}

// NewClient returns a client for the broker at addr; it connects on first use.
func NewClient(addr, clientID string) *Client {
	return &Client{addr: addr, clientID: clientID, dialer: net.Dialer{Timeout: 5 * time.Second}}
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
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		if err := c.connectLocked(ctx); err != nil {
			return nil, err
		}
	}
	max, ok := c.versions[req.Key()]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnsupported, kmsg.NameForKey(req.Key()))
	}
	req.SetVersion(min(max, req.MaxVersion()))
	resp, err := c.roundTripLocked(ctx, req)
	if err != nil {
		c.closeLocked()
	}
	return resp, err
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
	resp, err := c.roundTripLocked(ctx, av)
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

func (c *Client) roundTripLocked(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
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
	buf := kmsg.NewRequestFormatter(kmsg.FormatterClientID(c.clientID)).AppendRequest(nil, req, corr)
	if _, err := c.conn.Write(buf); err != nil {
		return nil, ctxErr(ctx, err)
	}
	var size [4]byte
	if _, err := io.ReadFull(c.br, size[:]); err != nil {
		return nil, ctxErr(ctx, err)
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 1<<30 {
		return nil, fmt.Errorf("wire: response frame of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.br, body); err != nil {
		return nil, ctxErr(ctx, err)
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != corr {
		return nil, fmt.Errorf("wire: response correlation id %d, want %d", got, corr)
	}
	body = body[4:]
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() && req.Key() != apiVersionsKey {
		if len(body) == 0 {
			return nil, errors.New("wire: response without its tag buffer")
		}
		// Skip the response header's tag buffer (always empty from us).
		tags, used := binary.Uvarint(body)
		if used <= 0 || tags != 0 {
			return nil, errors.New("wire: unexpected response header tags")
		}
		body = body[used:]
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("wire: decode %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	return resp, nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
