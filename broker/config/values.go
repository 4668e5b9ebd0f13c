package config

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// value is one parsed config value. Which field is meaningful depends on
// the config's type: b for BOOLEAN, i for INT, SHORT and LONG, f for DOUBLE,
// l for LIST, s for STRING, CLASS and PASSWORD. null marks a config that has
// no value at all (Kafka's null default, such as log.retention.ms).
type value struct {
	null bool
	b    bool
	i    int64
	f    float64
	s    string
	l    []string
}

func boolValue(b bool) value      { return value{b: b} }
func intValue(i int64) value      { return value{i: i} }
func strValue(s string) value     { return value{s: s} }
func listValue(l ...string) value { return value{l: l} }

// typeName is the lower-case name Kafka uses for a config type in its
// messages and documentation.
func typeName(t kmsg.ConfigType) string {
	switch t {
	case kmsg.ConfigTypeBoolean:
		return "boolean"
	case kmsg.ConfigTypeString:
		return "string"
	case kmsg.ConfigTypeInt:
		return "int"
	case kmsg.ConfigTypeShort:
		return "short"
	case kmsg.ConfigTypeLong:
		return "long"
	case kmsg.ConfigTypeDouble:
		return "double"
	case kmsg.ConfigTypeList:
		return "list"
	case kmsg.ConfigTypeClass:
		return "class"
	case kmsg.ConfigTypePassword:
		return "password"
	}
	return "unknown"
}

// trimJava trims the way Java's String.trim does, which is what Kafka
// applies to every value before parsing it: every character at or below
// U+0020 goes, not only Unicode spaces.
func trimJava(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return r <= ' ' })
}

// parseValue converts a raw string to a value of type t, the way Kafka's
// ConfigDef does: surrounding blanks are ignored, booleans are
// case-insensitive, numbers are decimal and must fit the type, lists are
// comma-separated with blanks around items ignored, and an empty list is
// the empty string. The error text is the reason only; the caller adds the
// config name.
func parseValue(t kmsg.ConfigType, raw string) (value, error) {
	s := trimJava(raw)
	switch t {
	case kmsg.ConfigTypeBoolean:
		switch {
		case strings.EqualFold(s, "true"):
			return boolValue(true), nil
		case strings.EqualFold(s, "false"):
			return boolValue(false), nil
		}
		return value{}, fmt.Errorf("%q is not a valid boolean (want true or false)", raw)
	case kmsg.ConfigTypeInt, kmsg.ConfigTypeShort, kmsg.ConfigTypeLong:
		bits := map[kmsg.ConfigType]int{kmsg.ConfigTypeShort: 16, kmsg.ConfigTypeInt: 32, kmsg.ConfigTypeLong: 64}[t]
		i, err := strconv.ParseInt(s, 10, bits)
		if err != nil {
			return value{}, fmt.Errorf("%q is not a valid %s", raw, typeName(t))
		}
		return intValue(i), nil
	case kmsg.ConfigTypeDouble:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return value{}, fmt.Errorf("%q is not a valid double", raw)
		}
		return value{f: f}, nil
	case kmsg.ConfigTypeList:
		return listValue(splitList(s)...), nil
	default:
		return strValue(s), nil
	}
}

// splitList splits a comma-separated list, trimming each item. The empty
// string is the empty list; empty items in the middle are kept so that a
// validator can reject them.
func splitList(s string) []string {
	s = trimJava(s)
	if s == "" {
		return []string{}
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = trimJava(p)
	}
	return parts
}

// formatValue renders a value the way Kafka renders it in DescribeConfigs,
// so that clients comparing strings see what they would see from Kafka.
// It returns nil for a null value.
func formatValue(t kmsg.ConfigType, v value) *string {
	if v.null {
		return nil
	}
	var s string
	switch t {
	case kmsg.ConfigTypeBoolean:
		s = strconv.FormatBool(v.b)
	case kmsg.ConfigTypeInt, kmsg.ConfigTypeShort, kmsg.ConfigTypeLong:
		s = strconv.FormatInt(v.i, 10)
	case kmsg.ConfigTypeDouble:
		s = formatJavaDouble(v.f)
	case kmsg.ConfigTypeList:
		s = strings.Join(v.l, ",")
	default:
		s = v.s
	}
	return &s
}

// formatJavaDouble mimics Java's Double.toString: plain notation with at
// least one decimal for magnitudes in [1e-3, 1e7), otherwise "d.dddE±n".
func formatJavaDouble(f float64) string {
	if a := math.Abs(f); a == 0 || (a >= 1e-3 && a < 1e7) {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	s := strconv.FormatFloat(f, 'E', -1, 64) // e.g. 1.5E-04 or 1E+08
	mant, exp, _ := strings.Cut(s, "E")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	neg := strings.HasPrefix(exp, "-")
	exp = strings.TrimLeft(strings.TrimLeft(exp, "+-"), "0")
	if neg {
		exp = "-" + exp
	}
	return mant + "E" + exp
}

// validator checks a parsed value against a rule. It returns the reason
// only; the caller adds the config name.
type validator func(v value) error

// atLeast is Kafka's Range.atLeast for integer types.
func atLeast(min int64) validator {
	return func(v value) error {
		if v.i < min {
			return fmt.Errorf("must be >= %d, got %d", min, v.i)
		}
		return nil
	}
}

// between is Kafka's Range.between for integer types (both ends included).
func between(min, max int64) validator {
	return func(v value) error {
		if v.i < min || v.i > max {
			return fmt.Errorf("must be between %d and %d, got %d", min, max, v.i)
		}
		return nil
	}
}

// ratio accepts a double in (min, max] when openMin is set, else [min, max].
func ratio(min, max float64, openMin bool) validator {
	return func(v value) error {
		lowOK := v.f >= min
		if openMin {
			lowOK = v.f > min
		}
		if !lowOK || v.f > max {
			lo := "["
			if openMin {
				lo = "("
			}
			return fmt.Errorf("must be in %s%s, %s], got %s", lo, formatJavaDouble(min), formatJavaDouble(max), formatJavaDouble(v.f))
		}
		return nil
	}
}

// oneOf is Kafka's ValidString.in: a case-sensitive choice.
func oneOf(choices ...string) validator {
	return func(v value) error {
		if !slices.Contains(choices, v.s) {
			return fmt.Errorf("%q is not valid; must be one of %s", v.s, strings.Join(choices, ", "))
		}
		return nil
	}
}

// listOf is Kafka's ValidList.in: every item must be one of the choices.
// Unlike Kafka it rejects the empty list, because Tiercel has no meaning
// for a topic without any cleanup policy.
func listOf(choices ...string) validator {
	return func(v value) error {
		if len(v.l) == 0 {
			return fmt.Errorf("must not be empty; must be a list of %s", strings.Join(choices, ", "))
		}
		for _, item := range v.l {
			if !slices.Contains(choices, item) {
				return fmt.Errorf("%q is not valid; items must be one of %s", item, strings.Join(choices, ", "))
			}
		}
		return nil
	}
}

// throttledReplicas checks the format Kafka requires of the
// *.replication.throttled.replicas lists: the single item "*", or items of
// the form partition:broker (empty items are tolerated, as in Kafka).
func throttledReplicas(v value) error {
	if len(v.l) == 1 && v.l[0] == "*" {
		return nil
	}
	for _, item := range v.l {
		if item == "" {
			continue
		}
		p, b, ok := strings.Cut(item, ":")
		if !ok || !allDigits(p) || !allDigits(b) {
			return fmt.Errorf("%q is not valid; must be \"*\" or a list of partition:broker pairs", item)
		}
	}
	return nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// gzipLevel is Kafka's rule for compression.gzip.level: -1 (the codec's
// default) or 1 to 9.
func gzipLevel(v value) error {
	if v.i == -1 || (v.i >= 1 && v.i <= 9) {
		return nil
	}
	return fmt.Errorf("must be -1 or between 1 and 9, got %d", v.i)
}

// compressionTypes are the values Kafka accepts for compression.type.
var compressionTypes = []string{"uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"}

// policy is a Tiercel rule applied after Kafka's own validation passed: the
// value is one Kafka accepts, but Tiercel does not (yet) implement it.
type policy func(name, raw string, v value) *ConfigError

// producerCompressionOnly: batches are stored exactly as producers
// compressed them, so any broker-side codec would be a lie.
func producerCompressionOnly(name, raw string, v value) *ConfigError {
	if v.s != "producer" {
		return invalidf(name, raw, "%q is not supported: only \"producer\" is, because Tiercel stores batches as the producer compressed them and never recompresses", v.s)
	}
	return nil
}

// deleteOnly: log compaction is not implemented yet. The message is the
// one the project agreed on, so tools and docs can quote it.
func deleteOnly(name, raw string, v value) *ConfigError {
	if slices.Contains(v.l, "compact") {
		return invalidMsg(name, raw, name+"=compact is not supported yet")
	}
	return nil
}

// falseOnly accepts only false: for Kafka switches whose "on" behaviour
// Tiercel does not implement, where silently ignoring "true" would break
// the user's intent but the default value is harmless to accept.
func falseOnly(name, raw string, v value) *ConfigError {
	if v.b {
		return invalidf(name, raw, "true is not supported yet; only false is accepted")
	}
	return nil
}
