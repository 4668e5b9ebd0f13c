package broker

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"regexp"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/minio/minio-go/v7"

	"github.com/tiercel/tiercel/internal/testenv"
	"github.com/tiercel/tiercel/tiering/objstore"
)

// Helpers for the tiered tests on a real MinIO: the broker's S3 store, and
// an independent check of what it stored, made with minio-go and a
// record-batch parser of its own (neither the broker's S3 code nor its
// batch codec), against the layout of DESIGN.md:
//
//	<prefix>/topics/<topic>-<topicId>/<partition>/manifest
//	<prefix>/topics/<topic>-<topicId>/<partition>/<20-digit base>-<epoch>-<uuid>.log|.index|.timeindex|.epochs|.snapshot

// tieredRaceEnabled reports whether the test binary was built with -race, from
// its build information rather than a build tag.
func tieredRaceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// tieredS3Store returns the broker's own S3 store on the test bucket, under
// prefix.
func tieredS3Store(t testing.TB, srv *testenv.MinIOServer, prefix string) *objstore.S3 {
	t.Helper()
	s, err := objstore.NewS3(context.Background(), objstore.S3Config{
		Bucket: srv.Bucket, Prefix: prefix, Endpoint: srv.Endpoint, Region: srv.Region,
		Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// tieredValue is the value of record i of a test: size incompressible
// bytes that depend only on (seed, i), so a reader can check any record
// without keeping what was produced.
func tieredValue(seed uint64, i int, size int) []byte {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	binary.LittleEndian.PutUint64(s[8:], uint64(i))
	rng := rand.NewChaCha8(s)
	v := make([]byte, size)
	_, _ = rng.Read(v)
	return v
}

// bucketSegment is a manifest entry, decoded by the test itself.
type bucketSegment struct {
	Base        int64  `json:"base"`
	Next        int64  `json:"next"`
	Size        int64  `json:"size"`
	LeaderEpoch int32  `json:"leaderEpoch"`
	Key         string `json:"key"`
	Snapshot    bool   `json:"snapshot"`
	MinTs       int64  `json:"minTs"`
	MaxTs       int64  `json:"maxTs"`
}

type bucketManifest struct {
	Version        int64           `json:"version"`
	LeaderEpoch    int32           `json:"leaderEpoch"`
	LogStartOffset int64           `json:"logStartOffset"`
	HighWatermark  int64           `json:"highWatermark"`
	Segments       []bucketSegment `json:"segments"`
}

// start is the first readable offset, as the broker computes it.
func (m *bucketManifest) start() int64 {
	if len(m.Segments) == 0 {
		return -1
	}
	return max(m.LogStartOffset, m.Segments[0].Base)
}

func (m *bucketManifest) next() int64 {
	if len(m.Segments) == 0 {
		return -1
	}
	return m.Segments[len(m.Segments)-1].Next
}

// bucketPartition is one partition directory as found in the bucket.
type bucketPartition struct {
	Dir      string // <prefix>topics/<topic>-<id>/<p>/
	Manifest *bucketManifest
	Objects  map[string]int64 // key -> size
}

// unreferenced lists the objects of the directory that its manifest does
// not name.
func (bp *bucketPartition) unreferenced() []string {
	named := map[string]bool{bp.Dir + "manifest": true}
	if bp.Manifest != nil {
		for _, s := range bp.Manifest.Segments {
			for _, ext := range segmentExts(s) {
				named[bp.Dir+s.Key[strings.LastIndexByte(s.Key, '/')+1:]+ext] = true
			}
		}
	}
	var out []string
	for k := range bp.Objects {
		if !named[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func segmentExts(s bucketSegment) []string {
	exts := []string{".log", ".index", ".timeindex", ".epochs"}
	if s.Snapshot {
		exts = append(exts, ".snapshot")
	}
	return exts
}

var (
	topicDirRE  = regexp.MustCompile(`^topics/(.+)-([A-Za-z0-9_-]{22})/(0|[1-9][0-9]*)/(.+)$`)
	objectKeyRE = regexp.MustCompile(`^(\d{20})-(\d+)-([0-9a-f]{32})\.(log|index|timeindex|epochs|snapshot)$`)
)

// checkBucket lists the bucket under prefix with minio-go and checks the
// layout of every object under topics/, that every manifest parses and
// names objects that exist, and that every .log a manifest names holds
// CRC-valid record batches whose offsets are exactly the entry's range.
// It returns the partition directories found, by "<topic>/<partition>".
// Objects not named by any manifest (orphans) are allowed here; callers
// decide about them.
//
// Listing and reading are not atomic: a broker at work may change a
// manifest between the two. A failed check is therefore repeated a few
// times, and only one that keeps failing fails the test.
func checkBucket(t testing.TB, mc *minio.Client, bucket, prefix string) map[string]*bucketPartition {
	t.Helper()
	var err error
	for try := 0; try < 20; try++ {
		var parts map[string]*bucketPartition
		if parts, err = checkBucketOnce(mc, bucket, prefix); err == nil {
			return parts
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("bucket check: %v", err)
	return nil
}

func checkBucketOnce(mc *minio.Client, bucket, prefix string) (map[string]*bucketPartition, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	parts := map[string]*bucketPartition{}
	for obj := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix + "topics/", Recursive: true}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("listing %s: %v", bucket, obj.Err)
		}
		rel := strings.TrimPrefix(obj.Key, prefix)
		m := topicDirRE.FindStringSubmatch(rel)
		if m == nil {
			return nil, fmt.Errorf("object %q does not follow topics/<topic>-<topicId>/<partition>/...", obj.Key)
		}
		name := m[4]
		if name != "manifest" && !objectKeyRE.MatchString(name) {
			return nil, fmt.Errorf("object %q: %q is neither manifest nor <20-digit base>-<epoch>-<uuid>.<ext>", obj.Key, name)
		}
		id := m[1] + "/" + m[3]
		bp := parts[id]
		if bp == nil {
			bp = &bucketPartition{Dir: strings.TrimSuffix(obj.Key, name), Objects: map[string]int64{}}
			parts[id] = bp
		}
		if bp.Dir != strings.TrimSuffix(obj.Key, name) {
			return nil, fmt.Errorf("partition %s in two directories: %s and %s (topic recreated?)", id, bp.Dir, obj.Key)
		}
		bp.Objects[obj.Key] = obj.Size
	}
	for id, bp := range parts {
		if _, ok := bp.Objects[bp.Dir+"manifest"]; !ok {
			continue // orphans only
		}
		body, err := getBucketObject(ctx, mc, bucket, bp.Dir+"manifest")
		if err != nil {
			return nil, err
		}
		var m bucketManifest
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, fmt.Errorf("manifest of %s: %v", id, err)
		}
		bp.Manifest = &m
		for i, s := range m.Segments {
			if i > 0 && s.Base != m.Segments[i-1].Next {
				return nil, fmt.Errorf("manifest of %s: segment %d starts at %d, previous ends at %d", id, i, s.Base, m.Segments[i-1].Next)
			}
			base := s.Key[strings.LastIndexByte(s.Key, '/')+1:]
			km := objectKeyRE.FindStringSubmatch(base + ".log")
			if km == nil {
				return nil, fmt.Errorf("manifest of %s names %q", id, s.Key)
			}
			if b, _ := strconv.ParseInt(km[1], 10, 64); b != s.Base {
				return nil, fmt.Errorf("%s: key base %s, manifest base %d", s.Key, km[1], s.Base)
			}
			if e, _ := strconv.ParseInt(km[2], 10, 32); int32(e) != s.LeaderEpoch {
				return nil, fmt.Errorf("%s: key epoch %s, manifest epoch %d", s.Key, km[2], s.LeaderEpoch)
			}
			for _, ext := range segmentExts(s) {
				if _, ok := bp.Objects[bp.Dir+base+ext]; !ok {
					return nil, fmt.Errorf("manifest of %s names %s, which is not in the bucket", id, base+ext)
				}
			}
			logKey := bp.Dir + base + ".log"
			if bp.Objects[logKey] != s.Size {
				return nil, fmt.Errorf("%s is %d bytes, the manifest says %d", logKey, bp.Objects[logKey], s.Size)
			}
			logBody, err := getBucketObject(ctx, mc, bucket, logKey)
			if err != nil {
				return nil, err
			}
			if err := checkLogObject(logKey, logBody, s); err != nil {
				return nil, err
			}
			if n := bp.Objects[bp.Dir+base+".index"]; n%8 != 0 {
				return nil, fmt.Errorf("%s.index has %d bytes", base, n)
			}
			if n := bp.Objects[bp.Dir+base+".timeindex"]; n%12 != 0 {
				return nil, fmt.Errorf("%s.timeindex has %d bytes", base, n)
			}
		}
	}
	return parts, nil
}

func getBucketObject(ctx context.Context, mc *minio.Client, bucket, key string) ([]byte, error) {
	obj, err := mc.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
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

var bucketCRCTable = crc32.MakeTable(crc32.Castagnoli)

// checkLogObject parses a .log object as record batches v2: each batch's
// CRC32C must match and the batches must cover [s.Base, s.Next) exactly,
// in order.
func checkLogObject(key string, b []byte, s bucketSegment) error {
	next := s.Base
	for pos := 0; pos < len(b); {
		if len(b)-pos < 61 {
			return fmt.Errorf("%s: %d trailing bytes at %d", key, len(b)-pos, pos)
		}
		base := int64(binary.BigEndian.Uint64(b[pos:]))
		length := int(int32(binary.BigEndian.Uint32(b[pos+8:])))
		if length < 49 || pos+12+length > len(b) {
			return fmt.Errorf("%s: batch at %d has length %d", key, pos, length)
		}
		batchBytes := b[pos : pos+12+length]
		if batchBytes[16] != 2 {
			return fmt.Errorf("%s: batch at %d has magic %d", key, pos, batchBytes[16])
		}
		if crc := binary.BigEndian.Uint32(batchBytes[17:]); crc != crc32.Checksum(batchBytes[21:], bucketCRCTable) {
			return fmt.Errorf("%s: batch at %d (offset %d) fails its CRC", key, pos, base)
		}
		if base != next {
			return fmt.Errorf("%s: batch at %d starts at offset %d, want %d", key, pos, base, next)
		}
		next = base + int64(binary.BigEndian.Uint32(batchBytes[23:])) + 1
		pos += len(batchBytes)
	}
	if next != s.Next {
		return fmt.Errorf("%s: batches end at offset %d, the manifest says %d", key, next, s.Next)
	}
	return nil
}

// bucketPartitionOf returns the partition's directory for a topic, or fails.
func bucketPartitionOf(t testing.TB, parts map[string]*bucketPartition, topic string, p int32) *bucketPartition {
	t.Helper()
	bp := parts[fmt.Sprintf("%s/%d", topic, p)]
	if bp == nil || bp.Manifest == nil {
		t.Fatalf("no manifest for %s-%d in the bucket", topic, p)
	}
	return bp
}
