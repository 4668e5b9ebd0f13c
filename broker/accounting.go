package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/tiercel/tiercel/tiering/objstore"
)

// Accounting: every broker writes, every interval and once more at clean
// shutdown, a small JSON document through the object store describing what
// it keeps locally and which object-store requests it made. `tiercel cost`
// reads these documents, the cluster metadata and the remote manifests to
// report storage and request costs across the cluster. Remote bytes are
// never taken from these documents: the manifests are the truth for them.

// AccountingPrefix is where the documents live, one per broker.
const AccountingPrefix = "cluster/accounting/"

// AccountingKey is the document of broker node.
func AccountingKey(node int32) string { return fmt.Sprintf("%s%d.json", AccountingPrefix, node) }

// AccountingIntervalEnv names the environment variable that sets the
// accounting interval as a Go duration ("1m", "500ms"); tests shorten it.
// Unset, empty or invalid, the interval is DefaultAccountingInterval (an
// invalid value is logged). Values below MinAccountingInterval are raised
// to it.
const AccountingIntervalEnv = "TIERCEL_ACCOUNTING_INTERVAL"

// DefaultAccountingInterval is how often the document is written.
const DefaultAccountingInterval = time.Minute

// MinAccountingInterval bounds the interval from below.
const MinAccountingInterval = 50 * time.Millisecond

// AccountingVersion is the format version written in every document.
const AccountingVersion = 1

// Accounting is one broker's accounting document.
type Accounting struct {
	// Version is the document format, AccountingVersion.
	Version int `json:"version"`
	// NodeID is the broker that wrote it.
	NodeID int32 `json:"nodeId"`
	// WrittenAt is when it was assembled, by the broker's clock.
	WrittenAt time.Time `json:"writtenAt"`
	// StartedAt is when the broker started counting.
	StartedAt time.Time `json:"startedAt"`
	// IntervalMs is the broker's accounting interval: a document much
	// older than it comes from a broker that stopped writing.
	IntervalMs int64 `json:"intervalMs"`
	// Final marks the document written at clean shutdown: the broker
	// makes no requests until it starts again.
	Final bool `json:"final,omitempty"`
	// Topics are the topics with a replica on this broker, by name.
	Topics map[string]*TopicAccounting `json:"topics"`
	// Requests are the object-store requests this broker made.
	Requests RequestAccounting `json:"requests"`
}

// TopicAccounting is one topic's local storage on the broker.
type TopicAccounting struct {
	// TopicID is Kafka's base64 rendering of the topic id.
	TopicID string `json:"topicId"`
	// LocalBytes is the sum of the partitions' LocalBytes.
	LocalBytes int64 `json:"localBytes"`
	// Partitions are the replicas on this broker, by partition index.
	Partitions []PartitionAccounting `json:"partitions"`
}

// PartitionAccounting is one local replica.
type PartitionAccounting struct {
	Partition int32 `json:"partition"`
	// LocalBytes is the size of every local segment file (.log).
	LocalBytes int64 `json:"localBytes"`
	// LocalOnlyBytes is the part of LocalBytes in segments that end
	// above the remote copy (the offloaded end, as this broker last read
	// the manifest): data held only locally so far. For a partition that
	// does not tier, all of LocalBytes.
	LocalOnlyBytes int64 `json:"localOnlyBytes"`
	// LocalSegments counts the local segments.
	LocalSegments int `json:"localSegments"`
	// LocalLogStartOffset is the first offset readable from local disk.
	LocalLogStartOffset int64 `json:"localLogStartOffset"`
	// LogEndOffset is the local log end offset.
	LogEndOffset int64 `json:"logEndOffset"`
	// HighWatermark is the replica's high watermark.
	HighWatermark int64 `json:"highWatermark"`
	// LocalOldestTimestampMs is the timestamp of the first local segment's
	// first batch (its max timestamp, as Kafka measures segment age), or
	// -1 when the local log is empty.
	LocalOldestTimestampMs int64 `json:"localOldestTimestampMs"`
	// RemoteNextOffset is one past the last offset this broker knows to be
	// offloaded, or -1.
	RemoteNextOffset int64 `json:"remoteNextOffset"`
}

// RequestAccounting counts object-store requests by operation (put, get,
// get_range, attributes, delete, list; see objstore.Ops).
type RequestAccounting struct {
	// Cumulative counts everything since StartedAt.
	Cumulative OpCounts `json:"cumulative"`
	// Interval counts what happened between IntervalStart and IntervalEnd:
	// since the previous successful write (or the start) until this one.
	IntervalStart time.Time `json:"intervalStart"`
	IntervalEnd   time.Time `json:"intervalEnd"`
	Interval      OpCounts  `json:"interval"`
	// IntervalByGroup splits the interval's S3 requests by key group
	// (objstore.KeyGroup): "topics/<topic>-<topicId>" for a topic's
	// objects, "cluster/metadata", "cluster/lease", "topics" for listings
	// of every topic, and so on. Groups without requests are left out.
	IntervalByGroup map[string]map[string]int64 `json:"intervalByGroup,omitempty"`
}

// OpCounts holds both counts of objstore.Counting by operation name.
type OpCounts struct {
	// Calls are ObjectStore calls, as the metric
	// tiercel.objstore.requests counts them.
	Calls map[string]int64 `json:"calls"`
	// Requests are the S3 requests those calls amount to (a multipart
	// upload is several, a listing one per 1000 keys): what S3 bills.
	Requests map[string]int64 `json:"requests"`
}

// accountingInterval reads AccountingIntervalEnv.
func accountingInterval() (time.Duration, error) {
	v := strings.TrimSpace(os.Getenv(AccountingIntervalEnv))
	if v == "" {
		return DefaultAccountingInterval, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return DefaultAccountingInterval, fmt.Errorf("%s=%q is not a positive duration such as 1m or 500ms", AccountingIntervalEnv, v)
	}
	return max(d, MinAccountingInterval), nil
}

// storeCounts is the counting wrapper New installed around the store, or
// nil.
func (b *Broker) storeCounts() *objstore.Counting {
	c, _ := b.cfg.Store.(*objstore.Counting)
	return c
}

// accountant builds and writes the documents; only accountingLoop uses it.
type accountant struct {
	b        *Broker
	counts   *objstore.Counting
	interval time.Duration
	started  time.Time

	// The counts at the end of the last interval written.
	prevAt     time.Time
	prevCalls  map[objstore.Op]int64
	prevReqs   map[objstore.Op]int64
	prevGroups map[string]map[objstore.Op]int64
}

// accountingLoop writes the accounting document every interval, and once
// more when the broker closes. It ends when the broker closes.
func (b *Broker) accountingLoop() {
	defer b.wg.Done()
	if b.cfg.Store == nil {
		return
	}
	interval, err := accountingInterval()
	if err != nil {
		b.logger.Warn("ignoring a bad accounting interval", "err", err, "interval", interval)
	}
	a := &accountant{b: b, counts: b.storeCounts(), interval: interval, started: b.now()}
	a.prevAt = a.started
	a.prevCalls, a.prevReqs, a.prevGroups = map[objstore.Op]int64{}, map[objstore.Op]int64{}, map[string]map[objstore.Op]int64{}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-b.ctx.Done():
			// Clean shutdown: one last document, briefly, so a store that is
			// down cannot hold up Close.
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			if err := a.write(ctx, true); err != nil {
				b.logger.Warn("final accounting write failed", "err", err)
			}
			cancel()
			return
		case <-tick.C:
			ctx, cancel := context.WithTimeout(b.ctx, max(interval, 10*time.Second))
			if err := a.write(ctx, false); err != nil && b.ctx.Err() == nil {
				b.logger.Warn("accounting write failed; the next one covers this interval too", "err", err)
			}
			cancel()
		}
	}
}

// write assembles the document and puts it. The interval moves on only
// after a successful put, so a failed write's requests are reported by the
// next one.
func (a *accountant) write(ctx context.Context, final bool) error {
	doc, calls, reqs, groups := a.build(final)
	body, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		return fmt.Errorf("accounting: encode: %w", err)
	}
	key := AccountingKey(a.b.cfg.NodeID)
	if _, err := a.b.cfg.Store.Put(ctx, key, bytes.NewReader(body), int64(len(body)), objstore.PutOptions{}); err != nil {
		return fmt.Errorf("accounting: put %s: %w", key, err)
	}
	a.prevAt, a.prevCalls, a.prevReqs, a.prevGroups = doc.WrittenAt, calls, reqs, groups
	return nil
}

// build assembles the document from the local logs and the counters. It
// also returns the counter snapshots it used.
func (a *accountant) build(final bool) (*Accounting, map[objstore.Op]int64, map[objstore.Op]int64, map[string]map[objstore.Op]int64) {
	now := a.b.now()
	doc := &Accounting{
		Version:    AccountingVersion,
		NodeID:     a.b.cfg.NodeID,
		WrittenAt:  now,
		StartedAt:  a.started,
		IntervalMs: a.interval.Milliseconds(),
		Final:      final,
		Topics:     a.b.localAccounting(),
	}
	calls, reqs := map[objstore.Op]int64{}, map[objstore.Op]int64{}
	groups := map[string]map[objstore.Op]int64{}
	if a.counts != nil {
		calls, reqs, groups = a.counts.Snapshot(), a.counts.Requests(), a.counts.GroupRequests()
	}
	r := &doc.Requests
	r.Cumulative = OpCounts{Calls: opNames(calls, nil), Requests: opNames(reqs, nil)}
	r.IntervalStart, r.IntervalEnd = a.prevAt, now
	r.Interval = OpCounts{Calls: opNames(calls, a.prevCalls), Requests: opNames(reqs, a.prevReqs)}
	for g, ops := range groups {
		d := opNames(ops, a.prevGroups[g])
		var n int64
		for _, v := range d {
			n += v
		}
		if n == 0 {
			continue
		}
		if r.IntervalByGroup == nil {
			r.IntervalByGroup = map[string]map[string]int64{}
		}
		r.IntervalByGroup[g] = d
	}
	return doc, calls, reqs, groups
}

// opNames renders cur minus prev by operation name, with every operation.
func opNames(cur, prev map[objstore.Op]int64) map[string]int64 {
	out := make(map[string]int64, len(objstore.Ops()))
	for _, op := range objstore.Ops() {
		out[string(op)] = cur[op] - prev[op]
	}
	return out
}

// localAccounting describes every local replica, by topic.
func (b *Broker) localAccounting() map[string]*TopicAccounting {
	out := map[string]*TopicAccounting{}
	for name, t := range b.current().topics {
		ta := &TopicAccounting{TopicID: t.meta.ID.String(), Partitions: []PartitionAccounting{}}
		for _, p := range t.partitions {
			if p == nil {
				continue
			}
			pa := p.accounting()
			ta.LocalBytes += pa.LocalBytes
			ta.Partitions = append(ta.Partitions, pa)
		}
		if len(ta.Partitions) == 0 {
			continue
		}
		sort.Slice(ta.Partitions, func(i, j int) bool { return ta.Partitions[i].Partition < ta.Partitions[j].Partition })
		out[name] = ta
	}
	return out
}

// accounting describes the replica's local log.
func (p *partition) accounting() PartitionAccounting {
	pa := PartitionAccounting{
		Partition:              p.index,
		LocalLogStartOffset:    p.log.StartOffset(),
		LogEndOffset:           p.log.EndOffset(),
		HighWatermark:          p.HighWatermark(),
		LocalOldestTimestampMs: -1,
		RemoteNextOffset:       p.remoteNext(),
	}
	segs := p.log.Segments()
	for _, si := range segs {
		pa.LocalBytes += si.Size
		if pa.RemoteNextOffset < 0 || si.NextOffset > pa.RemoteNextOffset {
			pa.LocalOnlyBytes += si.Size
		}
		if pa.LocalOldestTimestampMs < 0 && si.Size > 0 {
			pa.LocalOldestTimestampMs = si.FirstBatchTimestamp
		}
	}
	pa.LocalSegments = len(segs)
	return pa
}
