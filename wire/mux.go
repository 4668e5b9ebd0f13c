package wire

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Request is one decoded request.
type Request struct {
	Key           int16
	Version       int16
	CorrelationID int32
	ClientID      string
	// Msg is the decoded body; its version is set.
	Msg kmsg.Request
	// Client describes the connection the request came on.
	Client *ClientInfo
	// Size is the frame size in bytes.
	Size int
	// Received is when the frame was read.
	Received time.Time
}

// ClientInfo describes one client connection.
type ClientInfo struct {
	// Addr is the remote address.
	Addr string
	// SoftwareName and SoftwareVersion come from ApiVersions v3+.
	SoftwareName, SoftwareVersion string
	// TLS reports an encrypted connection, where sendfile cannot be used.
	TLS bool
}

// HandlerFunc handles one request. It runs on the connection's reader
// goroutine, in request order, so side effects such as appends keep the
// order the client sent them in; anything slow belongs in the returned
// Response, which the writer resolves later, also in order.
type HandlerFunc func(ctx context.Context, req *Request) Response

type api struct {
	min, max int16
	handle   HandlerFunc
	// reusable: the handler keeps no reference into the request's bytes
	// once it returns, so the frame buffer can be reused.
	reusable bool
}

// Mux routes requests to handlers by API key and holds the version ranges
// that ApiVersions advertises, so what is advertised is exactly what is
// registered.
type Mux struct {
	apis map[int16]api
}

// NewMux returns an empty mux. ApiVersions itself is answered by the
// server and need not be registered.
func NewMux() *Mux { return &Mux{apis: make(map[int16]api)} }

// Handle registers h for key at versions [min, max]. It panics on a range
// that kmsg cannot encode, which is a programming error.
func (m *Mux) Handle(key, min, max int16, h HandlerFunc) {
	req := kmsg.RequestForKey(key)
	if req == nil {
		panic(fmt.Sprintf("wire: unknown API key %d", key))
	}
	if min < 0 || min > max || max > req.MaxVersion() {
		panic(fmt.Sprintf("wire: %s versions %d-%d outside kmsg's 0-%d", kmsg.NameForKey(key), min, max, req.MaxVersion()))
	}
	if key == apiVersionsKey {
		panic("wire: ApiVersions is answered by the server")
	}
	m.apis[key] = api{min: min, max: max, handle: h}
}

// BodyReusable declares that key's handler keeps no reference into the
// request's bytes after it returns (not even through the response), so
// the connection may reuse the frame buffer. Produce, whose batches are
// appended before the handler returns, is the case that matters: it
// saves clearing and faulting in a fresh buffer of each request's size.
func (m *Mux) BodyReusable(key int16) {
	a, ok := m.apis[key]
	if !ok {
		panic(fmt.Sprintf("wire: BodyReusable for unregistered API %d", key))
	}
	a.reusable = true
	m.apis[key] = a
}

// Versions lists the advertised ranges, ApiVersions included, sorted by key.
func (m *Mux) Versions() []kmsg.ApiVersionsResponseApiKey {
	out := make([]kmsg.ApiVersionsResponseApiKey, 0, len(m.apis)+1)
	out = append(out, kmsg.ApiVersionsResponseApiKey{ApiKey: apiVersionsKey, MinVersion: 0, MaxVersion: apiVersionsMax})
	for k, a := range m.apis {
		out = append(out, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MinVersion: a.min, MaxVersion: a.max})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ApiKey < out[j].ApiKey })
	return out
}

func (m *Mux) lookup(key int16) (api, bool) {
	a, ok := m.apis[key]
	return a, ok
}
