package batch

import (
	"bytes"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// MaxDecompressedSize bounds what one batch may inflate to. A batch whose
// records decompress past it is treated as corrupt, so a small malicious
// batch cannot make the broker allocate without bound.
const MaxDecompressedSize = 256 << 20

var (
	zstdDecoders = sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxDecompressedSize))
		if err != nil {
			panic(err) // only fails on bad options
		}
		return d
	}}
	zstdEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
)

// Decompress inflates a batch's records section with codec c. Snappy
// accepts both raw blocks (franz-go, librdkafka) and the xerial framing that
// the Java client writes.
func Decompress(c Compression, src []byte) ([]byte, error) {
	var (
		out []byte
		err error
	)
	switch c {
	case CompressionNone:
		return src, nil
	case CompressionGzip:
		var zr *gzip.Reader
		zr, err = gzip.NewReader(bytes.NewReader(src))
		if err == nil {
			out, err = readBounded(zr)
		}
	case CompressionSnappy:
		if n, lerr := s2.DecodedLen(src); lerr == nil && n > MaxDecompressedSize {
			return nil, fmt.Errorf("%w: snappy block inflates to %d bytes", ErrCorrupt, n)
		}
		out, err = xerial.Decode(src)
	case CompressionLZ4:
		out, err = readBounded(lz4.NewReader(bytes.NewReader(src)))
	case CompressionZstd:
		d := zstdDecoders.Get().(*zstd.Decoder)
		out, err = d.DecodeAll(src, nil)
		zstdDecoders.Put(d)
	default:
		return nil, fmt.Errorf("%w: codec %d", ErrUnsupportedCompression, c)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, c, err)
	}
	if len(out) > MaxDecompressedSize {
		return nil, fmt.Errorf("%w: %s records inflate past %d bytes", ErrCorrupt, c, MaxDecompressedSize)
	}
	return out, nil
}

func readBounded(r io.Reader) ([]byte, error) {
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r, MaxDecompressedSize+1))
	if err != nil {
		return nil, err
	}
	if n > MaxDecompressedSize {
		return nil, fmt.Errorf("inflates past %d bytes", MaxDecompressedSize)
	}
	return buf.Bytes(), nil
}

// Compress deflates a records section with codec c. The broker never
// recompresses what producers send; this exists for tests, tools and the
// broker's own internal records.
func Compress(c Compression, src []byte) ([]byte, error) {
	switch c {
	case CompressionNone:
		return src, nil
	case CompressionGzip:
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(src); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case CompressionSnappy:
		return s2.EncodeSnappy(nil, src), nil
	case CompressionLZ4:
		var buf bytes.Buffer
		zw := lz4.NewWriter(&buf)
		if _, err := zw.Write(src); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case CompressionZstd:
		return zstdEncoder.EncodeAll(src, nil), nil
	}
	return nil, fmt.Errorf("%w: codec %d", ErrUnsupportedCompression, c)
}
