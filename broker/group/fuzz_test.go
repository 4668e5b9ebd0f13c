package group

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzGroupRecords feeds arbitrary keys and values of __consumer_offsets
// records to the decoders a coordinator runs when it loads a partition:
// they must never panic, whatever a corrupt or foreign log holds.
func FuzzGroupRecords(f *testing.F) {
	f.Add(offsetKey("g", "t", 3), offsetValue(&offset{offset: 42, leaderEpoch: 1, metadata: "m", commitTimestamp: 1700000000000}))
	gv := kmsg.NewGroupMetadataValue()
	gv.ProtocolType, gv.Generation = "consumer", 7
	f.Add(groupKey("g"), gv.AppendTo(nil))
	f.Add([]byte{0, 9}, []byte{})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		k, err := decodeKey(key)
		if err != nil {
			return
		}
		_ = k
		_, _ = decodeOffsetValue(value)
		if v, err := decodeGroupValue(value); err == nil && v == nil {
			t.Fatal("nil group value without an error")
		}
	})
}
