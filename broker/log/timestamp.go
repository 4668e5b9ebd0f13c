package log

import (
	"errors"
	"fmt"
	"io"

	"github.com/tiercel/tiercel/wire/batch"
)

// errStopWalk ends a record walk early.
var errStopWalk = errors.New("stop")

// OffsetForTimestamp returns the offset and timestamp of the first record
// (in offset order, at or after the log start) whose timestamp is >= ts:
// ListOffsets by time. found is false if there is none. It picks the first
// segment whose max timestamp reaches ts, starts from the time index's
// entry for ts, scans batch headers, and walks the records (inflating a
// compressed batch) of batches whose max timestamp reaches ts.
func (l *Log) OffsetForTimestamp(ts int64) (offset, timestamp int64, found bool, err error) {
	v, err := l.view()
	if err != nil {
		return 0, 0, false, err
	}
	lim := l.config().limits()
	for _, s := range v.segs {
		sv, err := s.view(l.fs, lim, l.logger)
		if err != nil {
			return 0, 0, false, err
		}
		if sv.next <= v.start || sv.size == 0 || sv.maxTS < ts {
			continue
		}
		startAt := max(lookupTime(sv.tidx, s.base, ts), v.start)
		if !s.file.acquire() {
			return 0, 0, false, fmt.Errorf("%w: segment %d was deleted during the search", ErrOffsetOutOfRange, s.base)
		}
		offset, timestamp, found, err = l.searchSegment(s, sv, startAt, v.start, func(h *batch.Header) bool {
			return h.MaxTimestamp >= ts
		}, func(rts int64) bool { return rts >= ts })
		s.file.release()
		if err != nil || found {
			return offset, timestamp, found, err
		}
	}
	return 0, 0, false, nil
}

// MaxTimestamp returns the offset and timestamp of the record with the
// largest timestamp (ListOffsets -3, KIP-734): the first such record of the
// first segment holding the maximum. found is false on an empty log or one
// without timestamps.
func (l *Log) MaxTimestamp() (offset, timestamp int64, found bool, err error) {
	v, err := l.view()
	if err != nil {
		return 0, 0, false, err
	}
	lim := l.config().limits()
	var best *segment
	var bestView segView
	for _, s := range v.segs {
		sv, err := s.view(l.fs, lim, l.logger)
		if err != nil {
			return 0, 0, false, err
		}
		if sv.size > 0 && sv.maxTS > noTimestamp && (best == nil || sv.maxTS > bestView.maxTS) {
			best, bestView = s, sv
		}
	}
	if best == nil {
		return 0, 0, false, nil
	}
	if !best.file.acquire() {
		return 0, 0, false, fmt.Errorf("%w: segment %d was deleted during the search", ErrOffsetOutOfRange, best.base)
	}
	defer best.file.release()
	maxTS := bestView.maxTS
	offset, timestamp, found, err = l.searchSegment(best, bestView, bestView.maxTSOff, 0, func(h *batch.Header) bool {
		return h.MaxTimestamp == maxTS
	}, func(rts int64) bool { return rts == maxTS })
	if err != nil || found {
		return offset, timestamp, found, err
	}
	// The batch claims a max timestamp no record carries (a producer bug);
	// answer with the batch, as Kafka's shallow offset would.
	return bestView.maxTSOff, maxTS, true, nil
}

// searchSegment finds the first record at offset >= minOffset, in a batch
// at or after the one containing startAt, whose batch satisfies batchOK and
// whose timestamp satisfies recOK. The caller holds a file reference.
func (l *Log) searchSegment(s *segment, sv segView, startAt, minOffset int64,
	batchOK func(*batch.Header) bool, recOK func(int64) bool) (offset, timestamp int64, found bool, err error) {
	r := newHeaderReader(s.file.f, sv.size)
	defer r.close()
	pos := lookupOffset(sv.idx, s.base, startAt)
	var buf []byte
	for pos < sv.size {
		h, err := r.header(pos)
		if err != nil {
			return 0, 0, false, err
		}
		if h.NextOffset() > minOffset && h.LastOffset() >= startAt && batchOK(&h) {
			if cap(buf) < h.Size() {
				buf = make([]byte, h.Size())
			}
			raw := buf[:h.Size()]
			if n, err := s.file.f.ReadAt(raw, pos); n < len(raw) {
				if err == nil || errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return 0, 0, false, fmt.Errorf("log: read %s at %d: %w", s.logPath, pos, err)
			}
			err = batch.Records(raw, func(rec batch.Record) error {
				off := h.BaseOffset + int64(rec.OffsetDelta)
				rts := h.BaseTimestamp + rec.TimestampDelta
				if h.LogAppendTime() {
					rts = h.MaxTimestamp
				}
				if off >= minOffset && recOK(rts) {
					offset, timestamp, found = off, rts, true
					return errStopWalk
				}
				return nil
			})
			if found {
				return offset, timestamp, true, nil
			}
			if err != nil {
				return 0, 0, false, fmt.Errorf("%w: %s at %d: %v", ErrCorruptLog, s.logPath, pos, err)
			}
		}
		pos += int64(h.Size())
	}
	return 0, 0, false, nil
}
