package main

import (
	"github.com/tiercel/tiercel/internal/bucketcheck"

	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	plog "github.com/tiercel/tiercel/broker/log"
	"github.com/tiercel/tiercel/internal/testproc"
	"github.com/tiercel/tiercel/wire/batch"
)

// runTool runs "tiercel args..." in this process.
func runTool(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// segDump is the JSON of "inspect segment".
type segDump struct {
	File    string     `json:"file"`
	Batches []segBatch `json:"batches"`
	Summary segSummary `json:"summary"`
}

// wantBatch is what the test wrote, to compare the tool's output with.
type wantBatch struct {
	codec         batch.Compression
	producer      int64
	epoch         int16
	seq           int32
	transactional bool
	leaderEpoch   int32
	baseTS        int64
	keys          []string
	headers       bool
}

// writeSegment writes batches with broker/log and returns the segment
// file, the batches, and each batch's size.
func writeSegment(t *testing.T) (string, []wantBatch, []int) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "topic-0")
	cfg := plog.DefaultConfig()
	cfg.RollInterval = 0 // the batches' timestamps are old: never roll by age
	l, err := plog.Open(dir, cfg, plog.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	want := []wantBatch{
		{codec: batch.CompressionNone, producer: -1, epoch: -1, seq: -1, leaderEpoch: 0, baseTS: base, keys: []string{"a", "b", "c"}},
		{codec: batch.CompressionGzip, producer: 1000, epoch: 2, seq: 0, leaderEpoch: 0, baseTS: base + 1000, keys: []string{"d", "e"}, headers: true},
		{codec: batch.CompressionZstd, producer: 1000, epoch: 2, seq: 2, leaderEpoch: 3, baseTS: base + 2000, keys: []string{"f", "\xff\x00binary", "h", "i"}},
		{codec: batch.CompressionLZ4, producer: -1, epoch: -1, seq: -1, leaderEpoch: 3, baseTS: base + 3000, keys: []string{"j"}},
		{codec: batch.CompressionSnappy, producer: 7, epoch: 0, seq: 0, transactional: true, leaderEpoch: 3, baseTS: base + 4000, keys: []string{"k", "l"}},
	}
	var sizes []int
	next := int64(0)
	for _, w := range want {
		b := batch.NewBuilder(w.codec)
		b.ProducerID, b.ProducerEpoch, b.BaseSequence = w.producer, w.epoch, w.seq
		if w.transactional {
			b.Attributes = batch.AttrTransactional
		}
		for i, k := range w.keys {
			var hs []batch.RecordHeader
			if w.headers {
				hs = []batch.RecordHeader{{Key: "trace", Value: []byte("id-" + k)}, {Key: "nil", Value: nil}}
			}
			b.Add(w.baseTS+int64(i)*10, []byte(k), bytes.Repeat([]byte(k), 50), hs...)
		}
		raw, err := b.Build(next)
		if err != nil {
			t.Fatal(err)
		}
		batch.SetPartitionLeaderEpoch(raw, w.leaderEpoch)
		if _, err := l.Append(raw); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(raw))
		next += int64(len(w.keys))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "00000000000000000000.log"), want, sizes
}

func inspectSegmentJSON(t *testing.T, args ...string) (segDump, int, string) {
	t.Helper()
	code, out, errOut := runTool(append([]string{"inspect", "segment", "--json"}, args...)...)
	var d segDump
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("inspect segment --json: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	return d, code, errOut
}

func TestInspectSegment(t *testing.T) {
	path, want, sizes := writeSegment(t)
	// Flags after the file work too.
	d, code, errOut := inspectSegmentJSON(t, path, "--records")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if len(d.Batches) != len(want) {
		t.Fatalf("%d batches, want %d", len(d.Batches), len(want))
	}
	pos, off := int64(0), int64(0)
	for i, w := range want {
		b := d.Batches[i]
		n := int64(len(w.keys))
		lastTS := w.baseTS + (n-1)*10
		if b.Position != pos || b.BaseOffset != off || b.LastOffset != off+n-1 || int64(b.RecordCount) != n ||
			b.Size != sizes[i] || !b.CRCOK || b.Problem != "" {
			t.Errorf("batch %d: %+v; want position %d, offsets %d-%d, size %d, CRC ok", i, b, pos, off, off+n-1, sizes[i])
		}
		if b.FirstTimestamp != w.baseTS || b.MaxTimestamp != lastTS || b.TimestampType != "create" {
			t.Errorf("batch %d: timestamps %d %d %s; want %d %d create", i, b.FirstTimestamp, b.MaxTimestamp, b.TimestampType, w.baseTS, lastTS)
		}
		if b.Compression != w.codec.String() || b.ProducerID != w.producer || b.ProducerEpoch != w.epoch ||
			b.BaseSequence != w.seq || b.Transactional != w.transactional || b.Control || b.LeaderEpoch != w.leaderEpoch {
			t.Errorf("batch %d: %+v; want %+v", i, b, w)
		}
		if len(b.Records) != len(w.keys) {
			t.Fatalf("batch %d: %d records decoded, want %d", i, len(b.Records), len(w.keys))
		}
		for j, r := range b.Records {
			k := w.keys[j]
			if r.Offset != off+int64(j) || r.Timestamp != w.baseTS+int64(j)*10 || r.KeyLength != len(k) || r.ValueLength != 50*len(k) {
				t.Errorf("batch %d record %d: %+v", i, j, r)
			}
			if r.Key == nil {
				if r.KeyBase64 == "" || k != "\xff\x00binary" {
					t.Errorf("batch %d record %d: key %q rendered as %+v", i, j, k, r)
				}
			} else if *r.Key != k {
				t.Errorf("batch %d record %d: key %q, want %q", i, j, *r.Key, k)
			}
			if w.headers {
				if len(r.Headers) != 2 || r.Headers[0].Key != "trace" || r.Headers[0].Value == nil ||
					*r.Headers[0].Value != "id-"+k || r.Headers[1].Value != nil {
					t.Errorf("batch %d record %d: headers %+v", i, j, r.Headers)
				}
			}
		}
		pos += int64(sizes[i])
		off += n
	}
	s := d.Summary
	if !s.OK || s.Batches != len(want) || s.Records != off || s.FirstOffset != 0 || s.LastOffset != off-1 ||
		s.FileBytes != pos || s.ValidBytes != pos || s.CRCFailures != 0 || s.TornTailBytes != 0 || s.NameOffset != 0 ||
		s.MinTimestamp != want[0].baseTS || s.MaxTimestamp != want[len(want)-1].baseTS+10 {
		t.Errorf("summary %+v", s)
	}

	// The text form: a row per batch and the summary; records with --records.
	code, out, errOut := runTool("inspect", "segment", path)
	if code != 0 || strings.Count(out, " ok\n") != len(want) || !strings.Contains(out, "OK: every batch") ||
		!strings.Contains(out, "1000/2/2") || !strings.Contains(out, "txn") || !strings.Contains(out, "2024-05-01T12:00:00.000Z") {
		t.Errorf("text: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out, "| offset") {
		t.Errorf("records printed without --records:\n%s", out)
	}
	code, out, _ = runTool("inspect", "segment", "--records", path)
	if code != 0 || strings.Count(out, "| offset") != int(off) || !strings.Contains(out, `key "d"  value 50 bytes  headers ["trace"="id-d" "nil"=null]`) ||
		!strings.Contains(out, "key base64:") {
		t.Errorf("text with --records: exit %d\n%s", code, out)
	}
}

func TestInspectSegmentCorrupt(t *testing.T) {
	path, want, sizes := writeSegment(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Flip a record byte in the third batch (inside the CRC), and leave a
	// torn batch at the end: the header of a batch whose body is missing.
	bad := append([]byte(nil), data...)
	third := sizes[0] + sizes[1]
	bad[third+batch.HeaderSize+5] ^= 0x40
	torn := data[:batch.HeaderSize+7]
	bad = append(bad, torn...)
	corrupt := filepath.Join(t.TempDir(), "00000000000000000000.log")
	if err := os.WriteFile(corrupt, bad, 0o644); err != nil {
		t.Fatal(err)
	}

	d, code, errOut := inspectSegmentJSON(t, "--records", corrupt)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(errOut, "1 batch fails its CRC") || !strings.Contains(errOut, "torn tail of 68 bytes") {
		t.Errorf("stderr %q does not name the CRC failure and the torn tail", errOut)
	}
	s := d.Summary
	if s.OK || s.CRCFailures != 1 || s.TornTailBytes != int64(len(torn)) || s.TornTailAt != int64(len(data)) ||
		s.Batches != len(want) || s.ValidBytes != int64(len(data)) {
		t.Errorf("summary %+v", s)
	}
	for i, b := range d.Batches {
		if b.CRCOK != (i != 2) {
			t.Errorf("batch %d: crcOk %v", i, b.CRCOK)
		}
		if i == 2 && (b.ComputedCRC == nil || *b.ComputedCRC == b.CRC || len(b.Records) != 0) {
			t.Errorf("bad batch: %+v", b)
		}
	}
	code, out, errOut := runTool("inspect", "segment", corrupt)
	if code != 1 || !strings.Contains(out, "BAD: stored") || !strings.Contains(out, "FAILED:") ||
		!strings.Contains(out, "torn tail      68 bytes at position") {
		t.Errorf("text: exit %d\n%s%s", code, out, errOut)
	}

	// A file that is all garbage is not a segment.
	junk := filepath.Join(t.TempDir(), "junk.log")
	if err := os.WriteFile(junk, bytes.Repeat([]byte{0xAB}, 200), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := runTool("inspect", "segment", junk); code != 1 {
		t.Errorf("garbage: exit %d, want 1", code)
	}
}

func TestInspectUsage(t *testing.T) {
	path, _, _ := writeSegment(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"inspect"}, "want what to inspect"},
		{[]string{"inspect", "bogus"}, "bogus"},
		{[]string{"inspect", "segment"}, "want one segment file"},
		{[]string{"inspect", "segment", path, path}, "want one segment file"},
		{[]string{"inspect", "segment", "--nope", path}, "-nope"},
		{[]string{"inspect", "segment", filepath.Dir(path) + "/00000000000000000000.index"}, "not a segment file"},
		{[]string{"inspect", "manifest", "--object-store", "file:///tmp", "--partition", "0"}, "--topic is required"},
		{[]string{"inspect", "manifest", "--object-store", "file:///tmp", "--topic", "t"}, "--partition"},
		{[]string{"inspect", "manifest", "--object-store", "file:///tmp", "--topic", "t", "--partition", "x"}, "-partition"},
		{[]string{"inspect", "manifest", "--object-store", "file:///tmp", "--topic", "t", "--partition", "0", "--topic-id", "zz"}, "--topic-id"},
		{[]string{"inspect", "metadata", "--object-store", "ftp://x"}, "--object-store"},
		{[]string{"inspect", "metadata", "--object-store", "mem://"}, "--object-store"},
		{[]string{"inspect", "lease", "--object-store", "file:///tmp", "extra"}, `unexpected argument "extra"`},
		{[]string{"inspect", "lease", "--data-dir", "/nonexistent/dir"}, "--object-store not given"},
		{[]string{"cost", "--price-storage", "-1"}, "--price-storage"},
		{[]string{"cost", "--price-get", "NaN"}, "--price-get"},
		{[]string{"cost", "--kafka-replication", "0"}, "--kafka-replication"},
		{[]string{"cost", "--price-ebs", "cheap"}, "-price-ebs"},
		{[]string{"cost", "now"}, `unexpected argument "now"`},
	} {
		code, _, errOut := runTool(c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 naming %q", c.args, code, errOut, c.want)
		}
	}
	for _, c := range []struct {
		args  []string
		flags []string
	}{
		{[]string{"inspect", "--help"}, []string{"segment", "manifest", "metadata", "lease", "--object-store"}},
		{[]string{"inspect", "segment", "--help"}, []string{"-json", "-records", "CRC"}},
		{[]string{"inspect", "manifest", "--help"}, []string{"-topic", "-partition", "-topic-id", "-object-store", "-s3-endpoint", "-s3-region", "-data-dir", "-json"}},
		{[]string{"inspect", "metadata", "--help"}, []string{"-object-store", "-json"}},
		{[]string{"inspect", "lease", "--help"}, []string{"-object-store", "-json", "TTL"}},
		{[]string{"cost", "--help"}, []string{"-price-storage", "-price-put", "-price-get", "-price-delete", "-price-ebs", "-kafka-replication", "-list", "-json", "-object-store"}},
		{[]string{"help", "cost"}, []string{"-kafka-replication"}},
	} {
		code, out, errOut := runTool(c.args...)
		for _, f := range c.flags {
			if code != 0 || !strings.Contains(out+errOut, f) {
				t.Errorf("%v: exit %d, help does not mention %q:\n%s", c.args, code, f, out+errOut)
				break
			}
		}
	}
	if _, out, _ := runTool("help"); !strings.Contains(out, "tiercel inspect") || !strings.Contains(out, "tiercel cost") {
		t.Errorf("tiercel help does not list inspect and cost:\n%s", out)
	}
}

// tieredCluster runs the real binary on a file:// store with tiny
// segments and fast offload, creates topic with the given configs, and
// produces n records of size bytes round-robin.
func tieredCluster(t *testing.T, extraArgs []string, topic string, parts int32, configs map[string]*string, n, size int) (proc *testproc.Proc, dataDir, storeDir string) {
	t.Helper()
	root := t.TempDir()
	dataDir, storeDir = filepath.Join(root, "data"), filepath.Join(root, "objects")
	args := append([]string{"--data-dir", dataDir, "--object-store", "file://" + storeDir,
		"--override", "remote.log.manager.task.interval.ms=100", "--override", "log.retention.check.interval.ms=100"}, extraArgs...)
	proc = testproc.Start(t, testproc.FreeAddr(t), args...)
	produceTo(t, proc.Addr, topic, parts, configs, n, size, 1)
	return proc, dataDir, storeDir
}

// produceTo creates the topic (if configs is not nil) and produces n
// incompressible records round-robin.
func produceTo(t *testing.T, addr, topic string, parts int32, configs map[string]*string, n, size int, seed uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(4096))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if configs != nil {
		res, err := kadm.NewClient(cl).CreateTopic(ctx, parts, 1, configs, topic)
		if err != nil || res.Err != nil {
			t.Fatalf("create %s: %v %v", topic, err, res.Err)
		}
	}
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Key: []byte(topic + "-" + string(rune('a'+i%26))), Value: bucketcheck.Value(seed, i, size)}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// waitManifests waits until every partition of the topic has offloaded at
// least min segments, reading the manifests from the store directory.
func waitManifests(t *testing.T, storeDir, topic string, parts int32, minSegs int) map[int32]bucketcheck.Manifest {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := map[int32]bucketcheck.Manifest{}
		dirs, _ := filepath.Glob(filepath.Join(storeDir, "topics", topic+"-*"))
		for _, dir := range dirs {
			if len(filepath.Base(dir)) != len(topic)+1+22 {
				continue
			}
			for p := int32(0); p < parts; p++ {
				b, err := os.ReadFile(filepath.Join(dir, itoa(p), "manifest"))
				if err != nil {
					continue
				}
				var m bucketcheck.Manifest
				if err := json.Unmarshal(b, &m); err != nil {
					t.Fatal(err)
				}
				if len(m.Segments) >= minSegs {
					got[p] = m
				}
			}
		}
		if int32(len(got)) == parts {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d partitions offloaded %d segments within 30s", topic, len(got), parts, minSegs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// hasRow reports whether a line of a table starts with the given fields.
func hasRow(out string, fields ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= len(fields) && strings.Join(f[:len(fields)], " ") == strings.Join(fields, " ") {
			return true
		}
	}
	return false
}

func itoa(p int32) string { return strconv.Itoa(int(p)) }

func TestInspectStoreDocuments(t *testing.T) {
	const topic, parts = "docs", 2
	proc, dataDir, storeDir := tieredCluster(t, nil, topic, parts, map[string]*string{
		"segment.bytes":         kadm.StringPtr("8192"),
		"local.retention.bytes": kadm.StringPtr("8192"),
		"retention.ms":          kadm.StringPtr("604800000"),
	}, 600, 200)
	manifests := waitManifests(t, storeDir, topic, parts, 3)
	store := "file://" + storeDir

	// metadata
	code, out, errOut := runTool("inspect", "metadata", "--object-store", store, "--json")
	if code != 0 {
		t.Fatalf("inspect metadata: exit %d %s", code, errOut)
	}
	var md metadataJSON
	if err := json.Unmarshal([]byte(out), &md); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(storeDir, "cluster", "metadata"))
	if err != nil {
		t.Fatal(err)
	}
	var fromFile, fromTool map[string]any
	_ = json.Unmarshal(raw, &fromFile)
	_ = json.Unmarshal(md.Document, &fromTool)
	if md.Object.Key != "cluster/metadata" || md.Object.Size == 0 || md.Object.ETag == "" {
		t.Errorf("metadata object %+v", md.Object)
	}
	topics, _ := fromTool["topics"].(map[string]any)
	doc, _ := topics[topic].(map[string]any)
	id, _ := doc["id"].(string)
	if doc == nil || len(doc["partitions"].([]any)) != parts || id == "" {
		t.Fatalf("metadata document from the tool: %s", md.Document)
	}
	if fv, _ := fromFile["version"].(float64); fv < fromTool["version"].(float64) {
		t.Errorf("the tool's document is newer than the file's?")
	}
	code, out, _ = runTool("inspect", "metadata", "--object-store", store)
	if code != 0 || !strings.Contains(out, "Cluster metadata cluster/metadata") || !hasRow(out, topic, id) ||
		!strings.Contains(out, "segment.bytes=8192") {
		t.Errorf("metadata text: exit %d\n%s", code, out)
	}

	// manifest: the tool reads what the store holds, and finds the id.
	for p := int32(0); p < parts; p++ {
		code, out, errOut := runTool("inspect", "manifest", "--object-store", store, "--topic", topic, "--partition", itoa(p), "--json")
		if code != 0 {
			t.Fatalf("inspect manifest: exit %d %s", code, errOut)
		}
		var mj struct {
			Object    objectJSON           `json:"object"`
			TopicID   string               `json:"topicId"`
			Partition int32                `json:"partition"`
			Manifest  bucketcheck.Manifest `json:"manifest"`
		}
		if err := json.Unmarshal([]byte(out), &mj); err != nil {
			t.Fatal(err)
		}
		if mj.TopicID != id || mj.Partition != p || !strings.HasPrefix(mj.Object.Key, "topics/"+topic+"-"+id+"/") {
			t.Errorf("manifest %d: %+v", p, mj.Object)
		}
		before := manifests[p]
		if mj.Manifest.Version < before.Version || len(mj.Manifest.Segments) < len(before.Segments) ||
			mj.Manifest.Segments[0] != before.Segments[0] {
			t.Errorf("partition %d: tool read %+v, the store had %+v", p, mj.Manifest, before)
		}
		// The text form names every segment with its key.
		code, out, _ = runTool("inspect", "manifest", "--object-store", store, "--topic", topic, "--partition", itoa(p))
		if code != 0 || !strings.Contains(out, "Topic "+topic+" (id "+id+"), partition "+itoa(p)) {
			t.Errorf("manifest text: exit %d\n%s", code, out)
		}
		for _, s := range before.Segments {
			if !strings.Contains(out, s.Key) {
				t.Errorf("manifest text lacks segment %s:\n%s", s.Key, out)
			}
		}
	}
	// --topic-id skips the metadata; a wrong partition or topic is a usage error.
	if code, _, errOut := runTool("inspect", "manifest", "--object-store", store, "--topic", topic, "--partition", "0", "--topic-id", id); code != 0 {
		t.Errorf("--topic-id: exit %d %s", code, errOut)
	}
	if code, _, errOut := runTool("inspect", "manifest", "--object-store", store, "--topic", topic, "--partition", "7"); code != 2 || !strings.Contains(errOut, "--partition") {
		t.Errorf("partition 7: exit %d %s", code, errOut)
	}
	if code, _, errOut := runTool("inspect", "manifest", "--object-store", store, "--topic", "nope", "--partition", "0"); code != 2 || !strings.Contains(errOut, "--topic") {
		t.Errorf("unknown topic: exit %d %s", code, errOut)
	}

	// lease: held by broker 1 while it runs, released after a clean stop.
	code, out, errOut = runTool("inspect", "lease", "--object-store", store, "--json")
	if code != 0 {
		t.Fatalf("inspect lease: exit %d %s", code, errOut)
	}
	var lj leaseJSON
	if err := json.Unmarshal([]byte(out), &lj); err != nil {
		t.Fatal(err)
	}
	var ld leaseDocJSON
	if err := json.Unmarshal(lj.Document, &ld); err != nil {
		t.Fatal(err)
	}
	if ld.Holder != 1 || ld.Epoch < 1 || ld.TTLMs <= 0 || lj.Released || lj.Object.LastModified.IsZero() || lj.Object.AgeMs < 0 {
		t.Errorf("lease %+v %+v", lj, ld)
	}
	code, out, _ = runTool("inspect", "lease", "--object-store", store)
	if code != 0 || !strings.Contains(out, "Holder broker 1") || !strings.Contains(out, "within its TTL") {
		t.Errorf("lease text: exit %d\n%s", code, out)
	}
	// The segment command reads the broker's own files too.
	segs, _ := filepath.Glob(filepath.Join(dataDir, topic+"-0", "*.log"))
	if len(segs) == 0 {
		t.Fatal("no local segments")
	}
	if code, out, errOut := runTool("inspect", "segment", segs[0]); code != 0 || !strings.Contains(out, "OK: every batch") {
		t.Errorf("inspect segment %s: exit %d\n%s%s", segs[0], code, out, errOut)
	}
	if err := proc.Stop(); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runTool("inspect", "lease", "--object-store", store)
	if code != 0 || !strings.Contains(out, "none (released)") {
		t.Errorf("lease after stop: exit %d\n%s", code, out)
	}
	// The default store is <data-dir>/objects.
	if code, _, errOut := runTool("inspect", "lease", "--data-dir", filepath.Dir(storeDir)); code != 0 {
		t.Errorf("--data-dir default: exit %d %s", code, errOut)
	}
}
