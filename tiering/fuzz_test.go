package tiering

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/tiercel/tiercel/cache"
	"github.com/tiercel/tiercel/tiering/objstore"
	"github.com/tiercel/tiercel/wire/batch"
)

// FuzzManifest feeds arbitrary bytes to the manifest decoder, as a broker
// reads it from the bucket: it must never panic, and what it accepts must
// satisfy the invariants the offloader and the reader rely on.
func FuzzManifest(f *testing.F) {
	m := Manifest{Version: 2, LeaderEpoch: 1, LogStartOffset: 0, Segments: []Segment{
		{BaseOffset: 0, NextOffset: 10, Size: 100, Key: "k0", Epochs: []EpochEntry{{0, 0}}},
		{BaseOffset: 10, NextOffset: 20, Size: 100, Key: "k1"},
	}}
	b, _ := json.Marshal(m)
	f.Add(b)
	f.Add([]byte(`{"segments":[{"base":5,"next":1,"size":1,"key":"x"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		store := objstore.NewMem()
		id := PartitionID{Topic: "t", TopicID: "AAAAAAAAAAAAAAAAAAAAAA", Partition: 0}
		if _, err := store.Put(context.Background(), id.ManifestKey(), bytes.NewReader(b), int64(len(b)), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		got, err := (&manifestStore{store: store, id: id}).load(context.Background())
		if err != nil {
			return
		}
		for i, s := range got.Segments {
			if s.NextOffset <= s.BaseOffset || (i > 0 && s.BaseOffset != got.Segments[i-1].NextOffset) {
				t.Fatalf("accepted a manifest with a bad segment %d: %+v", i, s)
			}
		}
		_ = got.Find(got.StartOffset())
	})
}

// FuzzRemoteRead stores arbitrary bytes as an offloaded segment (and its
// index) and reads it: the reader must never panic, and anything it
// returns must be whole, CRC-valid batches.
func FuzzRemoteRead(f *testing.F) {
	bld := batch.NewBuilder(batch.CompressionNone)
	bld.Add(1, []byte("k"), []byte("v"))
	bld.Add(2, nil, []byte("w"))
	good, _ := bld.Build(0)
	f.Add(good, []byte{0, 0, 0, 0, 0, 0, 0, 0}, int64(0))
	f.Add(append(append([]byte(nil), good...), good[:20]...), []byte{}, int64(1))
	f.Fuzz(func(t *testing.T, seg, index []byte, offset int64) {
		if len(seg) == 0 || offset < 0 || offset > 100 {
			return
		}
		store := objstore.NewMem()
		c, err := cache.New(cache.Config{MaxBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		tier := New(store, c, Config{ChunkBytes: 64}, nil)
		rl := tier.Log(PartitionID{Topic: "t", TopicID: "AAAAAAAAAAAAAAAAAAAAAA", Partition: 0})
		s := Segment{BaseOffset: 0, NextOffset: 100, Size: int64(len(seg)), Key: rl.id.Prefix() + "seg"}
		ctx := context.Background()
		store.Put(ctx, s.LogKey(), bytes.NewReader(seg), int64(len(seg)), objstore.PutOptions{})
		store.Put(ctx, s.IndexKey(), bytes.NewReader(index), int64(len(index)), objstore.PutOptions{})
		store.Put(ctx, s.TimeIndexKey(), bytes.NewReader(index), int64(len(index)), objstore.PutOptions{})
		rl.ms.m, rl.ms.loaded = &Manifest{Segments: []Segment{s}}, true
		res, err := rl.Read(ctx, offset, 1<<20, true)
		if err == nil {
			used, ierr := batch.Iterate(res.Bytes(), func(_ batch.Header, raw []byte) error {
				_, verr := batch.Validate(raw)
				return verr
			})
			if ierr != nil || used != len(res.Bytes()) {
				t.Fatalf("served bytes that are not whole valid batches: %v", ierr)
			}
		}
		_, _, _, _ = rl.OffsetForTimestamp(ctx, 1)
	})
}
