package objstore_test

import (
	"bytes"
	"context"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/tiercel/tiercel/internal/testenv"
	"github.com/tiercel/tiercel/tiering/objstore"
)

// TestS3StreamsFileSections checks that a file-backed body larger than the
// part size goes up in one PutObject (what makes offload cost one request
// per segment), with the exact bytes of the section.
func TestS3StreamsFileSections(t *testing.T) {
	srv := testenv.MinIO(t)
	cfg := s3Config(srv, "")
	cfg.PartSize = 5 << 20
	store := newS3(t, cfg)
	data := make([]byte, 12<<20)
	rand.New(rand.NewSource(5)).Read(data)
	path := filepath.Join(t.TempDir(), "segment.log")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const off, n = 1 << 20, 10 << 20
	ctx := context.Background()
	if _, err := store.Put(ctx, "seg.log", io.NewSectionReader(f, off, n), n, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	info, err := srv.Client().StatObject(ctx, srv.Bucket, "seg.log", minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(info.ETag, "-") {
		t.Fatalf("ETag %q: uploaded in parts, want one PutObject", info.ETag)
	}
	rc, _, err := store.Get(ctx, "seg.log")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data[off:off+n]) {
		t.Fatalf("stored %d bytes differ from the section", len(got))
	}
}
