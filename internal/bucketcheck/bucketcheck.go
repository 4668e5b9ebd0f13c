// Package bucketcheck is the tests' independent view of a Tiercel bucket:
// it lists and reads objects with minio-go and parses record batches with
// its own few lines of code, not with the broker's S3 store or batch codec,
// and checks the layout of DESIGN.md:
//
//	<prefix>/topics/<topic>-<topicId>/<partition>/manifest
//	<prefix>/topics/<topic>-<topicId>/<partition>/<20-digit base>-<epoch>-<uuid>.log|.index|.timeindex|.epochs|.snapshot
//
// It is used by the broker's and the binary's tests on a real MinIO.
package bucketcheck

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
)

// Segment is a manifest entry, decoded by the test itself.
type Segment struct {
	Base        int64  `json:"base"`
	Next        int64  `json:"next"`
	Size        int64  `json:"size"`
	LeaderEpoch int32  `json:"leaderEpoch"`
	Key         string `json:"key"`
	Snapshot    bool   `json:"snapshot"`
	MinTs       int64  `json:"minTs"`
	MaxTs       int64  `json:"maxTs"`
}

// Manifest is a partition's remote manifest.
type Manifest struct {
	Version        int64     `json:"version"`
	LeaderEpoch    int32     `json:"leaderEpoch"`
	LogStartOffset int64     `json:"logStartOffset"`
	HighWatermark  int64     `json:"highWatermark"`
	Segments       []Segment `json:"segments"`
}

// Start is the first readable offset, as the broker computes it.
func (m *Manifest) Start() int64 {
	if m == nil || len(m.Segments) == 0 {
		return -1
	}
	return max(m.LogStartOffset, m.Segments[0].Base)
}

// Next is the offset after the last remote segment, or -1.
func (m *Manifest) Next() int64 {
	if m == nil || len(m.Segments) == 0 {
		return -1
	}
	return m.Segments[len(m.Segments)-1].Next
}

// Partition is one partition directory as found in the bucket.
type Partition struct {
	Dir      string // <prefix>topics/<topic>-<id>/<p>/
	Manifest *Manifest
	Objects  map[string]int64 // key -> size
}

// Unreferenced lists the objects of the directory that its manifest does
// not name.
func (bp *Partition) Unreferenced() []string {
	named := map[string]bool{bp.Dir + "manifest": true}
	if bp.Manifest != nil {
		for _, s := range bp.Manifest.Segments {
			for _, ext := range s.Exts() {
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

// Exts are the suffixes of the objects the segment has in the bucket.
func (s Segment) Exts() []string {
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

// MustCheck lists the bucket under prefix with minio-go and checks the
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
func MustCheck(t testing.TB, mc *minio.Client, bucket, prefix string) map[string]*Partition {
	t.Helper()
	var err error
	for try := 0; try < 20; try++ {
		var parts map[string]*Partition
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		parts, err = Check(ctx, mc, bucket, prefix)
		cancel()
		if err == nil {
			return parts
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("bucket check: %v", err)
	return nil
}

// Check is one pass of MustCheck: it fails on the first problem found.
func Check(ctx context.Context, mc *minio.Client, bucket, prefix string) (map[string]*Partition, error) {
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	parts := map[string]*Partition{}
	for obj := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix + "topics/", Recursive: true}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("listing %s: %v", bucket, obj.Err)
		}
		rel := strings.TrimPrefix(obj.Key, prefix)
		m := topicDirRE.FindStringSubmatch(rel)
		if m == nil {
			return nil, fmt.Errorf("object %q does not follow topics/<topic>-<topicId>/<partition>/<name>", obj.Key)
		}
		name := m[4]
		if name != "manifest" && !objectKeyRE.MatchString(name) {
			return nil, fmt.Errorf("object %q: %q is neither manifest nor <20-digit base>-<epoch>-<uuid>.<ext>", obj.Key, name)
		}
		id := m[1] + "/" + m[3]
		bp := parts[id]
		if bp == nil {
			bp = &Partition{Dir: strings.TrimSuffix(obj.Key, name), Objects: map[string]int64{}}
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
		body, err := Get(ctx, mc, bucket, bp.Dir+"manifest")
		if err != nil {
			return nil, err
		}
		var m Manifest
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
			for _, ext := range s.Exts() {
				if _, ok := bp.Objects[bp.Dir+base+ext]; !ok {
					return nil, fmt.Errorf("manifest of %s names %s, which is not in the bucket", id, base+ext)
				}
			}
			logKey := bp.Dir + base + ".log"
			if bp.Objects[logKey] != s.Size {
				return nil, fmt.Errorf("%s is %d bytes, the manifest says %d", logKey, bp.Objects[logKey], s.Size)
			}
			logBody, err := Get(ctx, mc, bucket, logKey)
			if err != nil {
				return nil, err
			}
			if err := checkLog(logKey, logBody, s); err != nil {
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

// Get reads a whole object with minio-go.
func Get(ctx context.Context, mc *minio.Client, bucket, key string) ([]byte, error) {
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

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// checkLog parses a .log object as record batches v2: each batch's
// CRC32C must match and the batches must cover [s.Base, s.Next) exactly,
// in order.
func checkLog(key string, b []byte, s Segment) error {
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
		if crc := binary.BigEndian.Uint32(batchBytes[17:]); crc != crc32.Checksum(batchBytes[21:], crcTable) {
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

// PartitionOf returns the partition's directory for a topic, or fails.
func PartitionOf(t testing.TB, parts map[string]*Partition, topic string, p int32) *Partition {
	t.Helper()
	bp := parts[fmt.Sprintf("%s/%d", topic, p)]
	if bp == nil || bp.Manifest == nil {
		t.Fatalf("no manifest for %s-%d in the bucket", topic, p)
	}
	return bp
}

// Value is the value of record i of a test: size incompressible bytes that
// depend only on (seed, i), so a reader can check any record read back
// without keeping what was produced.
func Value(seed uint64, i int, size int) []byte {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	binary.LittleEndian.PutUint64(s[8:], uint64(i))
	v := make([]byte, size)
	_, _ = rand.NewChaCha8(s).Read(v)
	return v
}

// TopicDir splits a key relative to the store's prefix,
// topics/<topic>-<topicId>/<partition>/<name>, into the topic directory's
// name ("<topic>-<topicId>") and the object's name.
func TopicDir(rel string) (dir, name string, ok bool) {
	m := topicDirRE.FindStringSubmatch(rel)
	if m == nil {
		return "", "", false
	}
	return m[1] + "-" + m[2], m[4], true
}
