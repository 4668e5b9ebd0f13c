// Package tiering moves sealed segments to object storage and reads them
// back. Each partition's remote copy is described by a manifest, a small
// document written by compare-and-swap only after every object it names
// has been uploaded, and fenced by the leader epoch of its writer.
//
// Layout under the store (whose own prefix comes from its URL):
//
//	topics/<topic>-<topicId>/<partition>/manifest
//	topics/<topic>-<topicId>/<partition>/<20-digit base>-<epoch>-<uuid>.log|.index|.timeindex|.epochs|.snapshot
//
// The package knows record batches and files; it knows nothing of Kafka
// requests.
package tiering

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/tiercel/tiercel/tiering/objstore"
)

// Errors, classified by callers.
var (
	// ErrFenced means a leader with a newer epoch has written the
	// manifest: this broker must stop offloading the partition.
	ErrFenced = errors.New("tiering: manifest written by a newer leader epoch")
	// ErrNotRemote means the offset is not in the remote tier.
	ErrNotRemote = errors.New("tiering: offset not in the remote tier")
	// ErrCorrupt means remote bytes failed verification; they are never
	// served.
	ErrCorrupt = errors.New("tiering: remote data failed verification")
)

// PartitionID names one partition's remote directory. The topic id makes
// a recreated topic's directory distinct from the deleted one's.
type PartitionID struct {
	Topic     string
	TopicID   string // Kafka's base64 rendering
	Partition int32
}

// TopicPrefix is the directory of every partition of the topic.
func TopicPrefix(topic, topicID string) string {
	return fmt.Sprintf("topics/%s-%s/", topic, topicID)
}

// Prefix is the partition's directory, ending in '/'.
func (p PartitionID) Prefix() string {
	return fmt.Sprintf("%s%d/", TopicPrefix(p.Topic, p.TopicID), p.Partition)
}

// ManifestKey is the partition's manifest.
func (p PartitionID) ManifestKey() string { return p.Prefix() + "manifest" }

func (p PartitionID) String() string { return fmt.Sprintf("%s-%d", p.Topic, p.Partition) }

// EpochEntry is one leader epoch and the offset it started at.
type EpochEntry struct {
	Epoch       int32 `json:"epoch"`
	StartOffset int64 `json:"start"`
}

// Segment is one offloaded segment.
type Segment struct {
	BaseOffset int64 `json:"base"`
	// NextOffset is one past the last offset in the segment.
	NextOffset   int64 `json:"next"`
	Size         int64 `json:"size"`
	MinTimestamp int64 `json:"minTs"` // first batch's max timestamp, for time lookups
	MaxTimestamp int64 `json:"maxTs"`
	// LeaderEpoch is the epoch of the leader that uploaded it.
	LeaderEpoch int32 `json:"leaderEpoch"`
	// Epochs is the slice of the leader-epoch history covering it.
	Epochs []EpochEntry `json:"epochs"`
	// Key is the common name of its objects, without extension.
	Key string `json:"key"`
	// HasSnapshot reports a producer snapshot at NextOffset.
	HasSnapshot bool `json:"snapshot,omitempty"`
	// UploadedMs is when the manifest recorded it.
	UploadedMs int64 `json:"uploadedMs"`
}

// LogKey and the others name the segment's objects.
func (s *Segment) LogKey() string       { return s.Key + ".log" }
func (s *Segment) IndexKey() string     { return s.Key + ".index" }
func (s *Segment) TimeIndexKey() string { return s.Key + ".timeindex" }
func (s *Segment) EpochsKey() string    { return s.Key + ".epochs" }
func (s *Segment) SnapshotKey() string  { return s.Key + ".snapshot" }

// objectKeys lists every object of the segment.
func (s *Segment) objectKeys() []string {
	keys := []string{s.LogKey(), s.IndexKey(), s.TimeIndexKey(), s.EpochsKey()}
	if s.HasSnapshot {
		keys = append(keys, s.SnapshotKey())
	}
	return keys
}

// Manifest is a partition's remote log: its segments in offset order.
// Values handed out are shared; Clone before changing.
type Manifest struct {
	// Version increases with every write, so no two versions have the same
	// bytes (S3 keeps an ETag for identical content).
	Version int64 `json:"version"`
	// LeaderEpoch is the highest leader epoch that has written this
	// manifest. A writer with an older epoch is fenced.
	LeaderEpoch int32 `json:"leaderEpoch"`
	// LogStartOffset is the remote log start: DeleteRecords and retention
	// move it forward. Offsets below it are gone even if a segment holding
	// them remains.
	LogStartOffset int64 `json:"logStartOffset"`
	// HighWatermark is the leader's high watermark when it last wrote the
	// manifest: after a total loss of local disks, HighWatermark minus
	// NextOffset bounds what was lost.
	HighWatermark int64     `json:"highWatermark"`
	Segments      []Segment `json:"segments"`
}

// Clone returns a deep copy.
func (m *Manifest) Clone() *Manifest {
	out := *m
	out.Segments = make([]Segment, len(m.Segments))
	for i, s := range m.Segments {
		s.Epochs = append([]EpochEntry(nil), s.Epochs...)
		out.Segments[i] = s
	}
	return &out
}

// Empty reports a manifest with no segments.
func (m *Manifest) Empty() bool { return len(m.Segments) == 0 }

// StartOffset is the first offset readable remotely, or -1.
func (m *Manifest) StartOffset() int64 {
	if m.Empty() {
		return -1
	}
	return max(m.LogStartOffset, m.Segments[0].BaseOffset)
}

// NextOffset is one past the last offloaded offset, or -1.
func (m *Manifest) NextOffset() int64 {
	if m.Empty() {
		return -1
	}
	return m.Segments[len(m.Segments)-1].NextOffset
}

// Size is the bytes of every remote segment.
func (m *Manifest) Size() int64 {
	var n int64
	for _, s := range m.Segments {
		n += s.Size
	}
	return n
}

// Find returns the index of the segment holding offset, or -1.
func (m *Manifest) Find(offset int64) int {
	if offset < m.StartOffset() {
		return -1
	}
	i := sort.Search(len(m.Segments), func(i int) bool { return m.Segments[i].NextOffset > offset })
	if i == len(m.Segments) || m.Segments[i].BaseOffset > offset {
		return -1
	}
	return i
}

// Epochs merges the segments' epoch slices into one history.
func (m *Manifest) Epochs() []EpochEntry {
	var out []EpochEntry
	for _, s := range m.Segments {
		for _, e := range s.Epochs {
			if n := len(out); n > 0 && out[n-1].Epoch >= e.Epoch {
				continue
			}
			out = append(out, e)
		}
	}
	return out
}

// check verifies the manifest's invariants: segments in order, no overlap.
func (m *Manifest) check() error {
	for i, s := range m.Segments {
		if s.NextOffset <= s.BaseOffset || s.Size <= 0 || s.Key == "" {
			return fmt.Errorf("segment %d is malformed: %+v", i, s)
		}
		if i > 0 && s.BaseOffset != m.Segments[i-1].NextOffset {
			return fmt.Errorf("segment %d starts at %d, previous ends at %d", i, s.BaseOffset, m.Segments[i-1].NextOffset)
		}
	}
	return nil
}

// manifestStore reads and writes one partition's manifest by CAS. It
// caches the last version it saw.
type manifestStore struct {
	store objstore.ObjectStore
	id    PartitionID

	mu     sync.Mutex // guards m, etag, loaded
	m      *Manifest
	etag   string
	loaded bool
}

func (s *manifestStore) current() *Manifest {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		return &Manifest{}
	}
	return s.m
}

// load reads the manifest from the store.
func (s *manifestStore) load(ctx context.Context) (*Manifest, error) {
	rc, attrs, err := s.store.Get(ctx, s.id.ManifestKey())
	if objstore.IsNotFound(err) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.m, s.etag, s.loaded = &Manifest{}, "", true
		return s.m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tiering: read manifest of %s: %w", s.id, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("tiering: read manifest of %s: %w", s.id, err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: manifest of %s: %v", ErrCorrupt, s.id, err)
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("%w: manifest of %s: %v", ErrCorrupt, s.id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m, s.etag, s.loaded = &m, attrs.ETag, true
	return &m, nil
}

// update applies fn to a copy of the manifest and writes it by CAS, as
// leader epoch epoch. A lost CAS rereads and retries; a manifest written by
// a newer epoch fails with ErrFenced. fn returning errNoChange skips the
// write.
func (s *manifestStore) update(ctx context.Context, epoch int32, fn func(m *Manifest) error) (*Manifest, error) {
	for attempt := 0; ; attempt++ {
		s.mu.Lock()
		loaded := s.loaded
		s.mu.Unlock()
		if !loaded {
			if _, err := s.load(ctx); err != nil {
				return nil, err
			}
		}
		s.mu.Lock()
		cur, etag := s.m, s.etag
		s.mu.Unlock()
		if cur.LeaderEpoch > epoch {
			return nil, fmt.Errorf("%w: %s at epoch %d, we are %d", ErrFenced, s.id, cur.LeaderEpoch, epoch)
		}
		next := cur.Clone()
		if err := fn(next); err != nil {
			if errors.Is(err, errNoChange) {
				return cur, nil
			}
			return nil, err
		}
		if err := next.check(); err != nil {
			return nil, fmt.Errorf("tiering: refusing to write a bad manifest for %s: %w", s.id, err)
		}
		next.Version = cur.Version + 1
		next.LeaderEpoch = epoch
		b, err := json.Marshal(next)
		if err != nil {
			return nil, err
		}
		attrs, err := s.store.Put(ctx, s.id.ManifestKey(), bytes.NewReader(b), int64(len(b)),
			objstore.PutOptions{IfMatch: etag, IfNoneMatch: etag == ""})
		if err == nil {
			s.mu.Lock()
			s.m, s.etag = next, attrs.ETag
			s.mu.Unlock()
			return next, nil
		}
		if !objstore.IsPreconditionFailed(err) || attempt >= 10 {
			// The outcome of a failed conditional put may be unknown;
			// reload before the next attempt so we never build on a
			// version we are not sure of.
			s.mu.Lock()
			s.loaded = false
			s.mu.Unlock()
			return nil, fmt.Errorf("tiering: write manifest of %s: %w", s.id, err)
		}
		if _, err := s.load(ctx); err != nil {
			return nil, err
		}
	}
}

var errNoChange = errors.New("no change")
