package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/internal/testproc"
)

// TestMetricsEndpoint runs the real binary, drives produce, offload and a
// cold read, then scrapes /metrics: every metric the Grafana dashboard
// queries (localstack/metrics.txt) must be exported, and the health
// endpoints must answer.
func TestMetricsEndpoint(t *testing.T) {
	addr, metricsAddr := testproc.FreeAddr(t), testproc.FreeAddr(t)
	testproc.Start(t, addr, "--data-dir", t.TempDir(), "--metrics-listen", metricsAddr,
		"--override", "remote.log.manager.task.interval.ms=200",
		"--override", "log.retention.check.interval.ms=200")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + metricsAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("m"), kgo.ProducerBatchMaxBytes(2048))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, map[string]*string{
		"segment.bytes": kadm.StringPtr("4096"), "local.retention.bytes": kadm.StringPtr("4096"),
	}, "m"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strings.Repeat("v", 100))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// Wait for offload and local retention, then read from 0: a cold read.
	deadline := time.Now().Add(30 * time.Second)
	for {
		req := kmsg.NewPtrListOffsetsRequest()
		req.Version = 8
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "m"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp = -4 // earliest still on local disk (KIP-1005)
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Topics[0].Partitions[0].Offset > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no offload and local retention within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"m": {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for got := 0; got < 200; {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of 200", got)
		}
		got += fs.NumRecords()
	}

	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	exported := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		exported[name] = true
	}
	want, err := os.ReadFile("../../localstack/metrics.txt")
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, name := range strings.Fields(string(want)) {
		if !exported[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("the dashboard queries metrics the broker does not export: %v", missing)
	}
}
