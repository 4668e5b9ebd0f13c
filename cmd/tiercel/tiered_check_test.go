package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tiercel/tiercel/internal/testenv"
	"github.com/tiercel/tiercel/internal/testproc"
)

// Helpers for the tiered tests of the real binary on a real MinIO. The
// bucket is read with minio-go and checked with a record-batch parser of
// the test's own, independently of the broker's S3 code and codec.

// TestMain stops the shared MinIO and removes its data after the tests.
func TestMain(m *testing.M) { testenv.Main(m) }

// tieredBrokerArgs are the arguments that run the real binary on srv's
// bucket under prefix; the MinIO credentials go in the environment.
func tieredBrokerArgs(t *testing.T, srv *testenv.MinIOServer, endpoint, dataDir, prefix string, overrides ...string) []string {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	// The metrics listener on a port of its own: the default (9644) may be
	// taken by another broker on this machine.
	args := []string{"--data-dir", dataDir, "--object-store", "s3://" + srv.Bucket + "/" + prefix,
		"--s3-endpoint", endpoint, "--s3-region", srv.Region, "--metrics-listen", "127.0.0.1:0"}
	for _, o := range overrides {
		args = append(args, "--override", o)
	}
	return args
}

// tieredValue is the value of record i: incompressible bytes that depend
// only on (seed, i).
func tieredValue(seed uint64, i int, size int) []byte {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	binary.LittleEndian.PutUint64(s[8:], uint64(i))
	v := make([]byte, size)
	_, _ = rand.NewChaCha8(s).Read(v)
	return v
}

type tieredSegment struct {
	Base        int64  `json:"base"`
	Next        int64  `json:"next"`
	Size        int64  `json:"size"`
	LeaderEpoch int32  `json:"leaderEpoch"`
	Key         string `json:"key"`
	Snapshot    bool   `json:"snapshot"`
}

type tieredManifest struct {
	Version        int64           `json:"version"`
	LogStartOffset int64           `json:"logStartOffset"`
	HighWatermark  int64           `json:"highWatermark"`
	Segments       []tieredSegment `json:"segments"`
}

func (m *tieredManifest) next() int64 {
	if m == nil || len(m.Segments) == 0 {
		return -1
	}
	return m.Segments[len(m.Segments)-1].Next
}

// tieredPartition is one partition directory in the bucket.
type tieredPartition struct {
	Dir      string
	Manifest *tieredManifest
	Objects  map[string]int64
}

func tieredExts(s tieredSegment) []string {
	exts := []string{".log", ".index", ".timeindex", ".epochs"}
	if s.Snapshot {
		exts = append(exts, ".snapshot")
	}
	return exts
}

// unreferenced lists the directory's objects its manifest does not name.
func (tp *tieredPartition) unreferenced() []string {
	named := map[string]bool{tp.Dir + "manifest": true}
	if tp.Manifest != nil {
		for _, s := range tp.Manifest.Segments {
			for _, ext := range tieredExts(s) {
				named[tp.Dir+s.Key[strings.LastIndexByte(s.Key, '/')+1:]+ext] = true
			}
		}
	}
	var out []string
	for k := range tp.Objects {
		if !named[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

var (
	tieredDirRE = regexp.MustCompile(`^topics/(.+)-([A-Za-z0-9_-]{22})/(0|[1-9][0-9]*)/(.+)$`)
	tieredObjRE = regexp.MustCompile(`^(\d{20})-(\d+)-([0-9a-f]{32})\.(log|index|timeindex|epochs|snapshot)$`)
	tieredCRC   = crc32.MakeTable(crc32.Castagnoli)
)

// tieredCheckBucket lists the bucket under prefix, checks the layout of
// DESIGN.md, parses every manifest and checks that every segment it names
// is complete: all its objects present, the .log of the recorded size and
// made of CRC-valid batches covering exactly its offsets. Orphans are
// returned, not judged.
//
// Listing and reading are not atomic: a broker at work may change a
// manifest between the two, so a failed check is repeated a few times
// and only one that keeps failing fails the test.
func tieredCheckBucket(t *testing.T, srv *testenv.MinIOServer, prefix string) map[string]*tieredPartition {
	t.Helper()
	var err error
	for try := 0; try < 20; try++ {
		var parts map[string]*tieredPartition
		if parts, err = tieredCheckBucketOnce(srv, prefix); err == nil {
			return parts
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("bucket check: %v", err)
	return nil
}

func tieredCheckBucketOnce(srv *testenv.MinIOServer, prefix string) (map[string]*tieredPartition, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mc := srv.Client()
	prefix = strings.TrimSuffix(prefix, "/") + "/"
	parts := map[string]*tieredPartition{}
	for obj := range mc.ListObjects(ctx, srv.Bucket, minio.ListObjectsOptions{Prefix: prefix + "topics/", Recursive: true}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("listing: %v", obj.Err)
		}
		m := tieredDirRE.FindStringSubmatch(strings.TrimPrefix(obj.Key, prefix))
		if m == nil || (m[4] != "manifest" && !tieredObjRE.MatchString(m[4])) {
			return nil, fmt.Errorf("object %q does not follow the layout", obj.Key)
		}
		id := m[1] + "/" + m[3]
		if parts[id] == nil {
			parts[id] = &tieredPartition{Dir: strings.TrimSuffix(obj.Key, m[4]), Objects: map[string]int64{}}
		}
		parts[id].Objects[obj.Key] = obj.Size
	}
	for id, tp := range parts {
		if _, ok := tp.Objects[tp.Dir+"manifest"]; !ok {
			continue
		}
		var m tieredManifest
		body, err := tieredGet(ctx, srv, tp.Dir+"manifest")
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, fmt.Errorf("manifest of %s: %v", id, err)
		}
		tp.Manifest = &m
		for i, s := range m.Segments {
			if i > 0 && s.Base != m.Segments[i-1].Next {
				return nil, fmt.Errorf("manifest of %s: gap before segment %d", id, i)
			}
			name := s.Key[strings.LastIndexByte(s.Key, '/')+1:]
			km := tieredObjRE.FindStringSubmatch(name + ".log")
			if km == nil {
				return nil, fmt.Errorf("manifest of %s names %q", id, s.Key)
			}
			if b, _ := strconv.ParseInt(km[1], 10, 64); b != s.Base {
				return nil, fmt.Errorf("manifest of %s names %q for base %d", id, s.Key, s.Base)
			}
			for _, ext := range tieredExts(s) {
				if _, ok := tp.Objects[tp.Dir+name+ext]; !ok {
					return nil, fmt.Errorf("manifest of %s names %s%s, which is not in the bucket", id, name, ext)
				}
			}
			logKey := tp.Dir + name + ".log"
			if tp.Objects[logKey] != s.Size {
				return nil, fmt.Errorf("%s: %d bytes, manifest says %d: a partial object", logKey, tp.Objects[logKey], s.Size)
			}
			logBody, err := tieredGet(ctx, srv, logKey)
			if err != nil {
				return nil, err
			}
			if err := tieredCheckBatches(logKey, logBody, s); err != nil {
				return nil, err
			}
		}
	}
	return parts, nil
}

func tieredGet(ctx context.Context, srv *testenv.MinIOServer, key string) ([]byte, error) {
	obj, err := srv.Client().GetObject(ctx, srv.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return b, nil
}

// tieredCheckBatches parses b as record batches v2 with valid CRC32Cs
// covering [s.Base, s.Next) in order.
func tieredCheckBatches(key string, b []byte, s tieredSegment) error {
	next := s.Base
	for pos := 0; pos < len(b); {
		if len(b)-pos < 61 {
			return fmt.Errorf("%s: %d trailing bytes", key, len(b)-pos)
		}
		base := int64(binary.BigEndian.Uint64(b[pos:]))
		n := 12 + int(int32(binary.BigEndian.Uint32(b[pos+8:])))
		if n < 61 || pos+n > len(b) || b[pos+16] != 2 {
			return fmt.Errorf("%s: bad batch at %d", key, pos)
		}
		if binary.BigEndian.Uint32(b[pos+17:]) != crc32.Checksum(b[pos+21:pos+n], tieredCRC) {
			return fmt.Errorf("%s: batch at %d fails its CRC", key, pos)
		}
		if base != next {
			return fmt.Errorf("%s: batch at %d has offset %d, want %d", key, pos, base, next)
		}
		next = base + int64(binary.BigEndian.Uint32(b[pos+23:])) + 1
		pos += n
	}
	if next != s.Next {
		return fmt.Errorf("%s: batches end at %d, manifest says %d", key, next, s.Next)
	}
	return nil
}

// tieredRead consumes partition p of topic from offset 0 up to end and
// returns the records.
func tieredRead(t *testing.T, addr, topic string, p int32, end int64) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(0)}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out []*kgo.Record
	for int64(len(out)) < end {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("partition %d: read %d of %d records", p, len(out), end)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch partition %d: %v", p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

// tieredProc starts the binary and returns it with its address.
func tieredProc(t *testing.T, args []string) *testproc.Proc {
	t.Helper()
	return testproc.Start(t, testproc.FreeAddr(t), args...)
}
