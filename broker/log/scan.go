package log

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/tiercel/tiercel/wire/batch"
)

// scanResult is what a sequential scan of a segment learned.
type scanResult struct {
	ix         indexer
	validBytes int64 // bytes of whole, valid batches from the start
	next       int64 // offset after the last valid batch
	batches    int
	bad        error // why the scan stopped before the end; nil if it did not
}

// scanBufSize is the read size of sequential scans (recovery, rebuilds).
const scanBufSize = 1 << 20

// scanSegment reads a segment from the start and feeds each whole batch to
// a fresh indexer. It stops at the first batch that is torn, does not parse,
// does not start at the expected offset (offsets must be contiguous from
// the segment's base; the base offset is outside the CRC, so this is how a
// flipped offset bit is caught), or — with validate — fails its CRC. I/O
// errors are returned; everything else is reported in res.bad.
func scanSegment(f File, base, size int64, lim limits, validate bool) (res scanResult, err error) {
	res.ix = newIndexer(base)
	res.next = base
	br := bufio.NewReaderSize(io.NewSectionReader(f, 0, size), scanBufSize)
	var scratch []byte
	pos := int64(0)
	for pos < size {
		hdr, err := br.Peek(batch.HeaderSize)
		if err != nil {
			if errors.Is(err, io.EOF) {
				res.bad = fmt.Errorf("%w: %d trailing bytes at %d", batch.ErrShort, size-pos, pos)
				return res, nil
			}
			return res, err
		}
		h, err := batch.ParseHeader(hdr)
		if err != nil {
			res.bad = fmt.Errorf("batch at %d: %w", pos, err)
			return res, nil
		}
		n := int64(h.Size())
		switch {
		case pos+n > size:
			res.bad = fmt.Errorf("%w: batch at %d needs %d bytes, %d left", batch.ErrShort, pos, n, size-pos)
			return res, nil
		case h.BaseOffset != res.next:
			res.bad = fmt.Errorf("batch at %d has base offset %d, want %d", pos, h.BaseOffset, res.next)
			return res, nil
		case h.LastOffsetDelta < 0 || h.LastOffset()-base > maxRelOffset:
			res.bad = fmt.Errorf("batch at %d has bad last offset delta %d", pos, h.LastOffsetDelta)
			return res, nil
		case pos > maxSegmentPos:
			res.bad = fmt.Errorf("batch at %d lies past the largest indexable position", pos)
			return res, nil
		}
		if validate {
			var raw []byte
			if n <= scanBufSize {
				if raw, err = br.Peek(int(n)); err != nil {
					return res, err
				}
			} else {
				if cap(scratch) < int(n) {
					scratch = make([]byte, n)
				}
				raw = scratch[:n]
				if _, err := io.ReadFull(br, raw); err != nil {
					return res, err
				}
			}
			if _, err := batch.ValidateSparse(raw); err != nil {
				res.bad = fmt.Errorf("batch at %d: %w", pos, err)
				return res, nil
			}
			if n <= scanBufSize {
				br.Discard(int(n))
			}
		} else if _, err := br.Discard(int(n)); err != nil {
			return res, err
		}
		res.ix.add(&h, pos, lim)
		res.validBytes = pos + n
		res.next = h.NextOffset()
		res.batches++
		pos += n
	}
	return res, nil
}

// headerReader reads batch headers at arbitrary positions of a segment
// with pread, through a small buffer so that runs of small batches cost one
// syscall per buffer rather than one per batch.
type headerReader struct {
	f     File
	limit int64 // bytes of the file that hold published batches
	buf   []byte
	start int64 // file position of buf[0]
	n     int   // valid bytes in buf
}

const headerBufSize = 4096

var headerBufs = sync.Pool{New: func() any { b := make([]byte, headerBufSize); return &b }}

func newHeaderReader(f File, limit int64) *headerReader {
	return &headerReader{f: f, limit: limit, buf: *headerBufs.Get().(*[]byte)}
}

func (r *headerReader) close() {
	b := r.buf
	r.buf = nil
	headerBufs.Put(&b)
}

// header returns the header of the batch at pos and checks that the batch
// ends inside limit.
func (r *headerReader) header(pos int64) (batch.Header, error) {
	if pos+batch.HeaderSize > r.limit {
		return batch.Header{}, fmt.Errorf("%w: batch header at %d past the end %d", ErrCorruptLog, pos, r.limit)
	}
	if pos < r.start || pos+batch.HeaderSize > r.start+int64(r.n) {
		want := min(int64(len(r.buf)), r.limit-pos)
		n, err := r.f.ReadAt(r.buf[:want], pos)
		if int64(n) < batch.HeaderSize {
			if err == nil || errors.Is(err, io.EOF) {
				err = fmt.Errorf("%w: short read at %d", ErrCorruptLog, pos)
			}
			return batch.Header{}, err
		}
		r.start, r.n = pos, n
	}
	off := int(pos - r.start)
	h, err := batch.ParseHeader(r.buf[off : off+batch.HeaderSize])
	if err != nil {
		return h, fmt.Errorf("%w: batch at %d: %v", ErrCorruptLog, pos, err)
	}
	if pos+int64(h.Size()) > r.limit {
		return h, fmt.Errorf("%w: batch at %d of %d bytes runs past %d", ErrCorruptLog, pos, h.Size(), r.limit)
	}
	return h, nil
}

// seek walks headers from pos (a batch boundary at or before the target,
// from the offset index) to the batch containing offset, i.e. the first
// batch whose last offset is >= offset. found is false if no batch before
// the limit has one.
func (r *headerReader) seek(pos, offset int64) (h batch.Header, at int64, found bool, err error) {
	for pos < r.limit {
		h, err = r.header(pos)
		if err != nil {
			return h, pos, false, err
		}
		if h.LastOffset() >= offset {
			return h, pos, true, nil
		}
		pos += int64(h.Size())
	}
	return h, pos, false, nil
}

// tailScan feeds the batches in [pos, end) to ix, as recovery of a clean
// segment's tail and truncation do after keeping the index entries before
// pos. skipFirst says the batch at pos already has its index entry. It
// checks that offsets are contiguous and returns the offset after the last
// batch: the segment base if pos is 0 and there is no batch, -1 if pos is
// past the start and there is none.
func tailScan(f File, ix *indexer, pos, end int64, skipFirst bool, lim limits) (int64, error) {
	r := newHeaderReader(f, end)
	defer r.close()
	next := int64(-1)
	if pos == 0 {
		next = ix.base
	}
	for pos < end {
		h, err := r.header(pos)
		if err != nil {
			return next, err
		}
		switch {
		case next >= 0 && h.BaseOffset != next:
			return next, fmt.Errorf("%w: batch at %d has base offset %d, want %d", ErrCorruptLog, pos, h.BaseOffset, next)
		case h.BaseOffset < ix.base || h.LastOffsetDelta < 0 || h.LastOffset()-ix.base > maxRelOffset:
			return next, fmt.Errorf("%w: batch at %d has offsets %d+%d outside the segment", ErrCorruptLog, pos, h.BaseOffset, h.LastOffsetDelta)
		case pos > maxSegmentPos:
			return next, fmt.Errorf("%w: batch at %d lies past the largest indexable position", ErrCorruptLog, pos)
		}
		if skipFirst {
			ix.observe(&h)
			ix.bytesSince = int64(h.Size())
			skipFirst = false
		} else {
			ix.add(&h, pos, lim)
		}
		next = h.NextOffset()
		pos += int64(h.Size())
	}
	return next, nil
}
