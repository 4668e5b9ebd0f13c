package log

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/tiercel/tiercel/wire/batch"
)

// noSyncFS skips fsyncs, which dominate the cost of a fuzz iteration and
// mean nothing without a machine crash.
type noSyncFS struct{ FS }

func (f noSyncFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return noSyncFile{file}, nil
}

func (noSyncFS) SyncDir(string) error { return nil }

type noSyncFile struct{ File }

func (noSyncFile) Sync() error { return nil }

// seedSegment returns a few real batches, concatenated, at offsets from 0.
func seedSegment(t testing.TB) []byte {
	var out []byte
	off := int64(0)
	for i, c := range []batch.Compression{batch.CompressionNone, batch.CompressionZstd, batch.CompressionNone, batch.CompressionLZ4} {
		raw := build(t, off, spec{n: 1 + i, valSize: 20, epoch: int32(i)})
		_ = c
		out = append(out, raw...)
		h, _ := batch.ParseHeader(raw)
		off = h.NextOffset()
	}
	return out
}

// FuzzRecover writes arbitrary bytes as a segment and opens the log. Each
// run costs a few milliseconds of file work, so run it with a bounded
// minimization, e.g. -fuzz FuzzRecover -fuzzminimizetime 50x. Open
// must not panic or fail, and what it keeps must be whole, valid,
// contiguous batches (CRC-checked unless the directory claims a clean
// shutdown, which makes the segment trusted).
func FuzzRecover(f *testing.F) {
	seg := seedSegment(f)
	f.Add(seg, false)
	f.Add(seg, true)
	f.Add(seg[:len(seg)-7], false)
	f.Add(append(bytes.Clone(seg), make([]byte, 100)...), true)
	flipped := bytes.Clone(seg)
	flipped[70] ^= 1
	f.Add(flipped, false)
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, data []byte, clean bool) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, fileName(0, logSuffix)), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if clean {
			for _, n := range []string{fileName(0, indexSuffix), fileName(0, timeIndexSuffix), cleanShutdownFile} {
				os.WriteFile(filepath.Join(dir, n), nil, 0o644)
			}
		}
		l, err := Open(dir, Config{IndexIntervalBytes: 10}, Options{Logger: testLogger(t), FS: noSyncFS{OSFS()}})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer l.Close()
		next := int64(0)
		var kept int64
		err = l.Batches(0, math.MaxInt64, func(h batch.Header, raw []byte) error {
			if h.BaseOffset != next {
				t.Fatalf("batch at %d, want %d", h.BaseOffset, next)
			}
			if !clean {
				if _, err := batch.Validate(raw); err != nil {
					t.Fatalf("kept an invalid batch: %v", err)
				}
			}
			next = h.NextOffset()
			kept += int64(len(raw))
			return nil
		})
		if err != nil {
			t.Fatalf("batches: %v", err)
		}
		if l.EndOffset() != next || l.Size() != kept {
			t.Fatalf("end %d size %d, batches end at %d with %d bytes", l.EndOffset(), l.Size(), next, kept)
		}
		if !clean && !bytes.HasPrefix(data, mustRead(t, l)) {
			t.Fatal("kept bytes are not a prefix of the segment")
		}
		for off := int64(0); off < l.EndOffset() && off < 50; off++ {
			if _, err := l.ReadBytes(off, 100, math.MaxInt64, true); err != nil {
				t.Fatalf("read %d: %v", off, err)
			}
		}
		if _, _, _, err := l.OffsetForTimestamp(0); err != nil && !clean {
			t.Fatalf("offset for timestamp: %v", err)
		}
		raw := build(t, l.EndOffset(), spec{n: 2, epoch: -1})
		if _, err := l.Append(raw); err != nil {
			t.Fatalf("append after recovery: %v", err)
		}
		got, err := l.ReadBytes(next, 1<<20, math.MaxInt64, true)
		if err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("read back the new batch: %v", err)
		}
	})
}

func mustRead(t *testing.T, l *Log) []byte {
	if l.EndOffset() == 0 {
		return nil
	}
	b, err := l.ReadBytes(0, math.MaxInt32, math.MaxInt64, true)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzIndexFiles feeds arbitrary bytes to the offset- and time-index
// parsers: they either reject them or return entries that satisfy the
// invariants lookups rely on.
func FuzzIndexFiles(f *testing.F) {
	f.Add(appendOffsetEntries(nil, []offsetEntry{{1, 0}, {5, 100}, {9, 250}}), int64(300), int64(20), int64(7))
	f.Add(appendTimeEntries(nil, []timeEntry{{10, 1}, {20, 5}, {30, 9}}), int64(300), int64(20), int64(15))
	f.Add([]byte{0, 0, 0, 1}, int64(10), int64(10), int64(0))
	f.Fuzz(func(t *testing.T, data []byte, logSize, maxRel, target int64) {
		if logSize < 0 || maxRel < 0 {
			return
		}
		if es, err := decodeOffsetIndex(data, logSize, maxRel); err == nil {
			for i, e := range es {
				if int64(e.pos) >= logSize || int64(e.rel) > maxRel || (i > 0 && (e.rel <= es[i-1].rel || e.pos <= es[i-1].pos)) {
					t.Fatalf("accepted bad entry %d %+v", i, e)
				}
			}
			p := lookupOffset(es, 1000, 1000+target)
			ok := p == 0
			for _, e := range es {
				if int64(e.pos) == p {
					ok = ok || int64(e.rel) <= target
				}
			}
			if !ok {
				t.Fatalf("lookup %d gave %d", target, p)
			}
			j := jumpPosition(es, 0, 0, target, logSize, maxRel)
			if j < 0 || (j > 0 && j > target) {
				t.Fatalf("jump %d past limit %d", j, target)
			}
			if b := appendOffsetEntries(nil, es); !bytes.Equal(b, data) {
				t.Fatal("round trip differs")
			}
		}
		if es, err := decodeTimeIndex(data, maxRel); err == nil {
			for i, e := range es {
				if int64(e.rel) > maxRel || e.ts < 0 || (i > 0 && (e.ts <= es[i-1].ts || e.rel < es[i-1].rel)) {
					t.Fatalf("accepted bad time entry %d %+v", i, e)
				}
			}
			if o := lookupTime(es, 0, target); o < 0 || o > maxRel {
				t.Fatalf("time lookup %d gave %d", target, o)
			}
			if b := appendTimeEntries(nil, es); !bytes.Equal(b, data) {
				t.Fatal("round trip differs")
			}
		}
	})
}

// FuzzCheckpoints feeds arbitrary bytes to the checkpoint parsers.
func FuzzCheckpoints(f *testing.F) {
	f.Add([]byte("0\n2\n0 0\n3 120\n"))
	f.Add([]byte("0\n42\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if es, err := decodeEpochCheckpoint(data); err == nil {
			again, err := decodeEpochCheckpoint(encodeEpochCheckpoint(es))
			if err != nil || !equalEpochs(es, again) {
				t.Fatalf("round trip: %v", err)
			}
		}
		dir := t.TempDir()
		p := filepath.Join(dir, "cp")
		os.WriteFile(p, data, 0o644)
		if off, ok, err := readOffsetCheckpoint(OSFS(), p); err == nil && (!ok || off < 0) {
			t.Fatalf("accepted %d %v", off, ok)
		}
	})
}
