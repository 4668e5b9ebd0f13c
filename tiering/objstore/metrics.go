package objstore

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Outcomes of a call, the "outcome" attribute of the metrics. Not found
// and precondition failed are answers, not failures, so they have their
// own outcomes and do not count as errors.
const (
	outcomeOK                 = "ok"
	outcomeNotFound           = "not_found"
	outcomePreconditionFailed = "precondition_failed"
	outcomeCanceled           = "canceled"
	outcomeDeadline           = "deadline_exceeded"
	outcomeError              = "error"
)

var outcomes = []string{outcomeOK, outcomeNotFound, outcomePreconditionFailed, outcomeCanceled, outcomeDeadline, outcomeError}

// outcome classifies a call's error.
func outcome(err error) string {
	switch {
	case err == nil:
		return outcomeOK
	case IsPreconditionFailed(err):
		return outcomePreconditionFailed
	case IsNotFound(err):
		return outcomeNotFound
	case errors.Is(err, context.Canceled):
		return outcomeCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return outcomeDeadline
	}
	return outcomeError
}

// Metric names. They are exported by the Prometheus exporter as, e.g.,
// tiercel_objstore_requests_total.
const (
	metricRequests = "tiercel.objstore.requests"
	metricErrors   = "tiercel.objstore.errors"
	metricBytes    = "tiercel.objstore.bytes"
	metricDuration = "tiercel.objstore.duration"
)

// metered is the store WithMetrics returns.
type metered struct {
	next     ObjectStore
	requests metric.Int64Counter
	errs     metric.Int64Counter
	bytes    metric.Int64Counter
	duration metric.Float64Histogram

	// Attribute sets are built once: a broker makes many small calls,
	// and building sets per call would allocate on each.
	byOutcome map[Op]map[string]metric.MeasurementOption
	byClass   map[Op]map[string]metric.MeasurementOption
	byDir     map[Op]metric.MeasurementOption
}

// WithMetrics wraps store so that every call is measured with meter:
//
//   - tiercel.objstore.requests{operation, outcome}: calls
//   - tiercel.objstore.errors{operation, error_class}: calls that failed
//     (error_class canceled, deadline_exceeded or error; not found and
//     lost conditional puts are answers, not errors)
//   - tiercel.objstore.bytes{operation, direction}: bytes put (out) and
//     bytes read from bodies (in), counted when a body is closed
//   - tiercel.objstore.duration{operation, outcome}: seconds per call; for
//     get and get_range up to the body being available, for list the
//     whole listing including the callbacks
//
// operation is put, get, get_range, attributes, delete or list. The meter
// is passed in, never taken from a global, so tests and several stores in
// one process each measure what they mean to.
func WithMetrics(store ObjectStore, meter metric.Meter) ObjectStore {
	m := &metered{
		next:      store,
		byOutcome: make(map[Op]map[string]metric.MeasurementOption),
		byClass:   make(map[Op]map[string]metric.MeasurementOption),
		byDir:     make(map[Op]metric.MeasurementOption),
	}
	var err error
	m.requests, err = meter.Int64Counter(metricRequests,
		metric.WithDescription("Object store calls."), metric.WithUnit("{call}"))
	if err != nil {
		m.requests = noop.Int64Counter{}
	}
	m.errs, err = meter.Int64Counter(metricErrors,
		metric.WithDescription("Object store calls that failed."), metric.WithUnit("{call}"))
	if err != nil {
		m.errs = noop.Int64Counter{}
	}
	// Exported from the start, so that an error-rate panel shows zero
	// rather than no data until the first failure.
	m.errs.Add(context.Background(), 0)
	m.bytes, err = meter.Int64Counter(metricBytes,
		metric.WithDescription("Object bytes put and read."), metric.WithUnit("By"))
	if err != nil {
		m.bytes = noop.Int64Counter{}
	}
	m.duration, err = meter.Float64Histogram(metricDuration,
		metric.WithDescription("Object store call latency."), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60))
	if err != nil {
		// The names and options are constant and valid, so only a
		// broken meter gets here; measuring nothing beats failing.
		m.duration = noop.Float64Histogram{}
	}
	for _, op := range Ops() {
		opAttr := attribute.String("operation", string(op))
		m.byOutcome[op] = make(map[string]metric.MeasurementOption)
		m.byClass[op] = make(map[string]metric.MeasurementOption)
		for _, o := range outcomes {
			m.byOutcome[op][o] = metric.WithAttributeSet(attribute.NewSet(opAttr, attribute.String("outcome", o)))
			m.byClass[op][o] = metric.WithAttributeSet(attribute.NewSet(opAttr, attribute.String("error_class", o)))
		}
		dir := "in"
		if op == OpPut {
			dir = "out"
		}
		m.byDir[op] = metric.WithAttributeSet(attribute.NewSet(opAttr, attribute.String("direction", dir)))
	}
	return m
}

// done records a finished call.
func (m *metered) done(ctx context.Context, op Op, start time.Time, err error) {
	o := outcome(err)
	attrs := m.byOutcome[op][o]
	m.requests.Add(ctx, 1, attrs)
	m.duration.Record(ctx, time.Since(start).Seconds(), attrs)
	if o != outcomeOK && o != outcomeNotFound && o != outcomePreconditionFailed {
		m.errs.Add(ctx, 1, m.byClass[op][o])
	}
}

// Put implements ObjectStore.
func (m *metered) Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) (Attrs, error) {
	start := time.Now()
	a, err := m.next.Put(ctx, key, r, size, opts)
	m.done(ctx, OpPut, start, err)
	if err == nil {
		m.bytes.Add(ctx, size, m.byDir[OpPut])
	}
	return a, err
}

// Get implements ObjectStore.
func (m *metered) Get(ctx context.Context, key string) (io.ReadCloser, Attrs, error) {
	start := time.Now()
	rc, a, err := m.next.Get(ctx, key)
	m.done(ctx, OpGet, start, err)
	if err != nil {
		return nil, a, err
	}
	return m.countBody(ctx, OpGet, rc), a, nil
}

// GetRange implements ObjectStore.
func (m *metered) GetRange(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	start := time.Now()
	rc, err := m.next.GetRange(ctx, key, off, length)
	m.done(ctx, OpGetRange, start, err)
	if err != nil {
		return nil, err
	}
	return m.countBody(ctx, OpGetRange, rc), nil
}

// Attributes implements ObjectStore.
func (m *metered) Attributes(ctx context.Context, key string) (Attrs, error) {
	start := time.Now()
	a, err := m.next.Attributes(ctx, key)
	m.done(ctx, OpAttributes, start, err)
	return a, err
}

// Delete implements ObjectStore.
func (m *metered) Delete(ctx context.Context, key string) error {
	start := time.Now()
	err := m.next.Delete(ctx, key)
	m.done(ctx, OpDelete, start, err)
	return err
}

// List implements ObjectStore.
func (m *metered) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	start := time.Now()
	err := m.next.List(ctx, prefix, fn)
	m.done(ctx, OpList, start, err)
	return err
}

// Close implements ObjectStore.
func (m *metered) Close() error { return m.next.Close() }

// countBody counts the bytes read from a body and adds them to the bytes
// counter once, on Close: one measurement per body rather than per Read.
func (m *metered) countBody(ctx context.Context, op Op, rc io.ReadCloser) io.ReadCloser {
	return &countingBody{rc: rc, report: func(n int64) { m.bytes.Add(ctx, n, m.byDir[op]) }}
}

type countingBody struct {
	rc     io.ReadCloser
	n      int64
	once   sync.Once
	report func(int64)
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingBody) Close() error {
	c.once.Do(func() { c.report(c.n) })
	return c.rc.Close()
}
