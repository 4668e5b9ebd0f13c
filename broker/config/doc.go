// Package config defines, parses, validates and describes Tiercel's broker
// settings and topic configs.
//
// Names and semantics follow Kafka so that existing server.properties files
// and admin tools work unchanged: a broker setting keeps its Kafka name and
// type, a topic config keeps its Kafka name and inherits its default from the
// same broker setting (its "synonym") that Kafka uses. Settings that only
// Tiercel has carry a "tiercel." prefix.
//
// The package is pure: it reads no files and keeps no mutable package state.
// The registries of definitions are immutable tables; every function returns
// fresh values.
//
// Flow in the broker:
//
//	props, err := config.ParseProperties(f)        // server.properties
//	b, err := config.NewBroker(props)              // typed Broker, all problems at once
//	log.Warn("ignored", "names", b.IgnoredNames()) // Kafka settings with no effect here
//
//	err = config.ValidateTopicOverrides(b, overrides) // CreateTopics, AlterConfigs
//	t, err := config.ResolveTopic(b, overrides)        // typed Topic for the log
//	entries := config.DescribeTopic(b, overrides, true, true)
//
// Every validation error is a *ConfigError (possibly several joined with
// errors.Join) that matches ErrInvalidConfig with errors.Is; unknown names
// also match ErrUnknownConfig. Kafka reports both as INVALID_CONFIG (40).
package config
