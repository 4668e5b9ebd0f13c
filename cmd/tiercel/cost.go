package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/tiercel/tiercel/broker"
	"github.com/tiercel/tiercel/broker/controller"
	"github.com/tiercel/tiercel/tiering"
	"github.com/tiercel/tiercel/tiering/objstore"
)

const costUsage = `Usage: tiercel cost [store flags] [price flags] [--list] [--json]

Reports, per topic across the cluster, what the data costs to keep:

  - local bytes, summed over every replica from each broker's accounting
    document (cluster/accounting/<node>.json, written every minute and at
    clean shutdown), and the oldest local offset and timestamp;
  - remote bytes, from the partitions' manifests (not from the brokers), and
    the oldest remote offset and timestamp;
  - S3 requests by type over each broker's last accounting interval, summed
    over the brokers and extrapolated to a month (730 hours);
  - the estimated monthly cost of S3 storage and requests at the prices set
    below (default: S3 Standard list prices in us-east-1);
  - for comparison, the same retained data kept by classic Kafka on EBS
    volumes, replicated --kafka-replication times.

Local NVMe is instance storage, paid for with the instance: its bytes are
shown but not priced. Every assumption is printed at the end of the report.

Store flags are those of "tiercel serve":
  --object-store URL   file:///abs/dir or s3://bucket/prefix
                       (default file://<data-dir>/objects)
  --data-dir DIR       the broker's data directory, for the default store
  --s3-endpoint URL    custom S3 endpoint, e.g. MinIO (path-style)
  --s3-region REGION   S3 region
S3 credentials come from the standard AWS chain (environment, profile, IMDS).
`

// Defaults: S3 Standard list prices, us-east-1, first 50 TB tier; EBS gp3.
const (
	defaultPriceStorage = 0.023
	defaultPricePut     = 0.005
	defaultPriceGet     = 0.0004
	defaultPriceDelete  = 0
	defaultPriceEBS     = 0.08
	hoursPerMonth       = 730
	bytesPerGB          = 1 << 30
)

// costPrices are the prices a report used.
type costPrices struct {
	// S3StoragePerGBMonth is dollars per GB-month (1 GB = 2^30 bytes).
	S3StoragePerGBMonth float64 `json:"s3StoragePerGBMonth"`
	// S3PutPer1000 prices PUT, COPY, POST and LIST requests.
	S3PutPer1000 float64 `json:"s3PutCopyPostListPer1000"`
	// S3GetPer1000 prices GET, SELECT, HEAD and all other requests.
	S3GetPer1000 float64 `json:"s3GetAndOtherPer1000"`
	// S3DeletePer1000 prices DELETE requests (free on S3).
	S3DeletePer1000 float64 `json:"s3DeletePer1000"`
	// EBSPerGBMonth prices the classic Kafka volumes.
	EBSPerGBMonth float64 `json:"ebsPerGBMonth"`
	// KafkaReplication is how many EBS copies classic Kafka keeps.
	KafkaReplication int     `json:"kafkaReplicationFactor"`
	HoursPerMonth    float64 `json:"hoursPerMonth"`
	BytesPerGB       int64   `json:"bytesPerGB"`
}

// costReport is the whole report; --json prints it.
type costReport struct {
	GeneratedAt     time.Time        `json:"generatedAt"`
	ObjectStore     string           `json:"objectStore"`
	ClusterID       string           `json:"clusterId"`
	MetadataVersion int64            `json:"metadataVersion"`
	Prices          costPrices       `json:"prices"`
	Listed          bool             `json:"listed"`
	Brokers         []costBroker     `json:"brokers"`
	Topics          []*costTopic     `json:"topics"`
	Other           costOther        `json:"other"`
	Requests        []costRequestRow `json:"requests"`
	Totals          costTotals       `json:"totals"`
	Notes           []string         `json:"notes"`
	Assumptions     []string         `json:"assumptions"`
}

// costBroker is one broker's accounting document as the report used it.
type costBroker struct {
	NodeID        int32     `json:"nodeId"`
	WrittenAt     time.Time `json:"writtenAt"`
	AgeMs         int64     `json:"ageMs"`
	IntervalStart time.Time `json:"intervalStart"`
	IntervalEnd   time.Time `json:"intervalEnd"`
	IntervalMs    int64     `json:"intervalMs"`
	Final         bool      `json:"final"`
	Stale         bool      `json:"stale"`
	// RequestsIncluded is false for a stopped (final) or stale document:
	// a broker that is not running makes no requests.
	RequestsIncluded bool  `json:"requestsIncluded"`
	LocalBytes       int64 `json:"localBytes"`
	// InCluster is false for a broker that holds no replica any more.
	InCluster bool `json:"inCluster"`
}

// costMoney is dollars per month.
type costMoney struct {
	S3Storage  float64 `json:"s3Storage"`
	S3Requests float64 `json:"s3Requests"`
	// Tiercel is S3Storage plus S3Requests; local NVMe is not priced.
	Tiercel float64 `json:"tiercel"`
	// KafkaEBS is the retained log on EBS, KafkaReplication times.
	KafkaEBS float64 `json:"kafkaEbs"`
}

// costTopic is one topic's row.
type costTopic struct {
	Name              string `json:"name"`
	TopicID           string `json:"topicId"`
	Internal          bool   `json:"internal"`
	Partitions        int    `json:"partitionCount"`
	ReplicationFactor int    `json:"replicationFactor"`
	// LocalBytes is summed over every replica that reported.
	LocalBytes int64 `json:"localBytes"`
	// LocalOldestTimestampMs is the oldest first-batch timestamp of the
	// partitions' local logs (as their leaders report), -1 if none.
	LocalOldestTimestampMs int64 `json:"localOldestTimestampMs"`
	// RemoteBytes is the segment (.log) bytes the manifests name.
	RemoteBytes    int64 `json:"remoteBytes"`
	RemoteSegments int   `json:"remoteSegments"`
	// RemoteOldestTimestampMs is the oldest first-batch timestamp of the
	// manifests' first segments, -1 if none.
	RemoteOldestTimestampMs int64 `json:"remoteOldestTimestampMs"`
	// RemoteObjectBytes is every object under the topic's directory (with
	// --list): segments, their indexes and snapshots, and objects not yet
	// swept.
	RemoteObjectBytes *int64 `json:"remoteObjectBytes,omitempty"`
	// StorageBytes is what S3 storage is priced on: RemoteObjectBytes with
	// --list, else RemoteBytes.
	StorageBytes int64 `json:"storageBytes"`
	// LogBytes is the retained log counted once: remote bytes plus the
	// local bytes not yet offloaded. Classic Kafka keeps this on each
	// replica.
	LogBytes             int64              `json:"logBytes"`
	RequestsLastInterval map[string]int64   `json:"requestsLastInterval"`
	RequestsPerMonth     map[string]float64 `json:"requestsPerMonth"`
	Monthly              costMoney          `json:"monthly"`
	PartitionDetail      []costPartition    `json:"partitions"`
}

// costPartition is one partition's detail.
type costPartition struct {
	Partition int32   `json:"partition"`
	Leader    int32   `json:"leader"`
	Replicas  []int32 `json:"replicas"`
	// LocalBytes is summed over the replicas that reported;
	// MissingReplicas lists those without an accounting document.
	LocalBytes      int64   `json:"localBytes"`
	MissingReplicas []int32 `json:"missingReplicas,omitempty"`
	// The local log as the leader (or, without one, the most advanced
	// replica) reported it; -1 when unknown.
	LocalStartOffset       int64 `json:"localStartOffset"`
	LogEndOffset           int64 `json:"logEndOffset"`
	LocalOldestTimestampMs int64 `json:"localOldestTimestampMs"`
	LocalOnlyBytes         int64 `json:"localOnlyBytes"`
	// The remote log from the manifest; offsets -1 when it is empty.
	RemoteBytes             int64 `json:"remoteBytes"`
	RemoteSegments          int   `json:"remoteSegments"`
	RemoteStartOffset       int64 `json:"remoteStartOffset"`
	RemoteNextOffset        int64 `json:"remoteNextOffset"`
	RemoteOldestTimestampMs int64 `json:"remoteOldestTimestampMs"`
	LogBytes                int64 `json:"logBytes"`
}

// costOther holds what belongs to no live topic: requests on the cluster
// documents and listings of every topic, and (with --list) objects outside
// the live topics' directories.
type costOther struct {
	RequestsLastInterval map[string]int64   `json:"requestsLastInterval"`
	RequestsPerMonth     map[string]float64 `json:"requestsPerMonth"`
	ObjectBytes          int64              `json:"objectBytes"`
	Monthly              costMoney          `json:"monthly"`
}

// costRequestRow is one operation of the requests table.
type costRequestRow struct {
	Operation    string  `json:"operation"`
	S3Requests   string  `json:"s3Requests"`
	PriceClass   string  `json:"priceClass"`
	PricePer1000 float64 `json:"pricePer1000"`
	LastInterval int64   `json:"lastInterval"`
	// PerMonth extrapolates LastInterval; Monthly prices it.
	PerMonth float64 `json:"perMonth"`
	Monthly  float64 `json:"monthly"`
	// PerMonthSinceStart extrapolates the average rate since each broker
	// started instead: steadier, but blind to recent changes.
	PerMonthSinceStart float64 `json:"perMonthSinceStart"`
}

type costTotals struct {
	LocalBytes   int64     `json:"localBytes"`
	RemoteBytes  int64     `json:"remoteBytes"`
	StorageBytes int64     `json:"storageBytes"`
	LogBytes     int64     `json:"logBytes"`
	Monthly      costMoney `json:"monthly"`
	// SavingsRatio is KafkaEBS / Tiercel; null when Tiercel costs nothing.
	SavingsRatio   *float64 `json:"savingsRatio"`
	SavingsMonthly float64  `json:"savingsMonthly"`
	// SavingsPercent is the saving as a share of KafkaEBS; null when
	// KafkaEBS is zero.
	SavingsPercent *float64 `json:"savingsPercent"`
}

// costOps describes each operation: its S3 requests and price class.
var costOps = []struct {
	op    objstore.Op
	s3    string
	class string
}{
	{objstore.OpPut, "PutObject; multipart: create + parts + complete", "put"},
	{objstore.OpList, "ListObjectsV2, one per 1,000 keys", "put"},
	{objstore.OpGet, "GetObject", "get"},
	{objstore.OpGetRange, "GetObject with a Range", "get"},
	{objstore.OpAttributes, "HeadObject", "get"},
	{objstore.OpDelete, "DeleteObject", "delete"},
}

var priceClassNames = map[string]string{
	"put":    "PUT, COPY, POST, LIST",
	"get":    "GET, SELECT and all other",
	"delete": "DELETE",
}

func (p *costPrices) per1000(class string) float64 {
	switch class {
	case "put":
		return p.S3PutPer1000
	case "get":
		return p.S3GetPer1000
	}
	return p.S3DeletePer1000
}

func (p *costPrices) requestCost(perMonth map[string]float64) float64 {
	var usd float64
	for _, o := range costOps {
		usd += perMonth[string(o.op)] / 1000 * p.per1000(o.class)
	}
	return usd
}

func gb(n int64) float64 { return float64(n) / bytesPerGB }

type costFlags struct {
	store   storeFlags
	prices  costPrices
	list    bool
	json    bool
	timeout time.Duration
}

func parseCostFlags(args []string, stderr io.Writer) (*costFlags, error) {
	f := &costFlags{prices: costPrices{HoursPerMonth: hoursPerMonth, BytesPerGB: bytesPerGB}}
	fs := newSubFlags("cost", costUsage, stderr)
	f.store.register(fs)
	p := &f.prices
	fs.Float64Var(&p.S3StoragePerGBMonth, "price-storage", defaultPriceStorage, "S3 storage, `$` per GB-month (S3 Standard, us-east-1, first 50 TB)")
	fs.Float64Var(&p.S3PutPer1000, "price-put", defaultPricePut, "S3 PUT, COPY, POST and LIST requests, `$` per 1,000")
	fs.Float64Var(&p.S3GetPer1000, "price-get", defaultPriceGet, "S3 GET, SELECT, HEAD and all other requests, `$` per 1,000")
	fs.Float64Var(&p.S3DeletePer1000, "price-delete", defaultPriceDelete, "S3 DELETE requests, `$` per 1,000 (free on S3)")
	fs.Float64Var(&p.EBSPerGBMonth, "price-ebs", defaultPriceEBS, "classic Kafka's EBS volumes, `$` per GB-month (gp3, us-east-1)")
	fs.IntVar(&p.KafkaReplication, "kafka-replication", 3, "replicas classic Kafka keeps of every byte, each on its own EBS volume")
	fs.BoolVar(&f.list, "list", false, "also list every object in the store and price all of them (segment indexes, snapshots, objects not yet swept); costs one LIST per 1,000 objects")
	fs.BoolVar(&f.json, "json", false, "print the report as JSON")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Minute, "give up reading the store after this long")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) > 0 {
		return nil, usageErrorf("unexpected argument %q", pos[0])
	}
	for _, c := range []struct {
		name string
		v    float64
	}{{"price-storage", p.S3StoragePerGBMonth}, {"price-put", p.S3PutPer1000}, {"price-get", p.S3GetPer1000},
		{"price-delete", p.S3DeletePer1000}, {"price-ebs", p.EBSPerGBMonth}} {
		if c.v < 0 || math.IsNaN(c.v) || math.IsInf(c.v, 0) {
			return nil, usageErrorf("--%s: %v is not a price (want a number >= 0)", c.name, c.v)
		}
	}
	if p.KafkaReplication < 1 {
		return nil, usageErrorf("--kafka-replication: %d; want at least 1", p.KafkaReplication)
	}
	if f.timeout <= 0 {
		return nil, usageErrorf("--timeout: must be positive")
	}
	return f, nil
}

func cost(args []string, stdout, stderr io.Writer) error {
	f, err := parseCostFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	st, url, err := f.store.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	in, err := readCostInputs(ctx, st, f.list)
	if err != nil {
		return err
	}
	rep := buildCostReport(in, f.prices, time.Now())
	rep.ObjectStore = url
	if f.json {
		return writeJSON(stdout, rep)
	}
	return rep.writeText(stdout)
}

// costInputs is everything a report is computed from.
type costInputs struct {
	md        *controller.Metadata
	manifests map[tiering.PartitionID]*tiering.Manifest // nil: none in the store
	docs      []*broker.Accounting
	notes     []string
	// listed is the bytes of every object by topic directory
	// ("topics/<topic>-<topicId>", or "" for the rest), with --list.
	listed map[string]int64
}

func readCostInputs(ctx context.Context, st objstore.ObjectStore, list bool) (*costInputs, error) {
	md, _, _, err := readMetadata(ctx, st)
	if err != nil {
		return nil, err
	}
	in := &costInputs{md: md, manifests: map[tiering.PartitionID]*tiering.Manifest{}}

	// Manifests, a few at a time.
	var ids []tiering.PartitionID
	for _, name := range md.TopicNames() {
		t := md.Topics[name]
		for i := range t.Partitions {
			ids = append(ids, tiering.PartitionID{Topic: name, TopicID: t.ID.String(), Partition: int32(i)})
		}
	}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
		sem  = make(chan struct{}, 16)
	)
	for _, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func(id tiering.PartitionID) {
			defer wg.Done()
			defer func() { <-sem }()
			body, _, err := readObject(ctx, st, id.ManifestKey())
			var m *tiering.Manifest
			if err == nil {
				m = &tiering.Manifest{}
				if jerr := json.Unmarshal(body, m); jerr != nil {
					err = fmt.Errorf("decode %s: %w", id.ManifestKey(), jerr)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case objstore.IsNotFound(err):
			case err != nil:
				errs = append(errs, err)
			default:
				in.manifests[id] = m
			}
		}(id)
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, fmt.Errorf("reading manifests: %w (and %d more)", errs[0], len(errs)-1)
	}

	// Accounting documents.
	var keys []string
	if err := st.List(ctx, broker.AccountingPrefix, func(o objstore.ObjectInfo) error {
		if strings.HasSuffix(o.Key, ".json") {
			keys = append(keys, o.Key)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("listing %s: %w", broker.AccountingPrefix, err)
	}
	for _, k := range keys {
		body, _, err := readObject(ctx, st, k)
		if objstore.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var d broker.Accounting
		if err := json.Unmarshal(body, &d); err != nil {
			in.notes = append(in.notes, fmt.Sprintf("%s cannot be decoded and was skipped: %v", k, err))
			continue
		}
		if d.Version != broker.AccountingVersion {
			in.notes = append(in.notes, fmt.Sprintf("%s has format version %d, this tool reads %d; skipped", k, d.Version, broker.AccountingVersion))
			continue
		}
		in.docs = append(in.docs, &d)
	}
	sort.Slice(in.docs, func(i, j int) bool { return in.docs[i].NodeID < in.docs[j].NodeID })

	if list {
		in.listed = map[string]int64{}
		if err := st.List(ctx, "", func(o objstore.ObjectInfo) error {
			g := ""
			if strings.HasPrefix(o.Key, "topics/") {
				g = objstore.KeyGroup(o.Key)
			}
			in.listed[g] += o.Size
			return nil
		}); err != nil {
			return nil, fmt.Errorf("listing the store: %w", err)
		}
	}
	return in, nil
}

// topicGroup is the key group of a topic's objects.
func topicGroup(name, id string) string {
	return strings.TrimSuffix(tiering.TopicPrefix(name, id), "/")
}

func buildCostReport(in *costInputs, prices costPrices, now time.Time) *costReport {
	rep := &costReport{
		GeneratedAt:     now.UTC(),
		ClusterID:       in.md.ClusterID,
		MetadataVersion: in.md.Version,
		Prices:          prices,
		Listed:          in.listed != nil,
		Topics:          []*costTopic{},
		Brokers:         []costBroker{},
		Notes:           append([]string{}, in.notes...),
	}
	month := time.Duration(prices.HoursPerMonth * float64(time.Hour))

	// Brokers, and the scale that extrapolates each one's interval.
	replicaOf := map[int32]bool{}
	for _, t := range in.md.Topics {
		for _, p := range t.Partitions {
			for _, r := range p.Replicas {
				replicaOf[r] = true
			}
		}
	}
	docByNode := map[int32]*broker.Accounting{}
	scale := map[int32]float64{}
	for _, d := range in.docs {
		docByNode[d.NodeID] = d
		iv := d.Requests.IntervalEnd.Sub(d.Requests.IntervalStart)
		cb := costBroker{NodeID: d.NodeID, WrittenAt: d.WrittenAt, AgeMs: now.Sub(d.WrittenAt).Milliseconds(),
			IntervalStart: d.Requests.IntervalStart, IntervalEnd: d.Requests.IntervalEnd, IntervalMs: d.IntervalMs,
			Final: d.Final, InCluster: replicaOf[d.NodeID]}
		cb.Stale = !d.Final && now.Sub(d.WrittenAt) > 3*time.Duration(d.IntervalMs)*time.Millisecond+10*time.Second
		cb.RequestsIncluded = !cb.Final && !cb.Stale && iv > 0
		for _, t := range d.Topics {
			cb.LocalBytes += t.LocalBytes
		}
		if cb.RequestsIncluded {
			scale[d.NodeID] = float64(month) / float64(iv)
		}
		switch {
		case cb.Final:
			rep.Notes = append(rep.Notes, fmt.Sprintf("broker %d stopped at %s (its last document was written at shutdown): its requests are not extrapolated; its local bytes are counted",
				d.NodeID, d.WrittenAt.UTC().Format(time.RFC3339)))
		case cb.Stale:
			rep.Notes = append(rep.Notes, fmt.Sprintf("broker %d last wrote its accounting %s ago (interval %s): it may be down; its requests are not extrapolated; its local bytes are counted",
				d.NodeID, roundAge(now.Sub(d.WrittenAt)), time.Duration(d.IntervalMs)*time.Millisecond))
		}
		rep.Brokers = append(rep.Brokers, cb)
	}
	if len(in.docs) == 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("no accounting documents under %s: local bytes and requests are unknown (brokers write them every minute)", broker.AccountingPrefix))
	}

	// Requests by operation, in total and by key group.
	totalInterval := map[string]int64{}
	totalMonth := map[string]float64{}
	sinceStart := map[string]float64{}
	groupInterval := map[string]map[string]int64{}
	groupMonth := map[string]map[string]float64{}
	for _, d := range in.docs {
		s, ok := scale[d.NodeID]
		if !ok {
			continue
		}
		for op, n := range d.Requests.Interval.Requests {
			totalInterval[op] += n
			totalMonth[op] += float64(n) * s
		}
		if up := d.WrittenAt.Sub(d.StartedAt); up > 0 {
			for op, n := range d.Requests.Cumulative.Requests {
				sinceStart[op] += float64(n) * float64(month) / float64(up)
			}
		}
		for g, ops := range d.Requests.IntervalByGroup {
			if groupInterval[g] == nil {
				groupInterval[g], groupMonth[g] = map[string]int64{}, map[string]float64{}
			}
			for op, n := range ops {
				groupInterval[g][op] += n
				groupMonth[g][op] += float64(n) * s
			}
		}
	}
	for _, o := range costOps {
		op := string(o.op)
		row := costRequestRow{Operation: op, S3Requests: o.s3, PriceClass: priceClassNames[o.class],
			PricePer1000: prices.per1000(o.class), LastInterval: totalInterval[op], PerMonth: totalMonth[op],
			PerMonthSinceStart: sinceStart[op]}
		row.Monthly = row.PerMonth / 1000 * row.PricePer1000
		rep.Requests = append(rep.Requests, row)
	}

	// Topics.
	attributed := map[string]bool{}
	for _, name := range in.md.TopicNames() {
		t := in.md.Topics[name]
		id := t.ID.String()
		g := topicGroup(name, id)
		attributed[g] = true
		ct := &costTopic{Name: name, TopicID: id, Internal: t.Internal, Partitions: len(t.Partitions),
			LocalOldestTimestampMs: -1, RemoteOldestTimestampMs: -1,
			RequestsLastInterval: zeroOps(groupInterval[g]), RequestsPerMonth: zeroOpsF(groupMonth[g]),
			PartitionDetail: []costPartition{}}
		for i, pa := range t.Partitions {
			ct.ReplicationFactor = max(ct.ReplicationFactor, len(pa.Replicas))
			cp := costPartitionOf(in, t, int32(i), pa, docByNode)
			ct.LocalBytes += cp.LocalBytes
			ct.RemoteBytes += cp.RemoteBytes
			ct.RemoteSegments += cp.RemoteSegments
			ct.LogBytes += cp.LogBytes
			ct.LocalOldestTimestampMs = minTS(ct.LocalOldestTimestampMs, cp.LocalOldestTimestampMs)
			ct.RemoteOldestTimestampMs = minTS(ct.RemoteOldestTimestampMs, cp.RemoteOldestTimestampMs)
			if len(cp.MissingReplicas) > 0 && len(in.docs) > 0 {
				rep.Notes = append(rep.Notes, fmt.Sprintf("%s-%d: no accounting from replica(s) %s; their local bytes are missing", name, i, ids(cp.MissingReplicas)))
			}
			ct.PartitionDetail = append(ct.PartitionDetail, cp)
		}
		ct.StorageBytes = ct.RemoteBytes
		if in.listed != nil {
			n := in.listed[g]
			ct.RemoteObjectBytes = &n
			ct.StorageBytes = n
		}
		ct.Monthly.S3Storage = gb(ct.StorageBytes) * prices.S3StoragePerGBMonth
		ct.Monthly.S3Requests = prices.requestCost(ct.RequestsPerMonth)
		ct.Monthly.Tiercel = ct.Monthly.S3Storage + ct.Monthly.S3Requests
		ct.Monthly.KafkaEBS = gb(ct.LogBytes) * float64(prices.KafkaReplication) * prices.EBSPerGBMonth
		rep.Topics = append(rep.Topics, ct)
	}

	// Everything else: cluster documents, listings, deleted topics.
	o := &rep.Other
	o.RequestsLastInterval, o.RequestsPerMonth = zeroOps(nil), zeroOpsF(nil)
	for g := range groupInterval {
		if attributed[g] {
			continue
		}
		for op, n := range groupInterval[g] {
			o.RequestsLastInterval[op] += n
			o.RequestsPerMonth[op] += groupMonth[g][op]
		}
	}
	for g, n := range in.listed {
		if !attributed[g] {
			o.ObjectBytes += n
		}
	}
	o.Monthly.S3Storage = gb(o.ObjectBytes) * prices.S3StoragePerGBMonth
	o.Monthly.S3Requests = prices.requestCost(o.RequestsPerMonth)
	o.Monthly.Tiercel = o.Monthly.S3Storage + o.Monthly.S3Requests

	// Totals.
	tot := &rep.Totals
	for _, t := range rep.Topics {
		tot.LocalBytes += t.LocalBytes
		tot.RemoteBytes += t.RemoteBytes
		tot.StorageBytes += t.StorageBytes
		tot.LogBytes += t.LogBytes
		tot.Monthly.S3Storage += t.Monthly.S3Storage
		tot.Monthly.KafkaEBS += t.Monthly.KafkaEBS
	}
	tot.StorageBytes += o.ObjectBytes
	tot.Monthly.S3Storage += o.Monthly.S3Storage
	for _, r := range rep.Requests {
		tot.Monthly.S3Requests += r.Monthly
	}
	tot.Monthly.Tiercel = tot.Monthly.S3Storage + tot.Monthly.S3Requests
	tot.SavingsMonthly = tot.Monthly.KafkaEBS - tot.Monthly.Tiercel
	if tot.Monthly.Tiercel > 0 {
		r := tot.Monthly.KafkaEBS / tot.Monthly.Tiercel
		tot.SavingsRatio = &r
	}
	if tot.Monthly.KafkaEBS > 0 {
		p := 100 * tot.SavingsMonthly / tot.Monthly.KafkaEBS
		tot.SavingsPercent = &p
	}
	rep.Assumptions = costAssumptions(prices, rep.Listed)
	return rep
}

// costPartitionOf combines a partition's accounting and manifest.
func costPartitionOf(in *costInputs, t *controller.Topic, index int32, pa controller.Partition, docs map[int32]*broker.Accounting) costPartition {
	cp := costPartition{Partition: index, Leader: pa.Leader, Replicas: pa.Replicas, LocalStartOffset: -1, LogEndOffset: -1,
		LocalOldestTimestampMs: -1, RemoteStartOffset: -1, RemoteNextOffset: -1, RemoteOldestTimestampMs: -1}
	var best *broker.PartitionAccounting
	bestIsLeader := false
	for _, r := range pa.Replicas {
		rp := replicaAccounting(docs[r], t.Name, t.ID.String(), index)
		if rp == nil {
			cp.MissingReplicas = append(cp.MissingReplicas, r)
			continue
		}
		cp.LocalBytes += rp.LocalBytes
		switch {
		case r == pa.Leader:
			best, bestIsLeader = rp, true
		case !bestIsLeader && (best == nil || rp.LogEndOffset > best.LogEndOffset):
			best = rp
		}
	}
	if best != nil {
		cp.LocalStartOffset, cp.LogEndOffset = best.LocalLogStartOffset, best.LogEndOffset
		cp.LocalOldestTimestampMs, cp.LocalOnlyBytes = best.LocalOldestTimestampMs, best.LocalOnlyBytes
	}
	if m := in.manifests[tiering.PartitionID{Topic: t.Name, TopicID: t.ID.String(), Partition: index}]; m != nil && !m.Empty() {
		cp.RemoteBytes, cp.RemoteSegments = m.Size(), len(m.Segments)
		cp.RemoteStartOffset, cp.RemoteNextOffset = m.StartOffset(), m.NextOffset()
		cp.RemoteOldestTimestampMs = m.Segments[0].MinTimestamp
	}
	cp.LogBytes = cp.RemoteBytes + cp.LocalOnlyBytes
	return cp
}

func replicaAccounting(d *broker.Accounting, topic, id string, index int32) *broker.PartitionAccounting {
	if d == nil {
		return nil
	}
	ta := d.Topics[topic]
	if ta == nil || ta.TopicID != id {
		return nil
	}
	for i := range ta.Partitions {
		if ta.Partitions[i].Partition == index {
			return &ta.Partitions[i]
		}
	}
	return nil
}

func minTS(a, b int64) int64 {
	switch {
	case a < 0:
		return b
	case b < 0:
		return a
	}
	return min(a, b)
}

func zeroOps(m map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for _, op := range objstore.Ops() {
		out[string(op)] = m[string(op)]
	}
	return out
}

func zeroOpsF(m map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for _, op := range objstore.Ops() {
		out[string(op)] = m[string(op)]
	}
	return out
}

func costAssumptions(p costPrices, listed bool) []string {
	remote := "Remote bytes are the segment (.log) bytes the partitions' manifests name. Each segment's offset index, time index, epoch and producer-snapshot objects, and objects awaiting the sweeper, add to what S3 stores but are not counted; run with --list to price every object."
	if listed {
		remote = "Remote bytes are the segment (.log) bytes the manifests name; S3 storage is priced on every object listed in the store (segments with their indexes and snapshots, cluster documents, and objects awaiting the sweeper)."
	}
	return []string{
		fmt.Sprintf("Prices: S3 storage $%g per GB-month (S3 Standard, us-east-1, first 50 TB), PUT/COPY/POST/LIST $%g and GET/HEAD/other $%g per 1,000 requests, DELETE $%g per 1,000; classic Kafka's EBS $%g per GB-month (gp3 baseline, no extra IOPS or throughput). Set them with --price-*.",
			p.S3StoragePerGBMonth, p.S3PutPer1000, p.S3GetPer1000, p.S3DeletePer1000, p.EBSPerGBMonth),
		fmt.Sprintf("1 GB = 2^30 bytes, as AWS bills storage; a month is %g hours. Storage is priced on the bytes held now, as if held all month.", p.HoursPerMonth),
		remote,
		"S3 requests are each running broker's last accounting interval, extrapolated as if that rate held all month: a burst (a backlog being offloaded, a restart) inflates the estimate and a quiet spell deflates it; the average since each broker started is shown beside it. They are counted where the broker calls its object store, as S3 requests: a multipart upload is its create, parts and complete; a listing is one request per 1,000 keys. Retries inside the S3 client, and this report's own requests, are not counted. Tiered reads served from the broker's chunk cache make no request.",
		"Local bytes are summed over every replica from each broker's last accounting document. They sit on the brokers' local NVMe, which is instance storage paid for with the instance, so they are not priced.",
		fmt.Sprintf("Classic Kafka keeps the same retained log (remote bytes plus local bytes not yet offloaded, as each partition's leader reports) on EBS, %d times over, with no free-space headroom; real deployments provision more.", p.KafkaReplication),
		"Not included for either deployment: instances, network transfer (including cross-AZ replication), KMS, and S3 lifecycle or monitoring charges.",
	}
}

// ---- text ----

func fmtUSD(v float64) string {
	switch {
	case v == 0:
		return "$0"
	case math.Abs(v) < 0.0001:
		return "<$0.0001"
	case math.Abs(v) < 0.01:
		return fmt.Sprintf("$%.4f", v)
	}
	return fmt.Sprintf("$%s", groupThousands(fmt.Sprintf("%.2f", v)))
}

// fmtPrice renders a unit price with all its digits.
func fmtPrice(v float64) string { return "$" + strconv.FormatFloat(v, 'f', -1, 64) }

func fmtCount(v float64) string {
	return groupThousands(fmt.Sprintf("%.0f", v))
}

// groupThousands puts commas in the integer part of a formatted number.
func groupThousands(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	intPart, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	out := b.String()
	if hasFrac {
		out += "." + frac
	}
	if neg {
		out = "-" + out
	}
	return out
}

func fmtDate(ms int64) string {
	if ms < 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04Z")
}

func fmtOffset(o int64) string {
	if o < 0 {
		return "-"
	}
	return fmt.Sprint(o)
}

func (rep *costReport) writeText(w io.Writer) error {
	p := rep.Prices
	fmt.Fprintf(w, "Tiercel cost report for %s, %s\n", rep.ObjectStore, rep.GeneratedAt.Format("2006-01-02 15:04:05 UTC"))
	running := 0
	for _, b := range rep.Brokers {
		if b.RequestsIncluded {
			running++
		}
	}
	fmt.Fprintf(w, "Cluster %s, metadata version %d; accounting from %d broker(s), %d running\n\n",
		rep.ClusterID, rep.MetadataVersion, len(rep.Brokers), running)

	fmt.Fprintln(w, "Storage and monthly cost by topic")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTS\tRF\tLOCAL (ALL REPLICAS)\tOLDEST LOCAL\tREMOTE\tSEGMENTS\tOLDEST REMOTE\tS3 REQ/MONTH\tTIERCEL $/MONTH\tKAFKA EBS $/MONTH\t")
	for _, t := range rep.Topics {
		var reqs float64
		for _, v := range t.RequestsPerMonth {
			reqs += v
		}
		name := t.Name
		if t.Internal {
			name += " (internal)"
		}
		remote := humanBytes(t.RemoteBytes)
		if t.RemoteObjectBytes != nil {
			remote += " (" + humanBytes(*t.RemoteObjectBytes) + " listed)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t\n", name, t.Partitions, t.ReplicationFactor,
			humanBytes(t.LocalBytes), fmtDate(t.LocalOldestTimestampMs), remote, t.RemoteSegments,
			fmtDate(t.RemoteOldestTimestampMs), fmtCount(reqs), fmtUSD(t.Monthly.Tiercel), fmtUSD(t.Monthly.KafkaEBS))
	}
	var otherReqs float64
	for _, v := range rep.Other.RequestsPerMonth {
		otherReqs += v
	}
	other := "-"
	if rep.Listed {
		other = humanBytes(rep.Other.ObjectBytes) + " listed"
	}
	fmt.Fprintf(tw, "(other: cluster documents, listings)\t\t\t\t\t%s\t\t\t%s\t%s\t\t\n", other, fmtCount(otherReqs), fmtUSD(rep.Other.Monthly.Tiercel))
	var totReqs float64
	for _, r := range rep.Requests {
		totReqs += r.PerMonth
	}
	tot := rep.Totals
	fmt.Fprintf(tw, "TOTAL\t\t\t%s\t\t%s\t\t\t%s\t%s\t%s\t\n", humanBytes(tot.LocalBytes), humanBytes(tot.RemoteBytes),
		fmtCount(totReqs), fmtUSD(tot.Monthly.Tiercel), fmtUSD(tot.Monthly.KafkaEBS))
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nOffsets by partition (partitions holding data; local figures from the leader's accounting)")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tLEADER\tLOCAL START\tLOCAL END\tOLDEST LOCAL\tLOCAL (ALL REPLICAS)\tREMOTE START\tREMOTE NEXT\tOLDEST REMOTE\tREMOTE\t")
	rows := 0
	for _, t := range rep.Topics {
		for _, cp := range t.PartitionDetail {
			if cp.LocalBytes == 0 && cp.RemoteBytes == 0 {
				continue
			}
			rows++
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", t.Name, cp.Partition, cp.Leader,
				fmtOffset(cp.LocalStartOffset), fmtOffset(cp.LogEndOffset), fmtDate(cp.LocalOldestTimestampMs), humanBytes(cp.LocalBytes),
				fmtOffset(cp.RemoteStartOffset), fmtOffset(cp.RemoteNextOffset), fmtDate(cp.RemoteOldestTimestampMs), humanBytes(cp.RemoteBytes))
		}
	}
	if rows == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nS3 requests (last accounting interval of each running broker, summed; per month extrapolated)")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "OPERATION\tS3 REQUESTS\tLAST INTERVAL\tPER MONTH\tPRICE PER 1,000\t$/MONTH\tPER MONTH AT THE AVERAGE SINCE START\t")
	var totInterval int64
	var totSince float64
	for _, r := range rep.Requests {
		totInterval += r.LastInterval
		totSince += r.PerMonthSinceStart
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Operation, r.S3Requests, fmtCount(float64(r.LastInterval)),
			fmtCount(r.PerMonth), fmtPrice(r.PricePer1000), fmtUSD(r.Monthly), fmtCount(r.PerMonthSinceStart))
	}
	fmt.Fprintf(tw, "TOTAL\t\t%s\t%s\t\t%s\t%s\t\n", fmtCount(float64(totInterval)), fmtCount(totReqs), fmtUSD(tot.Monthly.S3Requests), fmtCount(totSince))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rep.Brokers) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "BROKER\tWRITTEN\tINTERVAL\tSTATE\tLOCAL BYTES")
		for _, b := range rep.Brokers {
			state := "running"
			switch {
			case b.Final:
				state = "stopped"
			case b.Stale:
				state = "stale"
			}
			if !b.InCluster {
				state += ", holds no replica"
			}
			fmt.Fprintf(tw, "%d\t%s ago\t%s\t%s\t%s\n", b.NodeID, roundAge(time.Duration(b.AgeMs)*time.Millisecond),
				roundAge(b.IntervalEnd.Sub(b.IntervalStart)), state, humanBytes(b.LocalBytes))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	fmt.Fprintln(w, "\nEstimated monthly cost")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  Tiercel\tS3 storage\t%s x %s/GB\t%s\n", fmtGB(tot.StorageBytes), fmtPrice(p.S3StoragePerGBMonth), fmtUSD(tot.Monthly.S3Storage))
	fmt.Fprintf(tw, "  \tS3 requests\t%s per month\t%s\n", fmtCount(totReqs), fmtUSD(tot.Monthly.S3Requests))
	fmt.Fprintf(tw, "  \tlocal NVMe\t%s over all replicas\tnot priced (instance storage)\n", fmtGB(tot.LocalBytes))
	fmt.Fprintf(tw, "  \ttotal\t\t%s\n", fmtUSD(tot.Monthly.Tiercel))
	fmt.Fprintf(tw, "  Classic Kafka\tEBS\t%s x %d replicas x %s/GB\t%s\n", fmtGB(tot.LogBytes), p.KafkaReplication, fmtPrice(p.EBSPerGBMonth), fmtUSD(tot.Monthly.KafkaEBS))
	if err := tw.Flush(); err != nil {
		return err
	}
	switch {
	case tot.SavingsRatio != nil && tot.SavingsMonthly >= 0:
		fmt.Fprintf(w, "  Classic Kafka on EBS would cost %.1fx as much: Tiercel saves %s per month (%.0f%%).\n",
			*tot.SavingsRatio, fmtUSD(tot.SavingsMonthly), *tot.SavingsPercent)
	case tot.SavingsRatio != nil:
		fmt.Fprintf(w, "  Here Tiercel costs %s per month more than classic Kafka on EBS: at this data size its S3 requests cost more than the storage it saves.\n",
			fmtUSD(-tot.SavingsMonthly))
	default:
		fmt.Fprintln(w, "  Nothing to compare yet: no remote data and no requests.")
	}
	if len(rep.Notes) > 0 {
		fmt.Fprintln(w, "\nNotes")
		for _, n := range rep.Notes {
			fmt.Fprintf(w, "  - %s\n", n)
		}
	}
	fmt.Fprintln(w, "\nAssumptions")
	for _, a := range rep.Assumptions {
		fmt.Fprintf(w, "  - %s\n", a)
	}
	return nil
}

func fmtGB(n int64) string {
	g := gb(n)
	switch {
	case g == 0:
		return "0 GB"
	case g < 0.01:
		return fmt.Sprintf("%.6f GB", g)
	}
	return fmt.Sprintf("%s GB", groupThousands(fmt.Sprintf("%.2f", g)))
}
