package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tiercel/tiercel/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestCreatesBucketOnce(t *testing.T) {
	s := testenv.MinIO(t)
	t.Setenv("AWS_ACCESS_KEY_ID", s.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s.SecretKey)
	bucket := s.Bucket + "-mk"
	args := []string{"--endpoint", s.Endpoint, "--bucket", bucket, "--region", s.Region, "--wait", "10s"}
	for i := range 2 { // the second run finds the bucket and succeeds too
		if err := run(context.Background(), args); err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
	}
	ok, err := s.Client().BucketExists(context.Background(), bucket)
	if err != nil || !ok {
		t.Fatalf("bucket %s exists = %v, %v; want true", bucket, ok, err)
	}
	if err := s.Client().RemoveBucket(context.Background(), bucket); err != nil {
		t.Log(err)
	}
}

func TestWrongCredentialsFailFast(t *testing.T) {
	s := testenv.MinIO(t)
	t.Setenv("AWS_ACCESS_KEY_ID", s.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
	start := time.Now()
	err := run(context.Background(), []string{"--endpoint", s.Endpoint, "--bucket", s.Bucket + "-x", "--wait", "30s"})
	if err == nil {
		t.Fatal("run succeeded with a wrong secret key")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("a credentials error took %v to report; it should not be retried", d)
	}
}

func TestGivesUpWhenNoServer(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "a")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "b")
	// Port 1 on loopback: nothing listens there.
	err := run(context.Background(), []string{"--endpoint", "http://127.0.0.1:1", "--wait", "1s"})
	if err == nil || !strings.Contains(err.Error(), "gave up waiting") {
		t.Fatalf("err = %v, want a give-up error", err)
	}
}

func TestRejectsBadArguments(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "a")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "b")
	for _, args := range [][]string{
		{},
		{"--endpoint", "minio:9000"},
		{"--endpoint", "http://minio:9000/bucket"},
		{"--endpoint", "http://minio:9000", "extra"},
	} {
		if err := run(context.Background(), args); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}
