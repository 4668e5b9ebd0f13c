package cluster_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The load and the checker, after Jepsen's queue checker: a producer
// writes records that each carry a unique id, in increasing id order per
// partition, and remembers what every Produce call came to (acknowledged
// at an offset, failed, or still pending). At the end one fresh client
// reads every partition from its start to its high watermark, and the
// checker compares: no acknowledged record missing, none read twice, each
// acknowledged record at the offset its acknowledgement gave, offsets
// strictly increasing per partition, ids increasing per partition (the
// producer's order), and nothing read that was never produced.

type recStatus uint8

const (
	pending recStatus = iota
	acked
	failed
)

// recState holds no pointers (times are offsets from load.started), so a
// load of millions of records costs the collector nothing to scan.
type recState struct {
	partition int32
	status    recStatus
	offset    int64
	sent      time.Duration // since load.started
	done      time.Duration // since load.started; 0 while pending
}

// recChunk is how many record states one chunk holds: the list grows by
// chunks, never by copying what it holds (a copy under l.mu would stall
// the producer and the callbacks, and be charged as latency).
const recChunk = 1 << 16

type loadOpts struct {
	topic      string
	partitions int32
	// valueSize is the size of each record's value (default 100).
	valueSize int
	// rate caps records/s (0: as fast as the in-flight bound allows).
	rate int
	// inflight bounds records produced and not yet resolved (default 1000).
	inflight int
	// acks is "all" (the default, idempotent) or "1" (not idempotent).
	acks string
	// linger is kgo's ProducerLinger (default 5ms).
	linger time.Duration
	// incompressible fills values with random bytes and turns kgo's
	// compression off, so that the bytes on the wire are the bytes
	// counted (benchmarks). Otherwise values are a repeated byte.
	incompressible bool
}

// load is one idempotent producer client writing a known sequence.
type load struct {
	t       testing.TB
	o       loadOpts
	cl      *kgo.Client
	padding []byte

	mu     sync.Mutex
	chunks [][]recState // record id i is chunks[i/recChunk][i%recChunk]
	n      int          // records started
	errs   map[string]int

	inflight chan struct{}
	nAcked   atomic.Int64
	nFailed  atomic.Int64
	dataLoss atomic.Int64
	stop     chan struct{}
	done     chan struct{}
	started  time.Time
}

// startLoad starts producing in the background; stopLoad ends it.
func startLoad(t testing.TB, seeds []string, o loadOpts) *load {
	t.Helper()
	if o.valueSize == 0 {
		o.valueSize = 100
	}
	if o.inflight == 0 {
		o.inflight = 1000
	}
	if o.linger == 0 {
		o.linger = 5 * time.Millisecond
	}
	l := &load{t: t, o: o, errs: map[string]int{}, inflight: make(chan struct{}, o.inflight),
		stop: make(chan struct{}), done: make(chan struct{})}
	l.padding = bytes.Repeat([]byte("x"), o.valueSize)
	if o.incompressible {
		// Windows over a larger random buffer, so batches do not repeat.
		l.padding = make([]byte, 1<<20+o.valueSize)
		_, _ = rand.Read(l.padding)
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.DefaultProduceTopic(o.topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(o.linger),
		kgo.MaxBufferedRecords(o.inflight + 10),
		// Requests to a paused or cut-off broker must give up within a
		// few seconds, so the client looks for the new leader.
		kgo.ProduceRequestTimeout(3 * time.Second),
		kgo.RequestTimeoutOverhead(3 * time.Second),
		kgo.DialTimeout(2 * time.Second),
		kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.MetadataMaxAge(3 * time.Second),
		kgo.RecordDeliveryTimeout(60 * time.Second),
		kgo.ProducerOnDataLossDetected(func(topic string, p int32) {
			l.dataLoss.Add(1)
			t.Logf("kgo detected data loss on %s-%d", topic, p)
		}),
	}
	if o.incompressible {
		opts = append(opts, kgo.ProducerBatchCompression(kgo.NoCompression()))
	}
	switch o.acks {
	case "", "all":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	default:
		t.Fatalf("load: acks %q", o.acks)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	l.cl = cl
	l.started = time.Now()
	go l.run()
	return l
}

func (l *load) run() {
	defer close(l.done)
	var interval time.Duration
	if l.o.rate > 0 {
		interval = time.Second / time.Duration(l.o.rate)
	}
	// One timer for the whole run: a timer per record would cost the
	// client (which shares the machine with the brokers) more than the
	// records do. Records already due are sent back to back.
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for id := 0; ; id++ {
		if interval > 0 {
			next := l.started.Add(time.Duration(id) * interval)
			if d := time.Until(next); d > 0 {
				timer.Reset(d)
				select {
				case <-l.stop:
					return
				case <-timer.C:
				}
			}
		}
		select {
		case <-l.stop:
			return
		case l.inflight <- struct{}{}:
		}
		p := int32(id % int(l.o.partitions))
		value := make([]byte, 0, 16+l.o.valueSize)
		value = strconv.AppendInt(value, int64(id), 10)
		value = append(value, '|')
		if l.o.incompressible {
			off := (id * 7919) % (len(l.padding) - l.o.valueSize)
			value = append(value, l.padding[off:off+l.o.valueSize]...)
		} else {
			value = append(value, l.padding...)
		}
		sent := time.Since(l.started)
		l.mu.Lock()
		if l.n%recChunk == 0 {
			l.chunks = append(l.chunks, make([]recState, recChunk))
		}
		l.chunks[l.n/recChunk][l.n%recChunk] = recState{partition: p, sent: sent}
		l.n++
		l.mu.Unlock()
		rec := &kgo.Record{Topic: l.o.topic, Partition: p, Value: value}
		l.cl.Produce(context.Background(), rec, func(r *kgo.Record, err error) {
			at := time.Since(l.started)
			l.mu.Lock()
			s := &l.chunks[id/recChunk][id%recChunk]
			s.done = at
			if err == nil {
				s.status, s.offset = acked, r.Offset
			} else {
				s.status = failed
				l.errs[errKey(err)]++
			}
			l.mu.Unlock()
			if err == nil {
				l.nAcked.Add(1)
			} else {
				l.nFailed.Add(1)
			}
			<-l.inflight
		})
	}
}

func errKey(err error) string {
	s := err.Error()
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// acked is the number of acknowledged records so far.
func (l *load) acked() int64 { return l.nAcked.Load() }

// waitAcked waits until n records are acknowledged.
func (l *load) waitAcked(n int64, timeout time.Duration) {
	l.t.Helper()
	waitFor(l.t, timeout, fmt.Sprintf("%d acknowledged records", n), func() (bool, string) {
		return l.acked() >= n, fmt.Sprintf("%d acknowledged, %d failed", l.acked(), l.nFailed.Load())
	})
}

// stopLoad stops producing and waits (bounded) for every record in flight
// to resolve. Records still unresolved then count as indeterminate.
func (l *load) stopLoad(timeout time.Duration) {
	l.t.Helper()
	close(l.stop)
	<-l.done
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := l.cl.Flush(ctx); err != nil {
		l.t.Logf("load: flush did not finish within %v (%v); unresolved records count as indeterminate", timeout, err)
	}
	l.cl.Close()
}

// snapshot copies the record states.
func (l *load) snapshot() []recState {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]recState, 0, l.n)
	for i, c := range l.chunks {
		out = append(out, c[:min(recChunk, l.n-i*recChunk)]...)
	}
	return out
}

func (l *load) errorSummary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	for k, n := range l.errs {
		parts = append(parts, fmt.Sprintf("%dx %s", n, k))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

// firstAckAfter returns when the first record of partition was
// acknowledged at or after t, if any was.
func (l *load) firstAckAfter(partition int32, t time.Time) (time.Time, bool) {
	var best time.Time
	for _, r := range l.snapshot() {
		done := l.started.Add(r.done)
		if r.partition == partition && r.status == acked && !done.Before(t) && (best.IsZero() || done.Before(best)) {
			best = done
		}
	}
	return best, !best.IsZero()
}

// readRec is one record as read back.
type readRec struct {
	offset int64
	id     int64
}

// readAll reads every partition of topic from its start to the end
// offsets (high watermarks) listed when it starts, with a fresh client.
func readAll(t testing.TB, seeds []string, topic string, timeout time.Duration) map[int32][]readRec {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RequestTimeoutOverhead(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	var ends kadm.ListedOffsets
	if err := retry(ctx, func() error {
		var err error
		ends, err = adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		return err
	}); err != nil {
		t.Fatalf("listing end offsets of %s: %v", topic, err)
	}
	want := map[int32]int64{}
	offsets := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		want[o.Partition] = o.Offset
		offsets[o.Partition] = kgo.NewOffset().AtStart()
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchMaxWait(500*time.Millisecond), kgo.RequestTimeoutOverhead(5*time.Second),
		kgo.MetadataMinAge(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := map[int32][]readRec{}
	next := map[int32]int64{}
	complete := func() bool {
		for p, end := range want {
			if next[p] < end {
				return false
			}
		}
		return true
	}
	for !complete() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s back: not complete within %v: at %v, want %v", topic, timeout, next, want)
		}
		fs.EachError(func(tp string, p int32, err error) {
			t.Logf("reading %s-%d: %v (kgo retries)", tp, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			id, err := parseID(r.Value)
			if err != nil {
				t.Errorf("%s-%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
				id = -1
			}
			out[r.Partition] = append(out[r.Partition], readRec{offset: r.Offset, id: id})
			next[r.Partition] = r.Offset + 1
		})
	}
	return out
}

func parseID(v []byte) (int64, error) {
	i := bytes.IndexByte(v, '|')
	if i <= 0 {
		return 0, fmt.Errorf("value %q has no id", v[:min(len(v), 20)])
	}
	return strconv.ParseInt(string(v[:i]), 10, 64)
}

func retry(ctx context.Context, fn func() error) error {
	for {
		err := fn()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// checkReport holds the queue checker's counts.
type checkReport struct {
	Attempted      int // Produce calls
	Acked          int // acknowledged
	Indeterminate  int // failed or unresolved: may or may not be present
	Read           int // records read back
	Lost           int // acknowledged, not read
	Duplicates     int // ids read more than once
	Unexpected     int // read ids never produced (or in the wrong partition)
	OffsetMismatch int // acknowledged at one offset, read at another
	NonMonotonic   int // offsets not strictly increasing within a partition
	OrderBroken    int // ids not increasing within a partition
	UnackedPresent int // indeterminate records that are present
	Examples       []string
}

func (r checkReport) String() string {
	return fmt.Sprintf("attempted=%d acked=%d indeterminate=%d read=%d lost=%d duplicates=%d unexpected=%d offset-mismatch=%d non-monotonic=%d order-broken=%d unacked-but-present=%d",
		r.Attempted, r.Acked, r.Indeterminate, r.Read, r.Lost, r.Duplicates, r.Unexpected, r.OffsetMismatch, r.NonMonotonic, r.OrderBroken, r.UnackedPresent)
}

func (r checkReport) violations() int {
	return r.Lost + r.Duplicates + r.Unexpected + r.OffsetMismatch + r.NonMonotonic + r.OrderBroken
}

func (r *checkReport) example(format string, args ...any) {
	if len(r.Examples) < 20 {
		r.Examples = append(r.Examples, fmt.Sprintf(format, args...))
	}
}

// check runs the queue checker over what was produced and what was read.
func check(produced []recState, read map[int32][]readRec) checkReport {
	r := checkReport{Attempted: len(produced)}
	for _, s := range produced {
		switch s.status {
		case acked:
			r.Acked++
		default:
			r.Indeterminate++
		}
	}
	seen := make([]int, len(produced))
	parts := make([]int32, 0, len(read))
	for p := range read {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	for _, p := range parts {
		lastOffset, lastID := int64(-1), int64(-1)
		for _, rr := range read[p] {
			r.Read++
			if rr.offset <= lastOffset {
				r.NonMonotonic++
				r.example("partition %d: offset %d read after %d", p, rr.offset, lastOffset)
			}
			lastOffset = rr.offset
			if rr.id < 0 || rr.id >= int64(len(produced)) || produced[rr.id].partition != p {
				r.Unexpected++
				r.example("partition %d offset %d: id %d was never produced to this partition", p, rr.offset, rr.id)
				continue
			}
			if rr.id <= lastID {
				r.OrderBroken++
				r.example("partition %d offset %d: id %d after id %d", p, rr.offset, rr.id, lastID)
			}
			lastID = max(lastID, rr.id)
			seen[rr.id]++
			if seen[rr.id] == 2 {
				r.Duplicates++
				r.example("partition %d: id %d read twice (again at offset %d)", p, rr.id, rr.offset)
			}
			s := produced[rr.id]
			if s.status == acked && s.offset != rr.offset && seen[rr.id] == 1 {
				r.OffsetMismatch++
				r.example("partition %d: id %d acknowledged at offset %d, read at %d", p, rr.id, s.offset, rr.offset)
			}
		}
	}
	for id, s := range produced {
		switch {
		case s.status == acked && seen[id] == 0:
			r.Lost++
			r.example("id %d (partition %d) acknowledged at offset %d %v into the load, not read back", id, s.partition, s.offset, s.done.Round(time.Millisecond))
		case s.status != acked && seen[id] > 0:
			r.UnackedPresent++
		}
	}
	return r
}
