package group

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The records of __consumer_offsets, byte for byte as Kafka 3.9 writes
// them, so that the topic can be read by Kafka's own tools (and by any
// monitoring tool that consumes it) and a Kafka broker could load it:
//
//   - an offset commit: key OffsetCommitKey v1 (group, topic, partition),
//     value OffsetCommitValue v3 (offset, leader epoch, metadata, commit
//     timestamp), or v1 when the commit carries an expire timestamp
//     (OffsetCommit v2-v4 with a retention time);
//   - group metadata: key GroupMetadataKey v2 (group), value
//     GroupMetadataValue v3 (protocol type, generation, protocol, leader,
//     state timestamp, members with their subscription and assignment);
//   - a tombstone (null value) deletes either.
//
// The key's leading int16 is its version and tells the two apart: 0 and 1
// are offset commits, 2 is group metadata. Kafka 3.7+ also writes key
// versions 3 and up for KIP-848 consumer groups; they are skipped on load.
const (
	offsetKeyVersion         = 1
	groupKeyVersion          = 2
	offsetValueVersion       = 3
	offsetValueExpireVersion = 1
	groupValueVersion        = 3
)

// offsetKey encodes the key of a committed offset.
func offsetKey(group, topic string, partition int32) []byte {
	k := kmsg.OffsetCommitKey{Version: offsetKeyVersion, Group: group, Topic: topic, Partition: partition}
	return k.AppendTo(nil)
}

// groupKey encodes the key of a group's metadata.
func groupKey(group string) []byte {
	k := kmsg.GroupMetadataKey{Version: groupKeyVersion, Group: group}
	return k.AppendTo(nil)
}

// offsetValue encodes a committed offset.
func offsetValue(o *offset) []byte {
	v := kmsg.NewOffsetCommitValue()
	v.Version = offsetValueVersion
	if o.expireTimestamp >= 0 {
		v.Version = offsetValueExpireVersion
		v.ExpireTimestamp = o.expireTimestamp
	}
	v.Offset = o.offset
	v.LeaderEpoch = o.leaderEpoch
	v.Metadata = o.metadata
	v.CommitTimestamp = o.commitTimestamp
	return v.AppendTo(nil)
}

// decodedKey is a parsed __consumer_offsets key.
type decodedKey struct {
	kind      keyKind
	group     string
	topic     string
	partition int32
}

type keyKind int8

const (
	keyOther  keyKind = iota // a record type this coordinator does not use
	keyOffset                // OffsetCommitKey
	keyGroup                 // GroupMetadataKey
)

func decodeKey(b []byte) (decodedKey, error) {
	if len(b) < 2 {
		return decodedKey{}, fmt.Errorf("key of %d bytes", len(b))
	}
	switch v := int16(binary.BigEndian.Uint16(b)); v {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(b); err != nil {
			return decodedKey{}, fmt.Errorf("offset commit key: %w", err)
		}
		return decodedKey{kind: keyOffset, group: k.Group, topic: k.Topic, partition: k.Partition}, nil
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(b); err != nil {
			return decodedKey{}, fmt.Errorf("group metadata key: %w", err)
		}
		return decodedKey{kind: keyGroup, group: k.Group}, nil
	default:
		return decodedKey{kind: keyOther}, nil
	}
}

func decodeOffsetValue(b []byte) (*offset, error) {
	var v kmsg.OffsetCommitValue
	if err := v.ReadFrom(b); err != nil {
		return nil, fmt.Errorf("offset commit value: %w", err)
	}
	o := &offset{
		offset:          v.Offset,
		leaderEpoch:     -1,
		metadata:        v.Metadata,
		commitTimestamp: v.CommitTimestamp,
		expireTimestamp: -1,
	}
	if v.Version >= 3 {
		o.leaderEpoch = v.LeaderEpoch
	}
	if v.Version == 1 {
		o.expireTimestamp = v.ExpireTimestamp
	}
	return o, nil
}

func decodeGroupValue(b []byte) (*kmsg.GroupMetadataValue, error) {
	var v kmsg.GroupMetadataValue
	if err := v.ReadFrom(b); err != nil {
		return nil, fmt.Errorf("group metadata value: %w", err)
	}
	return &v, nil
}
