package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/tiercel/tiercel/broker"
	"github.com/tiercel/tiercel/broker/controller"
	"github.com/tiercel/tiercel/internal/bucketcheck"
	"github.com/tiercel/tiercel/internal/testenv"
	"github.com/tiercel/tiercel/internal/testproc"
	"github.com/tiercel/tiercel/tiering"
)

// costBucket is one way of looking at the store behind the broker's back:
// a directory walk for file://, minio-go for MinIO.
type costBucket interface {
	// objects lists every object, key to size.
	objects(t *testing.T) map[string]int64
	// read returns an object's bytes, or nil if it does not exist.
	read(t *testing.T, key string) []byte
}

type dirBucket struct{ root string }

func (d dirBucket) objects(t *testing.T) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := filepath.WalkDir(d.root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() || strings.HasPrefix(e.Name(), ".tiercel-") {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(d.root, path)
		out[filepath.ToSlash(rel)] = info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (d dirBucket) read(t *testing.T, key string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.root, filepath.FromSlash(key)))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type minioBucket struct {
	srv    *testenv.MinIOServer
	prefix string // ends in '/'
}

func (m minioBucket) objects(t *testing.T) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for o := range m.srv.Client().ListObjects(context.Background(), m.srv.Bucket, minio.ListObjectsOptions{Prefix: m.prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		out[strings.TrimPrefix(o.Key, m.prefix)] = o.Size
	}
	return out
}

func (m minioBucket) read(t *testing.T, key string) []byte {
	t.Helper()
	b, err := bucketcheck.Get(context.Background(), m.srv.Client(), m.srv.Bucket, m.prefix+key)
	if err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" || strings.Contains(err.Error(), "does not exist") {
			return nil
		}
		t.Fatal(err)
	}
	return b
}

// logBytesByTopic sums the .log objects of a listing by topic directory
// name ("<topic>-<topicId>"), and counts them.
func logBytesByTopic(objs map[string]int64) (bytes map[string]int64, count map[string]int) {
	bytes, count = map[string]int64{}, map[string]int{}
	for k, n := range objs {
		dir, _, ok := bucketcheck.TopicDir(k)
		if !ok || !strings.HasSuffix(k, ".log") {
			continue
		}
		bytes[dir] += n
		count[dir]++
	}
	return bytes, count
}

// objectBytesByTopic sums every object under each topic directory.
func objectBytesByTopic(objs map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, n := range objs {
		if dir, _, ok := bucketcheck.TopicDir(k); ok {
			out[dir] += n
		}
	}
	return out
}

// scrapeObjstoreCalls reads tiercel_objstore_requests_total by operation,
// summed over outcomes.
func scrapeObjstoreCalls(t *testing.T, addr string) map[string]int64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	opRE := regexp.MustCompile(`operation="([a-z_]+)"`)
	out := map[string]int64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "tiercel_objstore_requests_total{") {
			continue
		}
		m := opRE.FindStringSubmatch(line)
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if m == nil || err != nil {
			t.Fatalf("cannot parse %q", line)
		}
		out[m[1]] += int64(v)
	}
	if len(out) == 0 {
		t.Fatal("no tiercel_objstore_requests_total in /metrics")
	}
	return out
}

func readAccountingDoc(t *testing.T, b costBucket) *broker.Accounting {
	t.Helper()
	body := b.read(t, broker.AccountingKey(1))
	if body == nil {
		return nil
	}
	var d broker.Accounting
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatalf("accounting document: %v\n%s", err, body)
	}
	return &d
}

func runCostJSON(t *testing.T, storeArgs []string, extra ...string) *costReport {
	t.Helper()
	args := append(append([]string{"cost", "--json"}, storeArgs...), extra...)
	code, out, errOut := runTool(args...)
	if code != 0 {
		t.Fatalf("tiercel %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	var rep costReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("decoding the report: %v\n%s", err, out)
	}
	return &rep
}

func (r *costReport) topic(t *testing.T, name string) *costTopic {
	t.Helper()
	for _, ct := range r.Topics {
		if ct.Name == name {
			return ct
		}
	}
	t.Fatalf("no topic %q in the report", name)
	return nil
}

// localLogBytes sums the .log files of the topic's partition directories.
func localLogBytes(t *testing.T, dataDir, topic string) int64 {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dataDir, topic+"-*", "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			n += st.Size()
		}
	}
	return n
}

// costScenario runs the real binary with a 1s accounting interval, produces
// to a tiered topic and a local-only one, waits for offload, and checks
// `tiercel cost --json` against an independent look at the bucket, the
// data directory, the accounting document and the broker's metrics.
func costScenario(t *testing.T, brokerArgs, storeArgs []string, bucket costBucket, dataDir string) {
	t.Setenv(broker.AccountingIntervalEnv, "1s")
	metricsAddr := testproc.FreeAddr(t)
	proc := testproc.Start(t, testproc.FreeAddr(t), append(brokerArgs, "--metrics-listen", metricsAddr,
		"--override", "remote.log.manager.task.interval.ms=100", "--override", "log.retention.check.interval.ms=100")...)
	produceTo(t, proc.Addr, "hot", 2, map[string]*string{
		"segment.bytes":         kadm.StringPtr("8192"),
		"local.retention.bytes": kadm.StringPtr("16384"),
		"retention.ms":          kadm.StringPtr("604800000"),
	}, 800, 200, 3)
	produceTo(t, proc.Addr, "warm", 1, map[string]*string{"remote.storage.enable": kadm.StringPtr("false")}, 100, 200, 4)

	// Offload is done when the .log objects stop changing: every sealed
	// segment is up, the active one stays local.
	var hotDir string
	deadline := time.Now().Add(45 * time.Second)
	prev, stableSince := "", time.Now()
	for {
		bytes, count := logBytesByTopic(bucket.objects(t))
		for dir := range bytes {
			if strings.HasPrefix(dir, "hot-") {
				hotDir = dir
			}
		}
		cur := fmt.Sprint(bytes, count)
		if cur != prev {
			prev, stableSince = cur, time.Now()
		}
		if hotDir != "" && count[hotDir] >= 10 && time.Since(stableSince) > 1500*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("offload did not settle within 45s: %s", cur)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The report against the bucket and the data directory. Retention or
	// an accounting write may land between the report and the listing, so
	// a mismatch is retried a few times before it fails the test.
	var problems []string
	var rep *costReport
	for try := 0; try < 5; try++ {
		problems = nil
		rep = runCostJSON(t, storeArgs, "--list")
		objs := bucket.objects(t)
		logBytes, _ := logBytesByTopic(objs)
		hot, warm := rep.topic(t, "hot"), rep.topic(t, "warm")
		if got, want := hot.RemoteBytes, logBytes[hotDir]; got != want || want == 0 {
			problems = append(problems, fmt.Sprintf("hot: report says %d remote bytes, the bucket's .log objects hold %d", got, want))
		}
		if got, want := *hot.RemoteObjectBytes, objectBytesByTopic(objs)[hotDir]; got != want {
			problems = append(problems, fmt.Sprintf("hot: report lists %d object bytes, the bucket holds %d", got, want))
		}
		if warm.RemoteBytes != 0 || warm.RemoteSegments != 0 {
			problems = append(problems, fmt.Sprintf("warm does not tier, yet the report has %d remote bytes", warm.RemoteBytes))
		}
		for _, ct := range []*costTopic{hot, warm} {
			if got, want := ct.LocalBytes, localLogBytes(t, dataDir, ct.Name); got != want || want == 0 {
				problems = append(problems, fmt.Sprintf("%s: report says %d local bytes, the data directory holds %d", ct.Name, got, want))
			}
		}
		var segs int
		for _, p := range hot.PartitionDetail {
			segs += p.RemoteSegments
			if p.RemoteStartOffset != 0 || p.RemoteNextOffset <= p.LocalStartOffset || p.LocalStartOffset <= 0 ||
				p.LogEndOffset <= p.RemoteNextOffset || p.RemoteOldestTimestampMs <= 0 || p.LocalOldestTimestampMs < p.RemoteOldestTimestampMs {
				problems = append(problems, fmt.Sprintf("hot partition %+v is not offloaded and trimmed locally", p))
			}
		}
		if len(problems) == 0 {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if len(problems) > 0 {
		t.Fatalf("tiercel cost vs an independent look:\n  %s", strings.Join(problems, "\n  "))
	}

	// Costs follow from the bytes and the prices.
	hot := rep.topic(t, "hot")
	if want := gb(hot.StorageBytes) * defaultPriceStorage; math.Abs(hot.Monthly.S3Storage-want) > 1e-12 {
		t.Errorf("hot storage cost %g, want %g", hot.Monthly.S3Storage, want)
	}
	if want := gb(hot.LogBytes) * 3 * defaultPriceEBS; math.Abs(hot.Monthly.KafkaEBS-want) > 1e-12 || hot.LogBytes < hot.RemoteBytes {
		t.Errorf("hot Kafka cost %g for %d log bytes, want %g", hot.Monthly.KafkaEBS, hot.LogBytes, want)
	}

	// Requests: the report sums the last interval of the accounting
	// document it read. Read the document before and after; if it did not
	// change, the report used exactly it.
	var doc *broker.Accounting
	for try := 0; ; try++ {
		before := readAccountingDoc(t, bucket)
		rep = runCostJSON(t, storeArgs)
		after := readAccountingDoc(t, bucket)
		if before != nil && after != nil && before.WrittenAt.Equal(after.WrittenAt) {
			doc = after
			break
		}
		if try == 10 {
			t.Fatal("the accounting document changed under every report")
		}
	}
	if len(rep.Brokers) != 1 || !rep.Brokers[0].RequestsIncluded || rep.Brokers[0].Final || rep.Brokers[0].Stale ||
		!rep.Brokers[0].WrittenAt.Equal(doc.WrittenAt) {
		t.Fatalf("brokers %+v, document written at %v", rep.Brokers, doc.WrittenAt)
	}
	interval := doc.Requests.IntervalEnd.Sub(doc.Requests.IntervalStart)
	if interval < 500*time.Millisecond || interval > 5*time.Second {
		t.Errorf("interval %v for a 1s accounting interval", interval)
	}
	var total int64
	for _, row := range rep.Requests {
		want := doc.Requests.Interval.Requests[row.Operation]
		total += row.LastInterval
		if row.LastInterval != want {
			t.Errorf("%s: report has %d requests, the document %d", row.Operation, row.LastInterval, want)
		}
		perMonth := float64(want) * float64(730*time.Hour) / float64(interval)
		if math.Abs(row.PerMonth-perMonth) > 1e-6*perMonth+1e-9 {
			t.Errorf("%s: %g per month, want %g", row.Operation, row.PerMonth, perMonth)
		}
	}
	if total == 0 || rep.Requests[0].Operation != "put" || rep.Requests[0].LastInterval == 0 {
		t.Errorf("no requests in the last interval: %+v", rep.Requests)
	}
	var topicSum float64
	for _, ct := range rep.Topics {
		for _, v := range ct.RequestsPerMonth {
			topicSum += v
		}
	}
	for _, v := range rep.Other.RequestsPerMonth {
		topicSum += v
	}
	var perMonth float64
	for _, row := range rep.Requests {
		perMonth += row.PerMonth
	}
	if math.Abs(topicSum-perMonth) > 1e-6*perMonth {
		t.Errorf("topics and other requests sum to %g per month, the requests table to %g", topicSum, perMonth)
	}

	// The counts agree with the broker's own metrics, which count the
	// same calls one layer down: a document assembled after scrape A and
	// read before scrape B lies between them.
	t1 := time.Now()
	a := scrapeObjstoreCalls(t, metricsAddr)
	var d *broker.Accounting
	waitFor := time.Now().Add(15 * time.Second)
	for d = readAccountingDoc(t, bucket); d == nil || !d.WrittenAt.After(t1); d = readAccountingDoc(t, bucket) {
		if time.Now().After(waitFor) {
			t.Fatal("no accounting document within 15s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	b := scrapeObjstoreCalls(t, metricsAddr)
	for _, op := range []string{"put", "get", "get_range", "attributes", "delete", "list"} {
		c := d.Requests.Cumulative.Calls[op]
		if c < a[op] || c > b[op] {
			t.Errorf("%s: the document counts %d calls, the metrics %d before and %d after", op, c, a[op], b[op])
		}
	}
	if d.Requests.Cumulative.Calls["put"] == 0 || d.Requests.Cumulative.Calls["get"] == 0 {
		t.Errorf("cumulative counts look empty: %+v", d.Requests.Cumulative)
	}

	// The text form.
	code, out, errOut := runTool(append([]string{"cost"}, storeArgs...)...)
	if code != 0 || !hasRow(out, "hot", "2", "1") || !hasRow(out, "warm", "1", "1") || !strings.Contains(out, "Classic Kafka") ||
		!strings.Contains(out, "Assumptions") || !strings.Contains(out, "$0.023") || !strings.Contains(out, "TOTAL") {
		t.Errorf("text report: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("tiercel cost:\n%s", out)

	// After a clean stop the last document is final: local bytes stay,
	// requests are no longer extrapolated.
	if err := proc.Stop(); err != nil {
		t.Fatal(err)
	}
	rep = runCostJSON(t, storeArgs)
	if len(rep.Brokers) != 1 || !rep.Brokers[0].Final || rep.Brokers[0].RequestsIncluded || rep.Totals.Monthly.S3Requests != 0 ||
		rep.topic(t, "hot").LocalBytes == 0 || len(rep.Notes) == 0 {
		t.Errorf("after a clean stop: %+v %+v notes %v", rep.Brokers, rep.Totals, rep.Notes)
	}
}

func TestCostMatchesBucketFS(t *testing.T) {
	root := t.TempDir()
	dataDir, storeDir := filepath.Join(root, "data"), filepath.Join(root, "objects")
	costScenario(t, []string{"--data-dir", dataDir, "--object-store", "file://" + storeDir},
		[]string{"--object-store", "file://" + storeDir}, dirBucket{root: storeDir}, dataDir)
}

func TestCostMatchesBucketMinIO(t *testing.T) {
	srv := testenv.MinIO(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	const prefix = "cost/c1"
	args := tieredBrokerArgs(t, srv, srv.Endpoint, dataDir, prefix)
	costScenario(t, args, []string{"--object-store", "s3://" + srv.Bucket + "/" + prefix, "--s3-endpoint", srv.Endpoint, "--s3-region", srv.Region},
		minioBucket{srv: srv, prefix: prefix + "/"}, dataDir)
}

// TestCostReportArithmetic checks the report on made-up inputs: replicas
// summed, the leader's figures used, requests extrapolated per broker,
// stale and stopped brokers left out of requests, prices applied.
func TestCostReportArithmetic(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	var md costMetadataFixture
	in := md.build(t)
	mkDoc := func(node int32, age time.Duration, final bool, local map[int32]int64, puts int64) *broker.Accounting {
		d := &broker.Accounting{Version: broker.AccountingVersion, NodeID: node, WrittenAt: now.Add(-age), IntervalMs: 60000, Final: final,
			Topics: map[string]*broker.TopicAccounting{"orders": {TopicID: md.id}}}
		for p, n := range local {
			d.Topics["orders"].Partitions = append(d.Topics["orders"].Partitions, broker.PartitionAccounting{
				Partition: p, LocalBytes: n, LocalOnlyBytes: n / 4, LocalLogStartOffset: 100, LogEndOffset: 200 + int64(node),
				LocalOldestTimestampMs: now.Add(-time.Hour).UnixMilli() + int64(node)})
			d.Topics["orders"].LocalBytes += n
		}
		d.Requests.IntervalEnd = d.WrittenAt
		d.Requests.IntervalStart = d.WrittenAt.Add(-time.Minute)
		d.Requests.Interval.Requests = map[string]int64{"put": puts, "get_range": 2 * puts, "delete": 7}
		d.Requests.IntervalByGroup = map[string]map[string]int64{
			topicGroup("orders", md.id): {"put": puts - 1, "get_range": 2 * puts, "delete": 7},
			"cluster/lease":             {"put": 1},
		}
		return d
	}
	in.docs = []*broker.Accounting{
		mkDoc(1, 10*time.Second, false, map[int32]int64{0: 4 << 30, 1: 4 << 30}, 6),
		mkDoc(2, 20*time.Second, false, map[int32]int64{0: 4 << 30, 1: 4 << 30}, 3),
		mkDoc(3, time.Hour, false, map[int32]int64{0: 4 << 30}, 1000), // stale: an hour old
	}
	prices := costPrices{S3StoragePerGBMonth: 0.023, S3PutPer1000: 0.005, S3GetPer1000: 0.0004, EBSPerGBMonth: 0.08,
		KafkaReplication: 3, HoursPerMonth: 730, BytesPerGB: 1 << 30}
	rep := buildCostReport(in, prices, now)
	o := rep.topic(t, "orders")
	if o.LocalBytes != 20<<30 || o.ReplicationFactor != 3 || o.Partitions != 2 {
		t.Errorf("local %d, rf %d", o.LocalBytes, o.ReplicationFactor)
	}
	if o.RemoteBytes != 100<<30 || o.RemoteSegments != 2 {
		t.Errorf("remote %d in %d segments", o.RemoteBytes, o.RemoteSegments)
	}
	// Leader of partition 0 is broker 2, of partition 1 broker 1.
	p0, p1 := o.PartitionDetail[0], o.PartitionDetail[1]
	if p0.LogEndOffset != 202 || p1.LogEndOffset != 201 || p0.LocalOnlyBytes != 1<<30 || len(p1.MissingReplicas) != 1 {
		t.Errorf("partition detail %+v %+v", p0, p1)
	}
	if o.LogBytes != 100<<30+2<<30 {
		t.Errorf("log bytes %d", o.LogBytes)
	}
	// Per month: 730 h / 1 min = 43800 intervals. Broker 3 is stale.
	const k = 730 * 60
	wantPut := float64(6+3) * k
	for _, row := range rep.Requests {
		switch row.Operation {
		case "put":
			if row.LastInterval != 9 || math.Abs(row.PerMonth-wantPut) > 1e-6 {
				t.Errorf("put row %+v", row)
			}
		case "delete":
			if row.Monthly != 0 || row.LastInterval != 14 {
				t.Errorf("delete row %+v", row)
			}
		}
	}
	wantReq := wantPut/1000*0.005 + 2*wantPut/1000*0.0004
	if math.Abs(rep.Totals.Monthly.S3Requests-wantReq) > 1e-9 {
		t.Errorf("requests cost %g, want %g", rep.Totals.Monthly.S3Requests, wantReq)
	}
	if want := 100 * 0.023; math.Abs(rep.Totals.Monthly.S3Storage-want) > 1e-9 {
		t.Errorf("storage cost %g, want %g", rep.Totals.Monthly.S3Storage, want)
	}
	if want := 102 * 3 * 0.08; math.Abs(rep.Totals.Monthly.KafkaEBS-want) > 1e-9 {
		t.Errorf("kafka cost %g, want %g", rep.Totals.Monthly.KafkaEBS, want)
	}
	if rep.Totals.SavingsRatio == nil || math.Abs(*rep.Totals.SavingsRatio-rep.Totals.Monthly.KafkaEBS/rep.Totals.Monthly.Tiercel) > 1e-9 {
		t.Errorf("savings %+v", rep.Totals)
	}
	if math.Abs(rep.Other.RequestsPerMonth["put"]-2*k) > 1e-6 {
		t.Errorf("cluster requests %+v", rep.Other.RequestsPerMonth)
	}
	if !rep.Brokers[2].Stale || rep.Brokers[2].RequestsIncluded || !strings.Contains(strings.Join(rep.Notes, "\n"), "broker 3") {
		t.Errorf("stale broker: %+v notes %v", rep.Brokers[2], rep.Notes)
	}
	var sb strings.Builder
	if err := rep.writeText(&sb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"orders", "20.0 GiB", "100.0 GiB", "Classic Kafka on EBS would cost", "Assumptions", "broker 3"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, sb.String())
		}
	}
}

// costMetadataFixture is a three-replica topic "orders" with two
// partitions: partition 0 on brokers 1, 2, 3 led by 2; partition 1 on
// 1, 2, 4 led by 1 (broker 4 never reports). Each has 50 GiB remote.
type costMetadataFixture struct{ id string }

func (f *costMetadataFixture) build(t *testing.T) *costInputs {
	t.Helper()
	id := controller.NewTopicID()
	f.id = id.String()
	md := &controller.Metadata{Version: 9, ClusterID: "c", Topics: map[string]*controller.Topic{
		"orders": {Name: "orders", ID: id, Partitions: []controller.Partition{
			{Replicas: []int32{1, 2, 3}, Leader: 2, ISR: []int32{1, 2, 3}},
			{Replicas: []int32{1, 2, 4}, Leader: 1, ISR: []int32{1, 2}},
		}},
	}}
	in := &costInputs{md: md, manifests: map[tiering.PartitionID]*tiering.Manifest{}}
	for p := int32(0); p < 2; p++ {
		in.manifests[tiering.PartitionID{Topic: "orders", TopicID: f.id, Partition: p}] = &tiering.Manifest{
			Segments: []tiering.Segment{{BaseOffset: 0, NextOffset: 150, Size: 50 << 30, MinTimestamp: 1, Key: "k"}},
		}
	}
	return in
}
