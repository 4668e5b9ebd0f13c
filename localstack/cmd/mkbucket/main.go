// Command mkbucket creates an S3 bucket unless it exists, waiting for the
// server to come up first. It is the bucket step of the local stacks:
// localstack/run-local.sh runs it against the MinIO it starts, and the
// compose files run it as a one-shot service before the brokers. Neither
// the MinIO server binary nor LocalStack's image can create a bucket at
// start on their own, and this needs no mc or AWS CLI.
//
//	mkbucket --endpoint http://127.0.0.1:9000 --bucket tiercel [--region us-east-1] [--wait 60s]
//
// Credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and
// AWS_SESSION_TOKEN if set), the variables the brokers read too.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkbucket:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("mkbucket", flag.ContinueOnError)
	endpoint := fs.String("endpoint", "", "S3 endpoint `URL`, e.g. http://127.0.0.1:9000 (required)")
	bucket := fs.String("bucket", "tiercel", "bucket `name` to create")
	region := fs.String("region", "us-east-1", "`region` to sign for and create the bucket in")
	wait := fs.Duration("wait", time.Minute, "how long to keep retrying while the server is not up yet")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *endpoint == "" {
		return errors.New("--endpoint is required")
	}
	u, err := url.Parse(*endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return fmt.Errorf("--endpoint %q: want http(s)://HOST:PORT", *endpoint)
	}
	access, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if access == "" || secret == "" {
		return errors.New("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set")
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:  credentials.NewStaticV4(access, secret, os.Getenv("AWS_SESSION_TOKEN")),
		Secure: u.Scheme == "https",
		Region: *region,
		// Path-style, as the broker uses with a custom endpoint: the
		// compose service names do not resolve as virtual-host buckets.
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	created, err := ensureBucket(ctx, client, *bucket, *region)
	if err != nil {
		return fmt.Errorf("bucket %s at %s: %w", *bucket, *endpoint, err)
	}
	if created {
		fmt.Printf("mkbucket: created bucket %s at %s\n", *bucket, *endpoint)
	} else {
		fmt.Printf("mkbucket: bucket %s already exists at %s\n", *bucket, *endpoint)
	}
	return nil
}

// ensureBucket creates bucket unless it exists, retrying every half second
// until ctx ends while the server cannot be reached or is still starting
// (MinIO answers 503 for a few seconds after it opens its port).
func ensureBucket(ctx context.Context, client *minio.Client, bucket, region string) (created bool, err error) {
	for {
		var exists bool
		exists, err = client.BucketExists(ctx, bucket)
		if err == nil {
			if exists {
				return false, nil
			}
			err = client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: region})
			if err == nil {
				return true, nil
			}
		}
		switch minio.ToErrorResponse(err).Code {
		case "BucketAlreadyOwnedByYou", "BucketAlreadyExists":
			// Another mkbucket won the race.
			return false, nil
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidBucketName":
			// Will not get better by waiting.
			return false, err
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("gave up waiting for the server: %w", err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
