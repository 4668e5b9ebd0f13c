package tiering

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tiercel/tiercel/cache"
	"github.com/tiercel/tiercel/tiering/objstore"
	"github.com/tiercel/tiercel/wire/batch"
)

// testTopicID is a topic id in Kafka's 22-character base64 rendering.
const testTopicID = "AbCdEfGhIjKlMnOpQrStUv"

func testPID(topic string, p int32) PartitionID {
	return PartitionID{Topic: topic, TopicID: testTopicID, Partition: p}
}

// record is one record as the test wrote it.
type record struct {
	offset int64
	ts     int64
	key    []byte
	value  []byte
}

// testBatch is one batch of a test segment, where it sits and what it holds.
type testBatch struct {
	base, next int64
	pos        int64 // in the segment, relative to its first batch
	raw        []byte
	maxTS      int64
	records    []record
}

// testSegment is a run of batches as the local log would hold them.
type testSegment struct {
	base, next int64
	batches    []testBatch
	data       []byte
}

// batchSpec describes one batch to build.
type batchSpec struct {
	n     int               // records
	codec batch.Compression // compression
	size  int               // value size
	// ts gives each record's timestamp; nil means base time + offset.
	ts func(offset int64, i int) int64
	// logAppendTime stamps the batch as LogAppendTime with this time.
	logAppendTime int64
}

const baseTime = int64(1_700_000_000_000)

// buildSegment encodes batches from base, in order, with deterministic
// contents (rng), and returns them with their positions.
func buildSegment(t testing.TB, base int64, rng *rand.Rand, specs []batchSpec) testSegment {
	t.Helper()
	seg := testSegment{base: base, next: base}
	for _, sp := range specs {
		b := batch.NewBuilder(sp.codec)
		tb := testBatch{base: seg.next, pos: int64(len(seg.data))}
		for i := 0; i < sp.n; i++ {
			off := seg.next + int64(i)
			ts := baseTime + off
			if sp.ts != nil {
				ts = sp.ts(off, i)
			}
			v := make([]byte, sp.size)
			for j := range v {
				v[j] = byte(rng.Uint32())
			}
			k := []byte(fmt.Sprintf("k%d", off))
			b.Add(ts, k, v)
			tb.records = append(tb.records, record{offset: off, ts: ts, key: k, value: v})
		}
		raw, err := b.Build(seg.next)
		if err != nil {
			t.Fatal(err)
		}
		batch.SetPartitionLeaderEpoch(raw, 3)
		if sp.logAppendTime > 0 {
			batch.SetLogAppendTime(raw, sp.logAppendTime)
			for i := range tb.records {
				tb.records[i].ts = sp.logAppendTime
			}
		}
		h, err := batch.Validate(raw)
		if err != nil {
			t.Fatal(err)
		}
		tb.raw, tb.maxTS = raw, h.MaxTimestamp
		tb.next = h.NextOffset()
		seg.batches = append(seg.batches, tb)
		seg.data = append(seg.data, raw...)
		seg.next = tb.next
	}
	return seg
}

// randomSpecs returns n batch specs of assorted sizes: small batches and
// some larger than the remote index interval.
func randomSpecs(rng *rand.Rand, n int) []batchSpec {
	specs := make([]batchSpec, n)
	for i := range specs {
		specs[i] = batchSpec{n: 1 + rng.IntN(12), size: 10 + rng.IntN(900)}
		if rng.IntN(8) == 0 {
			specs[i].size = 3000 + rng.IntN(3000)
		}
	}
	return specs
}

// source writes seg to a file after junk leading bytes (so Position is
// not 0, as for a partial segment) and returns the source to offload.
func (seg testSegment) source(t testing.TB, junk int) SegmentSource {
	t.Helper()
	path := filepath.Join(t.TempDir(), fmt.Sprintf("%020d.log", seg.base))
	lead := bytes.Repeat([]byte{0xEE}, junk)
	if err := os.WriteFile(path, append(lead, seg.data...), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return SegmentSource{
		File: f, Position: int64(junk), Size: int64(len(seg.data)),
		BaseOffset: seg.base, NextOffset: seg.next,
		Epochs:   []EpochEntry{{Epoch: 3, StartOffset: seg.base}},
		Snapshot: []byte(fmt.Sprintf("snapshot@%d", seg.next)),
	}
}

// batchAt returns the index of the batch holding offset.
func (seg testSegment) batchAt(offset int64) int {
	for i, b := range seg.batches {
		if offset >= b.base && offset < b.next {
			return i
		}
	}
	return -1
}

func (seg testSegment) records() []record {
	var out []record
	for _, b := range seg.batches {
		out = append(out, b.records...)
	}
	return out
}

// newTestTier returns a tier on store with its own cache.
func newTestTier(t testing.TB, store objstore.ObjectStore, cfg Config) *Tier {
	t.Helper()
	c, err := cache.New(cache.Config{MaxBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return New(store, c, cfg, slog.New(slog.DiscardHandler))
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// offloadAll offloads the segments in order as epoch 3 and fails the test
// on any error.
func offloadAll(t testing.TB, r *RemoteLog, segs ...testSegment) []Segment {
	t.Helper()
	var out []Segment
	for _, s := range segs {
		up, err := r.Offload(testContext(t), s.source(t, 17), 3, s.next)
		if err != nil {
			t.Fatalf("offload [%d, %d): %v", s.base, s.next, err)
		}
		out = append(out, up)
	}
	return out
}

// getObject reads a whole object.
func getObject(t testing.TB, store objstore.ObjectStore, key string) []byte {
	t.Helper()
	rc, _, err := store.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func putObject(t testing.TB, store objstore.ObjectStore, key string, b []byte) {
	t.Helper()
	if _, err := store.Put(context.Background(), key, bytes.NewReader(b), int64(len(b)), objstore.PutOptions{}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// listKeys lists every key under prefix.
func listKeys(t testing.TB, store objstore.ObjectStore, prefix string) []string {
	t.Helper()
	var keys []string
	if err := store.List(context.Background(), prefix, func(o objstore.ObjectInfo) error {
		keys = append(keys, o.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}
