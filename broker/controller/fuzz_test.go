package controller

import (
	"encoding/json"
	"testing"
)

// FuzzDocuments feeds arbitrary bytes, as read from the bucket, to the
// decoders of the cluster metadata document and the controller lease.
func FuzzDocuments(f *testing.F) {
	md := &Metadata{Version: 3, ControllerEpoch: 2, ClusterID: "c", Topics: map[string]*Topic{
		"t": {Name: "t", ID: NewTopicID(), Configs: map[string]string{"retention.ms": "1"},
			Partitions: []Partition{{Replicas: []int32{1, 2}, Leader: 1, ISR: []int32{1, 2}}}},
	}}
	b, _ := encode(md)
	f.Add(b)
	lb, _ := json.Marshal(leaseDoc{Holder: 1, Epoch: 4, Counter: 9, TTLMs: 10000})
	f.Add(lb)
	f.Add([]byte(`{"topics":{"x":null}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if md, err := decode(b); err == nil {
			for name, t2 := range md.Topics {
				if t2 == nil || t2.Name != name {
					t.Fatalf("decode accepted a malformed topic entry %q", name)
				}
			}
			_ = md.Clone()
		}
		var d leaseDoc
		_ = json.Unmarshal(b, &d)
	})
}
