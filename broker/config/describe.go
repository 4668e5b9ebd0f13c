package config

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Entry is one config in a DescribeConfigs answer. Its fields map one to
// one onto kmsg.DescribeConfigsResponseResourceConfig (see Kmsg), so the
// broker's handler only filters by the requested names and copies.
type Entry struct {
	// Name is the config name.
	Name string
	// Value is the value as Kafka would render it; nil for a config with
	// no value and for sensitive ones.
	Value *string
	// ReadOnly is true when the config cannot be altered at run time.
	ReadOnly bool
	// IsDefault is the version 0 flag: true when Source is DEFAULT_CONFIG.
	IsDefault bool
	// Source says where the value comes from (DYNAMIC_TOPIC_CONFIG,
	// STATIC_BROKER_CONFIG or DEFAULT_CONFIG in Tiercel).
	Source kmsg.ConfigSource
	// IsSensitive marks secrets; no Tiercel config is one today.
	IsSensitive bool
	// Synonyms are every place a value for this config is set, in
	// precedence order, the effective one first; empty unless asked for.
	Synonyms []Synonym
	// Type is the config type (version 3+).
	Type kmsg.ConfigType
	// Documentation is the doc string when asked for (version 3+), else nil.
	Documentation *string
}

// Synonym is one place a config's value can come from.
type Synonym struct {
	// Name is the config or broker setting name.
	Name string
	// Value is its value there, as Kafka would render it.
	Value *string
	// Source says which kind of place it is.
	Source kmsg.ConfigSource
}

// Kmsg converts the entry to its wire form.
func (e Entry) Kmsg() kmsg.DescribeConfigsResponseResourceConfig {
	c := kmsg.NewDescribeConfigsResponseResourceConfig()
	c.Name = e.Name
	c.Value = e.Value
	c.ReadOnly = e.ReadOnly
	c.IsDefault = e.IsDefault
	c.Source = e.Source
	c.IsSensitive = e.IsSensitive
	c.ConfigType = e.Type
	c.Documentation = e.Documentation
	for _, s := range e.Synonyms {
		ks := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
		ks.Name, ks.Value, ks.Source = s.Name, s.Value, s.Source
		c.ConfigSynonyms = append(c.ConfigSynonyms, ks)
	}
	return c
}

// finish fills the fields derived from the synonyms: the source is that of
// the first (effective) synonym, as in Kafka.
func finish(e Entry, syns []Synonym, includeSynonyms bool, doc string, includeDocs bool) Entry {
	// Secrets are never sent back, anywhere in the entry. No Tiercel
	// setting is a PASSWORD today; this keeps a future one safe.
	if e.Type == kmsg.ConfigTypePassword {
		e.IsSensitive, e.Value = true, nil
		for i := range syns {
			syns[i].Value = nil
		}
	}
	e.Source = kmsg.ConfigSourceDefaultConfig
	if len(syns) > 0 {
		e.Source = syns[0].Source
	}
	e.IsDefault = e.Source == kmsg.ConfigSourceDefaultConfig
	if includeSynonyms {
		e.Synonyms = syns
	}
	if includeDocs {
		e.Documentation = ptr(doc)
	}
	return e
}

// Describe returns every broker setting for DescribeConfigs on a BROKER
// resource, sorted by name. A setting is STATIC_BROKER_CONFIG when the
// properties set it (or the caller changed it), else DEFAULT_CONFIG.
// Synonyms follow Kafka: settings with several names (log.retention.ms,
// .minutes, .hours) list the configured ones of equal or lower precedence,
// then the defaults. Every entry is read-only: Tiercel has no dynamic
// broker configuration.
func (b Broker) Describe(includeSynonyms, includeDocs bool) []Entry {
	out := make([]Entry, 0, len(brokerDefs))
	for i := range brokerDefs {
		d := &brokerDefs[i]
		e := Entry{Name: d.name, Value: b.get(d), ReadOnly: true, Type: d.typ}
		out = append(out, finish(e, b.brokerSynonyms(d), includeSynonyms, d.doc, includeDocs))
	}
	return out
}

// brokerSynonyms lists where a broker setting's value could come from:
// configured values across its synonym group, then defaults, dropping
// entries of higher precedence than the setting itself (they belong to a
// different name, whose own entry reports them).
func (b *Broker) brokerSynonyms(d *brokerDef) []Synonym {
	group := d.group
	if group == nil {
		group = []string{d.name}
	}
	var syns []Synonym
	for _, n := range group {
		if sd := brokerIndex[n]; b.isStatic(sd) {
			syns = append(syns, Synonym{Name: n, Value: b.get(sd), Source: kmsg.ConfigSourceStaticBrokerConfig})
		}
	}
	for _, n := range group {
		if sd := brokerIndex[n]; sd.dflt != nil {
			syns = append(syns, Synonym{Name: n, Value: ptr(*sd.dflt), Source: kmsg.ConfigSourceDefaultConfig})
		}
	}
	for len(syns) > 0 && syns[0].Name != d.name {
		syns = syns[1:]
	}
	return syns
}

// DescribeTopic returns every topic config for DescribeConfigs on a TOPIC
// resource, sorted by name, including those that have no effect in
// Tiercel (their documentation says so).
//
// An override is DYNAMIC_TOPIC_CONFIG. Otherwise the value is inherited
// from the broker and the source is STATIC_BROKER_CONFIG when one of the
// broker synonyms was configured, else DEFAULT_CONFIG. Synonyms are listed
// in Kafka's order: the topic override, then configured broker settings
// (highest precedence first), then broker defaults. An override that no
// longer validates is shown as stored.
func DescribeTopic(b Broker, overrides map[string]string, includeSynonyms, includeDocs bool) []Entry {
	out := make([]Entry, 0, len(topicDefs))
	for i := range topicDefs {
		d := &topicDefs[i]
		var syns []Synonym
		raw, overridden := overrides[d.name]
		if overridden {
			syns = append(syns, Synonym{Name: d.name, Value: d.normalize(raw), Source: kmsg.ConfigSourceDynamicTopicConfig})
		}
		for _, n := range d.synonyms {
			if bd := brokerIndex[n]; b.isStatic(bd) {
				syns = append(syns, Synonym{Name: n, Value: b.get(bd), Source: kmsg.ConfigSourceStaticBrokerConfig})
			}
		}
		for _, n := range d.synonyms {
			if bd := brokerIndex[n]; bd.dflt != nil {
				syns = append(syns, Synonym{Name: n, Value: ptr(*bd.dflt), Source: kmsg.ConfigSourceDefaultConfig})
			}
		}
		e := Entry{Name: d.name, Type: d.typ}
		if overridden {
			e.Value = d.normalize(raw)
		} else {
			e.Value = formatValue(d.typ, d.brokerDefault(&b))
		}
		out = append(out, finish(e, syns, includeSynonyms, d.doc, includeDocs))
	}
	return out
}
