package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchRun carries one bench invocation's state.
type benchRun struct {
	f      *benchFlags
	seeds  []string
	stderr io.Writer
	res    *benchResult
}

func (r *benchRun) clientOpts(extra ...kgo.Opt) []kgo.Opt {
	return append([]kgo.Opt{kgo.SeedBrokers(r.seeds...), kgo.ClientID("tiercel-bench")}, extra...)
}

func (r *benchRun) deadline(start time.Time) time.Time {
	if r.f.duration > 0 {
		return start.Add(r.f.duration)
	}
	return time.Time{}
}

// ensureTopic returns the topic's partition count once every partition has
// a leader. With create it creates a missing topic with --partitions.
func (r *benchRun) ensureTopic(ctx context.Context, create bool) (int, error) {
	// kgo answers repeated Metadata requests from a cache younger than
	// MetadataMinAge (5s by default); keep it short so polling sees the
	// topic as soon as it exists.
	cl, err := kgo.NewClient(r.clientOpts(kgo.MetadataMinAge(50 * time.Millisecond))...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topic := r.f.topic
	giveUp := time.Now().Add(r.f.timeout)
	created := false
	var lastErr error
	for {
		tds, err := adm.ListTopics(ctx, topic)
		if err == nil {
			td, ok := tds[topic]
			switch {
			case ok && td.Err == nil && len(td.Partitions) > 0 && allHaveLeaders(td.Partitions):
				n := len(td.Partitions)
				if !created && r.f.partitionsSet && n != r.f.partitions {
					fmt.Fprintf(r.stderr, "bench: topic %q already exists with %s; using it as it is (not %d)\n",
						topic, plural(n, "partition"), r.f.partitions)
				}
				return n, nil
			case !created && (!ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition)):
				if !create {
					return 0, fmt.Errorf("topic %q does not exist: run \"tiercel bench produce\" first", topic)
				}
				resp, err := adm.CreateTopic(ctx, int32(r.f.partitions), -1, nil, topic)
				switch {
				case err != nil:
					return 0, fmt.Errorf("creating topic %q: %w", topic, err)
				case resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists):
					return 0, fmt.Errorf("creating topic %q: %w %s", topic, resp.Err, resp.ErrMessage)
				default:
					created = true
				}
			case ok && td.Err != nil:
				lastErr = td.Err
			default:
				lastErr = errors.New("partitions without a leader")
			}
		} else if !kerr.IsRetriable(err) {
			return 0, fmt.Errorf("listing topic %q: %w", topic, err)
		} else {
			lastErr = err
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if time.Now().After(giveUp) {
			return 0, fmt.Errorf("topic %q not ready after %v: %w", topic, r.f.timeout, lastErr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func allHaveLeaders(ps kadm.PartitionDetails) bool {
	for _, p := range ps {
		if p.Err != nil || p.Leader < 0 {
			return false
		}
	}
	return true
}

// offsets lists the start and end offset of every partition of the topic.
func (r *benchRun) offsets(ctx context.Context) (starts, ends map[int32]int64, err error) {
	cl, err := kgo.NewClient(r.clientOpts()...)
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	get := func(list func(context.Context, ...string) (kadm.ListedOffsets, error)) (map[int32]int64, error) {
		lo, err := list(ctx, r.f.topic)
		if err != nil {
			return nil, err
		}
		if err := lo.Error(); err != nil {
			return nil, err
		}
		m := make(map[int32]int64)
		for p, o := range lo[r.f.topic] {
			m[p] = o.Offset
		}
		return m, nil
	}
	if starts, err = get(adm.ListStartOffsets); err != nil {
		return nil, nil, fmt.Errorf("listing start offsets: %w", err)
	}
	if ends, err = get(adm.ListEndOffsets); err != nil {
		return nil, nil, fmt.Errorf("listing end offsets: %w", err)
	}
	return starts, ends, nil
}

// countHook counts record batches and requests of one API key.
type countHook struct {
	key      int16
	batches  atomic.Int64
	records  atomic.Int64 // in the batches counted
	requests atomic.Int64
}

// OnProduceBatchWritten runs on a goroutine of its own, after the batch's
// promises may already have run: see settle.
func (h *countHook) OnProduceBatchWritten(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.ProduceBatchMetrics) {
	h.records.Add(int64(m.NumRecords))
	h.batches.Add(1)
}

// settle waits briefly for asynchronous produce hooks to account for the
// acknowledged records.
func (h *countHook) settle(acked int64) {
	for giveUp := time.Now().Add(2 * time.Second); h.records.Load() < acked && time.Now().Before(giveUp); {
		time.Sleep(time.Millisecond)
	}
}

func (h *countHook) OnFetchBatchRead(kgo.BrokerMetadata, string, int32, kgo.FetchBatchMetrics) {
	h.batches.Add(1)
}

func (h *countHook) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == h.key && err == nil {
		h.requests.Add(1)
	}
}

// ---------------------------------------------------------------------------
// Producing

// benchRecord is a pooled record. It is its own record's Context, which
// leads the promise back to it without a per-record closure or allocation;
// the embedded Context is always context.Background().
type benchRecord struct {
	context.Context
	rec   kgo.Record
	start time.Time
	buf   []byte // e2e: this record's own value, to carry the timestamp
}

// producer is one producer client and what its promises have counted.
type producer struct {
	cl    *kgo.Client
	quota int64 // records to produce; 0 = until the deadline

	mu       sync.Mutex // promises run serially per client; this orders the final read
	hist     *histogram
	acked    int64
	bytes    int64
	errs     int64
	unsent   int64 // canceled by an interrupt before sending
	firstErr error
}

// runProducers runs the produce workload and reports it as a phase named
// name. With stamp, each value starts with the send time in Unix
// nanoseconds (little endian) for e2e. started, if not nil, is called with
// the start time just before the first record is produced.
func (r *benchRun) runProducers(ctx context.Context, name string, stamp bool, mt *meter, started func(time.Time)) (phaseResult, error) {
	f := r.f
	keySize := 0
	if f.keys {
		keySize = f.keySize
	}
	src := newRecordSource(f.recordSize, keySize, f.batchMaxBytes)
	hook := &countHook{key: 0} // Produce
	ps := make([]*producer, f.producers)
	defer func() {
		for _, p := range ps {
			if p != nil && p.cl != nil {
				p.cl.Close()
			}
		}
	}()
	for i := range ps {
		cl, err := kgo.NewClient(r.clientOpts(append(f.producerOpts(), kgo.WithHooks(hook))...)...)
		if err != nil {
			return phaseResult{}, err
		}
		p := &producer{cl: cl, hist: newHistogram()}
		ps[i] = p
		if f.records > 0 {
			p.quota = f.records / int64(f.producers)
			if int64(i) < f.records%int64(f.producers) {
				p.quota++
			}
		}
		// Connect before the clock starts.
		pctx, cancel := context.WithTimeout(ctx, f.timeout)
		err = cl.Ping(pctx)
		cancel()
		if err != nil {
			return phaseResult{}, fmt.Errorf("connecting to %v: %w", r.seeds, err)
		}
	}

	start := time.Now()
	deadline := r.deadline(start)
	if started != nil {
		started(start)
	}
	var perRecord time.Duration // pacing per producer; 0 = unlimited
	if f.rate > 0 {
		perRecord = time.Duration(float64(time.Second) * float64(f.producers) / f.rate)
	}
	var wg sync.WaitGroup
	flushErrs := make([]error, len(ps))
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.produceLoop(ctx, p, uint64(i)<<40, src, stamp, mt, start, deadline, perRecord)
			fctx, cancel := context.WithTimeout(context.Background(), f.timeout)
			defer cancel()
			if err := p.cl.Flush(fctx); err != nil {
				flushErrs[i] = fmt.Errorf("flush: %w", err)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, p := range ps {
		p.cl.Close() // fails whatever a timed-out flush left behind
		p.cl = nil
	}

	hist := newHistogram()
	var acked, bytes, errs int64
	var firstErr error
	for _, p := range ps {
		p.mu.Lock()
		hist.merge(p.hist)
		acked += p.acked
		bytes += p.bytes
		errs += p.errs
		if firstErr == nil {
			firstErr = p.firstErr
		}
		p.mu.Unlock()
	}
	ph := newPhase(name, acked, bytes, elapsed)
	hook.settle(acked)
	ph.Batches = hook.batches.Load()
	ph.Requests = hook.requests.Load()
	ph.Errors = errs
	if firstErr != nil {
		ph.FirstError = firstErr.Error()
	}
	ph.LatencyMs = hist.summary()
	return ph, errors.Join(flushErrs...)
}

func (r *benchRun) produceLoop(ctx context.Context, p *producer, base uint64, src *recordSource, stamp bool,
	mt *meter, start, deadline time.Time, perRecord time.Duration) {
	pool := sync.Pool{New: func() any {
		br := &benchRecord{Context: context.Background()}
		if stamp {
			br.buf = make([]byte, src.valSize)
		}
		return br
	}}
	promise := func(rec *kgo.Record, err error) {
		br := rec.Context.(*benchRecord)
		now := time.Now()
		p.mu.Lock()
		switch {
		case err == nil:
			n := int64(len(rec.Key) + len(rec.Value))
			p.hist.record(int64(now.Sub(br.start)))
			p.acked++
			p.bytes += n
			mt.records.Add(1)
			mt.bytes.Add(n)
		case ctx.Err() != nil && errors.Is(err, context.Canceled):
			p.unsent++
		default:
			p.errs++
			if p.firstErr == nil {
				p.firstErr = err
			}
		}
		p.mu.Unlock()
		br.rec = kgo.Record{}
		pool.Put(br)
	}
	for i := int64(0); p.quota == 0 || i < p.quota; i++ {
		now := time.Now()
		if !deadline.IsZero() && !now.Before(deadline) || ctx.Err() != nil {
			return
		}
		if perRecord > 0 {
			if due := start.Add(time.Duration(i) * perRecord); due.Sub(now) > time.Millisecond {
				select {
				case <-time.After(due.Sub(now)):
				case <-ctx.Done():
					return
				}
				now = time.Now()
			}
		}
		br := pool.Get().(*benchRecord)
		key, val := src.record(base + uint64(i))
		if stamp {
			v := br.buf[:len(val)]
			copy(v, val)
			binary.LittleEndian.PutUint64(v, uint64(now.UnixNano()))
			val = v
		}
		br.rec = kgo.Record{Key: key, Value: val, Context: br}
		br.start = now
		p.cl.Produce(ctx, &br.rec, promise)
	}
}

// ---------------------------------------------------------------------------
// Consuming

// consumeResult is what one consume loop read.
type consumeResult struct {
	records, bytes int64
	first, last    time.Time // when the first and last counted record arrived
	batches        int64
	requests       int64
	errs           int64
	firstErr       error
}

// consumeLoop reads the topic from the given offsets with ConsumePartitions.
// It counts only records below ends (when ends is not nil) and stops once it
// has counted target() records (a negative target means not known yet), at
// the deadline, on ctx, or after --timeout without a record. With e2e it
// records the latency from the timestamp in each value.
func (r *benchRun) consumeLoop(ctx context.Context, from, ends map[int32]int64, target func() int64,
	deadline time.Time, mt *meter, e2e *histogram, ready chan<- struct{}) (consumeResult, error) {
	f := r.f
	offs := make(map[int32]kgo.Offset, len(from))
	for p, o := range from {
		offs[p] = kgo.NewOffset().At(o)
	}
	hook := &countHook{key: 1} // Fetch
	var readyHook kgo.Hook = hook
	if ready != nil {
		readyHook = &readyOnFetch{countHook: hook, ready: ready}
	}
	cl, err := kgo.NewClient(r.clientOpts(append(f.consumerOpts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{f.topic: offs}),
		kgo.WithHooks(readyHook),
	)...)...)
	if err != nil {
		return consumeResult{}, err
	}
	defer cl.Close()

	var res consumeResult
	lastProgress := time.Now()
	for {
		now := time.Now()
		if t := target(); t >= 0 && res.records >= t {
			break
		}
		if !deadline.IsZero() && !now.Before(deadline) || ctx.Err() != nil {
			break
		}
		if now.Sub(lastProgress) > f.timeout {
			return res, fmt.Errorf("consume: %w for %v after %d records", errTimeout, f.timeout, res.records)
		}
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fetches := cl.PollFetches(pctx)
		cancel()
		now = time.Now()
		fetches.EachError(func(_ string, _ int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			res.errs++
			if res.firstErr == nil {
				res.firstErr = err
			}
		})
		t := target()
		var n, nb int64
		for it := fetches.RecordIter(); !it.Done(); {
			rec := it.Next()
			if ends != nil && rec.Offset >= ends[rec.Partition] {
				continue
			}
			if t >= 0 && res.records+n >= t {
				break
			}
			n++
			nb += int64(len(rec.Key) + len(rec.Value))
			if e2e != nil && len(rec.Value) >= 8 {
				e2e.record(now.UnixNano() - int64(binary.LittleEndian.Uint64(rec.Value)))
			}
		}
		if n > 0 {
			if res.records == 0 {
				res.first = now
			}
			res.records += n
			res.bytes += nb
			res.last = now
			lastProgress = now
			mt.records.Add(n)
			mt.bytes.Add(nb)
		}
	}
	res.batches = hook.batches.Load()
	res.requests = hook.requests.Load()
	return res, nil
}

// readyOnFetch signals once the consumer has sent its first Fetch.
type readyOnFetch struct {
	*countHook
	once  sync.Once
	ready chan<- struct{}
}

func (h *readyOnFetch) OnBrokerWrite(meta kgo.BrokerMetadata, key int16, n int, wait, write time.Duration, err error) {
	h.countHook.OnBrokerWrite(meta, key, n, wait, write, err)
	if key == 1 && err == nil {
		h.once.Do(func() { close(h.ready) })
	}
}

func (c consumeResult) phase(name string, start time.Time) phaseResult {
	var elapsed time.Duration
	if c.records > 0 {
		elapsed = c.last.Sub(start)
	}
	ph := newPhase(name, c.records, c.bytes, elapsed)
	ph.Batches = c.batches
	ph.Requests = c.requests
	ph.Errors = c.errs
	if c.firstErr != nil {
		ph.FirstError = c.firstErr.Error()
	}
	return ph
}

// ---------------------------------------------------------------------------
// Modes

func (r *benchRun) produce(ctx context.Context) error {
	n, err := r.ensureTopic(ctx, true)
	if err != nil {
		return err
	}
	r.res.Partitions = n
	mt := &meter{name: "produce"}
	var prog *progress
	ph, err := r.runProducers(ctx, "produce", false, mt, func(start time.Time) {
		prog = startProgress(r.stderr, r.f.interval, r.f.records, r.deadline(start), mt)
	})
	if prog != nil {
		prog.stop()
	}
	r.res.Phases = append(r.res.Phases, ph)
	return err
}

func (r *benchRun) consume(ctx context.Context) error {
	n, err := r.ensureTopic(ctx, r.f.kfake)
	if err != nil {
		return err
	}
	r.res.Partitions = n
	if r.f.kfake {
		// kfake starts empty: fill it with the produce workload first.
		mt := &meter{name: "prefill"}
		var prog *progress
		ph, err := r.runProducers(ctx, "prefill", false, mt, func(start time.Time) {
			prog = startProgress(r.stderr, r.f.interval, r.f.records, r.deadline(start), mt)
		})
		if prog != nil {
			prog.stop()
		}
		r.res.Phases = append(r.res.Phases, ph)
		if err != nil {
			return err
		}
	}
	starts, ends, err := r.offsets(ctx)
	if err != nil {
		return err
	}
	from := make(map[int32]int64)
	var avail int64
	for p, end := range ends {
		if s := starts[p]; end > s {
			from[p] = s
			avail += end - s
		}
	}
	if avail == 0 {
		return fmt.Errorf("topic %q is empty: run \"tiercel bench produce\" first", r.f.topic)
	}
	target := avail
	if r.f.records > 0 {
		target = min(target, r.f.records)
	}
	mt := &meter{name: "consume"}
	start := time.Now()
	prog := startProgress(r.stderr, r.f.interval, target, r.deadline(start), mt)
	res, err := r.consumeLoop(ctx, from, ends, func() int64 { return target }, r.deadline(start), mt, nil, nil)
	prog.stop()
	r.res.Phases = append(r.res.Phases, res.phase("consume", start))
	return err
}

func (r *benchRun) e2e(ctx context.Context) error {
	n, err := r.ensureTopic(ctx, true)
	if err != nil {
		return err
	}
	r.res.Partitions = n
	_, ends, err := r.offsets(ctx)
	if err != nil {
		return err
	}
	var target atomic.Int64
	target.Store(-1)
	var prodStart atomic.Pointer[time.Time]
	pm, cm := &meter{name: "produce"}, &meter{name: "consume"}
	hist := newHistogram()
	ready := make(chan struct{})
	type out struct {
		res consumeResult
		err error
	}
	done := make(chan out, 1)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		// The consumer's own time bound: the produce duration plus --timeout
		// to drain; the idle timeout covers the rest.
		var dl time.Time
		if r.f.duration > 0 {
			dl = time.Now().Add(r.f.duration + r.f.timeout)
		}
		res, err := r.consumeLoop(cctx, ends, nil, target.Load, dl, cm, hist, ready)
		done <- out{res, err}
	}()
	select {
	case <-ready:
	case o := <-done:
		return fmt.Errorf("consumer stopped before producing started: %v", o.err)
	case <-time.After(r.f.timeout):
		return fmt.Errorf("consumer sent no fetch within %v", r.f.timeout)
	}
	var prog *progress
	ph, perr := r.runProducers(ctx, "produce", true, pm, func(start time.Time) {
		prodStart.Store(&start)
		prog = startProgress(r.stderr, r.f.interval, r.f.records, r.deadline(start), pm, cm)
	})
	target.Store(ph.Records)
	if perr != nil {
		cancel()
	}
	o := <-done
	if prog != nil {
		prog.stop()
	}
	start := time.Now()
	if s := prodStart.Load(); s != nil {
		start = *s
	}
	r.res.Phases = append(r.res.Phases, ph, o.res.phase("consume", start))
	r.res.E2ELatencyMs = hist.summary()
	return errors.Join(perr, o.err)
}
