package batch

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func build(t testing.TB, c Compression, n int) []byte {
	t.Helper()
	b := NewBuilder(c)
	for i := 0; i < n; i++ {
		var key []byte
		if i%3 != 0 {
			key = []byte(fmt.Sprintf("k%d", i))
		}
		b.Add(1700000000000+int64(i), key, bytes.Repeat([]byte{byte(i)}, 100), RecordHeader{Key: "h", Value: []byte("v")})
	}
	out, err := b.Build(42)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRoundTripEveryCodec(t *testing.T) {
	for _, c := range []Compression{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd} {
		t.Run(c.String(), func(t *testing.T) {
			raw := build(t, c, 50)
			h, err := Validate(raw)
			if err != nil {
				t.Fatal(err)
			}
			if h.BaseOffset != 42 || h.LastOffset() != 91 || h.RecordCount != 50 || h.Compression() != c {
				t.Fatalf("header %+v", h)
			}
			// kmsg, written independently from Kafka's specs, must agree.
			var kb kmsg.RecordBatch
			if err := kb.ReadFrom(raw); err != nil {
				t.Fatal(err)
			}
			if uint32(kb.CRC) != h.CRC || kb.NumRecords != 50 || kb.MaxTimestamp != 1700000000049 {
				t.Fatalf("kmsg disagrees: %+v", kb)
			}
			i := 0
			err = Records(raw, func(r Record) error {
				if r.OffsetDelta != int32(i) || len(r.Value) != 100 || r.Value[0] != byte(i) {
					return fmt.Errorf("record %d: %+v", i, r)
				}
				if (i%3 == 0) != (r.Key == nil) {
					return fmt.Errorf("record %d key %q", i, r.Key)
				}
				if len(r.Headers) != 1 || r.Headers[0].Key != "h" {
					return fmt.Errorf("record %d headers %+v", i, r.Headers)
				}
				i++
				return nil
			})
			if err != nil || i != 50 {
				t.Fatalf("records: %v after %d", err, i)
			}
		})
	}
}

func TestValidateRejects(t *testing.T) {
	good := build(t, CompressionNone, 3)
	cases := map[string]struct {
		mut  func([]byte) []byte
		want error
	}{
		"crc":         {func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, ErrCorrupt},
		"magic":       {func(b []byte) []byte { b[offMagic] = 1; return b }, ErrUnsupportedMagic},
		"short":       {func(b []byte) []byte { return b[:len(b)-1] }, ErrShort},
		"long":        {func(b []byte) []byte { return append(b, 0) }, ErrCorrupt},
		"header only": {func(b []byte) []byte { return b[:20] }, ErrShort},
		"count": {func(b []byte) []byte {
			b[offRecordCount+3] = 9
			copy(b[offCRC:], be32(Checksum(b)))
			return b
		}, ErrCorrupt},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			b := tc.mut(append([]byte(nil), good...))
			if _, err := Validate(b); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCheckRecordsCountMismatch(t *testing.T) {
	raw := build(t, CompressionNone, 3)
	// Claim 2 records consistently in the header; the body holds 3.
	raw[offRecordCount+3] = 2
	raw[offLastOffsetDelta+3] = 1
	copy(raw[offCRC:], be32(Checksum(raw)))
	if _, err := Validate(raw); err != nil {
		t.Fatal(err)
	}
	if err := CheckRecords(raw); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v", err)
	}
}

func TestSetLogAppendTime(t *testing.T) {
	raw := build(t, CompressionLZ4, 4)
	SetLogAppendTime(raw, 123)
	h, err := Validate(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !h.LogAppendTime() || h.MaxTimestamp != 123 {
		t.Fatalf("%+v", h)
	}
}

func TestIterateStopsAtTornTail(t *testing.T) {
	a, b := build(t, CompressionNone, 2), build(t, CompressionSnappy, 2)
	buf := append(append(append([]byte(nil), a...), b...), b[:30]...)
	n := 0
	used, err := Iterate(buf, func(Header, []byte) error { n++; return nil })
	if err != nil || n != 2 || used != len(a)+len(b) {
		t.Fatalf("n=%d used=%d err=%v", n, used, err)
	}
}

func TestIncrementSequence(t *testing.T) {
	if IncrementSequence(1<<31-1, 1) != 0 || IncrementSequence(5, 3) != 8 || IncrementSequence(1<<31-2, 3) != 1 {
		t.Fatal("wrap")
	}
}

func be32(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }

func FuzzRecordBatch(f *testing.F) {
	for _, c := range []Compression{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd} {
		f.Add(build(f, c, 3))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Validate(b)
		if err != nil {
			return
		}
		_ = Records(b, func(r Record) error {
			_ = r.Key
			return nil
		})
		if h.Size() != len(b) {
			t.Fatalf("validated batch of size %d in %d bytes", h.Size(), len(b))
		}
	})
}
