package group

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRecordBytesAreKafkas checks the encoding of __consumer_offsets
// records against Kafka's schemas, written out by hand: a Kafka broker or
// tool reading the topic must find exactly what it writes itself.
func TestRecordBytesAreKafkas(t *testing.T) {
	be16 := func(b []byte, v int16) []byte { return binary.BigEndian.AppendUint16(b, uint16(v)) }
	be32 := func(b []byte, v int32) []byte { return binary.BigEndian.AppendUint32(b, uint32(v)) }
	be64 := func(b []byte, v int64) []byte { return binary.BigEndian.AppendUint64(b, uint64(v)) }
	str := func(b []byte, s string) []byte { return append(be16(b, int16(len(s))), s...) }

	// OffsetCommitKey v1: version, group, topic, partition.
	want := str(str(be16(nil, 1), "grp"), "topic")
	want = be32(want, 7)
	if got := offsetKey("grp", "topic", 7); !bytes.Equal(got, want) {
		t.Fatalf("offset key:\n got %x\nwant %x", got, want)
	}
	// OffsetCommitValue v3: version, offset, leader epoch, metadata,
	// commit timestamp.
	want = be64(be16(nil, 3), 1234)
	want = be32(want, 5)
	want = str(want, "md")
	want = be64(want, 1700000000000)
	o := &offset{offset: 1234, leaderEpoch: 5, metadata: "md", commitTimestamp: 1700000000000, expireTimestamp: -1}
	if got := offsetValue(o); !bytes.Equal(got, want) {
		t.Fatalf("offset value:\n got %x\nwant %x", got, want)
	}
	// With an expire timestamp, v1: version, offset, metadata, commit and
	// expire timestamps.
	want = be64(be16(nil, 1), 1234)
	want = str(want, "md")
	want = be64(be64(want, 1700000000000), 1700000060000)
	o.expireTimestamp = 1700000060000
	if got := offsetValue(o); !bytes.Equal(got, want) {
		t.Fatalf("offset value v1:\n got %x\nwant %x", got, want)
	}
	// GroupMetadataKey v2: version, group.
	if got, want := groupKey("grp"), str(be16(nil, 2), "grp"); !bytes.Equal(got, want) {
		t.Fatalf("group key:\n got %x\nwant %x", got, want)
	}

	// GroupMetadataValue v3 of a stable group with one static member.
	c := New(testConfig(newMemLog()))
	defer c.Close()
	g := newGroup(c, &shard{}, "grp")
	inst := "inst-1"
	g.add(&member{id: "m-1", instanceID: &inst, clientID: "cl", clientHost: "/10.0.0.1", sessionTimeout: 45000,
		rebalanceTimeout: 60000, protocolType: "consumer", protocols: []protocol{{"range", []byte("sub")}}}, waiter{})
	g.protocolType, g.protocol, g.generation, g.stateTimestamp = "consumer", "range", 4, 1700000000000
	want = str(be16(nil, 3), "consumer")
	want = be32(want, 4)
	want = str(str(want, "range"), "m-1")
	want = be64(want, 1700000000000)
	want = be32(want, 1)                                            // members
	want = str(str(str(str(want, "m-1"), inst), "cl"), "/10.0.0.1") // id, instance, client id, host
	want = be32(be32(want, 60000), 45000)                           // rebalance, session timeouts
	want = append(be32(want, 3), "sub"...)                          // subscription
	want = append(be32(want, 3), "asg"...)                          // assignment
	if got := g.metadataValue(map[string][]byte{"m-1": []byte("asg")}); !bytes.Equal(got, want) {
		t.Fatalf("group value:\n got %x\nwant %x", got, want)
	}
	v, err := decodeGroupValue(want)
	if err != nil || v.Generation != 4 || *v.Leader != "m-1" || *v.Members[0].InstanceID != inst {
		t.Fatalf("decode: %+v %v", v, err)
	}
	var k kmsg.OffsetCommitKey
	if err := k.ReadFrom(offsetKey("grp", "topic", 7)); err != nil || k.Partition != 7 {
		t.Fatalf("kmsg reads the key: %+v %v", k, err)
	}
}

// TestDecodeKeyKinds tells offset commits, group metadata and the record
// types of KIP-848 (skipped) apart.
func TestDecodeKeyKinds(t *testing.T) {
	k, err := decodeKey(offsetKey("g", "t", 1))
	if err != nil || k.kind != keyOffset || k.group != "g" || k.topic != "t" || k.partition != 1 {
		t.Fatalf("offset key: %+v %v", k, err)
	}
	k, err = decodeKey(groupKey("g"))
	if err != nil || k.kind != keyGroup || k.group != "g" {
		t.Fatalf("group key: %+v %v", k, err)
	}
	if k, err := decodeKey([]byte{0, 3, 0, 1, 'g'}); err != nil || k.kind != keyOther {
		t.Fatalf("consumer group metadata key: %+v %v", k, err)
	}
	if _, err := decodeKey([]byte{0}); err == nil {
		t.Fatal("short key decoded")
	}
	if _, err := decodeKey([]byte{0, 1, 0, 9, 'x'}); err == nil {
		t.Fatal("truncated offset key decoded")
	}
}
