package objstore_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/tiercel/tiercel/tiering/objstore"
	"github.com/tiercel/tiercel/tiering/objstore/objstoretest"
)

func TestMem(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.ObjectStore { return objstore.NewMem() })
}

// testSameContentNewETag checks what S3 does not promise but the local
// stores do: a put of identical bytes still gets a new ETag.
func testSameContentNewETag(t *testing.T, s objstore.ObjectStore) {
	t.Helper()
	ctx := context.Background()
	body := []byte("lease: broker-1 epoch 7")
	seen := map[string]bool{}
	var last objstore.Attrs
	for i := range 20 {
		opts := objstore.PutOptions{IfMatch: last.ETag}
		if i == 0 {
			opts = objstore.PutOptions{IfNoneMatch: true}
		}
		a, err := s.Put(ctx, "lease", bytes.NewReader(body), int64(len(body)), opts)
		if err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		if seen[a.ETag] {
			t.Fatalf("put %d of identical content reused ETag %s", i, a.ETag)
		}
		seen[a.ETag] = true
		got, err := s.Attributes(ctx, "lease")
		if err != nil || got.ETag != a.ETag {
			t.Fatalf("Attributes after put %d = %+v, %v; want ETag %s", i, got, err, a.ETag)
		}
		last = a
	}
}

func TestMemSameContentNewETag(t *testing.T) {
	testSameContentNewETag(t, objstore.NewMem())
}

func TestMemClosed(t *testing.T) {
	m := objstore.NewMem()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Put(context.Background(), "k", bytes.NewReader(nil), 0, objstore.PutOptions{}); err == nil {
		t.Fatal("Put after Close succeeded")
	}
}
