package log

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/tiercel/tiercel/wire/batch"
)

// benchDir is where benchmarks write: TIERCEL_BENCH_DIR if set (e.g. a
// tmpfs, to measure the log's own overhead without disk writeback), else a
// temporary directory.
func benchDir(b *testing.B) string {
	if d := os.Getenv("TIERCEL_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "bench")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

// benchBatch builds an uncompressed batch of n 1 KiB records with
// incompressible values.
func benchBatch(b *testing.B, n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	bl := batch.NewBuilder(batch.CompressionNone)
	for i := 0; i < n; i++ {
		v := make([]byte, 1024)
		for j := range v {
			v[j] = byte(rng.Uint32())
		}
		bl.Add(testEpochMs, nil, v)
	}
	raw, err := bl.Build(0)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{16, 1024} {
		raw := benchBatch(b, n)
		b.Run(fmt.Sprintf("batch=%dKiB", len(raw)>>10), func(b *testing.B) {
			l, err := Open(benchDir(b), DefaultConfig(), Options{Logger: testLogger(b), Now: newTestClock().Now})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				batch.SetBaseOffset(raw, l.EndOffset())
				if _, err := l.Append(raw); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
		})
	}
}

// BenchmarkRawWrite is the physical reference for BenchmarkAppend: pwrite
// of the same bytes to one file, nothing else.
func BenchmarkRawWrite(b *testing.B) {
	for _, n := range []int{16, 1024} {
		raw := benchBatch(b, n)
		b.Run(fmt.Sprintf("batch=%dKiB", len(raw)>>10), func(b *testing.B) {
			dir := benchDir(b)
			f, err := os.Create(filepath.Join(dir, "raw0"))
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(raw)))
			pos := int64(0)
			for i := 0; i < b.N; i++ {
				if _, err := f.WriteAt(raw, pos); err != nil {
					b.Fatal(err)
				}
				pos += int64(len(raw))
				if pos+int64(len(raw)) > 1<<30 {
					// A new file per GiB, as segments roll: same page-cache
					// and writeback pressure as BenchmarkAppend.
					f.Close()
					if f, err = os.Create(filepath.Join(dir, fmt.Sprintf("raw%d", i))); err != nil {
						b.Fatal(err)
					}
					pos = 0
				}
			}
			f.Close()
		})
	}
}

// BenchmarkRead resolves 1 MiB fetches over a 256 MiB log of 16 KiB
// batches. "tail" is a follower/consumer with maxOffset at the LEO (the
// fast path); "bounded" stops at a high watermark inside the segment, so the
// end boundary comes from the index and a header scan. Bytes counted are
// the bytes the fetch would send (sendfile does the copying).
func BenchmarkRead(b *testing.B) {
	l, err := Open(benchDir(b), Config{SegmentBytes: 64 << 20}, Options{Logger: testLogger(b), Now: newTestClock().Now})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	raw := benchBatch(b, 16)
	for l.Size() < 256<<20 {
		batch.SetBaseOffset(raw, l.EndOffset())
		if _, err := l.Append(raw); err != nil {
			b.Fatal(err)
		}
	}
	end := l.EndOffset()
	for _, mode := range []string{"tail", "bounded", "copy"} {
		b.Run(mode, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(3, 4))
			var total int64
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				from := rng.Int64N(end)
				maxOffset := int64(math.MaxInt64)
				if mode == "bounded" {
					maxOffset = from + 200
				}
				if mode == "copy" {
					got, err := l.ReadBytes(from, 1<<20, maxOffset, true)
					if err != nil {
						b.Fatal(err)
					}
					total += int64(len(got))
					continue
				}
				res, err := l.Read(from, 1<<20, maxOffset, true)
				if err != nil {
					b.Fatal(err)
				}
				total += res.Size
				res.Release()
			}
			b.SetBytes(total / int64(b.N))
		})
	}
}
