package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
)

// Topic name rules, as Kafka has them.
const maxTopicNameLen = 249

// ErrInvalidTopicName classifies a name Kafka would not accept.
var ErrInvalidTopicName = errors.New("invalid topic name")

// ValidateTopicName applies Kafka's rules: 1 to 249 characters from
// [a-zA-Z0-9._-], and not "." or "..".
func ValidateTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidTopicName)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q is reserved", ErrInvalidTopicName, name)
	case len(name) > maxTopicNameLen:
		return fmt.Errorf("%w: %d characters, at most %d", ErrInvalidTopicName, len(name), maxTopicNameLen)
	}
	for _, ch := range name {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '_' || ch == '-') {
			return fmt.Errorf("%w: %q contains %q; only ASCII letters, digits, '.', '_' and '-' are allowed", ErrInvalidTopicName, name, ch)
		}
	}
	return nil
}

// collisionKey maps '.' to '_': Kafka refuses topics that differ only in
// those, because metric names cannot tell them apart.
func collisionKey(name string) string { return strings.ReplaceAll(name, ".", "_") }

// TopicSpec is a topic to create.
type TopicSpec struct {
	Name              string
	NumPartitions     int32
	ReplicationFactor int16
	// Assignment, if set, gives the replicas of each partition by index
	// and overrides NumPartitions and ReplicationFactor.
	Assignment [][]int32
	Configs    map[string]string
	Internal   bool
}

// TopicResult is the outcome for one topic of a batch operation.
type TopicResult struct {
	Name  string
	Topic *Topic // the created or changed topic, when Err is nil
	Err   error
}

// CreateTopics creates the topics in one metadata write. Each result
// carries its own error; a failing topic does not stop the others. With
// validateOnly nothing is written.
func (c *Controller) CreateTopics(ctx context.Context, specs []TopicSpec, validateOnly bool) ([]TopicResult, error) {
	results := make([]TopicResult, len(specs))
	brokers := c.liveBrokers()
	plan := func(md *Metadata) []TopicResult {
		out := make([]TopicResult, len(specs))
		taken := map[string]string{}
		for name := range md.Topics {
			taken[collisionKey(name)] = name
		}
		for i, s := range specs {
			out[i].Name = s.Name
			t, err := planTopic(md, s, brokers, taken)
			if err != nil {
				out[i].Err = err
				continue
			}
			taken[collisionKey(s.Name)] = s.Name
			out[i].Topic = t
		}
		return out
	}
	if validateOnly {
		return plan(c.Current()), nil
	}
	_, err := c.Update(ctx, func(md *Metadata) error {
		results = plan(md)
		n := 0
		for _, r := range results {
			if r.Err == nil {
				md.Topics[r.Name] = r.Topic
				n++
			}
		}
		if n == 0 {
			return errNothingToDo
		}
		return nil
	})
	if errors.Is(err, errNothingToDo) {
		return results, nil
	}
	if err != nil {
		return nil, err
	}
	for _, r := range results {
		if r.Err == nil {
			c.cfg.Logger.Info("topic created", "topic", r.Name, "id", r.Topic.ID.String(),
				"partitions", len(r.Topic.Partitions), "replication.factor", len(r.Topic.Partitions[0].Replicas))
		}
	}
	return results, nil
}

var errNothingToDo = errors.New("nothing to do")

func planTopic(md *Metadata, s TopicSpec, brokers []BrokerInfo, taken map[string]string) (*Topic, error) {
	if err := ValidateTopicName(s.Name); err != nil {
		return nil, err
	}
	if _, ok := md.Topics[s.Name]; ok {
		return nil, fmt.Errorf("%w: %q", ErrTopicExists, s.Name)
	}
	if other, ok := taken[collisionKey(s.Name)]; ok {
		return nil, fmt.Errorf("%w: %q collides with existing topic %q ('.' and '_' are interchangeable in metric names)", ErrInvalidTopicName, s.Name, other)
	}
	var assignment [][]int32
	if len(s.Assignment) > 0 {
		if err := checkAssignment(s.Assignment, brokers); err != nil {
			return nil, err
		}
		assignment = s.Assignment
	} else {
		if s.NumPartitions <= 0 {
			return nil, fmt.Errorf("%w: %d, must be at least 1", ErrInvalidPartitions, s.NumPartitions)
		}
		if s.ReplicationFactor <= 0 {
			return nil, fmt.Errorf("%w: %d, must be at least 1", ErrInvalidReplicationFactor, s.ReplicationFactor)
		}
		if int(s.ReplicationFactor) > len(brokers) {
			return nil, fmt.Errorf("%w: %d is larger than the %d available brokers", ErrInvalidReplicationFactor, s.ReplicationFactor, len(brokers))
		}
		assignment = assign(brokers, 0, int(s.NumPartitions), int(s.ReplicationFactor))
	}
	t := &Topic{Name: s.Name, ID: NewTopicID(), Internal: s.Internal, Configs: maps.Clone(s.Configs)}
	for _, replicas := range assignment {
		t.Partitions = append(t.Partitions, newPartition(replicas))
	}
	return t, nil
}

func newPartition(replicas []int32) Partition {
	return Partition{
		Replicas:    slices.Clone(replicas),
		Leader:      replicas[0],
		LeaderEpoch: 0,
		ISR:         slices.Clone(replicas),
	}
}

func checkAssignment(assignment [][]int32, brokers []BrokerInfo) error {
	live := map[int32]bool{}
	for _, b := range brokers {
		live[b.ID] = true
	}
	rf := len(assignment[0])
	for p, replicas := range assignment {
		if len(replicas) == 0 || len(replicas) != rf {
			return fmt.Errorf("%w: partition %d has %d replicas, partition 0 has %d", ErrInvalidReplicaAssignment, p, len(replicas), rf)
		}
		seen := map[int32]bool{}
		for _, r := range replicas {
			if seen[r] {
				return fmt.Errorf("%w: partition %d lists broker %d twice", ErrInvalidReplicaAssignment, p, r)
			}
			seen[r] = true
			if !live[r] {
				return fmt.Errorf("%w: partition %d names broker %d, which is not live", ErrInvalidReplicaAssignment, p, r)
			}
		}
	}
	return nil
}

// assign spreads n partitions (numbered from first) of rf replicas over
// the brokers: leaders round-robin from a random start, and the broker
// list interleaves racks so that replicas of a partition land on
// different racks when the racks allow it.
func assign(brokers []BrokerInfo, first, n, rf int) [][]int32 {
	order := rackInterleaved(brokers)
	start := 0
	if len(order) > 1 {
		start = rand.IntN(len(order))
	}
	out := make([][]int32, n)
	for i := 0; i < n; i++ {
		p := first + i
		replicas := make([]int32, rf)
		for j := 0; j < rf; j++ {
			replicas[j] = order[(start+p+j)%len(order)]
		}
		out[i] = replicas
	}
	return out
}

func rackInterleaved(brokers []BrokerInfo) []int32 {
	byRack := map[string][]int32{}
	var racks []string
	for _, b := range brokers {
		if _, ok := byRack[b.Rack]; !ok {
			racks = append(racks, b.Rack)
		}
		byRack[b.Rack] = append(byRack[b.Rack], b.ID)
	}
	sort.Strings(racks)
	for _, r := range racks {
		slices.Sort(byRack[r])
	}
	var out []int32
	for i := 0; len(out) < len(brokers); i++ {
		for _, r := range racks {
			if i < len(byRack[r]) {
				out = append(out, byRack[r][i])
			}
		}
	}
	return out
}

// TopicRef names a topic to delete. With a non-zero ID, the topic is
// deleted only if it still has that id, so a topic recreated under the
// same name since the caller looked is left alone.
type TopicRef struct {
	Name string
	ID   TopicID
}

// DeleteTopics removes topics in one write. A missing topic, or one whose
// id differs from the ref's, gets ErrUnknownTopic in its result.
func (c *Controller) DeleteTopics(ctx context.Context, refs []TopicRef) ([]TopicResult, error) {
	var results []TopicResult
	_, err := c.Update(ctx, func(md *Metadata) error {
		results = make([]TopicResult, len(refs))
		n := 0
		for i, ref := range refs {
			results[i].Name = ref.Name
			t, ok := md.Topics[ref.Name]
			if !ok || (ref.ID != TopicID{} && t.ID != ref.ID) {
				results[i].Err = fmt.Errorf("%w: %q", ErrUnknownTopic, ref.Name)
				continue
			}
			results[i].Topic = t
			delete(md.Topics, ref.Name)
			n++
		}
		if n == 0 {
			return errNothingToDo
		}
		return nil
	})
	if errors.Is(err, errNothingToDo) {
		return results, nil
	}
	if err != nil {
		return nil, err
	}
	for _, r := range results {
		if r.Err == nil {
			c.cfg.Logger.Info("topic deleted", "topic", r.Name, "id", r.Topic.ID.String())
		}
	}
	return results, nil
}

// PartitionSpec asks for a topic to grow to Count partitions.
type PartitionSpec struct {
	Topic      string
	Count      int32
	Assignment [][]int32 // replicas of the new partitions only, optional
}

// CreatePartitions grows topics. A count at or below the current one is
// ErrInvalidPartitions, as in Kafka.
func (c *Controller) CreatePartitions(ctx context.Context, specs []PartitionSpec, validateOnly bool) ([]TopicResult, error) {
	brokers := c.liveBrokers()
	plan := func(md *Metadata) []TopicResult {
		out := make([]TopicResult, len(specs))
		for i, s := range specs {
			out[i].Name = s.Topic
			t, ok := md.Topics[s.Topic]
			if !ok {
				out[i].Err = fmt.Errorf("%w: %q", ErrUnknownTopic, s.Topic)
				continue
			}
			cur := int32(len(t.Partitions))
			if s.Count <= cur {
				out[i].Err = fmt.Errorf("%w: topic %q has %d partitions; the new count %d must be larger", ErrInvalidPartitions, s.Topic, cur, s.Count)
				continue
			}
			rf := len(t.Partitions[0].Replicas)
			var add [][]int32
			if len(s.Assignment) > 0 {
				if int32(len(s.Assignment)) != s.Count-cur {
					out[i].Err = fmt.Errorf("%w: %d assignments for %d new partitions", ErrInvalidReplicaAssignment, len(s.Assignment), s.Count-cur)
					continue
				}
				if err := checkAssignment(s.Assignment, brokers); err != nil {
					out[i].Err = err
					continue
				}
				add = s.Assignment
			} else {
				if rf > len(brokers) {
					out[i].Err = fmt.Errorf("%w: %d is larger than the %d available brokers", ErrInvalidReplicationFactor, rf, len(brokers))
					continue
				}
				add = assign(brokers, int(cur), int(s.Count-cur), rf)
			}
			nt := t.Clone()
			for _, r := range add {
				nt.Partitions = append(nt.Partitions, newPartition(r))
			}
			out[i].Topic = nt
		}
		return out
	}
	if validateOnly {
		return plan(c.Current()), nil
	}
	var results []TopicResult
	_, err := c.Update(ctx, func(md *Metadata) error {
		results = plan(md)
		n := 0
		for _, r := range results {
			if r.Err == nil {
				md.Topics[r.Name] = r.Topic
				n++
			}
		}
		if n == 0 {
			return errNothingToDo
		}
		return nil
	})
	if errors.Is(err, errNothingToDo) {
		return results, nil
	}
	if err != nil {
		return nil, err
	}
	return results, nil
}

// ConfigChange computes a topic's new config overrides from its current
// ones. It must be a pure function of its input: it runs again when a
// concurrent write wins the compare-and-swap.
type ConfigChange func(current map[string]string) (map[string]string, error)

// AlterTopicConfigs applies config changes to topics in one write. Each
// change is computed from the document being written, not from an earlier
// read, so concurrent alterations of one topic cannot lose an update. It
// returns the outcome per topic (nil for success), or an error when the
// write itself failed. With validateOnly nothing is written.
func (c *Controller) AlterTopicConfigs(ctx context.Context, changes map[string]ConfigChange, validateOnly bool) (map[string]error, error) {
	plan := func(md *Metadata) (map[string]error, map[string]map[string]string) {
		errs := make(map[string]error, len(changes))
		next := make(map[string]map[string]string, len(changes))
		for name, change := range changes {
			t := md.Topics[name]
			if t == nil {
				errs[name] = fmt.Errorf("%w: %q", ErrUnknownTopic, name)
				continue
			}
			updated, err := change(maps.Clone(t.Configs))
			if err != nil {
				errs[name] = err
				continue
			}
			errs[name] = nil
			if !maps.Equal(updated, t.Configs) {
				next[name] = updated
			}
		}
		return errs, next
	}
	if validateOnly {
		errs, _ := plan(c.Current())
		return errs, nil
	}
	var (
		errs    map[string]error
		changed []string
	)
	_, err := c.Update(ctx, func(md *Metadata) error {
		var next map[string]map[string]string
		errs, next = plan(md)
		changed = changed[:0]
		for name, overrides := range next {
			if len(overrides) == 0 {
				overrides = nil
			}
			md.Topics[name].Configs = overrides
			changed = append(changed, name)
		}
		if len(changed) == 0 {
			return errNothingToDo
		}
		return nil
	})
	if errors.Is(err, errNothingToDo) {
		return errs, nil
	}
	if err != nil {
		return nil, err
	}
	sort.Strings(changed)
	for _, name := range changed {
		c.cfg.Logger.Info("topic configs changed", "topic", name)
	}
	return errs, nil
}
