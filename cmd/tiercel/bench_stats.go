package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/bits"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
)

// ---------------------------------------------------------------------------
// Latency histogram

// histSubBits sets the histogram's precision: each power-of-two range of
// values is split into 1<<histSubBits linear buckets, so a bucket is at most
// 1/128 (0.8%) of its values wide. Values below 256 are counted exactly.
const (
	histSubBits  = 7
	histSubCount = 1 << histSubBits
	histBuckets  = (64 - histSubBits + 1) * histSubCount
)

// histogram is an HDR-style log-linear histogram of non-negative int64
// values (nanoseconds here). It has a fixed size (about 58 KiB), records in
// O(1) and is not safe for concurrent use; merge per-goroutine histograms.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
	min    int64
	max    int64
	sum    float64
}

func newHistogram() *histogram { return &histogram{min: math.MaxInt64} }

func histIndex(v uint64) int {
	n := bits.Len64(v)
	if n <= histSubBits+1 {
		return int(v) // exact below 2*histSubCount
	}
	shift := n - histSubBits - 1 // keep the top histSubBits+1 bits
	return shift<<histSubBits + int(v>>shift)
}

// histLow and histHigh are the smallest and largest values in bucket i.
func histLow(i int) uint64 {
	if i < 2*histSubCount {
		return uint64(i)
	}
	shift := i>>histSubBits - 1
	return uint64(i&(histSubCount-1)+histSubCount) << shift
}

func histHigh(i int) uint64 {
	if i < 2*histSubCount {
		return uint64(i)
	}
	shift := i>>histSubBits - 1
	return histLow(i) + 1<<shift - 1
}

func (h *histogram) record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[histIndex(uint64(v))]++
	h.n++
	h.sum += float64(v)
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// quantile returns the value at quantile q (0..1): the midpoint of the
// bucket holding the ceil(q*n)-th smallest value, clamped to [min, max].
func (h *histogram) quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := int64((histLow(i) + histHigh(i)) / 2)
			return min(max(v, h.min), h.max)
		}
	}
	return h.max
}

// latencySummary is a histogram of nanoseconds reduced to milliseconds.
type latencySummary struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

func (h *histogram) summary() *latencySummary {
	if h.n == 0 {
		return nil
	}
	ms := func(ns int64) float64 { return math.Round(float64(ns)/1e3) / 1e3 }
	return &latencySummary{
		Count: h.n,
		Mean:  math.Round(h.sum/float64(h.n)/1e3) / 1e3,
		P50:   ms(h.quantile(0.50)),
		P99:   ms(h.quantile(0.99)),
		P999:  ms(h.quantile(0.999)),
		Max:   ms(h.max),
	}
}

// ---------------------------------------------------------------------------
// Record contents

// recordSource hands out incompressible record contents without copying:
// windows into one large buffer of random bytes, generated once. Windows
// advance by slightly more than a record, so consecutive records never share
// bytes and a whole batch (at most --batch-max-bytes) never repeats itself:
// no codec can shrink it.
type recordSource struct {
	buf      []byte
	valSize  int
	keySize  int
	stride   int
	nWindows int
}

func newRecordSource(valSize, keySize, batchMaxBytes int) *recordSource {
	size := max(16<<20, 4*batchMaxBytes)
	rec := valSize + keySize
	size += rec
	buf := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{'t', 'i', 'e', 'r', 'c', 'e', 'l'})
	_, _ = rng.Read(buf)
	s := &recordSource{buf: buf, valSize: valSize, keySize: keySize, stride: rec + 13}
	s.nWindows = max((size-rec)/s.stride, 1)
	return s
}

// record returns the key (nil when unkeyed) and value of record i.
func (s *recordSource) record(i uint64) (key, value []byte) {
	off := int(i%uint64(s.nWindows)) * s.stride
	if s.keySize > 0 {
		key = s.buf[off : off+s.keySize : off+s.keySize]
		off += s.keySize
	}
	return key, s.buf[off : off+s.valSize : off+s.valSize]
}

// ---------------------------------------------------------------------------
// Live progress

// meter counts what one phase has done; loops add to it, progress reads it.
type meter struct {
	name    string
	records atomic.Int64
	bytes   atomic.Int64
}

type progress struct {
	w        io.Writer
	tty      bool
	interval time.Duration
	meters   []*meter
	start    time.Time
	// ETA: the first meter's records against target (0 = unknown), and the
	// deadline (zero = none); the earlier of the two wins.
	target   int64
	deadline time.Time

	stopOnce sync.Once
	stopCh   chan struct{}
	done     chan struct{}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// startProgress prints a progress line every 250 ms with \r when w is a
// terminal, otherwise one line every 5 s.
func startProgress(w io.Writer, interval time.Duration, target int64, deadline time.Time, meters ...*meter) *progress {
	p := &progress{
		w:        w,
		tty:      isTerminal(w),
		meters:   meters,
		start:    time.Now(),
		target:   target,
		deadline: deadline,
		stopCh:   make(chan struct{}),
		done:     make(chan struct{}),
	}
	switch {
	case interval > 0:
		p.interval = interval
	case p.tty:
		p.interval = 250 * time.Millisecond
	default:
		p.interval = 5 * time.Second
	}
	go p.loop()
	return p
}

func (p *progress) loop() {
	defer close(p.done)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	last := make([][2]int64, len(p.meters))
	lastT := p.start
	for {
		select {
		case <-p.stopCh:
			if p.tty { // leave the final state on screen
				fmt.Fprint(p.w, "\r"+p.line(time.Now(), lastT, last)+"\x1b[K\n")
			}
			return
		case now := <-t.C:
			line := p.line(now, lastT, last)
			lastT = now
			if p.tty {
				fmt.Fprint(p.w, "\r"+line+"\x1b[K")
			} else {
				fmt.Fprintln(p.w, line)
			}
		}
	}
}

// line formats the progress; rates are over the last interval.
func (p *progress) line(now, lastT time.Time, last [][2]int64) string {
	var b strings.Builder
	dt := now.Sub(lastT).Seconds()
	for i, m := range p.meters {
		rec, by := m.records.Load(), m.bytes.Load()
		if i > 0 {
			b.WriteString(" | ")
		}
		fmt.Fprintf(&b, "%s %d rec %.1f MB/s %.0f rec/s", m.name, rec,
			float64(by-last[i][1])/dt/1e6, float64(rec-last[i][0])/dt)
		last[i] = [2]int64{rec, by}
	}
	elapsed := now.Sub(p.start)
	fmt.Fprintf(&b, " | %.1fs", elapsed.Seconds())
	eta := time.Duration(-1)
	if done := p.meters[0].records.Load(); p.target > 0 && done > 0 {
		eta = time.Duration(float64(elapsed) * float64(p.target-done) / float64(done))
	}
	if !p.deadline.IsZero() {
		if left := max(p.deadline.Sub(now), 0); eta < 0 || left < eta {
			eta = left
		}
	}
	if eta >= 0 {
		fmt.Fprintf(&b, " ETA %.1fs", eta.Seconds())
	}
	return b.String()
}

func (p *progress) stop() {
	p.stopOnce.Do(func() { close(p.stopCh) })
	<-p.done
}

// ---------------------------------------------------------------------------
// Results

// phaseResult is one measured phase: produce, consume, or the prefill that
// "consume --kfake" runs first.
type phaseResult struct {
	Name          string  `json:"name"`
	Records       int64   `json:"records"`
	Bytes         int64   `json:"bytes"`
	Seconds       float64 `json:"seconds"`
	MBPerSec      float64 `json:"mb_per_s"`
	RecordsPerSec float64 `json:"records_per_s"`
	Batches       int64   `json:"batches"`
	Requests      int64   `json:"requests"`
	Errors        int64   `json:"errors"`
	FirstError    string  `json:"first_error,omitempty"`
	// LatencyMs is produce latency (Produce call to ack) for produce phases.
	LatencyMs *latencySummary `json:"latency_ms,omitempty"`
}

func newPhase(name string, records, bytes int64, elapsed time.Duration) phaseResult {
	p := phaseResult{Name: name, Records: records, Bytes: bytes, Seconds: elapsed.Seconds()}
	if s := elapsed.Seconds(); s > 0 {
		p.MBPerSec = float64(bytes) / s / 1e6
		p.RecordsPerSec = float64(records) / s
	}
	return p
}

type benchResult struct {
	Mode          string  `json:"mode"`
	Target        string  `json:"target"` // "brokers" or "kfake"
	Brokers       string  `json:"brokers"`
	Topic         string  `json:"topic"`
	Partitions    int     `json:"partitions"`
	RecordSize    int     `json:"record_size"`
	Keyed         bool    `json:"keyed"`
	KeySize       int     `json:"key_size"`
	Acks          string  `json:"acks"`
	Compression   string  `json:"compression"`
	Linger        string  `json:"linger"`
	BatchMaxBytes int     `json:"batch_max_bytes"`
	MaxInflight   int     `json:"max_inflight"`
	MaxBuffered   int     `json:"max_buffered"`
	FetchMaxBytes int     `json:"fetch_max_bytes"`
	FetchPartMax  int     `json:"fetch_max_partition_bytes"`
	Producers     int     `json:"producers"`
	Rate          float64 `json:"rate"`
	Started       string  `json:"started"`
	Interrupted   bool    `json:"interrupted,omitempty"`

	Phases []phaseResult `json:"phases"`
	// E2ELatencyMs is the e2e mode's timestamp-in-record to consumer poll
	// latency.
	E2ELatencyMs *latencySummary `json:"e2e_latency_ms,omitempty"`
}

func (r *benchResult) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func (r *benchResult) writeTable(w io.Writer) {
	target := "brokers " + r.Brokers
	if r.Target == "kfake" {
		target = "kfake (in-process, " + r.Brokers + ")"
	}
	rate := "unlimited"
	if r.Rate > 0 {
		rate = fmt.Sprintf("%.0f records/s", r.Rate)
	}
	keys := "unkeyed"
	if r.Keyed {
		keys = fmt.Sprintf("%d-byte random keys", r.KeySize)
	}
	fmt.Fprintf(w, "tiercel bench %s against %s, topic %q, %s\n", r.Mode, target, r.Topic, plural(r.Partitions, "partition"))
	fmt.Fprintf(w, "  %d-byte incompressible values, %s; %s, acks=%s, compression=%s, linger=%s, batch-max-bytes=%d, max-inflight=%d, max-buffered=%d, rate %s\n",
		r.RecordSize, keys, plural(r.Producers, "producer client"), r.Acks, r.Compression, r.Linger, r.BatchMaxBytes, r.MaxInflight, r.MaxBuffered, rate)
	if r.Mode != "produce" {
		fmt.Fprintf(w, "  consumer: fetch-max-bytes=%d, fetch-max-partition-bytes=%d\n", r.FetchMaxBytes, r.FetchPartMax)
	}
	if r.Interrupted {
		fmt.Fprintln(w, "  INTERRUPTED: the numbers cover the run up to the interrupt")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\trecords\tbytes\tseconds\tMB/s\trecords/s\trec/batch\tp50 ms\tp99 ms\tp99.9 ms\tmax ms\terrors\t")
	for _, p := range r.Phases {
		perBatch := "-"
		if p.Batches > 0 {
			perBatch = fmt.Sprintf("%.1f", float64(p.Records)/float64(p.Batches))
		}
		lat := "-\t-\t-\t-"
		if l := p.LatencyMs; l != nil {
			lat = fmt.Sprintf("%.3f\t%.3f\t%.3f\t%.3f", l.P50, l.P99, l.P999, l.Max)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.3f\t%.2f\t%.0f\t%s\t%s\t%d\t\n",
			p.Name, p.Records, p.Bytes, p.Seconds, p.MBPerSec, p.RecordsPerSec, perBatch, lat, p.Errors)
	}
	if l := r.E2ELatencyMs; l != nil {
		fmt.Fprintf(tw, "e2e latency\t%d\t\t\t\t\t\t%.3f\t%.3f\t%.3f\t%.3f\t\t\n", l.Count, l.P50, l.P99, l.P999, l.Max)
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "1 MB = 1e6 bytes. bytes = key + value payload (no batch or protocol overhead). rec/batch = records per record batch.")
	for _, p := range r.Phases {
		if p.LatencyMs != nil {
			fmt.Fprintln(w, "Produce latency: from the Produce call (including any wait for buffer space) to the broker's ack (kgo promise).")
			break
		}
	}
	if r.E2ELatencyMs != nil {
		fmt.Fprintln(w, "e2e latency: from the timestamp the producer wrote into the record's first 8 bytes to the consumer's poll returning it.")
	}
	for _, p := range r.Phases {
		if p.FirstError != "" {
			fmt.Fprintf(w, "%s: first error: %s\n", p.Name, p.FirstError)
		}
	}
}
