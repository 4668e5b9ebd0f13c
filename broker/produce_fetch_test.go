package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func createTopic(t testing.TB, tb *testBroker, name string, partitions int32, configs map[string]*string) {
	t.Helper()
	resp, err := tb.Admin().CreateTopics(testCtx(t), partitions, 1, configs, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := resp[name].Err; err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
}

// produceSync produces records and fails the test on any error.
func produceSync(t testing.TB, cl *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	if err := cl.ProduceSync(testCtx(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// consumeAll reads every partition of topic from the start until n
// records have been read, and returns them per partition in order.
func consumeAll(t testing.TB, tb *testBroker, topic string, partitions int32, n int, opts ...kgo.Opt) map[int32][]*kgo.Record {
	t.Helper()
	offsets := map[int32]kgo.Offset{}
	for p := int32(0); p < partitions; p++ {
		offsets[p] = kgo.NewOffset().AtStart()
	}
	cl := tb.Client(append([]kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}), kgo.FetchMaxWait(200 * time.Millisecond)}, opts...)...)
	out := map[int32][]*kgo.Record{}
	got := 0
	ctx := testCtx(t)
	for got < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before timeout", got, n)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s-%d: %v", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			out[r.Partition] = append(out[r.Partition], r)
			got++
		})
	}
	return out
}

func TestProduceConsume100kRecords(t *testing.T) {
	tb := startBroker(t)
	const topic, parts, total = "big", 8, 100_000
	createTopic(t, tb, topic, parts, nil)
	cl := tb.Client(kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond))
	ctx := testCtx(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	acked := map[int32][]int64{} // offsets per partition, in ack order
	for i := 0; i < total; i++ {
		key := []byte("key-" + strconv.Itoa(i%1000))
		val := []byte(fmt.Sprintf("value-%d-%s", i, bytes.Repeat([]byte{'x'}, i%100)))
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Key: key, Value: val}, func(r *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			acked[r.Partition] = append(acked[r.Partition], r.Offset)
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	got := consumeAll(t, tb, topic, parts, total)
	seen := 0
	for p := int32(0); p < parts; p++ {
		recs := got[p]
		if len(recs) != len(acked[p]) {
			t.Fatalf("partition %d: consumed %d, acked %d", p, len(recs), len(acked[p]))
		}
		lastIdx := map[string]int{}
		for i, r := range recs {
			if r.Offset != int64(i) {
				t.Fatalf("partition %d: record %d has offset %d", p, i, r.Offset)
			}
			if acked[p][i] != r.Offset {
				t.Fatalf("partition %d: ack %d was offset %d, read %d", p, i, acked[p][i], r.Offset)
			}
			var idx int
			var rest string
			if _, err := fmt.Sscanf(string(r.Value), "value-%d-%s", &idx, &rest); err != nil && !(idx%100 == 0) {
				t.Fatalf("partition %d offset %d: bad value %q", p, r.Offset, r.Value)
			}
			if want := "key-" + strconv.Itoa(idx%1000); string(r.Key) != want {
				t.Fatalf("partition %d offset %d: key %q, want %q", p, r.Offset, r.Key, want)
			}
			if want := fmt.Sprintf("value-%d-%s", idx, bytes.Repeat([]byte{'x'}, idx%100)); string(r.Value) != want {
				t.Fatalf("partition %d offset %d: value %q, want %q", p, r.Offset, r.Value, want)
			}
			// Per key, producer order is kept within a partition.
			if prev, ok := lastIdx[string(r.Key)]; ok && prev >= idx {
				t.Fatalf("partition %d: key %s out of order (%d after %d)", p, r.Key, idx, prev)
			}
			lastIdx[string(r.Key)] = idx
			seen++
		}
	}
	if seen != total {
		t.Fatalf("saw %d records, want %d", seen, total)
	}
}

func TestEveryCodec(t *testing.T) {
	tb := startBroker(t)
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := "codec-" + name
			createTopic(t, tb, topic, 1, nil)
			cl := tb.Client(kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(codec))
			var recs []*kgo.Record
			for i := 0; i < 500; i++ {
				recs = append(recs, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: bytes.Repeat([]byte(name), 50+i%7)})
			}
			produceSync(t, cl, recs...)
			got := consumeAll(t, tb, topic, 1, len(recs))[0]
			for i, r := range got {
				if string(r.Key) != strconv.Itoa(i) || !bytes.Equal(r.Value, recs[i].Value) || r.Offset != int64(i) {
					t.Fatalf("record %d: %q/%q at %d", i, r.Key, r.Value, r.Offset)
				}
			}
		})
	}
}

func TestHeadersAndTimestamps(t *testing.T) {
	tb := startBroker(t)
	createTopic(t, tb, "hdr", 1, nil)
	cl := tb.Client(kgo.DefaultProduceTopic("hdr"))
	base := time.UnixMilli(time.Now().UnixMilli()).Add(-time.Hour)
	var recs []*kgo.Record
	for i := 0; i < 20; i++ {
		recs = append(recs, &kgo.Record{
			Value:     []byte{byte(i)},
			Timestamp: base.Add(time.Duration(i) * time.Second),
			Headers:   []kgo.RecordHeader{{Key: "i", Value: []byte(strconv.Itoa(i))}, {Key: "empty"}},
		})
	}
	produceSync(t, cl, recs...)
	got := consumeAll(t, tb, "hdr", 1, 20)[0]
	for i, r := range got {
		if !r.Timestamp.Equal(recs[i].Timestamp) {
			t.Fatalf("record %d timestamp %v, want %v", i, r.Timestamp, recs[i].Timestamp)
		}
		if len(r.Headers) != 2 || r.Headers[0].Key != "i" || string(r.Headers[0].Value) != strconv.Itoa(i) || r.Headers[1].Key != "empty" || len(r.Headers[1].Value) != 0 {
			t.Fatalf("record %d headers %+v", i, r.Headers)
		}
	}

	// LogAppendTime: the broker stamps the batch.
	createTopic(t, tb, "lat", 1, map[string]*string{"message.timestamp.type": kadm.StringPtr("LogAppendTime")})
	before := time.Now().Add(-time.Second)
	produceSync(t, tb.Client(kgo.DefaultProduceTopic("lat")), &kgo.Record{Value: []byte("x"), Timestamp: base})
	r := consumeAll(t, tb, "lat", 1, 1)[0][0]
	if r.Timestamp.Before(before) || r.Attrs.TimestampType() != 1 {
		t.Fatalf("LogAppendTime record has timestamp %v type %d", r.Timestamp, r.Attrs.TimestampType())
	}
}

func TestListOffsetsByTime(t *testing.T) {
	tb := startBroker(t)
	createTopic(t, tb, "times", 1, nil)
	cl := tb.Client(kgo.DefaultProduceTopic("times"))
	base := time.UnixMilli(time.Now().Add(-24 * time.Hour).UnixMilli())
	// Several batches, and timestamps inside a batch that are not in order.
	for batch := 0; batch < 5; batch++ {
		var recs []*kgo.Record
		for i := 0; i < 10; i++ {
			n := batch*10 + i
			ts := base.Add(time.Duration(n) * time.Minute)
			if i == 3 {
				ts = ts.Add(-30 * time.Minute) // out of order, earlier
			}
			recs = append(recs, &kgo.Record{Value: []byte(strconv.Itoa(n)), Timestamp: ts})
		}
		produceSync(t, cl, recs...)
	}
	adm := tb.Admin()
	ctx := testCtx(t)
	check := func(ts time.Time, wantOffset int64) {
		t.Helper()
		res, err := adm.ListOffsetsAfterMilli(ctx, ts.UnixMilli(), "times")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := res.Lookup("times", 0)
		if o.Err != nil || o.Offset != wantOffset {
			t.Fatalf("offset for %v: %d (%v), want %d", ts.Sub(base), o.Offset, o.Err, wantOffset)
		}
	}
	check(base.Add(-time.Hour), 0)
	check(base, 0)
	check(base.Add(1*time.Minute), 1)
	check(base.Add(25*time.Minute), 25)
	check(base.Add(25*time.Minute+time.Second), 26)
	check(base.Add(49*time.Minute), 49)
	// Past the last record: the end offset, as Kafka's clients report it.
	check(base.Add(50*time.Minute), 50)

	ends, err := adm.ListEndOffsets(ctx, "times")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("times", 0); o.Offset != 50 {
		t.Fatalf("end offset %d", o.Offset)
	}
	starts, err := adm.ListStartOffsets(ctx, "times")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup("times", 0); o.Offset != 0 {
		t.Fatalf("start offset %d", o.Offset)
	}
	maxTS, err := adm.ListMaxTimestampOffsets(ctx, "times")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := maxTS.Lookup("times", 0); o.Offset != 49 || o.Timestamp != base.Add(49*time.Minute).UnixMilli() {
		t.Fatalf("max timestamp offset %d ts %d", o.Offset, o.Timestamp)
	}
}

func TestRestartKeepsEverything(t *testing.T) {
	tb := startBroker(t, withSetting("log.segment.bytes", "65536"))
	createTopic(t, tb, "durable", 3, map[string]*string{"retention.ms": kadm.StringPtr("-1")})
	cl := tb.Client(kgo.DefaultProduceTopic("durable"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	var recs []*kgo.Record
	for i := 0; i < 3000; i++ {
		recs = append(recs, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: bytes.Repeat([]byte{byte(i)}, 100)})
	}
	produceSync(t, cl, recs...)
	before := consumeAll(t, tb, "durable", 3, len(recs))
	cl.Close()
	tb.Restart()
	after := consumeAll(t, tb, "durable", 3, len(recs))
	for p := int32(0); p < 3; p++ {
		if len(before[p]) != len(after[p]) {
			t.Fatalf("partition %d: %d records before restart, %d after", p, len(before[p]), len(after[p]))
		}
		for i := range before[p] {
			a, b := before[p][i], after[p][i]
			if a.Offset != b.Offset || !bytes.Equal(a.Key, b.Key) || !bytes.Equal(a.Value, b.Value) {
				t.Fatalf("partition %d record %d differs after restart", p, i)
			}
		}
	}
	// The topic's config survived, and new produces continue the offsets.
	produceSync(t, tb.Client(kgo.DefaultProduceTopic("durable")), &kgo.Record{Value: []byte("after"), Partition: 0})
	cfgs, err := tb.Admin().DescribeTopicConfigs(testCtx(t), "durable")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cfgs.On("durable", nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range rc.Configs {
		if c.Key == "retention.ms" && c.MaybeValue() == "-1" {
			found = true
		}
	}
	if !found {
		t.Fatal("retention.ms override lost across restart")
	}
}

func TestProduceErrors(t *testing.T) {
	tb := startBroker(t, withSetting("auto.create.topics.enable", "false"))
	createTopic(t, tb, "small", 1, map[string]*string{"max.message.bytes": kadm.StringPtr("2000")})
	cl := tb.Client(kgo.DefaultProduceTopic("small"), kgo.ProducerBatchMaxBytes(1<<20), kgo.RecordRetries(1),
		kgo.UnknownTopicRetries(0))
	big := make([]byte, 5000)
	rand.New(rand.NewSource(1)).Read(big) // incompressible: kgo compresses by default
	err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: big}).FirstErr()
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("oversized record: %v", err)
	}
	// The partition is unharmed: a small record goes in at offset 0.
	rs := cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("ok")})
	if err := rs.FirstErr(); err != nil || rs[0].Record.Offset != 0 {
		t.Fatalf("after rejection: offset %d err %v", rs[0].Record.Offset, err)
	}
	err = cl.ProduceSync(testCtx(t), &kgo.Record{Topic: "missing", Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("missing topic: %v", err)
	}
}

func TestLongPollWakesOnAppend(t *testing.T) {
	tb := startBroker(t)
	createTopic(t, tb, "poll", 1, nil)
	cons := tb.Client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"poll": {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(10*time.Second))
	got := make(chan time.Time, 1)
	go func() {
		fs := cons.PollFetches(context.Background())
		if fs.NumRecords() > 0 {
			got <- time.Now()
		}
	}()
	time.Sleep(500 * time.Millisecond) // the fetch is parked by now
	sent := time.Now()
	produceSync(t, tb.Client(kgo.DefaultProduceTopic("poll")), &kgo.Record{Value: []byte("wake")})
	select {
	case at := <-got:
		if d := at.Sub(sent); d > 3*time.Second {
			t.Fatalf("parked fetch answered %v after the append", d)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("parked fetch did not wake on append")
	}
}
