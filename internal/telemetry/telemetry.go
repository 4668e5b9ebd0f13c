// Package telemetry builds the broker's OpenTelemetry providers: metrics
// exported for Prometheus on the metrics listener, Go runtime metrics, and
// traces exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT (or its
// traces-only variant) is set. It also serves /healthz and /readyz. The
// providers are handed to the packages that record; nothing is global.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/runtime"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Config configures Telemetry.
type Config struct {
	// NodeID becomes the service.instance.id resource attribute.
	NodeID int32
	// Logger receives exporter errors.
	Logger *slog.Logger
	// Getenv reads the environment; nil means os.Getenv. Tests replace it.
	Getenv func(string) string
	// Pprof also serves Go's profiles under /debug/pprof/ (--pprof). Off
	// by default: profiles reveal internals and cost CPU while taken.
	Pprof bool
}

// Telemetry owns the providers and the HTTP endpoints.
type Telemetry struct {
	meterProvider  *sdkmetric.MeterProvider
	tracerProvider trace.TracerProvider
	shutdownTrace  func(context.Context) error
	registry       *prometheus.Registry
	logger         *slog.Logger
	pprof          bool

	ready  atomic.Bool
	reason atomic.Value // string: why not ready
	srv    *http.Server
}

// New builds the providers.
func New(ctx context.Context, cfg Config) (*Telemetry, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		attribute.String("service.name", "tiercel"),
		attribute.String("service.instance.id", strconv.Itoa(int(cfg.NodeID))),
	))
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	t := &Telemetry{registry: prometheus.NewRegistry(), logger: cfg.Logger, pprof: cfg.Pprof}
	t.reason.Store("starting")
	exp, err := otelprom.New(otelprom.WithRegisterer(t.registry), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	t.meterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
	if err := runtime.Start(runtime.WithMeterProvider(t.meterProvider), runtime.WithMinimumReadMemStatsInterval(5*time.Second)); err != nil {
		return nil, fmt.Errorf("telemetry: runtime metrics: %w", err)
	}
	t.tracerProvider, t.shutdownTrace = noop.NewTracerProvider(), func(context.Context) error { return nil }
	if cfg.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || cfg.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
		// The exporter reads the standard OTEL_EXPORTER_OTLP_* variables.
		te, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP trace exporter: %w", err)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(te), sdktrace.WithResource(res))
		t.tracerProvider, t.shutdownTrace = tp, tp.Shutdown
		cfg.Logger.Info("exporting traces over OTLP")
	}
	return t, nil
}

// Meter returns a meter for a component.
func (t *Telemetry) Meter(name string) metric.Meter { return t.meterProvider.Meter(name) }

// MeterProvider is the metrics provider.
func (t *Telemetry) MeterProvider() metric.MeterProvider { return t.meterProvider }

// TracerProvider is the traces provider (a no-op one unless OTLP is set).
func (t *Telemetry) TracerProvider() trace.TracerProvider { return t.tracerProvider }

// SetReady marks the broker ready (log recovered, metadata known) or not,
// with the reason /readyz gives.
func (t *Telemetry) SetReady(ready bool, reason string) {
	t.reason.Store(reason)
	t.ready.Store(ready)
}

// Handler serves /metrics, /healthz and /readyz.
func (t *Telemetry) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{ErrorLog: slogPrinter{t.logger}}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		// Liveness: the process answers. A wedged broker does not.
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !t.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: %s\n", t.reason.Load())
			return
		}
		fmt.Fprintln(w, "ready")
	})
	if t.pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// Serve serves the endpoints on ln until Shutdown.
func (t *Telemetry) Serve(ln net.Listener) error {
	t.srv = &http.Server{Handler: t.Handler(), ReadHeaderTimeout: 10 * time.Second}
	err := t.srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops the HTTP server and flushes the exporters.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	if t.srv != nil {
		errs = append(errs, t.srv.Shutdown(ctx))
	}
	errs = append(errs, t.shutdownTrace(ctx), t.meterProvider.Shutdown(ctx))
	return errors.Join(errs...)
}

type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.l.Warn("metrics endpoint", "err", fmt.Sprint(v...)) }
