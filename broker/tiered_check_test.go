package broker

import (
	"context"
	"runtime/debug"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/tiercel/tiercel/internal/testenv"
	"github.com/tiercel/tiercel/tiering/objstore"
)

// Helpers for the tiered tests on a real MinIO: the broker's own S3 store.
// The independent check of what it stored is internal/bucketcheck.

// tieredRaceEnabled reports whether the test binary was built with -race, from
// its build information rather than a build tag.
func tieredRaceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// tieredS3Store returns the broker's own S3 store on the test bucket, under
// prefix.
func tieredS3Store(t testing.TB, srv *testenv.MinIOServer, prefix string) *objstore.S3 {
	t.Helper()
	s, err := objstore.NewS3(context.Background(), objstore.S3Config{
		Bucket: srv.Bucket, Prefix: prefix, Endpoint: srv.Endpoint, Region: srv.Region,
		Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
