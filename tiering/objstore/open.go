package objstore

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
)

// OpenOptions carries what a store URL cannot: S3 settings that belong to
// the deployment rather than to the store's address.
type OpenOptions struct {
	// S3 is the template for s3:// URLs. Bucket and Prefix come from the
	// URL and must be left empty here; Endpoint, Region and the rest are
	// used as given.
	S3 S3Config
	// Logger, if set, is used by stores that log (S3) unless S3.Logger
	// is set.
	Logger *slog.Logger
}

// bucketRE is S3's rule for bucket names, without the rarer exceptions.
var bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// Open opens the store a URL names:
//
//	file:///abs/dir      a directory store (FS) rooted at /abs/dir
//	mem://               a new, empty in-memory store
//	s3://bucket/prefix   an S3 store; the prefix is optional
func Open(ctx context.Context, rawURL string, opts OpenOptions) (ObjectStore, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("object store URL %q: %w", rawURL, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("object store URL %q: %s", rawURL, fmt.Sprintf(format, args...))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, bad("query and fragment are not supported; pass settings as options")
	}
	if u.User != nil {
		return nil, bad("credentials do not belong in the URL; S3 uses the AWS credential chain")
	}
	switch u.Scheme {
	case "file":
		if u.Opaque != "" {
			return nil, bad("the path must be absolute, as in file:///var/lib/tiercel/objects")
		}
		if u.Host != "" && u.Host != "localhost" {
			return nil, bad("host %q is not supported; write file:///abs/path", u.Host)
		}
		if u.Path == "" || !filepath.IsAbs(u.Path) {
			return nil, bad("the path must be absolute, as in file:///var/lib/tiercel/objects")
		}
		return NewFS(u.Path)
	case "mem":
		if u.Opaque != "" || u.Host != "" || (u.Path != "" && u.Path != "/") {
			return nil, bad("mem:// takes no name or path")
		}
		return NewMem(), nil
	case "s3":
		if u.Opaque != "" || u.Host == "" {
			return nil, bad("want s3://bucket or s3://bucket/prefix")
		}
		if !bucketRE.MatchString(u.Host) || strings.Contains(u.Host, "..") {
			return nil, bad("%q is not a valid bucket name", u.Host)
		}
		if opts.S3.Bucket != "" || opts.S3.Prefix != "" {
			return nil, bad("bucket and prefix come from the URL; leave them empty in the options")
		}
		cfg := opts.S3
		cfg.Bucket = u.Host
		cfg.Prefix = strings.TrimPrefix(u.Path, "/")
		if strings.HasPrefix(cfg.Prefix, "/") || strings.Contains(cfg.Prefix, "//") {
			return nil, bad("prefix %q has an empty segment", cfg.Prefix)
		}
		if cfg.Logger == nil {
			cfg.Logger = opts.Logger
		}
		s, err := NewS3(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("object store URL %q: %w", rawURL, err)
		}
		return s, nil
	case "":
		return nil, bad("no scheme; want file:///dir, mem:// or s3://bucket/prefix")
	default:
		return nil, bad("unknown scheme %q; want file, mem or s3", u.Scheme)
	}
}
