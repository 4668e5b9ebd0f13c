package wire

import (
	"context"
	"os"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Response is what a handler returns. The connection's writer asks each
// response for its frame in request order, so a response may block in
// Frame (acks=all waiting for the high watermark, a fetch long poll) without
// holding up the processing of later requests on the connection.
type Response interface {
	// Frame returns the response body, after the response header. ctx ends
	// when the connection or the server closes.
	Frame(ctx context.Context) (*Frame, error)
}

// Frame is a response body: a sequence of in-memory byte slices and file
// ranges. File ranges go to the socket with sendfile(2), so record bytes are
// never copied through user space on plaintext connections.
type Frame struct {
	parts []part
	size  int64
	// Msg is the message the frame encodes (a kmsg.Response or a
	// *FetchResponse), for observers that count error codes.
	Msg any
}

type part struct {
	b       []byte
	file    *os.File
	off, n  int64
	release func()
}

// Bytes appends an in-memory slice. The frame keeps a reference to b.
func (f *Frame) Bytes(b []byte) {
	if len(b) == 0 {
		return
	}
	// Coalesce with a preceding byte part when it is the tail of the
	// same backing array, which is common for encoders that append.
	f.parts = append(f.parts, part{b: b})
	f.size += int64(len(b))
}

// File appends n bytes of file from off. release, if not nil, runs once
// the bytes are written or the frame is dropped; it lets the log keep the
// segment open until then.
func (f *Frame) File(file *os.File, off, n int64, release func()) {
	if n == 0 {
		if release != nil {
			release()
		}
		return
	}
	f.parts = append(f.parts, part{file: file, off: off, n: n, release: release})
	f.size += n
}

// Size is the total body size.
func (f *Frame) Size() int64 { return f.size }

// Release runs every pending release function. Writers call it after
// writing; it is idempotent.
func (f *Frame) Release() {
	for i := range f.parts {
		if r := f.parts[i].release; r != nil {
			f.parts[i].release = nil
			r()
		}
	}
}

// AppendTo copies the whole frame into dst, reading file parts. It is the
// copying path used by tests and non-TCP connections.
func (f *Frame) AppendTo(dst []byte) ([]byte, error) {
	for _, p := range f.parts {
		if p.file == nil {
			dst = append(dst, p.b...)
			continue
		}
		start := len(dst)
		dst = append(dst, make([]byte, p.n)...)
		if _, err := p.file.ReadAt(dst[start:], p.off); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// msgResponse is a response that is a plain kmsg message.
type msgResponse struct{ msg kmsg.Response }

// Msg wraps a ready kmsg response. Its version must already be set.
func Msg(m kmsg.Response) Response { return msgResponse{m} }

func (r msgResponse) Frame(context.Context) (*Frame, error) {
	f := &Frame{Msg: r.msg}
	f.Bytes(r.msg.AppendTo(make([]byte, 0, 256)))
	return f, nil
}

// Func adapts a function to Response, for responses computed late.
type Func func(ctx context.Context) (*Frame, error)

// Frame calls fn.
func (fn Func) Frame(ctx context.Context) (*Frame, error) { return fn(ctx) }

// Deferred returns a response that waits for fn to produce a kmsg
// response. It is how acks=all produce waits for the high watermark without
// blocking the connection's request processing.
func Deferred(fn func(ctx context.Context) (kmsg.Response, error)) Response {
	return Func(func(ctx context.Context) (*Frame, error) {
		m, err := fn(ctx)
		if err != nil {
			return nil, err
		}
		return msgResponse{m}.Frame(ctx)
	})
}

// noResponse marks a request that gets no answer (produce with acks=0).
type noResponse struct{}

func (noResponse) Frame(context.Context) (*Frame, error) { return nil, nil }

// NoResponse is returned for requests the client expects no answer to.
var NoResponse Response = noResponse{}

// errCloseConnection, returned from Frame, makes the writer close the
// connection without answering, as Kafka does after an acks=0 produce
// fails so that the client notices.
type closeResponse struct{}

func (closeResponse) Frame(context.Context) (*Frame, error) { return nil, ErrCloseConnection }

// CloseConnection is a response that closes the connection instead of
// answering.
var CloseConnection Response = closeResponse{}
