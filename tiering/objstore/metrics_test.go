package objstore_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/tiercel/tiercel/tiering/objstore"
	"github.com/tiercel/tiercel/tiering/objstore/objstoretest"
)

func TestMetricsPassThrough(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.ObjectStore {
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		return objstore.WithMetrics(objstore.NewMem(), mp.Meter("test"))
	})
}

// collected holds one collection, searchable by metric and attributes.
type collected struct {
	t  *testing.T
	rm metricdata.ResourceMetrics
}

func collect(t *testing.T, r *sdkmetric.ManualReader) collected {
	t.Helper()
	c := collected{t: t}
	if err := r.Collect(context.Background(), &c.rm); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c collected) find(name string) metricdata.Aggregation {
	for _, sm := range c.rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m.Data
			}
		}
	}
	return nil
}

func matches(set attribute.Set, kv []string) bool {
	if set.Len() != len(kv)/2 {
		return false
	}
	for i := 0; i < len(kv); i += 2 {
		v, ok := set.Value(attribute.Key(kv[i]))
		if !ok || v.AsString() != kv[i+1] {
			return false
		}
	}
	return true
}

// sum returns the counter's value for exactly these attributes.
func (c collected) sum(name string, kv ...string) int64 {
	c.t.Helper()
	data, ok := c.find(name).(metricdata.Sum[int64])
	if !ok {
		return 0
	}
	for _, dp := range data.DataPoints {
		if matches(dp.Attributes, kv) {
			return dp.Value
		}
	}
	return 0
}

// count returns how many latencies the histogram holds for these attributes.
func (c collected) count(name string, kv ...string) uint64 {
	c.t.Helper()
	data, ok := c.find(name).(metricdata.Histogram[float64])
	if !ok {
		return 0
	}
	for _, dp := range data.DataPoints {
		if matches(dp.Attributes, kv) {
			return dp.Count
		}
	}
	return 0
}

func TestMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	fault := objstore.NewFault(objstore.NewMem(), objstore.FaultConfig{})
	s := objstore.WithMetrics(fault, mp.Meter("tiercel"))
	ctx := context.Background()

	body := strings.Repeat("x", 100)
	a, err := s.Put(ctx, "k", strings.NewReader(body), 100, objstore.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "k", strings.NewReader("y"), 1, objstore.PutOptions{IfNoneMatch: true}); !objstore.IsPreconditionFailed(err) {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "k", strings.NewReader("z"), 1, objstore.PutOptions{IfMatch: a.ETag}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "k2", strings.NewReader(body), 100, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	rc, _, err := s.Get(ctx, "k2")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, rc)
	rc.Close()
	rc, err = s.GetRange(ctx, "k2", 10, 30)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, rc)
	rc.Close()
	rc.Close() // a second Close must not count again
	if _, _, err := s.Get(ctx, "missing"); !objstore.IsNotFound(err) {
		t.Fatal(err)
	}
	if _, err := s.Attributes(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if err := s.List(ctx, "", func(objstore.ObjectInfo) error { return nil }); err != nil {
		t.Fatal(err)
	}
	fault.FailNext(2)
	if _, err := s.Attributes(ctx, "k2"); err == nil {
		t.Fatal("injected failure did not fail")
	}
	if err := s.List(ctx, "", func(objstore.ObjectInfo) error { return nil }); err == nil {
		t.Fatal("injected failure did not fail")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Attributes(cctx, "k2"); err == nil {
		t.Fatal("cancelled call succeeded")
	}

	c := collect(t, reader)
	for _, want := range []struct {
		op, outcome string
		n           int64
	}{
		{"put", "ok", 3},
		{"put", "precondition_failed", 1},
		{"get", "ok", 1},
		{"get", "not_found", 1},
		{"get_range", "ok", 1},
		{"attributes", "ok", 1},
		{"attributes", "error", 1},
		{"attributes", "canceled", 1},
		{"delete", "ok", 1},
		{"list", "ok", 1},
		{"list", "error", 1},
	} {
		if got := c.sum("tiercel.objstore.requests", "operation", want.op, "outcome", want.outcome); got != want.n {
			t.Errorf("requests{%s,%s} = %d, want %d", want.op, want.outcome, got, want.n)
		}
		if got := c.count("tiercel.objstore.duration", "operation", want.op, "outcome", want.outcome); got != uint64(want.n) {
			t.Errorf("duration{%s,%s} count = %d, want %d", want.op, want.outcome, got, want.n)
		}
	}
	for _, want := range []struct {
		op, class string
		n         int64
	}{
		{"attributes", "error", 1},
		{"attributes", "canceled", 1},
		{"list", "error", 1},
		{"get", "not_found", 0},
		{"put", "precondition_failed", 0},
	} {
		if got := c.sum("tiercel.objstore.errors", "operation", want.op, "error_class", want.class); got != want.n {
			t.Errorf("errors{%s,%s} = %d, want %d", want.op, want.class, got, want.n)
		}
	}
	for _, want := range []struct {
		op, dir string
		n       int64
	}{
		{"put", "out", 201},
		{"get", "in", 100},
		{"get_range", "in", 30},
	} {
		if got := c.sum("tiercel.objstore.bytes", "operation", want.op, "direction", want.dir); got != want.n {
			t.Errorf("bytes{%s,%s} = %d, want %d", want.op, want.dir, got, want.n)
		}
	}
}
