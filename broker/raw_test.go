package broker

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/wire/batch"
)

func kadmNew(cl *kgo.Client) *kadm.Client { return kadm.NewClient(cl) }

// rawRequest sends req to broker 1 directly, bypassing kgo's routing and
// retries, so tests see exactly what the broker answers.
func rawRequest(t testing.TB, ctx context.Context, cl *kgo.Client, req kmsg.Request) kmsg.Response {
	t.Helper()
	if _, err := cl.Request(ctx, kmsg.NewPtrMetadataRequest()); err != nil {
		t.Fatal(err)
	}
	resp, err := cl.Broker(1).Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func initProducerID(t testing.TB, ctx context.Context, cl *kgo.Client) int64 {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	resp := rawRequest(t, ctx, cl, req).(*kmsg.InitProducerIDResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("InitProducerId: code %d", resp.ErrorCode)
	}
	return resp.ProducerID
}

// rawProduce sends one batch with acks=all and returns the base offset
// and error code.
func rawProduce(t testing.TB, ctx context.Context, cl *kgo.Client, topic string, partition int32, raw []byte) (int64, int16) {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = append([]byte(nil), raw...) // the broker rewrites in place
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := rawRequest(t, ctx, cl, req).(*kmsg.ProduceResponse)
	p := resp.Topics[0].Partitions[0]
	return p.BaseOffset, p.ErrorCode
}

// TestProduceBadBatches sends malformed batches and checks each gets
// Kafka's code, leaves the log untouched, and the broker keeps serving.
func TestProduceBadBatches(t *testing.T) {
	tb := startBroker(t)
	createTopic(t, tb, "bad", 1, map[string]*string{"max.message.bytes": kadm.StringPtr("10000")})
	cl := tb.Client()
	ctx := testCtx(t)
	good := func() []byte {
		b := batch.NewBuilder(batch.CompressionNone)
		for i := 0; i < 3; i++ {
			b.Add(time.Now().UnixMilli(), []byte("k"), []byte("v"))
		}
		raw, err := b.Build(0)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	recrc := func(raw []byte) { binary.BigEndian.PutUint32(raw[17:], batch.Checksum(raw)) }
	cases := []struct {
		name string
		mut  func([]byte) []byte
		code int16
	}{
		{"magic 1", func(b []byte) []byte { b[16] = 1; return b }, kerr.UnsupportedForMessageFormat.Code},
		{"bad crc", func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }, kerr.CorruptMessage.Code},
		{"length beyond bytes", func(b []byte) []byte { return b[:len(b)-2] }, kerr.CorruptMessage.Code},
		{"trailing garbage", func(b []byte) []byte { return append(b, 1, 2, 3) }, kerr.CorruptMessage.Code},
		{"count mismatch", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[57:], 2)
			binary.BigEndian.PutUint32(b[23:], 1)
			recrc(b)
			return b
		}, kerr.CorruptMessage.Code},
		{"header only", func(b []byte) []byte { return b[:40] }, kerr.CorruptMessage.Code},
		{"too large", func([]byte) []byte {
			b := batch.NewBuilder(batch.CompressionNone)
			b.Add(0, nil, make([]byte, 20000))
			raw, _ := b.Build(0)
			return raw
		}, kerr.MessageTooLarge.Code},
		{"two batches", func(b []byte) []byte { return append(b, good()...) }, kerr.InvalidRecord.Code},
		{"control batch", func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[21:], batch.AttrControl)
			recrc(b)
			return b
		}, kerr.InvalidRecord.Code},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, code := rawProduce(t, ctx, cl, "bad", 0, tc.mut(good()))
			if code != tc.code {
				t.Fatalf("code %d (%v), want %d (%v)", code, kerr.ErrorForCode(code), tc.code, kerr.ErrorForCode(tc.code))
			}
		})
	}
	// Nothing was appended, and a good batch still goes in at offset 0.
	if off, code := rawProduce(t, ctx, cl, "bad", 0, good()); code != 0 || off != 0 {
		t.Fatalf("good batch after bad ones: offset %d code %d", off, code)
	}
}
