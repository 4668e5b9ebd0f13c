// Package controller owns the cluster metadata document: topics, their
// ids, configs and partition assignments, leaders, ISRs and leader epochs,
// and producer-id blocks. The document lives in the object store and is
// changed only by compare-and-swap, stamped with the controller epoch, so a
// stale controller can never overwrite a newer decision.
//
// With one broker, that broker is always the controller. The lease that
// elects one controller among many builds on the same conditional writes.
package controller

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
)

// TopicID is a Kafka topic id, a random 128-bit UUID.
type TopicID [16]byte

// NewTopicID returns a random id. Kafka reserves the all-zero id and the
// id with only the low bit set; both are astronomically unlikely but
// avoided anyway.
func NewTopicID() TopicID {
	for {
		var id TopicID
		if _, err := rand.Read(id[:]); err != nil {
			panic(err) // crypto/rand never fails on Linux
		}
		if id != (TopicID{}) && id != (TopicID{15: 1}) {
			return id
		}
	}
}

// String is Kafka's rendering: URL-safe base64 without padding.
func (id TopicID) String() string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// MarshalText implements encoding.TextMarshaler.
func (id TopicID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *TopicID) UnmarshalText(b []byte) error {
	raw, err := base64.RawURLEncoding.DecodeString(string(b))
	if err != nil || len(raw) != 16 {
		return fmt.Errorf("bad topic id %q", b)
	}
	copy(id[:], raw)
	return nil
}

// Metadata is the cluster metadata document. A value obtained from the
// controller is shared and must not be modified; Clone it first.
type Metadata struct {
	// Version increases by one with every write.
	Version int64 `json:"version"`
	// ControllerEpoch is the epoch of the controller that wrote this
	// version. Brokers ignore instructions stamped with an older epoch.
	ControllerEpoch int64 `json:"controllerEpoch"`
	// ClusterID is fixed when the document is first created.
	ClusterID string `json:"clusterId"`
	// Topics by name.
	Topics map[string]*Topic `json:"topics"`
	// NextProducerID is the first producer id not yet handed out in a
	// block. Blocks are claimed by CAS, so ids stay unique across
	// restarts and brokers.
	NextProducerID int64 `json:"nextProducerId"`
}

// Topic is one topic's entry.
type Topic struct {
	Name string  `json:"name"`
	ID   TopicID `json:"id"`
	// Internal marks Kafka's internal topics such as __consumer_offsets.
	Internal bool `json:"internal,omitempty"`
	// Configs holds only the overrides set on the topic; defaults come
	// from the broker settings.
	Configs    map[string]string `json:"configs,omitempty"`
	Partitions []Partition       `json:"partitions"`
}

// Partition is one partition's assignment and leadership.
type Partition struct {
	Replicas    []int32 `json:"replicas"`
	Leader      int32   `json:"leader"`
	LeaderEpoch int32   `json:"leaderEpoch"`
	ISR         []int32 `json:"isr"`
	// PartitionEpoch increases with every change to this partition, as
	// Kafka's partition epoch does for AlterPartition.
	PartitionEpoch int32 `json:"partitionEpoch"`
}

// Clone returns a deep copy that may be modified.
func (m *Metadata) Clone() *Metadata {
	out := *m
	out.Topics = make(map[string]*Topic, len(m.Topics))
	for name, t := range m.Topics {
		out.Topics[name] = t.Clone()
	}
	return &out
}

// Clone returns a deep copy of the topic.
func (t *Topic) Clone() *Topic {
	out := *t
	out.Configs = maps.Clone(t.Configs)
	out.Partitions = make([]Partition, len(t.Partitions))
	for i, p := range t.Partitions {
		p.Replicas = slices.Clone(p.Replicas)
		p.ISR = slices.Clone(p.ISR)
		out.Partitions[i] = p
	}
	return &out
}

// TopicByID finds a topic by id.
func (m *Metadata) TopicByID(id TopicID) *Topic {
	for _, t := range m.Topics {
		if t.ID == id {
			return t
		}
	}
	return nil
}

// TopicNames returns the topic names, sorted.
func (m *Metadata) TopicNames() []string {
	names := make([]string, 0, len(m.Topics))
	for n := range m.Topics {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func encode(m *Metadata) ([]byte, error) { return json.MarshalIndent(m, "", " ") }

func decode(b []byte) (*Metadata, error) {
	var m Metadata
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("controller: decode metadata: %w", err)
	}
	if m.Topics == nil {
		m.Topics = make(map[string]*Topic)
	}
	for name, t := range m.Topics {
		if t == nil || t.Name != name {
			return nil, fmt.Errorf("controller: metadata topic entry %q is malformed", name)
		}
	}
	return &m, nil
}
