package config

import (
	"errors"
	"fmt"
)

// ErrInvalidConfig is matched (errors.Is) by every error that Kafka reports
// as INVALID_CONFIG: a bad value, a bad combination, an unknown name.
var ErrInvalidConfig = errors.New("invalid config")

// ErrUnknownConfig is matched by errors about a name that is not a config
// Tiercel knows. It wraps ErrInvalidConfig because Kafka answers unknown
// topic config names with INVALID_CONFIG too.
var ErrUnknownConfig = fmt.Errorf("%w: unknown name", ErrInvalidConfig)

// ErrInvalidRequest is matched by errors that Kafka reports as
// INVALID_REQUEST (42) rather than INVALID_CONFIG: an unknown
// IncrementalAlterConfigs operation, or one config named twice in one
// request.
var ErrInvalidRequest = errors.New("invalid request")

// ConfigError describes one problem with one config or setting. Functions
// that validate several values join ConfigErrors with errors.Join, in a
// deterministic order, so that a user sees every problem at once.
type ConfigError struct {
	// Name is the config or setting the problem is about. For a problem
	// that involves two configs it is the one whose value is rejected.
	Name string
	// Value is the offending value as given (not trimmed); empty when the
	// problem is the name itself.
	Value string
	// Err is the class of the problem: ErrInvalidConfig, ErrUnknownConfig
	// or ErrInvalidRequest. It is what errors.Is matches.
	Err error

	msg string
}

// Error returns a one-line message that names the config. It is meant to
// be shown to users as is, so it is also what the broker puts in the
// ErrorMessage field of a Kafka response.
func (e *ConfigError) Error() string { return e.msg }

// Unwrap exposes the class of the problem to errors.Is and errors.As.
func (e *ConfigError) Unwrap() error { return e.Err }

// invalidf builds an INVALID_CONFIG error whose message starts with the
// config name, the form every value problem uses ("name: reason").
func invalidf(name, raw, format string, args ...any) *ConfigError {
	return &ConfigError{Name: name, Value: raw, Err: ErrInvalidConfig,
		msg: name + ": " + fmt.Sprintf(format, args...)}
}

// invalidMsg builds an INVALID_CONFIG error with a message used verbatim,
// for the few messages whose exact wording is given (Kafka's or the
// project's).
func invalidMsg(name, raw, msg string) *ConfigError {
	return &ConfigError{Name: name, Value: raw, Err: ErrInvalidConfig, msg: msg}
}

// unknown builds an error about a name that is not known.
func unknown(name, msg string) *ConfigError {
	return &ConfigError{Name: name, Err: ErrUnknownConfig, msg: msg}
}

// badRequest builds an INVALID_REQUEST error.
func badRequest(name, msg string) *ConfigError {
	return &ConfigError{Name: name, Err: ErrInvalidRequest, msg: msg}
}
