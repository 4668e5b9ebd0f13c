package tiering

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/tiercel/tiercel/cache"
	"github.com/tiercel/tiercel/tiering/objstore"
	"github.com/tiercel/tiercel/wire/batch"
)

// Config configures a Tier.
type Config struct {
	// ChunkBytes is the size of the aligned ranges read from remote
	// segments and cached (tiercel.remote.fetch.chunk.bytes).
	ChunkBytes int64
	// PrefetchChunks is how many chunks ahead of a sequential reader are
	// loaded in the background.
	PrefetchChunks int
	// ReadWorkers bounds the remote reads in progress, so a slow object
	// store cannot take every goroutine the fetch path has.
	ReadWorkers int
}

// DefaultConfig returns 4 MiB chunks, two chunks of prefetch and eight
// read workers.
func DefaultConfig() Config { return Config{ChunkBytes: 4 << 20, PrefetchChunks: 2, ReadWorkers: 8} }

// Tier is this broker's view of the remote tier: one RemoteLog per
// partition, sharing the object store, the chunk cache and the read pool.
type Tier struct {
	store  objstore.ObjectStore
	cache  *cache.Cache
	cfg    Config
	logger *slog.Logger
	now    func() time.Time
	sem    chan struct{}

	mu   sync.Mutex // guards logs
	logs map[PartitionID]*RemoteLog
}

// New returns a Tier. The cache may be shared with nothing else.
func New(store objstore.ObjectStore, c *cache.Cache, cfg Config, logger *slog.Logger) *Tier {
	def := DefaultConfig()
	if cfg.ChunkBytes <= 0 {
		cfg.ChunkBytes = def.ChunkBytes
	}
	if cfg.PrefetchChunks < 0 {
		cfg.PrefetchChunks = 0
	}
	if cfg.ReadWorkers <= 0 {
		cfg.ReadWorkers = def.ReadWorkers
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Tier{store: store, cache: c, cfg: cfg, logger: logger, now: time.Now,
		sem: make(chan struct{}, cfg.ReadWorkers), logs: map[PartitionID]*RemoteLog{}}
}

// Store is the object store behind the tier.
func (t *Tier) Store() objstore.ObjectStore { return t.store }

// Cache is the chunk cache.
func (t *Tier) Cache() *cache.Cache { return t.cache }

// Log returns the partition's remote log handle, creating it on first use.
func (t *Tier) Log(id PartitionID) *RemoteLog {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.logs[id]
	if r == nil {
		r = &RemoteLog{t: t, id: id, ms: manifestStore{store: t.store, id: id}}
		t.logs[id] = r
	}
	return r
}

// Forget drops the handle of a partition this broker no longer hosts.
func (t *Tier) Forget(id PartitionID) {
	t.mu.Lock()
	delete(t.logs, id)
	t.mu.Unlock()
}

// RemoteLog is one partition's remote copy.
type RemoteLog struct {
	t  *Tier
	id PartitionID
	ms manifestStore
}

// ID names the partition.
func (r *RemoteLog) ID() PartitionID { return r.id }

// Manifest returns the last manifest seen, without I/O.
func (r *RemoteLog) Manifest() *Manifest { return r.ms.current() }

// Load reads the manifest from the store.
func (r *RemoteLog) Load(ctx context.Context) (*Manifest, error) { return r.ms.load(ctx) }

// Offload uploads src and then records it in the manifest, as leader
// epoch epoch. The manifest is written only after every object is in the
// store, and only if src continues the remote log exactly.
func (r *RemoteLog) Offload(ctx context.Context, src SegmentSource, epoch int32, hw int64) (Segment, error) {
	m := r.ms.current()
	if !m.Empty() && src.BaseOffset != m.NextOffset() {
		return Segment{}, fmt.Errorf("tiering: %s: segment starts at %d, remote log ends at %d", r.id, src.BaseOffset, m.NextOffset())
	}
	if m.LeaderEpoch > epoch {
		return Segment{}, fmt.Errorf("%w: %s at epoch %d, we are %d", ErrFenced, r.id, m.LeaderEpoch, epoch)
	}
	seg, err := uploadObjects(ctx, r.t.store, r.id, src, epoch, r.t.now().UnixMilli())
	if err != nil {
		return Segment{}, err
	}
	_, err = r.ms.update(ctx, epoch, func(m *Manifest) error {
		if !m.Empty() && m.NextOffset() != seg.BaseOffset {
			return fmt.Errorf("tiering: %s: remote log now ends at %d, segment starts at %d", r.id, m.NextOffset(), seg.BaseOffset)
		}
		if m.Empty() && seg.NextOffset <= m.LogStartOffset {
			// DeleteRecords emptied the manifest while we uploaded.
			return fmt.Errorf("tiering: %s: segment [%d, %d) is below the remote log start %d", r.id, seg.BaseOffset, seg.NextOffset, m.LogStartOffset)
		}
		if m.Empty() {
			m.LogStartOffset = max(m.LogStartOffset, seg.BaseOffset, src.LogStartOffset)
		}
		m.Segments = append(m.Segments, seg)
		m.HighWatermark = max(m.HighWatermark, hw)
		return nil
	})
	if err != nil {
		// The objects are orphans now; the sweeper removes them.
		return Segment{}, err
	}
	return seg, nil
}

// SetStartOffset moves the remote log start forward (DeleteRecords,
// retention) and drops the segments wholly below it from the manifest.
// It returns the dropped segments, whose objects the caller deletes after
// the manifest no longer names them.
func (r *RemoteLog) SetStartOffset(ctx context.Context, epoch int32, offset int64) ([]Segment, error) {
	var dropped []Segment
	_, err := r.ms.update(ctx, epoch, func(m *Manifest) error {
		dropped = dropped[:0]
		if offset <= m.LogStartOffset {
			return errNoChange
		}
		// Recorded even with no segment yet: an upload in flight must not
		// bring deleted records back.
		m.LogStartOffset = offset
		keep := m.Segments[:0]
		for _, s := range m.Segments {
			if s.NextOffset <= offset {
				dropped = append(dropped, s)
				continue
			}
			keep = append(keep, s)
		}
		m.Segments = keep
		return nil
	})
	return dropped, err
}

// DropSegments removes the oldest segments while drop says so, moving the
// log start past them, for retention. It returns what it removed.
func (r *RemoteLog) DropSegments(ctx context.Context, epoch int32, drop func(Segment) bool) ([]Segment, error) {
	var dropped []Segment
	_, err := r.ms.update(ctx, epoch, func(m *Manifest) error {
		dropped = dropped[:0]
		n := 0
		for n < len(m.Segments) && drop(m.Segments[n]) {
			dropped = append(dropped, m.Segments[n])
			n++
		}
		if n == 0 {
			return errNoChange
		}
		m.LogStartOffset = max(m.LogStartOffset, m.Segments[n-1].NextOffset)
		m.Segments = append([]Segment(nil), m.Segments[n:]...)
		return nil
	})
	return dropped, err
}

// DeleteObjects deletes the objects of segments no manifest names any
// more. A failure leaves orphans for the sweeper.
func (r *RemoteLog) DeleteObjects(ctx context.Context, segs []Segment) error {
	var errs []error
	for _, s := range segs {
		for _, k := range s.objectKeys() {
			if err := r.t.store.Delete(ctx, k); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// acquire takes a read worker.
func (t *Tier) acquire(ctx context.Context) error {
	select {
	case t.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t *Tier) release() { <-t.sem }

// chunkKey names a cached chunk.
func chunkKey(objectKey string, chunk int64) string { return fmt.Sprintf("%s#%d", objectKey, chunk) }

// chunk returns chunk number i of the segment's log object, from the cache
// or with one ranged GET.
func (r *RemoteLog) chunk(ctx context.Context, seg *Segment, i int64) ([]byte, error) {
	size := r.t.cfg.ChunkBytes
	off := i * size
	n := min(size, seg.Size-off)
	if n <= 0 {
		return nil, fmt.Errorf("%w: chunk %d past the end of %s", ErrCorrupt, i, seg.LogKey())
	}
	key := seg.LogKey()
	return r.t.cache.Get(ctx, chunkKey(key, i), r.rangeLoader(key, off, n))
}

func (r *RemoteLog) rangeLoader(key string, off, n int64) cache.Loader {
	return func(ctx context.Context) ([]byte, error) {
		rc, err := r.t.store.GetRange(ctx, key, off, n)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		b := make([]byte, n)
		if _, err := io.ReadFull(rc, b); err != nil {
			return nil, fmt.Errorf("tiering: read %s [%d,+%d): %w", key, off, n, err)
		}
		return b, nil
	}
}

// prefetch loads the chunks after chunk i in the background.
func (r *RemoteLog) prefetch(seg *Segment, i int64) {
	size := r.t.cfg.ChunkBytes
	for j := i + 1; j <= i+int64(r.t.cfg.PrefetchChunks); j++ {
		off := j * size
		if off >= seg.Size {
			return
		}
		key := seg.LogKey()
		r.t.cache.Prefetch(chunkKey(key, j), r.rangeLoader(key, off, min(size, seg.Size-off)))
	}
}

// pieces returns the n bytes at pos of the segment's log object as slices
// of the cached chunks, without copying them. The slices are shared with
// the cache and must not be modified.
func (r *RemoteLog) pieces(ctx context.Context, seg *Segment, pos int64, n int64) ([][]byte, error) {
	if pos < 0 || n < 0 || pos+n > seg.Size {
		return nil, fmt.Errorf("%w: range [%d,+%d) outside %s (%d bytes)", ErrCorrupt, pos, n, seg.LogKey(), seg.Size)
	}
	size := r.t.cfg.ChunkBytes
	out := make([][]byte, 0, n/size+2)
	for n > 0 {
		i := pos / size
		c, err := r.chunk(ctx, seg, i)
		if err != nil {
			return nil, err
		}
		within := pos - i*size
		take := min(n, int64(len(c))-within)
		if take <= 0 {
			return nil, fmt.Errorf("%w: short chunk %d of %s", ErrCorrupt, i, seg.LogKey())
		}
		out = append(out, c[within:within+take:within+take])
		pos += take
		n -= take
	}
	return out, nil
}

// readAt returns n bytes at pos of the segment's log object: a slice of a
// cached chunk when they lie in one (read-only), or else a copy.
func (r *RemoteLog) readAt(ctx context.Context, seg *Segment, pos int64, n int64) ([]byte, error) {
	ps, err := r.pieces(ctx, seg, pos, n)
	if err != nil {
		return nil, err
	}
	if len(ps) == 1 {
		return ps[0], nil
	}
	return bytes.Join(ps, nil), nil
}

// smallObject reads a whole small object (an index) through the cache.
func (r *RemoteLog) smallObject(ctx context.Context, key string) ([]byte, error) {
	return r.t.cache.GetHot(ctx, key, func(ctx context.Context) ([]byte, error) {
		rc, _, err := r.t.store.Get(ctx, key)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			return nil, err
		}
		if b == nil {
			b = []byte{}
		}
		return b, nil
	})
}

// indexLookup returns the position of the last indexed batch at or
// before offset.
func (r *RemoteLog) indexLookup(ctx context.Context, seg *Segment, offset int64) (int64, error) {
	idx, err := r.smallObject(ctx, seg.IndexKey())
	if err != nil {
		return 0, err
	}
	if len(idx)%8 != 0 {
		return 0, fmt.Errorf("%w: index %s has %d bytes", ErrCorrupt, seg.IndexKey(), len(idx))
	}
	n := len(idx) / 8
	rel := offset - seg.BaseOffset
	i := sort.Search(n, func(i int) bool { return int64(binary.BigEndian.Uint32(idx[i*8:])) > rel })
	if i == 0 {
		return 0, nil
	}
	return int64(binary.BigEndian.Uint32(idx[(i-1)*8+4:])), nil
}

// header reads the batch header at pos.
func (r *RemoteLog) header(ctx context.Context, seg *Segment, pos int64) (batch.Header, error) {
	b, err := r.readAt(ctx, seg, pos, batch.HeaderSize)
	if err != nil {
		return batch.Header{}, err
	}
	h, err := batch.ParseHeader(b)
	if err != nil {
		return h, fmt.Errorf("%w: %s at %d: %v", ErrCorrupt, seg.LogKey(), pos, err)
	}
	if pos+int64(h.Size()) > seg.Size {
		return h, fmt.Errorf("%w: %s batch at %d overruns the object", ErrCorrupt, seg.LogKey(), pos)
	}
	return h, nil
}

// seek finds the position of the batch holding offset, scanning headers
// from the nearest index entry.
func (r *RemoteLog) seek(ctx context.Context, seg *Segment, offset int64) (int64, batch.Header, error) {
	pos, err := r.indexLookup(ctx, seg, offset)
	if err != nil {
		return 0, batch.Header{}, err
	}
	for pos < seg.Size {
		h, err := r.header(ctx, seg, pos)
		if err != nil {
			return 0, h, err
		}
		if h.NextOffset() > offset {
			return pos, h, nil
		}
		pos += int64(h.Size())
	}
	return 0, batch.Header{}, fmt.Errorf("%w: offset %d not found in %s", ErrCorrupt, offset, seg.LogKey())
}

// ReadResult is a remote read.
type ReadResult struct {
	// Pieces are whole, CRC-checked batches, in order: slices of the
	// cached chunks, so that a fetch writes them to the socket without a
	// copy. They are shared and must not be modified.
	Pieces     [][]byte
	NextOffset int64
}

// Len is the number of record bytes read.
func (r ReadResult) Len() int {
	n := 0
	for _, p := range r.Pieces {
		n += len(p)
	}
	return n
}

// Bytes returns the records as one slice (a copy when there are several
// pieces).
func (r ReadResult) Bytes() []byte {
	if len(r.Pieces) == 1 {
		return r.Pieces[0]
	}
	return bytes.Join(r.Pieces, nil)
}

// Read returns the batches from the one holding offset, up to maxBytes
// (the first batch whole when minOne, as KIP-74 asks), from one segment.
// Every batch's CRC is verified: corrupt bytes fail the read with
// ErrCorrupt and are never returned.
func (r *RemoteLog) Read(ctx context.Context, offset int64, maxBytes int, minOne bool) (ReadResult, error) {
	m := r.ms.current()
	i := m.Find(offset)
	if i < 0 {
		return ReadResult{}, fmt.Errorf("%w: %s offset %d, remote log is [%d, %d)", ErrNotRemote, r.id, offset, m.StartOffset(), m.NextOffset())
	}
	seg := &m.Segments[i]
	if err := r.t.acquire(ctx); err != nil {
		return ReadResult{}, err
	}
	defer r.t.release()
	start, h, err := r.seek(ctx, seg, offset)
	if err != nil {
		return ReadResult{}, err
	}
	// The base offset is outside the CRC: check that the batches served
	// are the ones asked for, contiguous and inside the segment.
	if h.BaseOffset > offset || h.BaseOffset < seg.BaseOffset {
		return ReadResult{}, fmt.Errorf("%w: %s batch at %d starts at offset %d, want one holding %d", ErrCorrupt, seg.LogKey(), start, h.BaseOffset, offset)
	}
	// Walk headers to find how much to return.
	end, next := start, h.BaseOffset
	for end < seg.Size {
		if end > start {
			if h, err = r.header(ctx, seg, end); err != nil {
				return ReadResult{}, err
			}
			if h.BaseOffset != next {
				return ReadResult{}, fmt.Errorf("%w: %s batch at %d starts at offset %d, want %d", ErrCorrupt, seg.LogKey(), end, h.BaseOffset, next)
			}
		}
		if h.NextOffset() > seg.NextOffset {
			return ReadResult{}, fmt.Errorf("%w: %s batch at %d ends at offset %d, past the segment's end %d", ErrCorrupt, seg.LogKey(), end, h.NextOffset(), seg.NextOffset)
		}
		size := int64(h.Size())
		if end+size-start > int64(maxBytes) && !(minOne && end == start) {
			break
		}
		end += size
		next = h.NextOffset()
	}
	if end == start {
		return ReadResult{NextOffset: offset}, nil
	}
	r.prefetch(seg, (end-1)/r.t.cfg.ChunkBytes)
	ps, err := r.pieces(ctx, seg, start, end-start)
	if err != nil {
		return ReadResult{}, err
	}
	if err := validatePieces(ps, func(h batch.Header, err error) error {
		return fmt.Errorf("%w: %s batch at offset %d: %v", ErrCorrupt, seg.LogKey(), h.BaseOffset, err)
	}); err != nil {
		return ReadResult{}, err
	}
	return ReadResult{Pieces: ps, NextOffset: next}, nil
}

// validatePieces checks the CRC and header of every batch in ps, which
// hold whole batches back to back. A batch is checked in place when it
// lies in one piece; one that spans pieces is assembled once to be checked.
func validatePieces(ps [][]byte, fail func(batch.Header, error) error) error {
	var carry []byte // a batch begun in an earlier piece
	for _, p := range ps {
		for len(p) > 0 {
			if len(carry) == 0 {
				if len(p) >= batch.HeaderSize {
					h, err := batch.ParseHeader(p)
					if err != nil {
						return fail(h, err)
					}
					if h.Size() <= len(p) {
						if _, err := batch.Validate(p[:h.Size()]); err != nil {
							return fail(h, err)
						}
						p = p[h.Size():]
						continue
					}
				}
				carry = append(carry, p...)
				break
			}
			// Complete the carried batch: its header first, then the rest.
			if len(carry) < batch.HeaderSize {
				take := min(batch.HeaderSize-len(carry), len(p))
				carry = append(carry, p[:take]...)
				p = p[take:]
				continue
			}
			h, err := batch.ParseHeader(carry)
			if err != nil {
				return fail(h, err)
			}
			take := min(h.Size()-len(carry), len(p))
			carry = append(carry, p[:take]...)
			p = p[take:]
			if len(carry) < h.Size() {
				continue // p is used up; the batch goes on in the next piece
			}
			if _, err := batch.Validate(carry); err != nil {
				return fail(h, err)
			}
			carry = carry[:0]
		}
	}
	if len(carry) > 0 {
		h, _ := batch.ParseHeader(carry)
		return fail(h, fmt.Errorf("%w: %d bytes of a batch left over", batch.ErrShort, len(carry)))
	}
	return nil
}

// OffsetForTimestamp finds the first record with a timestamp at or after
// ts in the remote tier. found is false when every remote record is older.
func (r *RemoteLog) OffsetForTimestamp(ctx context.Context, ts int64) (offset, timestamp int64, found bool, err error) {
	m := r.ms.current()
	for i := range m.Segments {
		seg := &m.Segments[i]
		if seg.MaxTimestamp < ts || seg.NextOffset <= m.StartOffset() {
			continue
		}
		if err := r.t.acquire(ctx); err != nil {
			return 0, 0, false, err
		}
		off, rts, ok, err := r.segmentOffsetForTimestamp(ctx, seg, max(m.StartOffset(), seg.BaseOffset), ts)
		r.t.release()
		if err != nil || ok {
			return off, rts, ok, err
		}
	}
	return -1, -1, false, nil
}

func (r *RemoteLog) segmentOffsetForTimestamp(ctx context.Context, seg *Segment, from, ts int64) (int64, int64, bool, error) {
	// The time index gives, for each new maximum, the last offset of its
	// batch: every record up to there is older than any later maximum.
	tidx, err := r.smallObject(ctx, seg.TimeIndexKey())
	if err != nil {
		return 0, 0, false, err
	}
	if len(tidx)%12 != 0 {
		return 0, 0, false, fmt.Errorf("%w: time index %s has %d bytes", ErrCorrupt, seg.TimeIndexKey(), len(tidx))
	}
	start := from
	for i := 0; i+12 <= len(tidx); i += 12 {
		if int64(binary.BigEndian.Uint64(tidx[i:])) >= ts {
			break
		}
		start = max(start, seg.BaseOffset+int64(binary.BigEndian.Uint32(tidx[i+8:]))+1)
	}
	if start >= seg.NextOffset {
		return 0, 0, false, nil
	}
	pos, h, err := r.seek(ctx, seg, start)
	if err != nil {
		return 0, 0, false, err
	}
	if h.BaseOffset > start || h.BaseOffset < seg.BaseOffset {
		return 0, 0, false, fmt.Errorf("%w: %s batch at %d starts at offset %d, want one holding %d", ErrCorrupt, seg.LogKey(), pos, h.BaseOffset, start)
	}
	for pos < seg.Size {
		if h.MaxTimestamp >= ts {
			raw, err := r.readAt(ctx, seg, pos, int64(h.Size()))
			if err != nil {
				return 0, 0, false, err
			}
			off, rts, ok, err := firstRecordAtOrAfter(raw, &h, start, ts)
			if err != nil || ok {
				return off, rts, ok, err
			}
		}
		pos += int64(h.Size())
		if pos >= seg.Size {
			break
		}
		prevNext := h.NextOffset()
		if h, err = r.header(ctx, seg, pos); err != nil {
			return 0, 0, false, err
		}
		if h.BaseOffset != prevNext {
			return 0, 0, false, fmt.Errorf("%w: %s batch at %d starts at offset %d, want %d", ErrCorrupt, seg.LogKey(), pos, h.BaseOffset, prevNext)
		}
	}
	return 0, 0, false, nil
}

// firstRecordAtOrAfter walks a batch's records for the first at or after
// offset from with a timestamp at or after ts.
func firstRecordAtOrAfter(raw []byte, h *batch.Header, from, ts int64) (int64, int64, bool, error) {
	if _, err := batch.Validate(raw); err != nil {
		return 0, 0, false, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	var off, rts int64
	found := false
	errStop := errors.New("stop")
	err := batch.Records(raw, func(rec batch.Record) error {
		o := h.BaseOffset + int64(rec.OffsetDelta)
		t := h.BaseTimestamp + rec.TimestampDelta
		if h.LogAppendTime() {
			t = h.MaxTimestamp
		}
		if o >= from && t >= ts {
			off, rts, found = o, t, true
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return 0, 0, false, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return off, rts, found, nil
}

// Snapshot returns the producer snapshot uploaded with seg.
func (r *RemoteLog) Snapshot(ctx context.Context, seg *Segment) ([]byte, error) {
	if !seg.HasSnapshot {
		return nil, nil
	}
	rc, _, err := r.t.store.Get(ctx, seg.SnapshotKey())
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// DeleteTopic removes every object of a topic: used when the topic is
// deleted. It lists rather than trusting manifests, so orphans go too.
func (t *Tier) DeleteTopic(ctx context.Context, topic, topicID string) (int, error) {
	var keys []string
	if err := t.store.List(ctx, TopicPrefix(topic, topicID), func(o objstore.ObjectInfo) error {
		keys = append(keys, o.Key)
		return nil
	}); err != nil {
		return 0, err
	}
	// Manifests last, so an interrupted delete still has them pointing at
	// (partly missing) data rather than data with no manifest.
	sort.SliceStable(keys, func(i, j int) bool { return !isManifest(keys[i]) && isManifest(keys[j]) })
	n := 0
	for _, k := range keys {
		if err := t.store.Delete(ctx, k); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func isManifest(key string) bool { return len(key) >= 9 && key[len(key)-9:] == "/manifest" }
