package tiering

import (
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/tiercel/tiercel/tiering/objstore"
)

// TestSweep builds a bucket with live partitions, a deleted topic, crash
// leftovers (old and young) and objects outside Tiercel's layout, and
// checks what one sweep removes.
func TestSweep(t *testing.T) {
	store := objstore.NewMem()
	rng := rand.New(rand.NewPCG(4, 4))
	ctx := testContext(t)
	tier := newTestTier(t, store, Config{})

	// Two live partitions of "live-topic" with two segments each.
	live := []PartitionID{testPID("live-topic", 0), testPID("live-topic", 1)}
	var referenced []string
	for _, id := range live {
		s0 := buildSegment(t, 0, rng, randomSpecs(rng, 5))
		s1 := buildSegment(t, s0.next, rng, randomSpecs(rng, 5))
		for _, up := range offloadAll(t, tier.Log(id), s0, s1) {
			referenced = append(referenced, up.objectKeys()...)
		}
		referenced = append(referenced, id.ManifestKey())
	}
	// Leftovers in live partitions: a crashed upload (no manifest entry)
	// and objects of a segment retention dropped but failed to delete.
	crash := testPID("live-topic", 0)
	orphans := []string{
		newObjectKey(crash, 99, 3) + ".index",
		newObjectKey(crash, 99, 3) + ".log",
		newObjectKey(testPID("live-topic", 1), 5, 2) + ".timeindex",
	}
	// A partition of the live topic with objects but no manifest yet.
	noManifest := newObjectKey(testPID("live-topic", 7), 0, 3) + ".log"
	orphans = append(orphans, noManifest)
	// A deleted topic: everything goes, manifests included.
	dead := PartitionID{Topic: "gone", TopicID: "ZZZZZZZZZZZZZZZZZZZZZZ", Partition: 0}
	ds := buildSegment(t, 0, rng, randomSpecs(rng, 5))
	for _, up := range offloadAll(t, tier.Log(dead), ds) {
		orphans = append(orphans, up.objectKeys()...)
	}
	orphans = append(orphans, dead.ManifestKey())
	for _, k := range orphans {
		if _, err := store.Attributes(ctx, k); objstore.IsNotFound(err) {
			putObject(t, store, k, []byte("leftover"))
		}
	}
	// Not ours: other prefixes and keys that do not follow the layout.
	foreign := []string{"cluster/metadata", "topics/readme", "topics/x/y", "other/topics/a-AbCdEfGhIjKlMnOpQrStUv/0/manifest"}
	for _, k := range foreign {
		putObject(t, store, k, []byte("foreign"))
	}
	isLive := func(dir string) bool { return dir == "live-topic-"+testTopicID }

	// Everything is young: nothing is deleted.
	res, err := tier.Sweep(ctx, isLive, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted != 0 {
		t.Fatalf("sweep within the grace deleted %d objects", res.Deleted)
	}
	// An hour later, the orphans go and the rest stays.
	tier.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	res, err = tier.Sweep(ctx, isLive, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]string(nil), referenced...), foreign...)
	sort.Strings(want)
	got := listKeys(t, store, "")
	if !slices.Equal(got, want) {
		t.Fatalf("after the sweep:\n%v\nwant\n%v", got, want)
	}
	if res.Deleted != len(orphans) {
		t.Fatalf("sweep reports %d deleted, removed %d", res.Deleted, len(orphans))
	}
	// Every live partition still reads.
	for _, id := range live {
		r := newTestTier(t, store, Config{}).Log(id)
		if _, err := r.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Read(ctx, 0, 1<<20, true); err != nil {
			t.Fatalf("%s after the sweep: %v", id, err)
		}
	}
}

// TestSweepSkipsPartitionWithUnreadableManifest: when a manifest cannot
// be read, the sweeper cannot know what it names, so it deletes nothing
// in that partition.
func TestSweepSkipsPartitionWithUnreadableManifest(t *testing.T) {
	store := objstore.NewMem()
	rng := rand.New(rand.NewPCG(4, 5))
	tier := newTestTier(t, store, Config{})
	id := testPID("t", 0)
	offloadAll(t, tier.Log(id), buildSegment(t, 0, rng, randomSpecs(rng, 5)))
	putObject(t, store, newObjectKey(id, 50, 3)+".log", []byte("orphan"))
	putObject(t, store, id.ManifestKey(), []byte("{garbage"))
	before := listKeys(t, store, "")
	tier.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if _, err := tier.Sweep(testContext(t), func(string) bool { return true }, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := listKeys(t, store, ""); !slices.Equal(got, before) {
		t.Fatalf("sweep deleted objects of a partition whose manifest it could not read: %v -> %v", before, got)
	}
}

func TestDeleteTopicRemovesEverything(t *testing.T) {
	store := objstore.NewMem()
	rng := rand.New(rand.NewPCG(4, 6))
	tier := newTestTier(t, store, Config{})
	for p := int32(0); p < 3; p++ {
		offloadAll(t, tier.Log(testPID("doomed", p)), buildSegment(t, 0, rng, randomSpecs(rng, 5)))
	}
	offloadAll(t, tier.Log(testPID("doomed-not", 0)), buildSegment(t, 0, rng, randomSpecs(rng, 5)))
	other := listKeys(t, store, TopicPrefix("doomed-not", testTopicID))
	n, err := tier.DeleteTopic(testContext(t), "doomed", testTopicID)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3*6 {
		t.Fatalf("deleted %d objects, want 18", n)
	}
	if got := listKeys(t, store, ""); !slices.Equal(got, other) {
		t.Fatalf("left %v, want only the other topic's %v", got, other)
	}
}

func TestParsePartitionPrefix(t *testing.T) {
	for _, id := range []PartitionID{
		testPID("t", 0), testPID("with-dashes-AbCdEfGhIjKlMnOpQrStUv", 12), testPID("a.b_c", 2147483647),
	} {
		got, ok := parsePartitionPrefix(id.Prefix())
		if !ok || got != id {
			t.Errorf("parse(%q) = %+v %v, want %+v", id.Prefix(), got, ok, id)
		}
	}
	for _, bad := range []string{
		"topics/", "topics/t/0/", "topics/t-AbCdEfGhIjKlMnOpQrStUv/x/", "topics/t-AbCdEfGhIjKlMnOpQrStUv/-1/",
		"topics/t-AbCdEfGhIjKlMnOpQrStUv/0", "topics/t-AbCdEfGhIjKlMnOpQrStUv/0/x/", "topics/tAbCdEfGhIjKlMnOpQrStUvw/0/",
		"topics/t-AbCdEfGhIjKlMnOpQrStUv/00/",
	} {
		if got, ok := parsePartitionPrefix(bad); ok {
			t.Errorf("parse(%q) accepted: %+v", bad, got)
		}
	}
}
