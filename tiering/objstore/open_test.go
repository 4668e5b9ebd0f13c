package objstore_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/tiercel/tiercel/tiering/objstore"
)

func TestOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()

	s, err := objstore.Open(ctx, "file://"+dir, objstore.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fs, ok := s.(*objstore.FS); !ok || fs.Root() != dir {
		t.Fatalf("file URL opened %T", s)
	}
	s.Close()
	if s, err = objstore.Open(ctx, "file://localhost"+filepath.Join(dir, "sub"), objstore.OpenOptions{}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	for _, u := range []string{"mem://", "mem:///"} {
		s, err := objstore.Open(ctx, u, objstore.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := s.(*objstore.Mem); !ok {
			t.Fatalf("%s opened %T", u, s)
		}
	}

	s, err = objstore.Open(ctx, "s3://my-bucket/cluster/a", objstore.OpenOptions{
		S3: objstore.S3Config{Region: "eu-west-1", Credentials: aws.AnonymousCredentials{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*objstore.S3); !ok {
		t.Fatalf("s3 URL opened %T", s)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for url, want := range map[string]string{
		"":                         "no scheme",
		"/var/lib/x":               "no scheme",
		"gs://bucket":              "unknown scheme",
		"file:relative/dir":        "absolute",
		"file://host/dir":          "host",
		"file://":                  "absolute",
		"mem://name":               "no name",
		"s3://":                    "s3://bucket",
		"s3://Bad_Bucket/x":        "not a valid bucket",
		"s3://b/x?region=eu":       "query",
		"s3://key:secret@bucket/x": "credentials",
		"s3://bucket//x":           "empty segment",
		"s3:bucket":                "s3://bucket",
		"%zz":                      "invalid URL escape",
	} {
		_, err := objstore.Open(ctx, url, objstore.OpenOptions{})
		if err == nil {
			t.Errorf("Open(%q) succeeded", url)
			continue
		}
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), url) {
			t.Errorf("Open(%q) = %q; want it to name the URL and say %q", url, err, want)
		}
	}
	_, err := objstore.Open(ctx, "s3://bucket", objstore.OpenOptions{S3: objstore.S3Config{Bucket: "other"}})
	if err == nil {
		t.Error("Open with a bucket in both URL and options succeeded")
	}
}
