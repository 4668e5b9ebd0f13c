package log

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/tiercel/tiercel/wire/batch"
)

// ReadResult is a byte range of one segment file, made of whole batches.
type ReadResult struct {
	// File is the segment file; nil when Size is 0. Read it only with
	// positional calls (ReadAt, sendfile with an explicit offset): other
	// readers share it.
	File     *os.File
	Position int64
	Size     int64
	// FirstOffset is the base offset of the first batch returned, which
	// may be below the offset asked for (the batch containing it).
	FirstOffset int64
	// NextOffset is the offset after the last batch returned, where the
	// next read continues; the offset asked for when nothing is returned.
	NextOffset int64
	// Release gives back the reference that keeps File open. It is never
	// nil and may be called more than once.
	Release func()
}

func emptyResult(from int64) ReadResult {
	return ReadResult{FirstOffset: from, NextOffset: from, Release: func() {}}
}

// Read returns the range of whole batches to send for a fetch at from.
//
// The range starts with the batch containing from and lies in a single
// segment. It stops before any batch whose base offset is >= maxOffset (the
// high watermark for consumers, the LEO for followers) and before a batch
// that would make it exceed maxBytes, except that with minOneBatch the first
// batch is returned whole whatever its size (KIP-74). from below
// StartOffset() or above EndOffset() is ErrOffsetOutOfRange; from at the
// end (or at maxOffset) gives an empty result.
//
// The result pins the segment file until Release: it stays readable even
// if retention deletes the segment or the log closes meanwhile. A
// concurrent TruncateTo below the range can still shorten the file.
func (l *Log) Read(from int64, maxBytes int, maxOffset int64, minOneBatch bool) (ReadResult, error) {
	for {
		v, err := l.view()
		if err != nil {
			return ReadResult{}, err
		}
		if from < v.start || from > v.leo {
			return ReadResult{}, fmt.Errorf("%w: %d is outside [%d, %d]", ErrOffsetOutOfRange, from, v.start, v.leo)
		}
		if from == v.leo || from >= maxOffset {
			return emptyResult(from), nil
		}
		raced := false
		for i := v.find(from); i < len(v.segs); i++ {
			s := v.segs[i]
			if !s.file.acquire() {
				raced = true // deleted since view(); look again
				break
			}
			res, found, err := l.readSegment(s, from, maxBytes, maxOffset, minOneBatch)
			if err != nil || !found || res.Size == 0 {
				s.file.release()
			}
			if err != nil {
				return ReadResult{}, err
			}
			if found {
				if res.Size == 0 {
					return emptyResult(from), nil
				}
				var once sync.Once
				res.Release = func() { once.Do(s.file.release) }
				return res, nil
			}
		}
		if !raced {
			return emptyResult(from), nil
		}
	}
}

// readSegment resolves a read inside one segment. found is false if the
// segment holds no batch containing from or after it (move to the next
// segment). The caller holds a file reference.
func (l *Log) readSegment(s *segment, from int64, maxBytes int, maxOffset int64, minOneBatch bool) (res ReadResult, found bool, err error) {
	sv, err := s.view(l.fs, l.config().limits(), l.logger)
	if err != nil {
		return res, false, err
	}
	if from >= sv.next {
		return res, false, nil
	}
	r := newHeaderReader(s.file.f, sv.size)
	defer r.close()
	first, start, ok, err := r.seek(lookupOffset(sv.idx, s.base, from), from)
	if err != nil || !ok {
		return res, false, err
	}
	if first.BaseOffset >= maxOffset {
		return res, true, nil
	}
	// No read can use more than the segment, and capping keeps
	// start+budget from overflowing for maxBytes near MaxInt.
	budget := min(int64(max(maxBytes, 0)), sv.size)
	end, next := start+int64(first.Size()), first.NextOffset()
	if end-start > budget && !minOneBatch {
		return res, true, nil
	}
	switch {
	case maxOffset >= sv.next && sv.size-start <= budget:
		// Fast path, the tailing consumer: everything to the end fits.
		end, next = sv.size, sv.next
	default:
		limit := start + budget
		// Skip whole stretches through the index: every batch before an
		// indexed position within both bounds fits.
		if j := jumpPosition(sv.idx, s.base, end, limit, sv.size, maxOffset); j > end {
			h, err := r.header(j)
			if err != nil {
				return res, false, err
			}
			end, next = j, h.BaseOffset
		}
		for end < sv.size {
			h, err := r.header(end)
			if err != nil {
				return res, false, err
			}
			if h.BaseOffset >= maxOffset || end+int64(h.Size()) > limit {
				break
			}
			end += int64(h.Size())
			next = h.NextOffset()
		}
	}
	return ReadResult{
		File:        s.file.f.OSFile(),
		Position:    start,
		Size:        end - start,
		FirstOffset: first.BaseOffset,
		NextOffset:  next,
	}, true, nil
}

// ReadBytes is Read, copying the range into memory (TLS, replication
// tests, tiering).
func (l *Log) ReadBytes(from int64, maxBytes int, maxOffset int64, minOneBatch bool) ([]byte, error) {
	res, err := l.Read(from, maxBytes, maxOffset, minOneBatch)
	if err != nil {
		return nil, err
	}
	defer res.Release()
	if res.Size == 0 {
		return nil, nil
	}
	buf := make([]byte, res.Size)
	n, err := res.File.ReadAt(buf, res.Position)
	if n < len(buf) {
		if err == nil || errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w: segment shrank under a read (concurrent truncation)", ErrOffsetOutOfRange)
		}
		return nil, fmt.Errorf("log: read: %w", err)
	}
	return buf, nil
}

// Batches calls fn for each whole batch with base offset in [from, to), in
// order, reading sequentially through a buffer (rebuilding producer state,
// tools). The batch containing from is included even if it starts before
// from. raw is only valid during the call. An error from fn stops the walk
// and is returned.
func (l *Log) Batches(from, to int64, fn func(h batch.Header, raw []byte) error) error {
	v, err := l.view()
	if err != nil {
		return err
	}
	if from < v.start || from > v.leo {
		return fmt.Errorf("%w: %d is outside [%d, %d]", ErrOffsetOutOfRange, from, v.start, v.leo)
	}
	to = min(to, v.leo)
	var buf []byte
	for i := v.find(from); i < len(v.segs) && from < to; i++ {
		s := v.segs[i]
		if !s.file.acquire() {
			return fmt.Errorf("%w: segment %d was deleted during the walk", ErrOffsetOutOfRange, s.base)
		}
		from, buf, err = l.segmentBatches(s, from, to, buf, fn)
		s.file.release()
		if err != nil {
			return err
		}
	}
	return nil
}

// segmentBatches walks one segment for Batches and returns the offset to
// continue from.
func (l *Log) segmentBatches(s *segment, from, to int64, buf []byte, fn func(batch.Header, []byte) error) (int64, []byte, error) {
	sv, err := s.view(l.fs, l.config().limits(), l.logger)
	if err != nil {
		return from, buf, err
	}
	if from >= sv.next {
		return from, buf, nil
	}
	r := newHeaderReader(s.file.f, sv.size)
	_, pos, ok, err := r.seek(lookupOffset(sv.idx, s.base, from), from)
	r.close()
	if err != nil || !ok {
		return from, buf, err
	}
	br := bufio.NewReaderSize(io.NewSectionReader(s.file.f, pos, sv.size-pos), 64<<10)
	for pos < sv.size {
		hdr, err := br.Peek(batch.LogOverhead)
		if err != nil {
			return from, buf, fmt.Errorf("log: read %s at %d: %w", s.logPath, pos, err)
		}
		n, _ := batch.PeekSize(hdr)
		if n < batch.HeaderSize || pos+int64(n) > sv.size {
			return from, buf, fmt.Errorf("%w: %s: bad batch size %d at %d", ErrCorruptLog, s.logPath, n, pos)
		}
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		raw := buf[:n]
		if _, err := io.ReadFull(br, raw); err != nil {
			return from, buf, fmt.Errorf("log: read %s at %d: %w", s.logPath, pos, err)
		}
		h, err := batch.ParseHeader(raw)
		if err != nil {
			return from, buf, fmt.Errorf("%w: %s at %d: %v", ErrCorruptLog, s.logPath, pos, err)
		}
		if h.BaseOffset >= to {
			return to, buf, nil
		}
		if err := fn(h, raw); err != nil {
			return from, buf, err
		}
		from = h.NextOffset()
		pos += int64(n)
	}
	return from, buf, nil
}
