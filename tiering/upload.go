package tiering

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/tiercel/tiercel/tiering/objstore"
	"github.com/tiercel/tiercel/wire/batch"
)

// SegmentSource is a run of whole batches in a local segment file to
// offload: [BaseOffset, NextOffset) at [Position, Position+Size).
type SegmentSource struct {
	File       *os.File
	Position   int64
	Size       int64
	BaseOffset int64
	NextOffset int64
	// Epochs is the leader-epoch history covering the range.
	Epochs []EpochEntry
	// Snapshot is the producer state at NextOffset, or nil.
	Snapshot []byte
	// LogStartOffset, when above BaseOffset, is the partition's log start
	// (DeleteRecords moved it inside the first batch): the first segment
	// of an empty remote log then starts readable there, not at its base.
	LogStartOffset int64
}

// indexIntervalBytes spaces remote offset-index entries, as Kafka's
// index.interval.bytes does locally.
const indexIntervalBytes = 4096

// builtIndexes are the remote indexes of a segment, in Kafka's formats:
// the offset index holds (uint32 relative offset, uint32 position)
// entries, the time index (int64 timestamp, uint32 relative offset).
type builtIndexes struct {
	offsetIndex, timeIndex []byte
	minTS, maxTS           int64
}

// buildIndexes scans the batch headers of src with positioned reads.
// Positions in the index are relative to src.Position.
func buildIndexes(src SegmentSource) (builtIndexes, error) {
	out := builtIndexes{minTS: -1, maxTS: -1}
	var hdr [batch.HeaderSize]byte
	pos := int64(0)
	sinceIndex := int64(indexIntervalBytes) // index the first batch
	next := src.BaseOffset
	for pos < src.Size {
		if _, err := src.File.ReadAt(hdr[:], src.Position+pos); err != nil {
			return out, fmt.Errorf("tiering: read batch header at %d: %w", src.Position+pos, err)
		}
		h, err := batch.ParseHeader(hdr[:])
		if err != nil {
			return out, fmt.Errorf("tiering: batch at %d: %w", src.Position+pos, err)
		}
		if h.BaseOffset != next {
			return out, fmt.Errorf("tiering: batch at %d has offset %d, expected %d", src.Position+pos, h.BaseOffset, next)
		}
		if pos+int64(h.Size()) > src.Size {
			return out, fmt.Errorf("tiering: batch at %d overruns the segment", src.Position+pos)
		}
		rel := uint32(h.BaseOffset - src.BaseOffset)
		if sinceIndex >= indexIntervalBytes {
			out.offsetIndex = binary.BigEndian.AppendUint32(out.offsetIndex, rel)
			out.offsetIndex = binary.BigEndian.AppendUint32(out.offsetIndex, uint32(pos))
			sinceIndex = 0
		}
		if out.minTS < 0 {
			out.minTS = h.MaxTimestamp
		}
		if h.MaxTimestamp > out.maxTS {
			out.maxTS = h.MaxTimestamp
			out.timeIndex = binary.BigEndian.AppendUint64(out.timeIndex, uint64(h.MaxTimestamp))
			out.timeIndex = binary.BigEndian.AppendUint32(out.timeIndex, uint32(h.LastOffset()-src.BaseOffset))
		}
		sinceIndex += int64(h.Size())
		pos += int64(h.Size())
		next = h.NextOffset()
	}
	if next != src.NextOffset {
		return out, fmt.Errorf("tiering: segment range ends at offset %d, expected %d", next, src.NextOffset)
	}
	return out, nil
}

// newObjectKey is unique per upload attempt, so a retried or concurrent
// upload never overwrites an object a manifest may already name.
func newObjectKey(id PartitionID, base int64, epoch int32) string {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		panic(err)
	}
	return fmt.Sprintf("%s%020d-%d-%s", id.Prefix(), base, epoch, hex.EncodeToString(u[:]))
}

// uploadObjects puts every object of a segment and returns its manifest
// entry. Nothing refers to the objects until the caller records the entry
// in the manifest; if it never does, the sweeper removes them.
func uploadObjects(ctx context.Context, store objstore.ObjectStore, id PartitionID, src SegmentSource, epoch int32, nowMs int64) (Segment, error) {
	idx, err := buildIndexes(src)
	if err != nil {
		return Segment{}, err
	}
	seg := Segment{
		BaseOffset:   src.BaseOffset,
		NextOffset:   src.NextOffset,
		Size:         src.Size,
		MinTimestamp: idx.minTS,
		MaxTimestamp: idx.maxTS,
		LeaderEpoch:  epoch,
		Epochs:       src.Epochs,
		Key:          newObjectKey(id, src.BaseOffset, epoch),
		HasSnapshot:  src.Snapshot != nil,
		UploadedMs:   nowMs,
	}
	epochs, err := json.Marshal(src.Epochs)
	if err != nil {
		return Segment{}, err
	}
	// The small objects first: a crash before the log object leaves only
	// orphans, which the sweeper removes.
	small := []struct {
		key  string
		body []byte
	}{
		{seg.IndexKey(), idx.offsetIndex},
		{seg.TimeIndexKey(), idx.timeIndex},
		{seg.EpochsKey(), epochs},
	}
	if src.Snapshot != nil {
		small = append(small, struct {
			key  string
			body []byte
		}{seg.SnapshotKey(), src.Snapshot})
	}
	for _, o := range small {
		if _, err := store.Put(ctx, o.key, bytes.NewReader(o.body), int64(len(o.body)), objstore.PutOptions{}); err != nil {
			return Segment{}, fmt.Errorf("tiering: upload %s: %w", o.key, err)
		}
	}
	body := io.NewSectionReader(src.File, src.Position, src.Size)
	if _, err := store.Put(ctx, seg.LogKey(), body, src.Size, objstore.PutOptions{}); err != nil {
		return Segment{}, fmt.Errorf("tiering: upload %s: %w", seg.LogKey(), err)
	}
	return seg, nil
}
