package main

import (
	"github.com/tiercel/tiercel/internal/bucketcheck"

	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/internal/testenv"
)

// TestTieredWipedDiskRestoresFromBucket runs the real binary on MinIO,
// produces, waits for offload, stops the broker and deletes its whole data
// directory, and starts it again. The topic, its id and its configs come
// back from the metadata document in the bucket; consuming from offset 0
// returns everything that had been offloaded, byte-identical and at the
// same offsets; the log resumes at the end of the offloaded data; the
// broker logs how many offsets were lost.
func TestTieredWipedDiskRestoresFromBucket(t *testing.T) {
	const (
		topic   = "wiped"
		parts   = 2
		recSize = 1000
		records = 4000
		seed    = 11
		prefix  = "wipe/c1"
	)
	srv := testenv.MinIO(t)
	data := t.TempDir() + "/data"
	proc := tieredProc(t, tieredBrokerArgs(t, srv, srv.Endpoint, data, prefix,
		"remote.log.manager.task.interval.ms=200", "log.retention.check.interval.ms=200"))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	cl, err := kgo.NewClient(kgo.SeedBrokers(proc.Addr), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(16<<10))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	configs := map[string]*string{
		"segment.bytes":         kadm.StringPtr("131072"),
		"local.retention.bytes": kadm.StringPtr("262144"),
		"retention.ms":          kadm.StringPtr("1209600000"),
		"max.message.bytes":     kadm.StringPtr("300000"),
	}
	created, err := adm.CreateTopic(ctx, parts, 1, configs, topic)
	if err != nil || created.Err != nil {
		t.Fatalf("create topic: %v %v", err, created.Err)
	}

	// Produce, remembering where each record was acknowledged.
	var mu sync.Mutex
	acked := map[int32]map[int64]int{} // partition -> offset -> record
	recs := make([]*kgo.Record, records)
	for i := range recs {
		recs[i] = &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: bucketcheck.Value(seed, i, recSize)}
	}
	for _, r := range cl.ProduceSync(ctx, recs...) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		mu.Lock()
		if acked[r.Record.Partition] == nil {
			acked[r.Record.Partition] = map[int64]int{}
		}
		i, _ := strconv.Atoi(string(r.Record.Key))
		acked[r.Record.Partition][r.Record.Offset] = i
		mu.Unlock()
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}

	// Wait until offload has taken every sealed segment: the manifests in
	// the bucket stop moving.
	var bucket map[string]*bucketcheck.Partition
	stable, last := 0, ""
	for deadline := time.Now().Add(time.Minute); stable < 5; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("offload did not settle")
		}
		bucket = bucketcheck.MustCheck(t, srv.Client(), srv.Bucket, prefix)
		state := ""
		for p := int32(0); p < parts; p++ {
			tp := bucket[fmt.Sprintf("%s/%d", topic, p)]
			if tp == nil || tp.Manifest.Next() <= 0 {
				state = "none"
				break
			}
			state += fmt.Sprintf("%d,", tp.Manifest.Next())
		}
		if state == last && state != "none" {
			stable++
		} else {
			stable, last = 0, state
		}
	}
	remoteEnd := map[int32]int64{}
	for p := int32(0); p < parts; p++ {
		tp := bucket[fmt.Sprintf("%s/%d", topic, p)]
		remoteEnd[p] = tp.Manifest.Next()
		end, _ := ends.Lookup(topic, p)
		if remoteEnd[p] <= 0 || remoteEnd[p] >= end.Offset {
			t.Fatalf("partition %d: remote end %d, log end %d: the test needs data on both sides", p, remoteEnd[p], end.Offset)
		}
	}
	before, err := adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	cl.Close()

	// Stop, wipe the data directory, start again.
	if err := proc.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	proc.Restart()

	cl, err = kgo.NewClient(kgo.SeedBrokers(proc.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm = kadm.NewClient(cl)

	// The topic, its id and its configs, from the bucket.
	after, err := adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := after[topic], before[topic]; a.Err != nil || a.ID != b.ID || len(a.Partitions) != parts {
		t.Fatalf("after the wipe: topic %+v (id %v), before: id %v", a, a.ID, b.ID)
	}
	described, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := described.On(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		got[c.Key] = c
	}
	for k, v := range configs {
		if c := got[k]; c.Value == nil || *c.Value != *v || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
			t.Errorf("config %s after the wipe: %v (source %v), want %s set on the topic", k, c.Value, c.Source, *v)
		}
	}
	if _, err := srv.Client().StatObject(ctx, srv.Bucket, prefix+"/cluster/metadata", minio.StatObjectOptions{}); err != nil {
		t.Fatalf("metadata document in the bucket: %v", err)
	}

	// The log: [0, remote end), then new records from there.
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	ends, err = adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	lost := map[int32]int64{}
	for p := int32(0); p < parts; p++ {
		s, _ := starts.Lookup(topic, p)
		e, _ := ends.Lookup(topic, p)
		if s.Offset != 0 || e.Offset != remoteEnd[p] {
			t.Fatalf("partition %d after the wipe: [%d, %d), want [0, %d)", p, s.Offset, e.Offset, remoteEnd[p])
		}
		recs := tieredRead(t, proc.Addr, topic, p, remoteEnd[p])
		for j, r := range recs[:remoteEnd[p]] {
			i, ok := acked[p][r.Offset]
			if r.Offset != int64(j) || !ok || string(r.Key) != strconv.Itoa(i) || string(r.Value) != string(bucketcheck.Value(seed, i, recSize)) {
				t.Fatalf("partition %d: record %d (offset %d, key %q) differs from what was acknowledged there", p, j, r.Offset, r.Key)
			}
		}
		lost[p] = int64(len(acked[p])) - remoteEnd[p]
	}

	// New records continue from the offloaded end.
	pcl, err := kgo.NewClient(kgo.SeedBrokers(proc.Addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer pcl.Close()
	for p := int32(0); p < parts; p++ {
		r := pcl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p, Value: []byte("after the wipe")})
		if err := r.FirstErr(); err != nil || r[0].Record.Offset != remoteEnd[p] {
			t.Fatalf("partition %d: produce after the wipe at offset %d (want %d): %v", p, r[0].Record.Offset, remoteEnd[p], err)
		}
	}

	// The broker said how many offsets are gone: at least those between
	// the remote end and the high watermark its last offload recorded
	// (in fact every acknowledged offset past the remote end is). Its
	// output is read once it has exited.
	if err := proc.Stop(); err != nil {
		t.Fatal(err)
	}
	out := proc.Output()
	lostRE := regexp.MustCompile(`msg="local log restored from the remote tier" topic=` + topic + ` partition=(\d+) .*offsets\.lost\.at\.least=(\d+) high\.watermark\.recorded=(\d+)`)
	logged := map[int32]int64{}
	for _, m := range lostRE.FindAllStringSubmatch(out, -1) {
		p, _ := strconv.Atoi(m[1])
		n, _ := strconv.ParseInt(m[2], 10, 64)
		logged[int32(p)] = n
	}
	for p := int32(0); p < parts; p++ {
		n, ok := logged[p]
		if !ok {
			t.Fatalf("partition %d: no log line about the restore:\n%s", p, out)
		}
		recorded := bucket[fmt.Sprintf("%s/%d", topic, p)].Manifest.HighWatermark
		if n != max(recorded-remoteEnd[p], 0) || n > lost[p] {
			t.Fatalf("partition %d: logged %d offsets lost; manifest recorded high watermark %d, remote end %d, really lost %d",
				p, n, recorded, remoteEnd[p], lost[p])
		}
		t.Logf("partition %d: %d offsets restored from the bucket, %d lost (the broker logged at least %d)", p, remoteEnd[p], lost[p], n)
	}
	if strings.Contains(out, "panic") {
		t.Fatalf("the broker panicked:\n%s", out)
	}
}
