package broker

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tiercel/tiercel/tiering"
	"github.com/tiercel/tiercel/tiering/objstore"
)

func TestAccountingInterval(t *testing.T) {
	for v, want := range map[string]time.Duration{
		"":      DefaultAccountingInterval,
		"250ms": 250 * time.Millisecond,
		"2m":    2 * time.Minute,
		"1ns":   MinAccountingInterval,
	} {
		t.Setenv(AccountingIntervalEnv, v)
		got, err := accountingInterval()
		if err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", v, got, err, want)
		}
	}
	for _, v := range []string{"soon", "-1s", "0", "10"} {
		t.Setenv(AccountingIntervalEnv, v)
		got, err := accountingInterval()
		if err == nil || got != DefaultAccountingInterval || !strings.Contains(err.Error(), AccountingIntervalEnv) {
			t.Errorf("%q: %v, %v; want the default and an error naming the variable", v, got, err)
		}
	}
}

// readAccounting reads the broker's document from the store, or nil.
func readAccounting(t *testing.T, store objstore.ObjectStore, node int32) *Accounting {
	t.Helper()
	rc, _, err := store.Get(context.Background(), AccountingKey(node))
	if objstore.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	body, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	var doc Accounting
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("accounting document: %v\n%s", err, body)
	}
	return &doc
}

// nextAccounting waits for a document written after the given one.
func nextAccounting(t *testing.T, store objstore.ObjectStore, after time.Time) *Accounting {
	t.Helper()
	var doc *Accounting
	waitFor(t, "an accounting document", 20*time.Second, func() bool {
		doc = readAccounting(t, store, 1)
		return doc != nil && doc.WrittenAt.After(after)
	})
	return doc
}

// localLogFiles sums the .log files of a partition directory and reads
// the max timestamp of the first batch of the first non-empty one.
func localLogFiles(t *testing.T, dir string) (size int64, firstTS int64) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".log") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	firstTS = -1
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		size += int64(len(b))
		if firstTS < 0 && len(b) >= 61 {
			firstTS = int64(binary.BigEndian.Uint64(b[35:])) // maxTimestamp of the first batch
		}
	}
	return size, firstTS
}

// TestAccountingDocument runs a tiering broker with a short accounting
// interval and checks its documents against the partition directories,
// the manifests, and a second counting wrapper under the broker's own.
func TestAccountingDocument(t *testing.T) {
	t.Setenv(AccountingIntervalEnv, "200ms")
	dir := t.TempDir()
	fs, err := objstore.NewFS(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	inner := objstore.WithCounts(fs)
	tb := tieredBroker(t, withStore(inner), func(tb *testBroker) { tb.DataDir = filepath.Join(dir, "data") })
	createTopic(t, tb, "acct", 2, map[string]*string{
		"segment.bytes":         kadm.StringPtr("16384"),
		"local.retention.bytes": kadm.StringPtr("32768"),
	})
	createTopic(t, tb, "local", 1, map[string]*string{"remote.storage.enable": kadm.StringPtr("false")})
	cl := tb.Client(kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(4096))
	recs := randomRecords(1500, 200, 7)
	for i, r := range recs {
		r.Topic = "acct"
		if i%10 == 0 {
			r.Topic = "local"
		}
	}
	produceSync(t, cl, recs...)
	for p := int32(0); p < 2; p++ {
		_, part := tb.B.lookup("acct", p)
		waitFor(t, "offload and local retention", 20*time.Second, func() bool {
			return part.log.StartOffset() > 0 && part.remoteNext() > part.log.StartOffset()
		})
	}

	// Counts: the broker's counter sits on top of inner, so every call it
	// sees inner sees too. A document assembled after snapshot A and read
	// before snapshot B lies between them, for every operation.
	tA := time.Now()
	callsA, reqsA := inner.Snapshot(), inner.Requests()
	doc := nextAccounting(t, inner, tA)
	callsB, reqsB := inner.Snapshot(), inner.Requests()
	for _, op := range objstore.Ops() {
		c, r := doc.Requests.Cumulative.Calls[string(op)], doc.Requests.Cumulative.Requests[string(op)]
		if c < callsA[op] || c > callsB[op] || r < reqsA[op] || r > reqsB[op] {
			t.Errorf("%s: document says %d calls, %d requests; the wrapper below counted %d..%d calls, %d..%d requests",
				op, c, r, callsA[op], callsB[op], reqsA[op], reqsB[op])
		}
	}
	if doc.Requests.Cumulative.Calls["put"] == 0 || doc.Requests.Cumulative.Calls["get"] == 0 {
		t.Errorf("cumulative counts look empty: %+v", doc.Requests.Cumulative)
	}
	if doc.NodeID != 1 || doc.Version != AccountingVersion || doc.Final || doc.IntervalMs != 200 {
		t.Errorf("header: %+v", doc)
	}

	// Consecutive documents chain: each interval starts where the last
	// ended, and holds the difference of the cumulative counts.
	next := nextAccounting(t, inner, doc.WrittenAt)
	for try := 0; try < 10 && !next.Requests.IntervalStart.Equal(doc.WrittenAt); try++ {
		// A document in between was missed; take the following pair.
		doc = next
		next = nextAccounting(t, inner, doc.WrittenAt)
	}
	if !next.Requests.IntervalStart.Equal(doc.WrittenAt) || !next.Requests.IntervalEnd.Equal(next.WrittenAt) {
		t.Errorf("interval [%v, %v], previous document at %v, this one at %v", next.Requests.IntervalStart,
			next.Requests.IntervalEnd, doc.WrittenAt, next.WrittenAt)
	}
	for _, op := range objstore.Ops() {
		k := string(op)
		if d := next.Requests.Cumulative.Calls[k] - doc.Requests.Cumulative.Calls[k]; d != next.Requests.Interval.Calls[k] {
			t.Errorf("%s: interval has %d calls, cumulative moved by %d", op, next.Requests.Interval.Calls[k], d)
		}
		if d := next.Requests.Cumulative.Requests[k] - doc.Requests.Cumulative.Requests[k]; d != next.Requests.Interval.Requests[k] {
			t.Errorf("%s: interval has %d requests, cumulative moved by %d", op, next.Requests.Interval.Requests[k], d)
		}
		var byGroup int64
		for _, g := range next.Requests.IntervalByGroup {
			byGroup += g[k]
		}
		if byGroup != next.Requests.Interval.Requests[k] {
			t.Errorf("%s: groups sum to %d requests, interval has %d", op, byGroup, next.Requests.Interval.Requests[k])
		}
	}
	// Every interval has at least its predecessor's put, and the lease
	// and metadata polls.
	if next.Requests.Interval.Requests["put"] == 0 {
		t.Errorf("interval counts look empty: %+v", next.Requests.Interval)
	}
	st := tb.B.current()
	acctID := st.topics["acct"].meta.ID.String()
	group := strings.TrimSuffix(tiering.TopicPrefix("acct", acctID), "/")
	// More data offloads more segments: some interval attributes the
	// uploads to the topic's key group.
	more := randomRecords(300, 200, 8)
	for _, r := range more {
		r.Topic = "acct"
	}
	produceSync(t, cl, more...)
	seen := doc.WrittenAt
	waitFor(t, "uploads attributed to the topic", 20*time.Second, func() bool {
		d := readAccounting(t, inner, 1)
		if d == nil || !d.WrittenAt.After(seen) {
			return false
		}
		seen = d.WrittenAt
		return d.Requests.IntervalByGroup[group]["put"] > 0
	})

	// Local storage matches the partition directories. Retention may move
	// between the document and the directory listing, so retry.
	check := func(doc *Accounting) []string {
		var problems []string
		for _, name := range []string{"acct", "local"} {
			ta := doc.Topics[name]
			if ta == nil {
				return []string{"no topic " + name}
			}
			ts := st.topics[name]
			if ta.TopicID != ts.meta.ID.String() {
				problems = append(problems, name+": topic id differs")
			}
			var sum int64
			for _, pa := range ta.Partitions {
				_, part := tb.B.lookup(name, pa.Partition)
				size, firstTS := localLogFiles(t, part.log.Dir())
				sum += pa.LocalBytes
				if pa.LocalBytes != size || pa.LocalOldestTimestampMs != firstTS ||
					pa.LocalLogStartOffset != part.log.StartOffset() || pa.LogEndOffset != part.log.EndOffset() ||
					pa.RemoteNextOffset != part.remoteNext() {
					problems = append(problems, name+": partition differs from the directory")
				}
				if name == "local" && (pa.RemoteNextOffset != -1 || pa.LocalOnlyBytes != pa.LocalBytes) {
					problems = append(problems, "local: not tiered, yet has remote data")
				}
				if name == "acct" && (pa.RemoteNextOffset <= pa.LocalLogStartOffset || pa.LocalOnlyBytes >= pa.LocalBytes) {
					problems = append(problems, "acct: local-only bytes do not exclude offloaded segments")
				}
			}
			if sum != ta.LocalBytes {
				problems = append(problems, name+": topic bytes are not the sum of its partitions")
			}
		}
		return problems
	}
	var problems []string
	for try := 0; try < 10; try++ {
		doc = nextAccounting(t, inner, doc.WrittenAt)
		if problems = check(doc); len(problems) == 0 {
			break
		}
	}
	if len(problems) > 0 {
		t.Fatalf("accounting vs directories: %v\n%+v", problems, doc.Topics)
	}
	if doc.Topics["acct"].LocalBytes == 0 || len(doc.Topics["acct"].Partitions) != 2 {
		t.Fatalf("acct: %+v", doc.Topics["acct"])
	}

	// Clean shutdown writes a final document.
	tb.Stop()
	final := readAccounting(t, inner, 1)
	if final == nil || !final.Final || final.WrittenAt.Before(doc.WrittenAt) {
		t.Fatalf("after shutdown: %+v", final)
	}
}
