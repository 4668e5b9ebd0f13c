package broker

// DescribeLogDirs: versions 0 to 4.
//
// Tiercel keeps every partition in one log directory, the data directory,
// reported by its absolute path. Each hosted partition (all of them when
// Topics is null, else those asked for that this broker hosts) is listed
// with Size, its bytes in local segments, and OffsetLag, how far its log
// end is behind the high watermark (0 for a leader), as Kafka computes it.
// IsFuture is always false: there are no replica moves between
// directories. v3 adds the top-level ErrorCode, v4 the directory's total
// and usable bytes, from statfs(2).

import (
	"context"
	"path/filepath"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"

	"github.com/tiercel/tiercel/wire"
)

const (
	describeLogDirsMinVersion = 0
	describeLogDirsMaxVersion = 4
)

func (b *Broker) handleDescribeLogDirs(ctx context.Context, req *wire.Request) wire.Response {
	in := req.Msg.(*kmsg.DescribeLogDirsRequest)
	resp := in.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	resp.Version = req.Version

	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = b.cfg.DataDir
	if abs, err := filepath.Abs(b.cfg.DataDir); err == nil {
		dir.Dir = abs
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir.Dir, &st); err != nil {
		// The sizes stay at -1, the schema's "unknown"; the partitions
		// are still described.
		b.logger.Warn("statfs of the data directory failed", "dir", dir.Dir, "err", err)
	} else {
		dir.TotalBytes = int64(st.Blocks) * int64(st.Bsize)
		dir.UsableBytes = int64(st.Bavail) * int64(st.Bsize)
	}

	// What to describe: nil Topics means everything.
	var want map[string][]int32
	if in.Topics != nil {
		want = make(map[string][]int32, len(in.Topics))
		for _, t := range in.Topics {
			want[t.Topic] = append(want[t.Topic], t.Partitions...)
		}
	}
	byTopic := map[string]*kmsg.DescribeLogDirsResponseDirTopic{}
	b.forEachPartition(func(_ *topicState, p *partition) {
		if want != nil {
			parts, ok := want[p.topic]
			if !ok || !slices.Contains(parts, p.index) {
				return
			}
		}
		rt := byTopic[p.topic]
		if rt == nil {
			t := kmsg.NewDescribeLogDirsResponseDirTopic()
			t.Topic = p.topic
			rt = &t
			byTopic[p.topic] = rt
		}
		rp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		rp.Partition = p.index
		rp.Size, _ = p.logSizes()
		rp.OffsetLag = max(p.HighWatermark()-p.log.EndOffset(), 0)
		rt.Partitions = append(rt.Partitions, rp)
	})
	for _, rt := range byTopic {
		slices.SortFunc(rt.Partitions, func(a, b kmsg.DescribeLogDirsResponseDirTopicPartition) int {
			return int(a.Partition) - int(b.Partition)
		})
		dir.Topics = append(dir.Topics, *rt)
	}
	slices.SortFunc(dir.Topics, func(a, b kmsg.DescribeLogDirsResponseDirTopic) int {
		return strings.Compare(a.Topic, b.Topic)
	})
	resp.Dirs = append(resp.Dirs, dir)
	return wire.Msg(resp)
}

// logSizes returns the bytes of the partition on local disk and in the
// object store.
//
// DescribeLogDirs reports only the local bytes, as Kafka does with tiered
// storage (KIP-405): Size is what the log directory holds, and the protocol
// has no field for remote bytes. The remote size is for retention.bytes,
// which bounds local and remote together, and for metrics.
//
// TODO(tiering): return the sum of the segment sizes in the partition's
// remote manifest. Segments that are in the manifest and still on local
// disk count in both.
func (p *partition) logSizes() (local, remote int64) {
	return p.log.Size(), 0
}
