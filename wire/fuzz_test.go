package wire

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// seedRequests returns real request bodies (without the size prefix) for
// every API kmsg knows, at its lowest and highest version.
func seedRequests() [][]byte {
	var out [][]byte
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	for key := int16(0); key < 100; key++ {
		req := kmsg.RequestForKey(key)
		if req == nil {
			continue
		}
		for _, v := range []int16{0, req.MaxVersion()} {
			r := kmsg.RequestForKey(key)
			if d, ok := r.(interface{ Default() }); ok {
				d.Default()
			}
			r.SetVersion(v)
			b := f.AppendRequest(nil, r, 7)
			out = append(out, b[4:])
		}
	}
	// A produce request with a real batch in it.
	p := kmsg.NewPtrProduceRequest()
	p.Version, p.Acks = 9, -1
	tp := kmsg.NewProduceRequestTopicPartition()
	tp.Records = []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 49, 0, 0, 0, 0, 2}
	p.Topics = []kmsg.ProduceRequestTopic{{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{tp}}}
	out = append(out, f.AppendRequest(nil, p, 1)[4:])
	return out
}

// servedKeys are the API keys a Tiercel broker decodes. The decoder is
// only ever run on these: others close the connection before decoding.
var servedKeys = map[int16]bool{
	0: true, 1: true, 2: true, 3: true, 8: true, 9: true, 10: true, 11: true, 12: true, 13: true,
	14: true, 15: true, 16: true, 18: true, 19: true, 20: true, 21: true, 22: true, 23: true,
	32: true, 33: true, 35: true, 37: true, 42: true, 44: true, 47: true, 60: true,
}

// FuzzParseRequest feeds arbitrary frame bodies to the request decoder:
// it must never panic, and a decoded request must have a message of the
// key it claims.
func FuzzParseRequest(f *testing.F) {
	for _, s := range seedRequests() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := ParseRequest(body, func(key, _ int16) bool { return servedKeys[key] })
		if err != nil {
			return
		}
		if req.Msg == nil || req.Msg.Key() != req.Key || req.Msg.GetVersion() != req.Version {
			t.Fatalf("decoded %+v", req)
		}
	})
}

// FuzzConnection streams arbitrary bytes into a served connection: the
// framing, header and dispatch path must never panic or hang, whatever
// arrives.
func FuzzConnection(f *testing.F) {
	for _, s := range seedRequests() {
		frame := append([]byte{byte(len(s) >> 24), byte(len(s) >> 16), byte(len(s) >> 8), byte(len(s))}, s...)
		f.Add(frame)
	}
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0})
	mux := NewMux()
	mux.Handle(3, 0, 12, func(ctx context.Context, req *Request) Response {
		r := req.Msg.ResponseKind()
		r.SetVersion(req.Version)
		return Msg(r)
	})
	s := NewServer(Config{Mux: mux, MaxRequestSize: 1 << 20, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer s.Close()
	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		done := make(chan struct{})
		c := newConn(s, server)
		go func() {
			defer close(done)
			c.serve()
		}()
		go io.Copy(io.Discard, client)
		client.SetWriteDeadline(time.Now().Add(time.Second))
		client.Write(data)
		client.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("connection goroutines did not end")
		}
	})
}
