package log

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tiercel/tiercel/wire/batch"
)

func TestAppendFaults(t *testing.T) {
	cases := []struct {
		name   string
		faults []Fault
		// failed: the log must refuse writes after the fault.
		failed bool
	}{
		{"write error", []Fault{{Op: OpWrite, PathContains: logSuffix}}, false},
		{"torn write", []Fault{{Op: OpWrite, PathContains: logSuffix, ShortWrite: -1}}, false},
		{"disk full", []Fault{{Op: OpWrite, PathContains: logSuffix, ShortWrite: 100, Err: syscall.ENOSPC}}, false},
		{"torn write, truncate fails", []Fault{
			{Op: OpWrite, PathContains: logSuffix, ShortWrite: -1},
			{Op: OpTruncate, PathContains: logSuffix},
		}, true},
		{"roll cannot create segment", []Fault{{Op: OpCreate, PathContains: logSuffix}}, false},
		{"roll cannot write index", []Fault{{Op: OpWrite, PathContains: indexSuffix}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ffs := NewFaultFS(nil)
			cfg := Config{SegmentBytes: 2000, IndexIntervalBytes: 1}
			l := openLog(t, dir, cfg, Options{FS: ffs})
			var a appended
			rng := rand.New(rand.NewPCG(31, 32))
			fill(t, l, &a, rng, 11)
			end, size := l.EndOffset(), l.Size()
			for _, f := range tc.faults {
				ffs.Inject(f)
			}
			// Append until the fault fires (roll faults need a roll).
			var err error
			for i := 0; i < 20 && ffs.Fired() == 0; i++ {
				raw := build(t, l.EndOffset(), spec{n: 3, valSize: 200, epoch: -1})
				end, size = l.EndOffset(), l.Size()
				if _, err = l.Append(raw); err == nil {
					a.add(raw)
				}
			}
			if ffs.Fired() == 0 || err == nil {
				t.Fatalf("fault did not fire or append succeeded: fired %d err %v", ffs.Fired(), err)
			}
			ffs.Reset()
			if l.EndOffset() != end || l.Size() != size {
				t.Fatalf("end %d size %d after failed append; want %d %d", l.EndOffset(), l.Size(), end, size)
			}
			// Readers never see the half batch.
			checkAll(t, l, &a)
			if res, err := l.Read(end, 1<<20, math.MaxInt64, true); err != nil || res.Size != 0 {
				t.Fatalf("read at end: %+v %v", res, err)
			}
			next := build(t, l.EndOffset(), spec{n: 2, valSize: 50, epoch: -1})
			_, err = l.Append(next)
			if tc.failed {
				if !errors.Is(err, ErrFailed) {
					t.Fatalf("append on failed log: %v", err)
				}
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(filepath.Join(dir, cleanShutdownFile)); !os.IsNotExist(err) {
					t.Fatal("failed log left a clean-shutdown marker")
				}
			} else {
				if err != nil {
					t.Fatalf("append after fault: %v", err)
				}
				a.add(next)
				checkAll(t, l, &a)
				l.Close()
			}
			// Reopen with the real FS: recovery leaves a consistent log.
			l = openLog(t, dir, cfg, Options{})
			defer l.Close()
			checkAll(t, l, &a)
			fill(t, l, &a, rng, 5)
			checkAll(t, l, &a)
		})
	}
}

func TestFlushFailureFailsLog(t *testing.T) {
	dir := t.TempDir()
	ffs := NewFaultFS(nil)
	l := openLog(t, dir, smallConfig(), Options{FS: ffs})
	var a appended
	fill(t, l, &a, rand.New(rand.NewPCG(1, 2)), 20)
	ffs.Inject(Fault{Op: OpSync, PathContains: logSuffix})
	if err := l.Flush(); err == nil {
		t.Fatal("flush succeeded")
	}
	if _, err := l.Append(build(t, l.EndOffset(), spec{n: 1, epoch: -1})); !errors.Is(err, ErrFailed) {
		t.Fatalf("append after failed fsync: %v", err)
	}
	checkAll(t, l, &a) // reads still work
	l.Close()
	l = openLog(t, dir, smallConfig(), Options{})
	defer l.Close()
	checkAll(t, l, &a)
}

func TestFlushPolicy(t *testing.T) {
	t.Run("by messages", func(t *testing.T) {
		l := openLog(t, t.TempDir(), Config{FlushIntervalMessages: 10}, Options{})
		defer l.Close()
		for i := 0; i < 4; i++ {
			mustAppend(t, l, build(t, l.EndOffset(), spec{n: 3, epoch: -1}))
		}
		// 12 offsets: the fourth append crossed 10.
		if rp := l.RecoveryPoint(); rp != 12 {
			t.Fatalf("recovery point %d", rp)
		}
	})
	t.Run("by time", func(t *testing.T) {
		clk := newTestClock()
		l := openLog(t, t.TempDir(), Config{FlushInterval: time.Second}, Options{Now: clk.Now})
		defer l.Close()
		mustAppend(t, l, build(t, 0, spec{n: 3, epoch: -1}))
		if err := l.MaybeFlush(); err != nil || l.RecoveryPoint() != 0 {
			t.Fatalf("flushed early: %v rp %d", err, l.RecoveryPoint())
		}
		clk.Advance(1500 * time.Millisecond)
		if err := l.MaybeFlush(); err != nil || l.RecoveryPoint() != 3 {
			t.Fatalf("not flushed: %v rp %d", err, l.RecoveryPoint())
		}
		mustAppend(t, l, build(t, 3, spec{n: 1, epoch: -1}))
		clk.Advance(2 * time.Second)
		mustAppend(t, l, build(t, 4, spec{n: 1, epoch: -1})) // enforced on append too
		if l.RecoveryPoint() != 5 {
			t.Fatalf("rp %d", l.RecoveryPoint())
		}
	})
	t.Run("rolled segments", func(t *testing.T) {
		l := openLog(t, t.TempDir(), smallConfig(), Options{})
		defer l.Close()
		fill(t, l, &appended{}, rand.New(rand.NewPCG(1, 2)), 50)
		if l.RecoveryPoint() != 0 {
			t.Fatal("flushed without being asked")
		}
		if err := l.MaybeFlush(); err != nil {
			t.Fatal(err)
		}
		segs := l.Segments()
		if rp := l.RecoveryPoint(); rp != segs[len(segs)-1].BaseOffset {
			t.Fatalf("recovery point %d, active segment at %d", rp, segs[len(segs)-1].BaseOffset)
		}
		rp, _, err := readOffsetCheckpoint(OSFS(), l.path(recoveryPointFile))
		if err != nil || rp != l.RecoveryPoint() {
			t.Fatalf("persisted %d %v", rp, err)
		}
	})
}

// The crash test re-executes the test binary as a child that appends in a
// loop and prints each acknowledged offset, then kills it with SIGKILL.
const crashEnv = "TIERCEL_LOG_CRASH_CHILD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashEnv); dir != "" {
		crashChild(dir)
		return
	}
	os.Exit(m.Run())
}

func crashChild(dir string) {
	cfg := Config{SegmentBytes: 64 << 10, IndexIntervalBytes: 1024, FlushIntervalMessages: 500}
	l, err := Open(dir, cfg, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for {
		b := batch.NewBuilder(batch.Compression(rng.IntN(5)))
		n := 1 + rng.IntN(20)
		for i := 0; i < n; i++ {
			v := bytes.Repeat([]byte{byte(rng.Uint32())}, rng.IntN(500))
			b.Add(time.Now().UnixMilli(), nil, v)
		}
		raw, err := b.Build(l.EndOffset())
		if err != nil {
			panic(err)
		}
		info, err := l.Append(raw)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		fmt.Fprintf(out, "%d %d\n", info.FirstOffset, info.LastOffset)
		out.Flush()
	}
}

func TestProcessCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	for round := 0; round < 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		type ack struct{ first, last int64 }
		acks := make(chan []ack, 1)
		started := make(chan struct{})
		go func() {
			var got []ack
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				var a ack
				if _, err := fmt.Sscanf(sc.Text(), "%d %d", &a.first, &a.last); err == nil {
					if len(got) == 0 {
						close(started)
					}
					got = append(got, a)
				}
			}
			if len(got) == 0 {
				close(started)
			}
			acks <- got
		}()
		// Kill ~200ms into the appends (the child may be slow to start
		// under the race detector).
		select {
		case <-started:
		case <-time.After(30 * time.Second):
		}
		time.Sleep(200 * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		got := <-acks
		cmd.Wait()
		if len(got) == 0 {
			t.Fatalf("round %d: child acknowledged nothing", round)
		}

		l := openLog(t, dir, Config{SegmentBytes: 64 << 10}, Options{})
		last := got[len(got)-1]
		if l.EndOffset() <= last.last {
			t.Fatalf("round %d: end %d, but %d was acknowledged", round, l.EndOffset(), last.last)
		}
		// Every acknowledged offset is readable in a valid batch.
		for _, a := range got {
			for _, off := range []int64{a.first, a.last} {
				raw, err := l.ReadBytes(off, 1, math.MaxInt64, true)
				if err != nil {
					t.Fatalf("round %d: read %d: %v", round, off, err)
				}
				h, err := batch.Validate(raw)
				if err != nil || h.BaseOffset != a.first || h.LastOffset() != a.last {
					t.Fatalf("round %d: offset %d: %+v %v", round, off, h, err)
				}
			}
		}
		n := 0
		err = l.Batches(l.StartOffset(), math.MaxInt64, func(h batch.Header, raw []byte) error {
			n++
			_, err := batch.Validate(raw)
			return err
		})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		t.Logf("round %d: %d acknowledged appends, %d batches, end %d, %d segments", round, len(got), n, l.EndOffset(), len(l.Segments()))
		// Alternate clean and unclean starts for the next child.
		if round == 1 {
			l.Close()
		} else {
			l.close(false) // release the files, leave no clean marker
		}
	}
}

func TestDeleteSegmentsRenameFails(t *testing.T) {
	dir := t.TempDir()
	ffs := NewFaultFS(nil)
	l := openLog(t, dir, smallConfig(), Options{FS: ffs})
	defer l.Close()
	var a appended
	fill(t, l, &a, rand.New(rand.NewPCG(41, 42)), 80)
	segs := l.Segments()
	ffs.Inject(Fault{Op: OpRename, PathContains: fileName(segs[1].BaseOffset, logSuffix)})
	deleted, err := l.DeleteSegments(func(s SegmentInfo) bool { return s.BaseOffset < segs[3].BaseOffset })
	if err == nil || len(deleted) != 1 || deleted[0].BaseOffset != 0 {
		t.Fatalf("deleted %v, err %v", deleted, err)
	}
	if l.StartOffset() != segs[1].BaseOffset {
		t.Fatalf("start %d", l.StartOffset())
	}
	checkAll(t, l, &a)
	deleted, err = l.DeleteSegments(func(s SegmentInfo) bool { return s.BaseOffset < segs[3].BaseOffset })
	if err != nil || len(deleted) != 2 || l.StartOffset() != segs[3].BaseOffset {
		t.Fatalf("retry: deleted %v, err %v, start %d", deleted, err, l.StartOffset())
	}
	checkAll(t, l, &a)
}

func TestEpochCheckpointFailureRetried(t *testing.T) {
	dir := t.TempDir()
	ffs := NewFaultFS(nil)
	l := openLog(t, dir, Config{}, Options{FS: ffs})
	ffs.Inject(Fault{Op: OpRename, PathContains: epochCheckpointFile})
	mustAppend(t, l, build(t, 0, spec{n: 2, epoch: 3}))
	if es := l.Epochs(); len(es) != 1 || es[0] != (EpochEntry{3, 0}) {
		t.Fatalf("epochs %v", es)
	}
	if _, err := os.Stat(filepath.Join(dir, epochCheckpointFile)); !os.IsNotExist(err) {
		t.Fatalf("checkpoint written despite the fault: %v", err)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	got, err := readEpochCheckpoint(OSFS(), filepath.Join(dir, epochCheckpointFile))
	if err != nil || len(got) != 1 || got[0] != (EpochEntry{3, 0}) {
		t.Fatalf("after flush: %v %v", got, err)
	}
	l.Close()
}

func TestRecoverLargeBatches(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Config{SegmentBytes: 8 << 20}, Options{})
	var a appended
	for i := 0; i < 6; i++ {
		raw := build(t, l.EndOffset(), spec{n: 3, valSize: 600 << 10, epoch: -1}) // ~1.8 MiB, over the scan buffer
		mustAppend(t, l, raw)
		a.add(raw)
	}
	end := l.EndOffset()
	l2 := openLog(t, dir, Config{SegmentBytes: 8 << 20}, Options{}) // unclean: full CRC scan
	defer l2.Close()
	defer l.Close()
	if l2.EndOffset() != end {
		t.Fatalf("end %d, want %d", l2.EndOffset(), end)
	}
	checkAll(t, l2, &a)
}
