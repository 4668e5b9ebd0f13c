package config

import (
	"fmt"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TimestampType is the value of log.message.timestamp.type and
// message.timestamp.type: which clock a record's timestamp comes from.
type TimestampType string

const (
	// CreateTime keeps the timestamp the producer put in the record.
	CreateTime TimestampType = "CreateTime"
	// LogAppendTime replaces it with the leader's clock at append time.
	LogAppendTime TimestampType = "LogAppendTime"
)

// Definition describes one broker setting or topic config: what
// BrokerDefinitions and TopicDefinitions return, for help output and docs.
type Definition struct {
	// Name is the Kafka (or tiercel.-prefixed) name.
	Name string
	// Type is the Kafka config type, numbered as in DescribeConfigs.
	Type kmsg.ConfigType
	// Default is the value used when nothing sets it, as DescribeConfigs
	// would show it; nil when the setting has no value by default. For a
	// topic config it is the value inherited from a default Broker.
	Default *string
	// Doc says what the setting does in Tiercel.
	Doc string
	// ReadOnly is true for settings that cannot be changed while the
	// broker runs. Every broker setting is read-only today because Tiercel
	// has no dynamic broker configuration; topic configs never are.
	ReadOnly bool
	// Sensitive is true for secrets, whose values are never described.
	Sensitive bool
	// Synonyms are, for a topic config, the broker settings that supply
	// its default, highest precedence first. Empty for broker settings.
	Synonyms []string
	// NoEffect marks a Kafka topic config that Tiercel accepts, validates,
	// stores and describes but does not act on.
	NoEffect bool
}

// spec is what broker and topic definitions share: how to parse and check
// a value.
type spec struct {
	name   string
	typ    kmsg.ConfigType
	doc    string
	valid  validator // Kafka's own rule; nil accepts any value of the type
	policy policy    // Tiercel's extra rule; nil accepts what Kafka accepts
}

// parse converts and checks a raw value against Kafka's rules. A value that
// fails here is unusable.
func (s *spec) parse(raw string) (value, *ConfigError) {
	v, err := parseValue(s.typ, raw)
	if err != nil {
		return value{}, invalidf(s.name, raw, "%v", err)
	}
	if s.valid != nil {
		if err := s.valid(v); err != nil {
			return value{}, invalidf(s.name, raw, "%v", err)
		}
	}
	return v, nil
}

// check applies Tiercel's policy to a value Kafka would accept. It is
// separate from parse so that cross-config rules can still see the value
// and report their own problems in the same pass.
func (s *spec) check(raw string, v value) *ConfigError {
	if s.policy == nil {
		return nil
	}
	return s.policy(s.name, raw, v)
}

// normalize returns the value as DescribeConfigs shows it, or the raw
// string when it does not parse (an override stored under older rules must
// still be describable).
func (s *spec) normalize(raw string) *string {
	v, err := s.parse(raw)
	if err != nil {
		return &raw
	}
	return formatValue(s.typ, v)
}

// setField stores v through a pointer to a typed field. The table tests
// check that every definition's field has the Go type its config type
// needs, so the panic is unreachable from valid tables.
func setField(p any, v value) {
	switch p := p.(type) {
	case *bool:
		*p = v.b
	case *int16:
		*p = int16(v.i)
	case *int32:
		*p = int32(v.i)
	case *int64:
		*p = v.i
	case **int32:
		if v.null {
			*p = nil
		} else {
			x := int32(v.i)
			*p = &x
		}
	case **int64:
		if v.null {
			*p = nil
		} else {
			x := v.i
			*p = &x
		}
	case *float64:
		*p = v.f
	case *string:
		*p = v.s
	case *TimestampType:
		*p = TimestampType(v.s)
	case *[]string:
		*p = slices.Clone(v.l)
	default:
		panic(fmt.Sprintf("config: unsupported field type %T", p))
	}
}

// getField reads a typed field back as a value.
func getField(p any) value {
	switch p := p.(type) {
	case *bool:
		return boolValue(*p)
	case *int16:
		return intValue(int64(*p))
	case *int32:
		return intValue(int64(*p))
	case *int64:
		return intValue(*p)
	case **int32:
		if *p == nil {
			return value{null: true}
		}
		return intValue(int64(**p))
	case **int64:
		if *p == nil {
			return value{null: true}
		}
		return intValue(**p)
	case *float64:
		return value{f: *p}
	case *string:
		return strValue(*p)
	case *TimestampType:
		return strValue(string(*p))
	case *[]string:
		return listValue(slices.Clone(*p)...)
	default:
		panic(fmt.Sprintf("config: unsupported field type %T", p))
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func ptr(s string) *string { return &s }

// editDistance is the Levenshtein distance, for "did you mean" hints.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// closest returns the candidate nearest to name when it is near enough to
// be a plausible typo, else "".
func closest(name string, candidates []string) string {
	best, bestD := "", 3 // at most two edits
	for _, c := range candidates {
		if d := editDistance(name, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}
