package localstack_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestRunLocalScriptSyntax(t *testing.T) {
	if out, err := exec.Command("bash", "-n", "run-local.sh").CombinedOutput(); err != nil {
		t.Fatalf("bash -n run-local.sh: %v\n%s", err, out)
	}
	if _, err := exec.LookPath("shellcheck"); err != nil {
		t.Log("shellcheck is not on PATH; run-local.sh checked with bash -n only")
		return
	}
	if out, err := exec.Command("shellcheck", "--severity=warning", "run-local.sh").CombinedOutput(); err != nil {
		t.Errorf("shellcheck run-local.sh: %v\n%s", err, out)
	}
}

// freePorts returns n distinct ports that were free on 127.0.0.1 a moment
// ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// TestRunLocalScript runs the no-Docker stack as a developer would: up with
// one broker on free ports, produce and consume through it, find the
// cluster's metadata in the MinIO bucket, then down. MinIO comes from
// $TIERCEL_MINIO_BIN or scripts/install-minio.sh, as for every MinIO test.
func TestRunLocalScript(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	p := freePorts(t, 5)
	minioPort, consolePort, kafkaPort, gossipPort, metricsPort := p[0], p[1], p[2], p[3], p[4]
	env := append(os.Environ(),
		"TIERCEL_LOCAL_STATE="+state,
		"TIERCEL_LOCAL_MINIO_PORT="+strconv.Itoa(minioPort),
		"TIERCEL_LOCAL_CONSOLE_PORT="+strconv.Itoa(consolePort),
		"TIERCEL_LOCAL_KAFKA_PORT="+strconv.Itoa(kafkaPort),
		"TIERCEL_LOCAL_GOSSIP_PORT="+strconv.Itoa(gossipPort),
		"TIERCEL_LOCAL_METRICS_PORT="+strconv.Itoa(metricsPort),
	)
	script := func(args ...string) (string, error) {
		cmd := exec.Command("./run-local.sh", args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() {
		if out, err := script("down"); err != nil {
			t.Errorf("cleanup: run-local.sh down: %v\n%s", err, out)
		}
	})

	out, err := script("up")
	if err != nil {
		t.Fatalf("run-local.sh up: %v\n%s", err, out)
	}
	kafka := "127.0.0.1:" + strconv.Itoa(kafkaPort)
	if !strings.Contains(out, "Kafka        "+kafka) {
		t.Errorf("up does not tell where Kafka is:\n%s", out)
	}
	if out, err := script("up"); err == nil || !strings.Contains(out, "already running") {
		t.Errorf("a second up did not refuse: %v\n%s", err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka), kgo.DefaultProduceTopic("run-local"), kgo.AllowAutoTopicCreation(),
		kgo.ConsumeTopics("run-local"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("produce through run-local's broker: %v", err)
	}
	var got []string
	for len(got) == 0 && ctx.Err() == nil {
		fetches := cl.PollFetches(ctx)
		fetches.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if len(got) != 1 || got[0] != "hello" {
		t.Fatalf("consumed %q, want [hello]", got)
	}

	// The broker keeps its cluster metadata in run-local's MinIO, under
	// the prefix the compose stack uses too.
	mc, err := minio.New("127.0.0.1:"+strconv.Itoa(minioPort), &minio.Options{
		Creds:        credentials.NewStaticV4("tiercel-local", "tiercel-local-secret", ""),
		Region:       "us-east-1",
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for obj := range mc.ListObjects(ctx, "tiercel", minio.ListObjectsOptions{Prefix: "cluster/", Recursive: true}) {
		if obj.Err != nil {
			t.Fatalf("listing s3://tiercel/cluster/: %v", obj.Err)
		}
		keys = append(keys, obj.Key)
	}
	if !strings.Contains(strings.Join(keys, " "), "cluster/metadata") {
		t.Errorf("s3://tiercel/cluster/ holds %q; want the cluster metadata document", keys)
	}

	if out, err := script("status"); err != nil || !strings.Contains(out, "broker1: running") || !strings.Contains(out, "minio: running") {
		t.Errorf("status: %v\n%s", err, out)
	}
	cl.Close()

	if out, err := script("down"); err != nil {
		t.Fatalf("run-local.sh down: %v\n%s", err, out)
	}
	for _, port := range []int{minioPort, kafkaPort} {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second); err == nil {
			c.Close()
			t.Errorf("port %d still accepts connections after down", port)
		}
	}
	if pids, _ := filepath.Glob(filepath.Join(state, "pids", "*.pid")); len(pids) > 0 {
		t.Errorf("pid files left after down: %q", pids)
	}
}
