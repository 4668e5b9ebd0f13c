package broker

import (
	"context"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/tiercel/tiercel/wire"
)

// brokerMetrics are the broker's instruments. Names are chosen so that,
// once the Prometheus exporter adds its suffixes, a Kafka operator finds
// what they expect (README lists them all): tiercel_requests_total,
// tiercel_bytes_in_total, tiercel_under_replicated_partitions, ...
type brokerMetrics struct {
	reqAttrs        sync.Map // uint32(key<<16|version) -> *requestAttrs
	requests        metric.Int64Counter
	requestErrors   metric.Int64Counter
	requestDuration metric.Float64Histogram

	bytesIn, bytesOut, messagesIn metric.Int64Counter

	remoteCopyBytes, remoteCopyErrors metric.Int64Counter
	remoteFetches                     metric.Int64Counter
	remoteFetchDuration               metric.Float64Histogram

	isrShrinks, isrExpands metric.Int64Counter

	// Parked requests, for the purgatory gauges.
	parkedFetches, pendingAcks atomic.Int64
}

// newBrokerMetrics creates the instruments and the gauges that read the
// broker's state when scraped.
func newBrokerMetrics(b *Broker, m metric.Meter) (*brokerMetrics, error) {
	if m == nil {
		m = noop.NewMeterProvider().Meter("tiercel")
	}
	bm := &brokerMetrics{}
	var err error
	counter := func(name, unit, desc string) metric.Int64Counter {
		if err != nil {
			return nil
		}
		var c metric.Int64Counter
		c, err = m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		return c
	}
	hist := func(name, desc string, bounds ...float64) metric.Float64Histogram {
		if err != nil {
			return nil
		}
		var h metric.Float64Histogram
		h, err = m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc), metric.WithExplicitBucketBoundaries(bounds...))
		return h
	}
	latency := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	bm.requests = counter("tiercel.requests", "{request}", "Requests handled, by API and version.")
	bm.requestErrors = counter("tiercel.request_errors", "{error}", "Error codes answered, by API and Kafka error code.")
	bm.requestDuration = hist("tiercel.request.duration", "Time from a request's arrival to its response being written, by API.", latency...)
	bm.bytesIn = counter("tiercel.bytes_in", "{byte}", "Record bytes appended by producers, by topic.")
	bm.bytesOut = counter("tiercel.bytes_out", "{byte}", "Record bytes sent to consumers and followers, by topic.")
	bm.messagesIn = counter("tiercel.messages_in", "{message}", "Records appended by producers, by topic.")
	bm.remoteCopyBytes = counter("tiercel.remote.copy_bytes", "{byte}", "Segment bytes offloaded to the object store, by topic.")
	bm.remoteCopyErrors = counter("tiercel.remote.copy_errors", "{error}", "Failed segment offloads, by topic.")
	bm.remoteFetches = counter("tiercel.remote.fetch_requests", "{request}", "Partition reads served from the remote tier, by topic.")
	bm.remoteFetchDuration = hist("tiercel.remote.fetch.duration", "Latency of partition reads from the remote tier.", latency...)
	bm.isrShrinks = counter("tiercel.isr_shrinks", "{change}", "Replicas removed from an ISR by this broker as leader.")
	bm.isrExpands = counter("tiercel.isr_expands", "{change}", "Replicas added to an ISR by this broker as leader.")
	if err != nil {
		return nil, err
	}
	// Counters appear in the exposition only once touched; start the ones
	// that may stay idle for long at zero so dashboards see them.
	for _, c := range []metric.Int64Counter{bm.isrShrinks, bm.isrExpands, bm.remoteCopyErrors, bm.requestErrors} {
		c.Add(context.Background(), 0)
	}

	gauge := func(name, unit, desc string) metric.Int64ObservableGauge {
		if err != nil {
			return nil
		}
		var g metric.Int64ObservableGauge
		g, err = m.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		return g
	}
	partitions := gauge("tiercel.partitions", "{partition}", "Partition replicas hosted by this broker.")
	leaders := gauge("tiercel.leader_partitions", "{partition}", "Partitions this broker leads.")
	underReplicated := gauge("tiercel.under_replicated_partitions", "{partition}", "Partitions led here whose ISR is smaller than their replica set.")
	offline := gauge("tiercel.offline_partitions", "{partition}", "Partitions with no live leader, in this broker's view of the metadata.")
	ctrlActive := gauge("tiercel.controller.active", "", "1 if this broker is the controller.")
	ctrlEpoch := gauge("tiercel.controller.epoch", "", "The controller epoch this broker knows.")
	purgatory := gauge("tiercel.purgatory.size", "{request}", "Requests parked: fetches waiting for data, produces waiting for acks=all.")
	connections := gauge("tiercel.connections", "{connection}", "Open client connections.")
	copyLag := gauge("tiercel.remote.copy_lag", "By", "Bytes of sealed local segments not yet offloaded, by partition.")
	logSize := gauge("tiercel.log.size", "By", "Local log bytes on this broker, by topic.")
	remoteSize := gauge("tiercel.remote.log.size", "By", "Remote log bytes of the partitions this broker leads, by topic.")
	cacheSize := gauge("tiercel.remote.cache.size", "By", "Bytes held by the remote chunk cache.")
	var cacheHit metric.Float64ObservableGauge
	if err == nil {
		cacheHit, err = m.Float64ObservableGauge("tiercel.remote.cache.hit", metric.WithUnit("1"),
			metric.WithDescription("Hit ratio of the remote chunk cache since start."))
	}
	if err != nil {
		return nil, err
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		var nParts, nLeaders, nUnder int64
		logBytes := map[string]int64{}
		remoteBytes := map[string]int64{}
		b.forEachPartition(func(t *topicState, p *partition) {
			nParts++
			logBytes[p.topic] += p.log.Size()
			isLeader, _, _ := p.leaderState(b.cfg.NodeID)
			if !isLeader {
				return
			}
			nLeaders++
			p.mu.Lock()
			under := len(p.isr) < len(p.replicas)
			p.mu.Unlock()
			if under {
				nUnder++
			}
			if p.tiered() {
				remoteBytes[p.topic] += p.remote.Manifest().Size()
				o.ObserveInt64(copyLag, p.copyLag(), metric.WithAttributes(
					attribute.String("topic", p.topic), attribute.String("partition", strconv.Itoa(int(p.index)))))
			}
		})
		o.ObserveInt64(partitions, nParts)
		o.ObserveInt64(leaders, nLeaders)
		o.ObserveInt64(underReplicated, nUnder)
		var nOffline int64
		for _, t := range b.current().md.Topics {
			for _, pa := range t.Partitions {
				if pa.Leader < 0 || !b.isLive(pa.Leader) {
					nOffline++
				}
			}
		}
		o.ObserveInt64(offline, nOffline)
		active := int64(0)
		if b.controllerID() == b.cfg.NodeID {
			active = 1
		}
		o.ObserveInt64(ctrlActive, active)
		o.ObserveInt64(ctrlEpoch, b.ctrl.Epoch())
		o.ObserveInt64(purgatory, bm.parkedFetches.Load(), metric.WithAttributes(attribute.String("purgatory", "fetch")))
		o.ObserveInt64(purgatory, bm.pendingAcks.Load(), metric.WithAttributes(attribute.String("purgatory", "produce")))
		if b.cfg.Connections != nil {
			o.ObserveInt64(connections, b.cfg.Connections())
		}
		for topic, n := range logBytes {
			o.ObserveInt64(logSize, n, metric.WithAttributes(attribute.String("topic", topic)))
		}
		for topic, n := range remoteBytes {
			o.ObserveInt64(remoteSize, n, metric.WithAttributes(attribute.String("topic", topic)))
		}
		if b.cache != nil {
			st := b.cache.Stats()
			o.ObserveInt64(cacheSize, st.Bytes)
			o.ObserveFloat64(cacheHit, st.HitRatio())
		}
		return nil
	}, partitions, leaders, underReplicated, offline, ctrlActive, ctrlEpoch, purgatory, connections, copyLag, logSize, remoteSize, cacheSize, cacheHit)
	if err != nil {
		return nil, err
	}
	return bm, nil
}

// copyLag is the bytes of sealed local segments above the remote end.
func (p *partition) copyLag() int64 {
	next := p.remoteNext()
	var n int64
	for _, si := range p.log.Segments() {
		if !si.Active && si.NextOffset > next {
			n += si.Size
		}
	}
	return n
}

// ObserveRequest records a handled request; wire calls it after each
// response is written. It counts the error codes in the answer.
func (b *Broker) ObserveRequest(req *wire.Request, msg any, took time.Duration, err error) {
	ctx := context.Background()
	a := b.metrics.attrsFor(req.Key, req.Version)
	b.metrics.requests.Add(ctx, 1, a.apiVersion)
	b.metrics.requestDuration.Record(ctx, took.Seconds(), a.api)
	var codes errorCodes
	collectErrorCodes(msg, &codes)
	for code, n := range codes {
		name := strconv.Itoa(int(code))
		if e := kerr.ErrorForCode(code); e != nil {
			if ke, ok := e.(*kerr.Error); ok {
				name = ke.Message
			}
		}
		b.metrics.requestErrors.Add(ctx, n, metric.WithAttributes(a.apiAttr, attribute.String("error_code", name)))
	}
}

// requestAttrs are the attribute options of one API key and version,
// built once: building them per request was a visible share of a busy
// broker's allocations.
type requestAttrs struct {
	apiAttr         attribute.KeyValue
	api, apiVersion metric.MeasurementOption
}

func (bm *brokerMetrics) attrsFor(key, version int16) *requestAttrs {
	id := uint32(uint16(key))<<16 | uint32(uint16(version))
	if a, ok := bm.reqAttrs.Load(id); ok {
		return a.(*requestAttrs)
	}
	apiAttr := attribute.String("api", kmsg.NameForKey(key))
	a := &requestAttrs{apiAttr: apiAttr, api: metric.WithAttributes(apiAttr),
		apiVersion: metric.WithAttributes(apiAttr, attribute.Int("version", int(version)))}
	v, _ := bm.reqAttrs.LoadOrStore(id, a)
	return v.(*requestAttrs)
}

// errorCodes counts error codes; nil until the first one.
type errorCodes map[int16]int64

func (c *errorCodes) add(code int16) {
	if *c == nil {
		*c = errorCodes{}
	}
	(*c)[code]++
}

// collectErrorCodes counts the non-zero error codes in a response: fetch
// and produce responses by hand (the hot paths), anything else by
// walking its ErrorCode fields.
func collectErrorCodes(msg any, codes *errorCodes) {
	switch r := msg.(type) {
	case nil:
	case *wire.FetchResponse:
		if r.ErrorCode != 0 {
			codes.add(r.ErrorCode)
		}
		for i := range r.Topics {
			for j := range r.Topics[i].Partitions {
				if c := r.Topics[i].Partitions[j].Meta.ErrorCode; c != 0 {
					codes.add(c)
				}
			}
		}
	case *kmsg.ProduceResponse:
		for i := range r.Topics {
			for j := range r.Topics[i].Partitions {
				if c := r.Topics[i].Partitions[j].ErrorCode; c != 0 {
					codes.add(c)
				}
			}
		}
	default:
		walkErrorCodes(reflect.ValueOf(msg), codes, 0)
	}
}

var int16Type = reflect.TypeOf(int16(0))

func walkErrorCodes(v reflect.Value, codes *errorCodes, depth int) {
	if depth > 6 {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			walkErrorCodes(v.Elem(), codes, depth+1)
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			fv := v.Field(i)
			if f.Name == "ErrorCode" && f.Type == int16Type {
				if c := int16(fv.Int()); c != 0 {
					codes.add(c)
				}
				continue
			}
			if k := f.Type.Kind(); k == reflect.Slice || k == reflect.Struct || k == reflect.Pointer {
				walkErrorCodes(fv, codes, depth+1)
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return
		}
		for i := 0; i < v.Len(); i++ {
			walkErrorCodes(v.Index(i), codes, depth+1)
		}
	}
}
