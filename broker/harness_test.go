package broker

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/tiercel/tiercel/broker/config"
	"github.com/tiercel/tiercel/tiering/objstore"
	"github.com/tiercel/tiercel/wire"
)

// testBroker is an in-process broker on a loopback port, with the wire
// server in front of it, as cmd/tiercel wires them.
type testBroker struct {
	t       testing.TB
	B       *Broker
	Srv     *wire.Server
	Addr    string
	DataDir string
	Store   objstore.ObjectStore
	props   map[string]string
	// advertise, if set, is given to clients instead of Addr (a proxy).
	advertise string
	tracer    trace.Tracer
}

type brokerOpt func(*testBroker)

// withSetting sets one broker setting by its Kafka name.
func withSetting(k, v string) brokerOpt { return func(tb *testBroker) { tb.props[k] = v } }

// withAdvertise makes the broker advertise addr, e.g. a fault proxy's.
func withAdvertise(addr string) brokerOpt { return func(tb *testBroker) { tb.advertise = addr } }

// withTracer records the broker's spans.
func withTracer(tr trace.Tracer) brokerOpt { return func(tb *testBroker) { tb.tracer = tr } }

// withStore reuses an object store (restart tests).
func withStore(s objstore.ObjectStore) brokerOpt { return func(tb *testBroker) { tb.Store = s } }

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() || os.Getenv("TIERCEL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startBroker starts a broker and registers its shutdown with t.Cleanup.
func startBroker(t testing.TB, opts ...brokerOpt) *testBroker {
	t.Helper()
	tb := &testBroker{t: t, props: map[string]string{}}
	for _, o := range opts {
		o(tb)
	}
	if tb.DataDir == "" {
		tb.DataDir = t.TempDir()
	}
	if tb.Store == nil {
		fs, err := objstore.NewFS(tb.DataDir + "/objects")
		if err != nil {
			t.Fatal(err)
		}
		tb.Store = fs
	}
	tb.start()
	t.Cleanup(tb.Stop)
	return tb
}

func (tb *testBroker) start() {
	t := tb.t
	t.Helper()
	settings, err := config.NewBroker(tb.props)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if tb.Addr != "" {
		ln, err = net.Listen("tcp", tb.Addr) // restart on the same port
	}
	if err != nil {
		t.Fatal(err)
	}
	tb.Addr = ln.Addr().String()
	logger := testLogger(t)
	adv := tb.Addr
	if tb.advertise != "" {
		adv = tb.advertise
	}
	b, err := New(context.Background(), Config{
		Tracer: tb.tracer,
		NodeID: 1, Advertise: adv, DataDir: tb.DataDir, Settings: settings, Store: tb.Store, Logger: logger,
	})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	wcfg := wire.DefaultConfig()
	wcfg.Mux = b.Mux()
	wcfg.MaxRequestSize = settings.SocketRequestMaxBytes
	wcfg.Logger = logger
	tb.B, tb.Srv = b, wire.NewServer(wcfg)
	go tb.Srv.Serve(ln)
}

// Stop shuts the broker down cleanly; it is idempotent.
func (tb *testBroker) Stop() {
	if tb.B == nil {
		return
	}
	tb.Srv.Close()
	if err := tb.B.Close(); err != nil {
		tb.t.Errorf("broker close: %v", err)
	}
	tb.B, tb.Srv = nil, nil
}

// Restart stops and starts the broker on the same port and directories.
func (tb *testBroker) Restart() {
	tb.Stop()
	tb.start()
}

// Client returns a franz-go client for the broker, closed at cleanup.
func (tb *testBroker) Client(opts ...kgo.Opt) *kgo.Client {
	tb.t.Helper()
	all := append([]kgo.Opt{kgo.SeedBrokers(tb.Addr), kgo.RetryTimeout(20 * time.Second)}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Cleanup(cl.Close)
	return cl
}

// Admin returns a kadm client.
func (tb *testBroker) Admin() *kadm.Client { return kadm.NewClient(tb.Client()) }

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
