package gossip

import (
	"context"
	"strings"
	"sync"

	gometrics "github.com/hashicorp/go-metrics"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// memberlist reports its metrics through go-metrics' process-wide sink,
// which cannot be passed in. The first Gossip with a meter installs a sink
// that forwards to OpenTelemetry; later ones reuse it.
var installOnce sync.Once

func installMetrics(m metric.Meter) {
	if m == nil {
		return
	}
	installOnce.Do(func() {
		cfg := gometrics.DefaultConfig("")
		cfg.EnableHostname = false
		cfg.EnableRuntimeMetrics = false
		cfg.EnableServiceLabel = false
		_, _ = gometrics.NewGlobal(cfg, &otelSink{meter: m, counters: map[string]metric.Float64Counter{},
			hists: map[string]metric.Float64Histogram{}, gauges: map[string]float64{}})
	})
}

// otelSink is a go-metrics sink over an OpenTelemetry meter. Names become
// gossip.<key parts joined by '.'>, e.g. gossip.memberlist.msg.alive.
type otelSink struct {
	meter metric.Meter

	mu       sync.Mutex
	counters map[string]metric.Float64Counter
	hists    map[string]metric.Float64Histogram
	gauges   map[string]float64
	gaugeReg map[string]bool
}

func metricName(key []string) string { return "gossip." + strings.Join(key, ".") }

func attrs(labels []gometrics.Label) metric.MeasurementOption {
	kv := make([]attribute.KeyValue, 0, len(labels))
	for _, l := range labels {
		kv = append(kv, attribute.String(l.Name, l.Value))
	}
	return metric.WithAttributes(kv...)
}

func (s *otelSink) SetGauge(key []string, val float32) { s.SetGaugeWithLabels(key, val, nil) }

func (s *otelSink) SetGaugeWithLabels(key []string, val float32, _ []gometrics.Label) {
	name := metricName(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gauges[name] = float64(val)
	if s.gaugeReg == nil {
		s.gaugeReg = map[string]bool{}
	}
	if s.gaugeReg[name] {
		return
	}
	s.gaugeReg[name] = true
	g, err := s.meter.Float64ObservableGauge(name)
	if err != nil {
		return
	}
	_, _ = s.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s.mu.Lock()
		v := s.gauges[name]
		s.mu.Unlock()
		o.ObserveFloat64(g, v)
		return nil
	}, g)
}

func (s *otelSink) EmitKey(key []string, val float32) { s.AddSample(key, val) }

func (s *otelSink) IncrCounter(key []string, val float32) { s.IncrCounterWithLabels(key, val, nil) }

func (s *otelSink) IncrCounterWithLabels(key []string, val float32, labels []gometrics.Label) {
	name := metricName(key)
	s.mu.Lock()
	c, ok := s.counters[name]
	if !ok {
		var err error
		if c, err = s.meter.Float64Counter(name); err != nil {
			s.mu.Unlock()
			return
		}
		s.counters[name] = c
	}
	s.mu.Unlock()
	c.Add(context.Background(), float64(val), attrs(labels))
}

func (s *otelSink) AddSample(key []string, val float32) { s.AddSampleWithLabels(key, val, nil) }

func (s *otelSink) AddSampleWithLabels(key []string, val float32, labels []gometrics.Label) {
	name := metricName(key)
	s.mu.Lock()
	h, ok := s.hists[name]
	if !ok {
		var err error
		// go-metrics samples are milliseconds for timers.
		if h, err = s.meter.Float64Histogram(name, metric.WithUnit("ms")); err != nil {
			s.mu.Unlock()
			return
		}
		s.hists[name] = h
	}
	s.mu.Unlock()
	h.Record(context.Background(), float64(val), attrs(labels))
}
