package broker

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The high watermark of every hosted partition is checkpointed in the
// data directory, in Kafka's replication-offset-checkpoint format, so that
// after a restart a partition does not report a watermark of zero until
// its followers have fetched again (consumers would see no data, and a
// "latest" reset would jump back).

const hwCheckpointFile = "replication-offset-checkpoint"

// writeHWCheckpoint writes the checkpoint atomically.
func (b *Broker) writeHWCheckpoint() error {
	var lines []string
	b.forEachPartition(func(_ *topicState, p *partition) {
		lines = append(lines, fmt.Sprintf("%s %d %d", p.topic, p.index, p.HighWatermark()))
	})
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "0\n%d\n", len(lines))
	for _, l := range lines {
		buf.WriteString(l)
		buf.WriteByte('\n')
	}
	path := filepath.Join(b.cfg.DataDir, hwCheckpointFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// readHWCheckpoint returns the checkpointed watermarks by "topic-partition".
// A missing or unreadable file yields none: watermarks then start at the
// log end for sole replicas and climb as followers fetch.
func readHWCheckpoint(dataDir string) map[string]int64 {
	f, err := os.Open(filepath.Join(dataDir, hwCheckpointFile))
	if err != nil {
		return nil
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for i := 0; sc.Scan(); i++ {
		if i < 2 {
			continue // version and count
		}
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 {
			return nil
		}
		hw, err := strconv.ParseInt(fields[2], 10, 64)
		if err != nil {
			return nil
		}
		out[fields[0]+"-"+fields[1]] = hw
	}
	return out
}
