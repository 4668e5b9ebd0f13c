package main

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// benchRunJSON runs "tiercel bench ..." with --json and decodes the summary.
func benchRunJSON(t *testing.T, args ...string) *benchResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args = append([]string{"bench"}, append(args, "--json", "--timeout", "30s")...)
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("tiercel %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	}
	var res benchResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("decoding summary: %v\n%s", err, stdout.String())
	}
	return &res
}

func benchPhase(t *testing.T, res *benchResult, name string) phaseResult {
	t.Helper()
	for _, p := range res.Phases {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no %q phase in %+v", name, res.Phases)
	return phaseResult{}
}

// benchCheckPhase checks that a phase's numbers agree with each other and
// with what was asked for. It does not judge speed.
func benchCheckPhase(t *testing.T, p phaseResult, records, recordBytes int64, wantLatency bool) {
	t.Helper()
	if p.Records != records {
		t.Errorf("%s: records = %d, want %d", p.Name, p.Records, records)
	}
	if p.Bytes != records*recordBytes {
		t.Errorf("%s: bytes = %d, want %d", p.Name, p.Bytes, records*recordBytes)
	}
	if p.Errors != 0 || p.FirstError != "" {
		t.Errorf("%s: %d errors, first %q", p.Name, p.Errors, p.FirstError)
	}
	if !(p.Seconds > 0 && p.Seconds < 60) {
		t.Errorf("%s: seconds = %v", p.Name, p.Seconds)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) }
	if !near(p.MBPerSec, float64(p.Bytes)/p.Seconds/1e6) {
		t.Errorf("%s: MB/s = %v, want bytes/seconds/1e6 = %v", p.Name, p.MBPerSec, float64(p.Bytes)/p.Seconds/1e6)
	}
	if !near(p.RecordsPerSec, float64(p.Records)/p.Seconds) {
		t.Errorf("%s: records/s = %v, want %v", p.Name, p.RecordsPerSec, float64(p.Records)/p.Seconds)
	}
	if p.Batches < 1 || p.Batches > p.Records {
		t.Errorf("%s: %d batches for %d records", p.Name, p.Batches, p.Records)
	}
	if p.Requests < 1 {
		t.Errorf("%s: %d requests", p.Name, p.Requests)
	}
	l := p.LatencyMs
	switch {
	case !wantLatency && l != nil:
		t.Errorf("%s: unexpected latency %+v", p.Name, l)
	case wantLatency && l == nil:
		t.Errorf("%s: no latency", p.Name)
	case wantLatency:
		benchCheckLatency(t, p.Name, l, records)
	}
}

func benchCheckLatency(t *testing.T, name string, l *latencySummary, count int64) {
	t.Helper()
	if l.Count != uint64(count) {
		t.Errorf("%s latency: count = %d, want %d", name, l.Count, count)
	}
	if !(0 < l.P50 && l.P50 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max && l.Max < 60e3) {
		t.Errorf("%s latency: want 0 < p50 <= p99 <= p99.9 <= max < 60 s, got %+v", name, l)
	}
	if !(l.Mean > 0 && l.Mean <= l.Max) {
		t.Errorf("%s latency: mean %v outside (0, max %v]", name, l.Mean, l.Max)
	}
}

func TestBenchProduceConsumeKfake(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := strings.Join(c.ListenAddrs(), ",")
	common := []string{"--brokers", brokers, "--topic", "bench-test", "--record-size", "200"}

	prod := benchRunJSON(t, append([]string{"produce", "--partitions", "3", "--records", "3000", "--keys", "--key-size", "10"}, common...)...)
	if prod.Partitions != 3 || prod.Target != "brokers" || prod.Mode != "produce" || prod.Acks != "1" {
		t.Errorf("produce summary header: %+v", prod)
	}
	benchCheckPhase(t, benchPhase(t, prod, "produce"), 3000, 210, true)

	cons := benchRunJSON(t, append([]string{"consume"}, common...)...)
	if cons.Partitions != 3 {
		t.Errorf("consume saw %d partitions, want 3", cons.Partitions)
	}
	benchCheckPhase(t, benchPhase(t, cons, "consume"), 3000, 210, false)

	// --records caps the consumer below the end offsets.
	part := benchRunJSON(t, append([]string{"consume", "--records", "1000"}, common...)...)
	if p := benchPhase(t, part, "consume"); p.Records != 1000 || p.Bytes != 1000*210 {
		t.Errorf("consume --records 1000: read %d records, %d bytes", p.Records, p.Bytes)
	}

	// The topic exists: a second produce reuses it and appends.
	benchRunJSON(t, append([]string{"produce", "--records", "500", "--acks", "all", "--compression", "lz4"}, common...)...)
	again := benchRunJSON(t, append([]string{"consume"}, common...)...)
	if p := benchPhase(t, again, "consume"); p.Records != 3500 {
		t.Errorf("consume after a second produce: read %d records, want 3500", p.Records)
	}
}

func TestBenchKfakeFlag(t *testing.T) {
	cons := benchRunJSON(t, "consume", "--kfake", "--partitions", "4", "--records", "2000", "--record-size", "100", "--producers", "2")
	if cons.Target != "kfake" || cons.Partitions != 4 || cons.Producers != 2 {
		t.Errorf("summary header: %+v", cons)
	}
	benchCheckPhase(t, benchPhase(t, cons, "prefill"), 2000, 100, true)
	benchCheckPhase(t, benchPhase(t, cons, "consume"), 2000, 100, false)

	e2e := benchRunJSON(t, "e2e", "--kfake", "--partitions", "2", "--records", "2000", "--record-size", "64", "--linger", "1ms")
	benchCheckPhase(t, benchPhase(t, e2e, "produce"), 2000, 64, true)
	benchCheckPhase(t, benchPhase(t, e2e, "consume"), 2000, 64, false)
	if e2e.E2ELatencyMs == nil {
		t.Fatal("e2e: no end-to-end latency")
	}
	benchCheckLatency(t, "e2e", e2e.E2ELatencyMs, 2000)
}

func TestBenchDurationBound(t *testing.T) {
	res := benchRunJSON(t, "produce", "--kfake", "--duration", "300ms", "--rate", "2000", "--record-size", "10")
	p := benchPhase(t, res, "produce")
	// 2000 records/s for 0.3 s is 600 records; allow generous slack, since
	// this is about the loop stopping, not about timing.
	if p.Records < 1 || p.Records > 700 {
		t.Errorf("records = %d, want about 600", p.Records)
	}
	if p.Seconds < 0.3 || p.Seconds > 30 {
		t.Errorf("seconds = %v", p.Seconds)
	}
}

func TestBenchTable(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"bench", "produce", "--kfake", "--records", "300", "--partitions", "2"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"MB/s", "records/s", "p99.9 ms", "1 MB = 1e6 bytes", "produce", "300", "kfake", "2 partitions"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

func TestBenchUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"bench"},
		{"bench", "bogus"},
		{"bench", "produce", "--acks", "2"},
		{"bench", "produce", "--compression", "brotli"},
		{"bench", "produce", "--partitions", "0"},
		{"bench", "produce", "--acks", "all", "--max-inflight", "3"},
		{"bench", "e2e", "--record-size", "4"},
		{"bench", "produce", "--no-such-flag"},
		{"bench", "produce", "extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"bench", "produce", "--help"}, &stdout, &stderr); code != 0 || !strings.Contains(stderr.String(), "--kfake") && !strings.Contains(stderr.String(), "-kfake") {
		t.Errorf("--help: exit %d, output %q", code, stderr.String())
	}
}

func TestBenchServeKfake(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"bench", "serve-kfake", "--port", "0", "--duration", "50ms"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "kfake listening on 127.0.0.1:") {
		t.Errorf("stderr %q lacks the listen address", stderr.String())
	}
	for _, args := range [][]string{
		{"bench", "serve-kfake", "--port", "70000"},
		{"bench", "serve-kfake", "--partitions", "0"},
		{"bench", "serve-kfake", "extra"},
	} {
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

func TestBenchHistogram(t *testing.T) {
	// Buckets tile the value range: each value lies within its bucket, and
	// bucket bounds never go backwards.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		v := rng.Uint64() >> rng.IntN(64)
		i := histIndex(v)
		if i < 0 || i >= histBuckets || histLow(i) > v || v > histHigh(i) {
			t.Fatalf("value %d: bucket %d [%d, %d]", v, i, histLow(i), histHigh(i))
		}
		if rel := float64(histHigh(i)-histLow(i)) / float64(max(v, 1)); v >= 256 && rel > 1.0/128 {
			t.Fatalf("value %d: bucket %d is %.4f of the value wide", v, i, rel)
		}
	}
	for i := 1; i < histBuckets; i++ {
		if histLow(i) != histHigh(i-1)+1 {
			t.Fatalf("bucket %d starts at %d, bucket %d ends at %d", i, histLow(i), i-1, histHigh(i-1))
		}
	}

	h := newHistogram()
	for v := int64(1); v <= 1000000; v++ {
		h.record(v)
	}
	for _, c := range []struct {
		q    float64
		want float64
	}{{0.5, 500000}, {0.99, 990000}, {0.999, 999000}} {
		if got := float64(h.quantile(c.q)); math.Abs(got-c.want)/c.want > 0.01 {
			t.Errorf("quantile(%v) = %v, want %v within 1%%", c.q, got, c.want)
		}
	}
	if h.max != 1000000 || h.min != 1 || h.quantile(1) != 1000000 {
		t.Errorf("min %d max %d q(1) %d", h.min, h.max, h.quantile(1))
	}
	// Merging two halves gives the same answers.
	a, b := newHistogram(), newHistogram()
	for v := int64(1); v <= 1000000; v++ {
		if v%2 == 0 {
			a.record(v)
		} else {
			b.record(v)
		}
	}
	a.merge(b)
	if a.n != h.n || a.quantile(0.99) != h.quantile(0.99) || a.max != h.max || a.min != h.min {
		t.Errorf("merged histogram differs: n %d/%d p99 %d/%d", a.n, h.n, a.quantile(0.99), h.quantile(0.99))
	}
}

func TestBenchRecordsIncompressible(t *testing.T) {
	src := newRecordSource(1024, 16, 1000012)
	var batch bytes.Buffer
	seen := make(map[string]bool)
	for i := uint64(0); batch.Len() < 1000000; i++ {
		k, v := src.record(i)
		if len(k) != 16 || len(v) != 1024 {
			t.Fatalf("record %d: key %d value %d bytes", i, len(k), len(v))
		}
		if seen[string(v)] {
			t.Fatalf("record %d repeats an earlier value within one batch", i)
		}
		seen[string(v)] = true
		batch.Write(k)
		batch.Write(v)
	}
	var out bytes.Buffer
	w, _ := flate.NewWriter(&out, flate.BestCompression)
	w.Write(batch.Bytes())
	w.Close()
	if ratio := float64(out.Len()) / float64(batch.Len()); ratio < 0.99 {
		t.Errorf("a 1 MB batch of records deflates to %.3f of its size; want incompressible", ratio)
	}
}
