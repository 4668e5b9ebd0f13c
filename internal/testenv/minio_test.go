package testenv_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/tiercel/tiercel/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestMinIOShared(t *testing.T) {
	a := testenv.MinIO(t)
	b := testenv.MinIO(t)
	if a.Endpoint != b.Endpoint {
		t.Fatalf("two calls started two servers: %s, %s", a.Endpoint, b.Endpoint)
	}
	if a.Bucket == b.Bucket {
		t.Fatalf("two calls share bucket %s", a.Bucket)
	}
	if !strings.HasPrefix(a.Endpoint, "http://127.0.0.1:") {
		t.Fatalf("endpoint %s is not on loopback", a.Endpoint)
	}
	ctx := context.Background()
	ok, err := a.Client().BucketExists(ctx, a.Bucket)
	if err != nil || !ok {
		t.Fatalf("bucket %s: exists=%v, %v", a.Bucket, ok, err)
	}
}

func TestMinIODedicatedStopStart(t *testing.T) {
	srv := testenv.MinIODedicated(t)
	ctx := context.Background()
	c := srv.Client()
	if _, err := c.PutObject(ctx, srv.Bucket, "k", bytes.NewReader([]byte("v")), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	srv.Stop(t)
	if resp, err := http.Get(srv.Endpoint + "/minio/health/live"); err == nil {
		resp.Body.Close()
		t.Fatal("MinIO answers after Stop")
	}
	srv.Start(t)
	obj, err := c.GetObject(ctx, srv.Bucket, "k", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil || string(b) != "v" {
		t.Fatalf("after restart k = %q, %v", b, err)
	}
}
