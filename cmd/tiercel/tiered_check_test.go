package main

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tiercel/tiercel/internal/testenv"
	"github.com/tiercel/tiercel/internal/testproc"
)

// Helpers for the tiered tests of the real binary on a real MinIO. The
// bucket is checked with internal/bucketcheck, independently of the
// broker's S3 code and codec.

// TestMain stops the shared MinIO and removes its data after the tests.
func TestMain(m *testing.M) { testenv.Main(m) }

// tieredBrokerArgs are the arguments that run the real binary on srv's
// bucket under prefix; the MinIO credentials go in the environment.
func tieredBrokerArgs(t *testing.T, srv *testenv.MinIOServer, endpoint, dataDir, prefix string, overrides ...string) []string {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	// The metrics listener on a port of its own: the default (9644) may be
	// taken by another broker on this machine.
	args := []string{"--data-dir", dataDir, "--object-store", "s3://" + srv.Bucket + "/" + prefix,
		"--s3-endpoint", endpoint, "--s3-region", srv.Region, "--metrics-listen", "127.0.0.1:0"}
	for _, o := range overrides {
		args = append(args, "--override", o)
	}
	return args
}

// tieredRead consumes partition p of topic from offset 0 up to end and
// returns the records.
func tieredRead(t *testing.T, addr, topic string, p int32, end int64) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(0)}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out []*kgo.Record
	for int64(len(out)) < end {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("partition %d: read %d of %d records", p, len(out), end)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch partition %d: %v", p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

// tieredProc starts the binary and returns it with its address.
func tieredProc(t *testing.T, args []string) *testproc.Proc {
	t.Helper()
	return testproc.Start(t, testproc.FreeAddr(t), args...)
}
