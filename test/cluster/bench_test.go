package cluster_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Cluster benchmarks, run by bench/cluster/run.sh (TIERCEL_CLUSTER_BENCH=1)
// and skipped otherwise. Each prints a "BENCH" line per result, which the
// script collects.

func requireBench(t *testing.T) {
	t.Helper()
	if os.Getenv("TIERCEL_CLUSTER_BENCH") == "" {
		t.Skip("benchmark; run bench/cluster/run.sh (TIERCEL_CLUSTER_BENCH=1)")
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func benchLine(t *testing.T, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	t.Log("BENCH " + line)
	fmt.Println("BENCH " + line)
}

// TestBenchProduceLatency measures produce latency at a fixed rate with
// acks=all (idempotent) on RF 3, then with acks=1 on the same cluster and
// topic, in the same run. Latency is from the moment a record was due
// (its slot in the fixed-rate schedule, so a producer that falls behind
// is charged for it) to its acknowledgement.
func TestBenchProduceLatency(t *testing.T) {
	requireBench(t)
	var (
		recordSize = envInt("BENCH_RECORD_BYTES", 1024)
		seconds    = envInt("BENCH_SECONDS", 20)
		partitions = int32(envInt("BENCH_PARTITIONS", 6))
		warmup     = 3 * time.Second
	)
	var rates []int
	for _, f := range strings.Fields(os.Getenv("BENCH_RATES_MBPS")) {
		if v, err := strconv.Atoi(f); err == nil && v > 0 {
			rates = append(rates, v)
		}
	}
	if len(rates) == 0 {
		rates = []int{20}
	}
	benchLimits(t)
	c := newCluster(t, clusterOpts{settings: map[string]string{
		// No offload during the run: the bucket is not what is measured.
		"remote.log.storage.system.enable": "false",
	}})
	const topic = "bench-latency"
	c.createTopic(topic, partitions, nil)
	c.waitSettled(30*time.Second, topic)
	for _, rateMB := range rates {
		rate := rateMB * 1_000_000 / recordSize
		for _, acks := range []string{"all", "1"} {
			cpu0, self0 := c.brokerCPU(), selfCPU()
			l := startLoad(t, c.seeds(), loadOpts{topic: topic, partitions: partitions, rate: rate, valueSize: recordSize,
				acks: acks, linger: time.Microsecond, inflight: 20000, incompressible: true})
			time.Sleep(warmup)
			if os.Getenv("BENCH_PERF") != "" && acks == "all" && rateMB == rates[len(rates)-1] {
				perfProfile(t, c.brokers[0], time.Duration(seconds)*time.Second/2)
				time.Sleep(time.Duration(seconds) * time.Second / 2)
			} else {
				time.Sleep(time.Duration(seconds) * time.Second)
			}
			l.stopLoad(30 * time.Second)
			wall := time.Since(l.started)
			cpu1, self1 := c.brokerCPU(), selfCPU()
			recs := l.snapshot()
			interval := time.Second / time.Duration(rate)
			var lat []time.Duration
			byPart := make([][]time.Duration, partitions)
			failedN := 0
			for id, r := range recs {
				due := l.started.Add(time.Duration(id) * interval)
				if due.Before(l.started.Add(warmup)) {
					continue
				}
				if r.status != acked {
					failedN++
					continue
				}
				d := l.started.Add(r.done).Sub(due)
				lat = append(lat, d)
				if r.partition >= 0 && r.partition < partitions {
					byPart[r.partition] = append(byPart[r.partition], d)
				}
			}
			// Per partition, with its leader: a slow broker or a slow
			// pair of brokers shows here, not in the totals.
			var parts []string
			for p, pl := range byPart {
				sortDurations(pl)
				parts = append(parts, fmt.Sprintf("p%d@%d %s/%s", p, c.leader(topic, int32(p)), ms(percentile(pl, 50)), ms(percentile(pl, 99))))
			}
			t.Logf("latency acks=%s %dMB/s by partition@leader (p50/p99): %s", acks, rateMB, strings.Join(parts, " "))
			sortDurations(lat)
			elapsed := recs[len(recs)-1].sent - warmup
			achieved := float64(len(lat)*recordSize) / elapsed.Seconds() / 1e6
			var cpus []string
			for i := range cpu1 {
				cpus = append(cpus, fmt.Sprintf("%.0f%%", 100*(cpu1[i]-cpu0[i]).Seconds()/wall.Seconds()))
			}
			benchLine(t, "latency acks=%s rf=3 rate=%dMB/s (%d rec/s of %d B, %d partitions, %ds): p50=%s p99=%s p999=%s max=%s acked=%d failed=%d achieved=%.1fMB/s cpu brokers=%s client=%.0f%% loadavg=%s",
				acks, rateMB, rate, recordSize, partitions, seconds, ms(percentile(lat, 50)), ms(percentile(lat, 99)), ms(percentile(lat, 99.9)),
				ms(percentile(lat, 100)), len(lat), failedN, achieved, strings.Join(cpus, "/"), 100*(self1-self0).Seconds()/wall.Seconds(), loadavg())
		}
	}
}

// brokerCPU returns each broker process's user+system CPU time so far.
func (c *cluster) brokerCPU() []time.Duration {
	var out []time.Duration
	for _, b := range c.brokers {
		b.mu.Lock()
		pid := 0
		if b.cmd != nil && b.cmd.Process != nil {
			pid = b.cmd.Process.Pid
		}
		b.mu.Unlock()
		out = append(out, procCPU(fmt.Sprintf("/proc/%d/stat", pid)))
	}
	return out
}

func selfCPU() time.Duration { return procCPU("/proc/self/stat") }

// procCPU reads utime+stime from a /proc stat file (clock ticks of 10ms).
func procCPU(path string) time.Duration {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+k) * 10 * time.Millisecond
}

// perfProfile records broker b's CPU with perf for d and logs the
// hottest symbols, kernel included (which a Go profile from --pprof does not
// show).
func perfProfile(t *testing.T, b *broker, d time.Duration) {
	t.Helper()
	b.mu.Lock()
	pid := b.cmd.Process.Pid
	b.mu.Unlock()
	data := filepath.Join(t.TempDir(), "perf.data")
	rec := exec.Command("perf", "record", "-F", "999", "-g", "-o", data, "-p", strconv.Itoa(pid), "--", "sleep", fmt.Sprint(d.Seconds()))
	if out, err := rec.CombinedOutput(); err != nil {
		t.Logf("perf record failed (no profile): %v\n%s", err, out)
		return
	}
	report := func(args ...string) string {
		out, err := exec.Command("perf", append([]string{"report", "-i", data, "--stdio", "--sort", "symbol", "-g", "none"}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Sprintf("perf report failed: %v", err)
		}
		var top []string
		for _, l := range strings.Split(string(out), "\n") {
			f := strings.Fields(l)
			if len(f) < 3 || strings.HasPrefix(l, "#") || !strings.HasSuffix(f[0], "%") {
				continue
			}
			// "children% self% [k] symbol" or "self% [k] symbol"
			i := 1
			if strings.HasSuffix(f[1], "%") {
				i = 2
			}
			top = append(top, f[0]+" "+strings.Join(f[i+1:], " "))
			if len(top) == 15 {
				break
			}
		}
		return strings.Join(top, "; ")
	}
	benchLine(t, "perf profile of broker %d (%v, acks=all), self time: %s", b.id, d, report("--no-children", "--percent-limit", "1"))
	benchLine(t, "perf profile of broker %d (%v, acks=all), with callees: %s", b.id, d, report("--children", "--percent-limit", "4"))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/1e6) }

// TestBenchFailover measures, several times, the time from SIGKILL of a
// partition's leader until a produce to that partition (acks=all)
// succeeds again, with the time until the document names a new leader.
// A light load runs on the partition throughout.
func TestBenchFailover(t *testing.T) {
	requireBench(t)
	runs := envInt("BENCH_FAILOVERS", 6)
	profiles := []struct {
		name     string
		settings map[string]string
	}{
		{"test settings", nil},
		// The broker's own defaults for failure detection, the lease and
		// metadata polling.
		{"broker defaults", map[string]string{
			"tiercel.gossip.probe.interval.ms":  "",
			"tiercel.gossip.suspicion.mult":     "",
			"tiercel.controller.lease.ttl.ms":   "",
			"tiercel.controller.lease.renew.ms": "",
			"tiercel.controller.lease.poll.ms":  "",
			"tiercel.metadata.refresh.ms":       "",
		}},
	}
	for _, prof := range profiles {
		t.Run(strings.ReplaceAll(prof.name, " ", "-"), func(t *testing.T) { benchFailover(t, prof.name, prof.settings, runs) })
	}
}

func benchFailover(t *testing.T, name string, settings map[string]string, runs int) {
	c := newCluster(t, clusterOpts{settings: settings})
	const topic = "bench-failover"
	c.createTopic(topic, 3, nil)
	c.waitSettled(60*time.Second, topic)
	probe, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0), kgo.MetadataMinAge(50*time.Millisecond),
		kgo.RequestTimeoutOverhead(2*time.Second), kgo.RecordDeliveryTimeout(90*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	// Runs alternate: the leader of a partition is killed while another
	// broker is controller, then the controller itself (leading a
	// partition) is killed, which also costs the lease takeover.
	var produce, elect [2][]time.Duration
	for i := range runs {
		c.waitSettled(90*time.Second, topic)
		ctrl := c.waitFormed(60 * time.Second)
		kind := i % 2 // 0: leader only, 1: leader and controller
		part := int32(-1)
		for p := int32(0); p < 3; p++ {
			if l := c.leader(topic, p); (kind == 0) == (l != ctrl) {
				part = p
				break
			}
		}
		if part < 0 {
			t.Logf("run %d: no partition fits (controller %d); skipped", i+1, ctrl)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := probe.ProduceSync(ctx, &kgo.Record{Partition: part, Value: []byte("warm")}).FirstErr(); err != nil {
			cancel()
			t.Fatalf("warm-up produce: %v", err)
		}
		cancel()
		old := c.leader(topic, part)
		killed := time.Now()
		c.broker(old).kill()
		elected := make(chan time.Duration, 1)
		go func() {
			for time.Since(killed) < 90*time.Second {
				if l := c.leader(topic, part); l >= 0 && l != old {
					elected <- time.Since(killed)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			elected <- -1
		}()
		ctx, cancel = context.WithTimeout(context.Background(), 90*time.Second)
		err := probe.ProduceSync(ctx, &kgo.Record{Partition: part, Value: []byte(fmt.Sprintf("after-kill-%d", i))}).FirstErr()
		cancel()
		took := time.Since(killed)
		if err != nil {
			t.Fatalf("produce after killing broker %d: %v", old, err)
		}
		e := <-elected
		produce[kind] = append(produce[kind], took)
		elect[kind] = append(elect[kind], e)
		t.Logf("run %d: killed broker %d, leader of %s-%d%s; new leader in the document after %v, produce succeeded after %v", i+1, old, topic, part,
			map[bool]string{true: " and controller", false: ""}[old == ctrl], e.Round(time.Millisecond), took.Round(time.Millisecond))
		c.broker(old).start()
	}
	get := func(k, def string) string {
		if v, ok := c.settings[k]; ok {
			return v
		}
		return def + " (default)"
	}
	for kind, what := range []string{"leader", "leader+controller"} {
		p, e := produce[kind], elect[kind]
		if len(p) == 0 {
			continue
		}
		sortDurations(p)
		sortDurations(e)
		benchLine(t, "failover [%s] kill %s, runs=%d: kill->produce ok median=%s min=%s max=%s; kill->new leader in document median=%s (probe %s ms, suspicion x%s, lease ttl %s ms) loadavg=%s",
			name, what, len(p), ms(percentile(p, 50)), ms(p[0]), ms(p[len(p)-1]), ms(percentile(e, 50)),
			get("tiercel.gossip.probe.interval.ms", "1000"), get("tiercel.gossip.suspicion.mult", "4"), get("tiercel.controller.lease.ttl.ms", "10000"), loadavg())
	}
}

// TestBenchWipedRejoin measures the rejoin of a broker whose disk was
// wiped, at two retained sizes with the same local tail.
func TestBenchWipedRejoin(t *testing.T) {
	requireBench(t)
	sizes := []int64{int64(envInt("BENCH_REJOIN_SMALL_MB", 50)) << 20, int64(envInt("BENCH_REJOIN_LARGE_MB", 200)) << 20}
	runs := envInt("BENCH_REJOINS", 3)
	c := newCluster(t, clusterOpts{})
	c.createTopic(wipedTopic, 1, map[string]*string{
		"segment.bytes":         ptr(fmt.Sprint(wipedSegment)),
		"local.retention.bytes": ptr(fmt.Sprint(wipedLocalTail)),
		"retention.bytes":       ptr("-1"),
		"remote.storage.enable": ptr("true"),
	})
	c.waitSettled(30*time.Second, wipedTopic)
	leader := c.leader(wipedTopic, 0)
	var victim *broker
	for _, b := range c.brokers {
		if b.id != leader && victim == nil {
			victim = b
		}
	}
	produced := int64(0)
	for _, size := range sizes {
		produceBytes(t, c.seeds(), wipedTopic, size-produced)
		produced = size
		c.waitTiered(c.leader(wipedTopic, 0), wipedTopic, 300*time.Second)
		var times []time.Duration
		var disk int64
		for range runs {
			took, d := c.wipeAndRejoin(victim, wipedTopic)
			times = append(times, took)
			disk = d
		}
		sortDurations(times)
		benchLine(t, "rejoin retained=%dMB local-tail=%dMB runs=%d: median=%s min=%s max=%s; rejoined broker holds %.1fMB loadavg=%s",
			size>>20, wipedLocalTail>>20, runs, ms(percentile(times, 50)), ms(times[0]), ms(times[len(times)-1]), float64(disk)/1e6, loadavg())
	}
}

// benchLimits measures, in the same run, what the machine can do at
// most: loopback TCP throughput with one connection, and sequential
// write throughput to the test's temporary directory (with fsync).
func benchLimits(t *testing.T) {
	t.Helper()
	benchLine(t, "machine: %d CPUs (GOMAXPROCS %d), %s, %s; load average %s before the run", runtime.NumCPU(), runtime.GOMAXPROCS(0), cpuModel(), runtime.Version(), loadavg())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, c)
		c.Close()
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	start := time.Now()
	n := 0
	for time.Since(start) < 2*time.Second {
		w, err := conn.Write(buf)
		if err != nil {
			break
		}
		n += w
	}
	conn.Close()
	loop := float64(n) / time.Since(start).Seconds() / 1e6
	f, err := os.Create(filepath.Join(t.TempDir(), "disk-probe"))
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	const total = 512 << 20
	for written := 0; written < total; written += len(buf) {
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	disk := float64(total) / time.Since(start).Seconds() / 1e6
	f.Close()
	benchLine(t, "limits: loopback TCP (1 connection, 1 MiB writes) %.0f MB/s; sequential write + fsync (512 MiB) %.0f MB/s", loop, disk)
}

// loadavg is the 1-minute load average: the machine may be shared with
// other work, which the numbers must show.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
