package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/minio/minio-go/v7"
)

// The cluster's state in the bucket, read with minio-go, independently of
// the broker's own S3 client and of its types: only the fields the tests
// check are declared here, by their JSON names.

// leaseDoc is <prefix>/cluster/lease.
type leaseDoc struct {
	Holder int32 `json:"holder"`
	Epoch  int64 `json:"epoch"`
}

// metadataDoc is <prefix>/cluster/metadata.
type metadataDoc struct {
	Version         int64                `json:"version"`
	ControllerEpoch int64                `json:"controllerEpoch"`
	Topics          map[string]*docTopic `json:"topics"`
}

type docTopic struct {
	Name       string         `json:"name"`
	Partitions []docPartition `json:"partitions"`
}

type docPartition struct {
	Replicas    []int32 `json:"replicas"`
	Leader      int32   `json:"leader"`
	LeaderEpoch int32   `json:"leaderEpoch"`
	ISR         []int32 `json:"isr"`
}

func (c *cluster) getObject(key string, into any) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	obj, err := c.minio.Client().GetObject(ctx, c.minio.Bucket, c.prefix+"/"+key, minio.GetObjectOptions{})
	if err != nil {
		return "", err
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		return "", err
	}
	if err := json.Unmarshal(b, into); err != nil {
		return "", fmt.Errorf("%s: %w: %q", key, err, b)
	}
	return string(b), nil
}

// readLease reads the controller lease object.
func (c *cluster) readLease() (leaseDoc, error) {
	var d leaseDoc
	_, err := c.getObject("cluster/lease", &d)
	return d, err
}

// readMetadataDoc reads the cluster metadata document.
func (c *cluster) readMetadataDoc() (*metadataDoc, error) {
	var d metadataDoc
	if _, err := c.getObject("cluster/metadata", &d); err != nil {
		return nil, err
	}
	if d.Topics == nil {
		d.Topics = map[string]*docTopic{}
	}
	return &d, nil
}

// countObjects counts the objects under prefix/sub in the bucket, and
// their bytes.
func (c *cluster) countObjects(sub string) (int, int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, size := 0, int64(0)
	for o := range c.minio.Client().ListObjects(ctx, c.minio.Bucket, minio.ListObjectsOptions{Prefix: c.prefix + "/" + sub, Recursive: true}) {
		if o.Err != nil {
			return 0, 0, o.Err
		}
		n++
		size += o.Size
	}
	return n, size, nil
}
