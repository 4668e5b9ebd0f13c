package log

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tiercel/tiercel/wire/batch"
)

// testClock is a settable clock for Options.Now.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

// testEpochMs is the default record timestamp and test clock time.
const testEpochMs = 1_700_000_000_000

func newTestClock() *testClock {
	return &testClock{t: time.UnixMilli(testEpochMs)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testLogger discards messages unless -v, and counts them.
func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// smallConfig makes segments and index intervals small so tests cross many
// segment and index boundaries with little data.
func smallConfig() Config {
	return Config{SegmentBytes: 4096, IndexIntervalBytes: 200, MaxIndexBytes: 1 << 20}
}

func openLog(t testing.TB, dir string, cfg Config, opts Options) *Log {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	if opts.Now == nil {
		opts.Now = newTestClock().Now
	}
	l, err := Open(dir, cfg, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

// spec describes a batch to build.
type spec struct {
	n        int               // records
	ts       []int64           // per-record timestamps (len n), or nil for tsBase+i
	tsBase   int64             // used when ts is nil
	valSize  int               // bytes per value
	codec    batch.Compression // compression
	epoch    int32             // partition leader epoch, -1 for none
	appendTS int64             // > 0: make it a LogAppendTime batch with this time
}

// build returns a batch at base offset base.
func build(t testing.TB, base int64, s spec) []byte {
	t.Helper()
	b := batch.NewBuilder(s.codec)
	for i := 0; i < s.n; i++ {
		tsBase := s.tsBase
		if tsBase == 0 {
			tsBase = testEpochMs
		}
		ts := tsBase + int64(i)
		if s.ts != nil {
			ts = s.ts[i]
		}
		val := bytes.Repeat([]byte{byte(base + int64(i))}, s.valSize)
		b.Add(ts, []byte(fmt.Sprintf("k%08d", base+int64(i))), val)
	}
	raw, err := b.Build(base)
	if err != nil {
		t.Fatal(err)
	}
	batch.SetPartitionLeaderEpoch(raw, s.epoch)
	if s.appendTS > 0 {
		batch.SetLogAppendTime(raw, s.appendTS)
	}
	return raw
}

// appended remembers what a test appended, to check reads against.
type appended struct {
	batches [][]byte
	bases   []int64
}

func (a *appended) add(raw []byte) {
	h, _ := batch.ParseHeader(raw)
	a.batches = append(a.batches, raw)
	a.bases = append(a.bases, h.BaseOffset)
}

// indexOf returns the index of the batch containing offset.
func (a *appended) indexOf(offset int64) int {
	for i, raw := range a.batches {
		h, _ := batch.ParseHeader(raw)
		if offset >= h.BaseOffset && offset <= h.LastOffset() {
			return i
		}
	}
	return -1
}

// concat joins batches i..j-1.
func (a *appended) concat(i, j int) []byte {
	var out []byte
	for _, b := range a.batches[i:j] {
		out = append(out, b...)
	}
	return out
}

// fill appends n random batches to l and records them.
func fill(t testing.TB, l *Log, a *appended, rng *rand.Rand, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		raw := build(t, l.EndOffset(), spec{
			n: 1 + rng.IntN(5), tsBase: 1_700_000_000_000 + l.EndOffset()*10,
			valSize: 10 + rng.IntN(300), epoch: -1,
		})
		if _, err := l.Append(raw); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		a.add(raw)
	}
}

// mustAppend appends raw and fails the test on error.
func mustAppend(t testing.TB, l *Log, raw []byte) AppendInfo {
	t.Helper()
	info, err := l.Append(raw)
	if err != nil {
		t.Fatalf("append at %d: %v", l.EndOffset(), err)
	}
	return info
}

// checkAll reads the whole log back through Read at every offset and
// through Batches, and compares with what was appended.
func checkAll(t testing.TB, l *Log, a *appended) {
	t.Helper()
	start := l.StartOffset()
	first := a.indexOf(start)
	if first < 0 {
		if l.EndOffset() != start {
			t.Fatalf("start %d not in appended data but end is %d", start, l.EndOffset())
		}
		return
	}
	for off := start; off < l.EndOffset(); off++ {
		got, err := l.ReadBytes(off, math.MaxInt32, math.MaxInt64, true)
		if err != nil {
			t.Fatalf("read %d: %v", off, err)
		}
		i := a.indexOf(off)
		if !bytes.HasPrefix(got, a.batches[i]) {
			t.Fatalf("read %d: does not start with its batch %d (got %d bytes)", off, i, len(got))
		}
		// Whatever came back must be whole consecutive batches.
		j := i
		rest := got
		for len(rest) > 0 {
			if j >= len(a.batches) || !bytes.HasPrefix(rest, a.batches[j]) {
				t.Fatalf("read %d: bytes diverge at batch %d", off, j)
			}
			rest = rest[len(a.batches[j]):]
			j++
		}
	}
	var all []byte
	err := l.Batches(start, math.MaxInt64, func(h batch.Header, raw []byte) error {
		all = append(all, raw...)
		return nil
	})
	if err != nil {
		t.Fatalf("batches: %v", err)
	}
	if want := a.concat(first, len(a.batches)); !bytes.Equal(all, want) {
		t.Fatalf("Batches returned %d bytes, want %d", len(all), len(want))
	}
	if want := a.bases[len(a.bases)-1]; l.EndOffset() <= want {
		t.Fatalf("end %d not past last base %d", l.EndOffset(), want)
	}
}

// listDir returns the names in dir.
func listDir(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func lastSegmentPath(t testing.TB, l *Log) string {
	t.Helper()
	segs := l.Segments()
	return segs[len(segs)-1].LogPath
}

func segPath(dir string, base int64, suffix string) string {
	return filepath.Join(dir, fileName(base, suffix))
}
