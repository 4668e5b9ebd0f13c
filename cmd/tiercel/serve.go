package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tiercel/tiercel/broker"
	"github.com/tiercel/tiercel/broker/config"
	"github.com/tiercel/tiercel/gossip"
	"github.com/tiercel/tiercel/internal/telemetry"
	"github.com/tiercel/tiercel/tiering/objstore"
	"github.com/tiercel/tiercel/wire"
)

const serveUsage = `Usage: tiercel serve [flags]

Runs one broker. With no flags it listens on 127.0.0.1:9092, keeps its logs
in ./data and uses ./data/objects as its object store.

Broker settings use Kafka's names (log.segment.bytes, num.partitions, ...).
They come from --config, a file in Kafka's server.properties format
(key=value lines, # comments), and from --override, which wins. An unknown
setting or a bad value stops start-up with an error naming it.

Flags:
`

// overrides collects repeated --override KEY=VALUE flags.
type overrides []string

func (o *overrides) String() string { return strings.Join(*o, ",") }

func (o *overrides) Set(v string) error {
	k, _, ok := strings.Cut(v, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	*o = append(*o, v)
	return nil
}

// serveFlags are the serve command's flags.
type serveFlags struct {
	nodeID      int
	listen      string
	advertise   string
	dataDir     string
	objectStore string
	configFile  string
	overrides   overrides
	rack        string
	s3Endpoint  string
	s3Region    string
	metrics     string
	pprof       bool
	gossip      string
	join        string
	logLevel    string
	logFormat   string
}

func parseServeFlags(args []string, stderr io.Writer) (*serveFlags, error) {
	f := &serveFlags{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, serveUsage)
		fs.PrintDefaults()
	}
	fs.IntVar(&f.nodeID, "node-id", 1, "broker id, unique in the cluster")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:9092", "Kafka listener `HOST:PORT`")
	fs.StringVar(&f.advertise, "advertise", "", "`HOST:PORT` given to clients in Metadata (default: --listen)")
	fs.StringVar(&f.dataDir, "data-dir", "./data", "local log `DIR`ectory")
	fs.StringVar(&f.objectStore, "object-store", "", "object store `URL`: file:///abs/dir, mem:// or s3://bucket/prefix (default file://<data-dir>/objects)")
	fs.StringVar(&f.configFile, "config", "", "broker settings `FILE` in Kafka's server.properties format")
	fs.Var(&f.overrides, "override", "one broker setting as `KEY=VALUE`, repeatable; wins over --config")
	fs.StringVar(&f.rack, "rack", "", "rack of this broker (broker.rack)")
	fs.StringVar(&f.s3Endpoint, "s3-endpoint", "", "custom S3 endpoint `URL`, e.g. http://127.0.0.1:9000 for MinIO (path-style addressing)")
	fs.StringVar(&f.s3Region, "s3-region", "", "S3 `REGION` (default from the AWS environment, else us-east-1)")
	fs.StringVar(&f.gossip, "gossip-listen", "", "gossip `HOST:PORT` (TCP and UDP) for cluster membership; empty runs this broker alone")
	fs.StringVar(&f.join, "join", "", "gossip addresses of other brokers to join, `HOST:PORT[,HOST:PORT...]`")
	fs.StringVar(&f.metrics, "metrics-listen", "127.0.0.1:9644", "`HOST:PORT` serving Prometheus /metrics, /healthz and /readyz; empty to disable")
	fs.BoolVar(&f.pprof, "pprof", false, "also serve Go's profiles under /debug/pprof/ on --metrics-listen")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err}
	}
	if fs.NArg() > 0 {
		return nil, usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	if f.nodeID < 0 || f.nodeID > 1<<31-1 {
		return nil, usageErrorf("--node-id: %d is out of range [0, %d]", f.nodeID, 1<<31-1)
	}
	if _, _, err := net.SplitHostPort(f.listen); err != nil {
		return nil, usageErrorf("--listen: %v", err)
	}
	if f.advertise == "" {
		f.advertise = f.listen
	}
	host, port, err := net.SplitHostPort(f.advertise)
	if err != nil {
		return nil, usageErrorf("--advertise: %v", err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		return nil, usageErrorf("--advertise: %q is not an address clients can connect to; set --advertise", f.advertise)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return nil, usageErrorf("--advertise: bad port %q", port)
	}
	if f.dataDir == "" {
		return nil, usageErrorf("--data-dir: must not be empty")
	}
	if f.metrics != "" {
		if _, _, err := net.SplitHostPort(f.metrics); err != nil {
			return nil, usageErrorf("--metrics-listen: %v", err)
		}
	} else if f.pprof {
		return nil, usageErrorf("--pprof needs --metrics-listen")
	}
	if f.gossip != "" {
		if _, _, err := net.SplitHostPort(f.gossip); err != nil {
			return nil, usageErrorf("--gossip-listen: %v", err)
		}
	}
	if f.join != "" {
		if f.gossip == "" {
			return nil, usageErrorf("--join needs --gossip-listen")
		}
		for _, a := range strings.Split(f.join, ",") {
			if _, _, err := net.SplitHostPort(strings.TrimSpace(a)); err != nil {
				return nil, usageErrorf("--join: %q: %v", a, err)
			}
		}
	}
	return f, nil
}

// brokerSettings reads --config and applies --override on top.
func (f *serveFlags) brokerSettings() (config.Broker, []string, error) {
	props := map[string]string{}
	if f.configFile != "" {
		file, err := os.Open(f.configFile)
		if err != nil {
			return config.Broker{}, nil, usageErrorf("--config: %v", err)
		}
		props, err = config.ParseProperties(file)
		file.Close()
		if err != nil {
			return config.Broker{}, nil, usageErrorf("--config %s: %v", f.configFile, err)
		}
	}
	for _, kv := range f.overrides {
		k, v, _ := strings.Cut(kv, "=")
		props[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if f.rack != "" {
		props["broker.rack"] = f.rack
	}
	settings, err := config.NewBroker(props)
	if err != nil {
		return config.Broker{}, nil, usageError{err}
	}
	return settings, settings.IgnoredNames(), nil
}

func newLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErrorf("--log-level: %q is not one of debug, info, warn, error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageErrorf("--log-format: %q is not text or json", format)
}

func serve(args []string, stdout, stderr io.Writer) error {
	f, err := parseServeFlags(args, stderr)
	if err != nil {
		return err
	}
	logger, err := newLogger(f.logLevel, f.logFormat, stderr)
	if err != nil {
		return err
	}
	settings, warnings, err := f.brokerSettings()
	if err != nil {
		return err
	}
	if len(warnings) > 0 {
		sort.Strings(warnings)
		logger.Warn("Kafka settings accepted but without effect in Tiercel", "settings", strings.Join(warnings, ", "))
	}
	if gc := decideGC(os.Getenv, settings.RemoteCacheBytes); gc.gcPercent > 0 {
		gc.apply()
		logger.Info("garbage collector set for a broker (GOGC or GOMEMLIMIT in the environment override)",
			"gogc", gc.gcPercent, "memory.limit.bytes", debug.SetMemoryLimit(-1))
	}
	dataDir, err := filepath.Abs(f.dataDir)
	if err != nil {
		return usageErrorf("--data-dir: %v", err)
	}
	storeURL := f.objectStore
	if storeURL == "" {
		storeURL = "file://" + filepath.Join(dataDir, "objects")
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	tel, err := telemetry.New(ctx, telemetry.Config{NodeID: int32(f.nodeID), Logger: logger.With("component", "telemetry"), Pprof: f.pprof})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(sctx)
	}()
	metricsAddr := ""
	if f.metrics != "" {
		mln, err := net.Listen("tcp", f.metrics)
		if err != nil {
			return fmt.Errorf("--metrics-listen: %w", err)
		}
		metricsAddr = mln.Addr().String()
		go func() {
			if err := tel.Serve(mln); err != nil {
				logger.Error("metrics listener failed", "err", err)
			}
		}()
	}

	rawStore, err := objstore.Open(ctx, storeURL, objstore.OpenOptions{
		S3:     objstore.S3Config{Endpoint: f.s3Endpoint, Region: f.s3Region},
		Logger: logger.With("component", "objstore"),
	})
	if err != nil {
		return usageErrorf("--object-store: %v", err)
	}
	defer rawStore.Close()
	store := objstore.WithMetrics(rawStore, tel.Meter("tiercel/objstore"))

	var g *gossip.Gossip
	if f.gossip != "" {
		gcfg := gossip.DefaultConfig()
		gcfg.NodeID = int32(f.nodeID)
		gcfg.Bind = f.gossip
		gcfg.KafkaAddr = f.advertise
		gcfg.Rack = settings.BrokerRack
		gcfg.ProbeInterval = time.Duration(settings.GossipProbeIntervalMs) * time.Millisecond
		gcfg.SuspicionMult = int(settings.GossipSuspicionMult)
		gcfg.Logger = logger.With("component", "gossip")
		gcfg.Meter = tel.Meter("tiercel/gossip")
		if f.join != "" {
			for _, a := range strings.Split(f.join, ",") {
				gcfg.Join = append(gcfg.Join, strings.TrimSpace(a))
			}
		}
		if g, err = gossip.Start(gcfg); err != nil {
			return err
		}
		defer g.Close()
	}

	var srv *wire.Server
	b, err := broker.New(ctx, broker.Config{
		Gossip:    g,
		NodeID:    int32(f.nodeID),
		Advertise: f.advertise,
		Rack:      settings.BrokerRack,
		DataDir:   dataDir,
		Settings:  settings,
		Store:     store,
		Logger:    logger,
		Meter:     tel.Meter("tiercel/broker"),
		Tracer:    tel.TracerProvider().Tracer("tiercel/broker"),
		Connections: func() int64 {
			if srv == nil {
				return 0
			}
			return srv.Stats().Connections
		},
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		b.Close()
		return fmt.Errorf("--listen: %w", err)
	}
	wcfg := wire.DefaultConfig()
	wcfg.Mux = b.Mux()
	wcfg.MaxRequestSize = settings.SocketRequestMaxBytes
	wcfg.Logger = logger.With("component", "wire")
	wcfg.Observe = b.ObserveRequest
	srv = wire.NewServer(wcfg)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	tel.SetReady(true, "")
	logger.Info("tiercel serving", "node", f.nodeID, "listen", ln.Addr().String(), "advertise", f.advertise,
		"data-dir", dataDir, "object-store", storeURL, "metrics", metricsAddr)

	select {
	case <-ctx.Done():
		tel.SetReady(false, "shutting down")
		logger.Info("shutting down")
	case err = <-served:
		logger.Error("listener failed", "err", err)
	}
	shutdown := time.AfterFunc(30*time.Second, func() {
		logger.Error("shutdown is taking more than 30s")
	})
	defer shutdown.Stop()
	// Controlled shutdown: move leadership away while still serving, so
	// that clients follow the new leaders without a failure.
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	if cerr := b.ControlledShutdown(sctx); cerr != nil {
		logger.Warn("controlled shutdown incomplete", "err", cerr)
	}
	cancel()
	srv.Close()
	if cerr := b.Close(); cerr != nil {
		logger.Error("closing broker", "err", cerr)
		if err == nil {
			err = cerr
		}
	}
	if g != nil {
		_ = g.Leave(2 * time.Second)
	}
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
