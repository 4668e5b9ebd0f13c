package tiering

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/tiercel/tiercel/tiering/objstore"
)

// SweepResult counts what a sweep did.
type SweepResult struct {
	Listed, Deleted int
}

// Sweep removes objects under topics/ that no manifest names: leftovers
// of uploads that crashed before their manifest write, of deletes that
// were interrupted, and of deleted topics. live reports whether a topic
// directory ("<topic>-<topicId>") belongs to an existing topic. Objects
// younger than grace are left alone, since an upload in progress writes
// its objects before its manifest.
func (t *Tier) Sweep(ctx context.Context, live func(topicDir string) bool, grace time.Duration) (SweepResult, error) {
	var res SweepResult
	now := t.now()
	byPartition := map[string][]objstore.ObjectInfo{}
	err := t.store.List(ctx, "topics/", func(o objstore.ObjectInfo) error {
		res.Listed++
		rest := strings.TrimPrefix(o.Key, "topics/")
		parts := strings.SplitN(rest, "/", 3)
		if len(parts) < 3 {
			return nil // not our layout; leave it
		}
		prefix := "topics/" + parts[0] + "/" + parts[1] + "/"
		byPartition[prefix] = append(byPartition[prefix], o)
		return nil
	})
	if err != nil {
		return res, err
	}
	for prefix, objs := range byPartition {
		topicDir := strings.SplitN(strings.TrimPrefix(prefix, "topics/"), "/", 2)[0]
		referenced := map[string]bool{}
		if live(topicDir) {
			id, ok := parsePartitionPrefix(prefix)
			if !ok {
				continue // not our layout; leave it
			}
			m, err := (&manifestStore{store: t.store, id: id}).load(ctx)
			if err != nil {
				t.logger.Warn("sweep: cannot read manifest; skipping partition", "prefix", prefix, "err", err)
				continue
			}
			for _, s := range m.Segments {
				for _, k := range s.objectKeys() {
					referenced[k] = true
				}
			}
			referenced[prefix+"manifest"] = true
		}
		for _, o := range objs {
			if referenced[o.Key] || now.Sub(o.LastModified) < grace {
				continue
			}
			if err := t.store.Delete(ctx, o.Key); err != nil {
				return res, err
			}
			res.Deleted++
		}
	}
	if res.Deleted > 0 {
		t.logger.Info("sweep removed unreferenced objects", "deleted", res.Deleted, "listed", res.Listed)
	}
	return res, nil
}

// topicIDLen is the length of a topic id in Kafka's base64 rendering.
const topicIDLen = 22

// parsePartitionPrefix inverts PartitionID.Prefix.
func parsePartitionPrefix(prefix string) (PartitionID, bool) {
	parts := strings.Split(strings.TrimPrefix(prefix, "topics/"), "/")
	if len(parts) != 3 || parts[2] != "" || len(parts[0]) < topicIDLen+2 || parts[0][len(parts[0])-topicIDLen-1] != '-' {
		return PartitionID{}, false
	}
	n, err := strconv.ParseInt(parts[1], 10, 32)
	if err != nil || n < 0 {
		return PartitionID{}, false
	}
	dir := parts[0]
	id := PartitionID{Topic: dir[:len(dir)-topicIDLen-1], TopicID: dir[len(dir)-topicIDLen:], Partition: int32(n)}
	return id, id.Prefix() == prefix
}
