package controller

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/tiercel/tiercel/tiering/objstore"
)

func fastLease() LeaseConfig {
	return LeaseConfig{TTL: 400 * time.Millisecond, RenewInterval: 80 * time.Millisecond, PollInterval: 40 * time.Millisecond}
}

func openController(t *testing.T, store objstore.ObjectStore, node int32) *Controller {
	t.Helper()
	c, err := Open(context.Background(), Config{Store: store, NodeID: node, Lease: fastLease(),
		RefreshInterval: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLeaseRaceHasOneWinner(t *testing.T) {
	for round := 0; round < 20; round++ {
		store := objstore.NewMem()
		var cs []*Controller
		for n := int32(1); n <= 3; n++ {
			cs = append(cs, openController(t, store, n))
		}
		var wg sync.WaitGroup
		for _, c := range cs {
			wg.Add(1)
			go func() { defer wg.Done(); c.Start(context.Background()) }()
		}
		wg.Wait()
		time.Sleep(100 * time.Millisecond)
		active := 0
		for _, c := range cs {
			if c.Active() {
				active++
			}
		}
		for _, c := range cs {
			c.Close()
		}
		if active != 1 {
			t.Fatalf("round %d: %d controllers active", round, active)
		}
	}
}

// pausedStore stops answering while paused, as a SIGSTOPped process
// would appear to its peers.
type pausedStore struct {
	objstore.ObjectStore
	mu     sync.Mutex
	paused bool
	resume chan struct{}
}

func (p *pausedStore) gate(ctx context.Context) error {
	p.mu.Lock()
	paused, ch := p.paused, p.resume
	p.mu.Unlock()
	if !paused {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *pausedStore) pause(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on && !p.paused {
		p.resume = make(chan struct{})
	}
	if !on && p.paused {
		close(p.resume)
	}
	p.paused = on
}

func (p *pausedStore) Put(ctx context.Context, key string, r io.Reader, size int64, opts objstore.PutOptions) (objstore.Attrs, error) {
	if err := p.gate(ctx); err != nil {
		return objstore.Attrs{}, err
	}
	return p.ObjectStore.Put(ctx, key, r, size, opts)
}

func TestExpiredLeaseIsTakenAndOldControllerFenced(t *testing.T) {
	mem := objstore.NewMem()
	slow := &pausedStore{ObjectStore: mem}
	a := openController(t, slow, 1)
	a.Start(context.Background())
	defer a.Close()
	if !a.Active() {
		t.Fatal("a lone broker is not controller")
	}
	if _, err := a.CreateTopics(context.Background(), []TopicSpec{{Name: "t", NumPartitions: 1, ReplicationFactor: 1}}, false); err != nil {
		t.Fatal(err)
	}
	b := openController(t, mem, 2)
	b.Start(context.Background())
	defer b.Close()
	if b.Active() {
		t.Fatal("b took a live lease")
	}
	// a stops reaching the store: it must step down, and b take over
	// only after the TTL on its own clock.
	paused := time.Now()
	slow.pause(true)
	waitUntil(t, "b to take over", b.Active)
	if took := time.Since(paused); took < fastLease().TTL {
		t.Fatalf("b took over after %v, before the TTL %v", took, fastLease().TTL)
	}
	waitUntil(t, "a to step down", func() bool { return !a.Active() })
	if b.Lease().Epoch <= 1 {
		t.Fatalf("epoch did not move: %+v", b.Lease())
	}
	// b writes; then a resumes: whatever it tries is rejected.
	if _, err := b.CreateTopics(context.Background(), []TopicSpec{{Name: "u", NumPartitions: 1, ReplicationFactor: 1}}, false); err != nil {
		t.Fatal(err)
	}
	slow.pause(false)
	_, err := a.Update(context.Background(), func(md *Metadata) error { delete(md.Topics, "u"); return nil })
	if !errors.Is(err, ErrNotController) && !errors.Is(err, ErrFenced) {
		t.Fatalf("ex-controller write: %v", err)
	}
	if err := b.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b.Current().Topics["u"] == nil {
		t.Fatal("the ex-controller's write went through")
	}
}

// A document written with an older epoch than the claimed one is fenced
// even if the old controller still believes it holds the lease.
func TestStaleEpochWriteRejected(t *testing.T) {
	mem := objstore.NewMem()
	a := openController(t, mem, 1)
	a.Start(context.Background())
	defer a.Close()
	// Force a stale view: another controller claims a newer epoch
	// directly in the document.
	b := openController(t, mem, 2)
	if err := b.claim(context.Background(), a.Epoch()+5); err != nil {
		t.Fatal(err)
	}
	_, err := a.Update(context.Background(), func(md *Metadata) error { md.NextProducerID += 7; return nil })
	if !errors.Is(err, ErrFenced) {
		t.Fatalf("stale controller write: %v", err)
	}
	if a.Active() {
		t.Fatal("a fenced controller stayed active")
	}
}

func TestReleaseLetsAnotherTakeOverAtOnce(t *testing.T) {
	mem := objstore.NewMem()
	a := openController(t, mem, 1)
	a.Start(context.Background())
	b := openController(t, mem, 2)
	b.Start(context.Background())
	defer b.Close()
	a.Close() // releases
	start := time.Now()
	waitUntil(t, "b to take the released lease", b.Active)
	if took := time.Since(start); took >= fastLease().TTL {
		t.Fatalf("takeover of a released lease took %v", took)
	}
}
