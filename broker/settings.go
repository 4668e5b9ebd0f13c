package broker

import (
	"time"

	"github.com/tiercel/tiercel/broker/config"
	"github.com/tiercel/tiercel/broker/controller"
	plog "github.com/tiercel/tiercel/broker/log"
)

// topicSettings is a topic's resolved configuration in the shapes the hot
// paths use. It is immutable; a config change swaps in a new one.
type topicSettings struct {
	topic     config.Topic
	logConfig plog.Config

	LogAppendTime     bool
	MaxMessageBytes   int
	MinInsyncReplicas int
	// Timestamp window for CreateTime topics; -1 means unbounded.
	TimestampBeforeMaxMs, TimestampAfterMaxMs int64
	RetentionMs, RetentionBytes               int64 // -1: unlimited
	SegmentMs                                 int64
}

// settingsFor resolves a topic's settings. The group coordinator's
// internal topic has settings of its own (offsetsTopicSettings).
func (b *Broker) settingsFor(t *controller.Topic) (*topicSettings, error) {
	if isOffsetsTopic(t) {
		return offsetsTopicSettings(b.cfg.Settings, t.Configs), nil
	}
	return newTopicSettings(b.cfg.Settings, t.Configs)
}

// newTopicSettings resolves a topic's overrides over the broker defaults.
func newTopicSettings(b config.Broker, overrides map[string]string) (*topicSettings, error) {
	t, err := config.ResolveTopic(b, overrides)
	if err != nil {
		return nil, err
	}
	return settingsFromTopic(t), nil
}

func settingsFromTopic(t config.Topic) *topicSettings {
	lc := plog.DefaultConfig()
	lc.SegmentBytes = int64(t.SegmentBytes)
	lc.RollInterval = time.Duration(t.SegmentMs) * time.Millisecond
	lc.IndexIntervalBytes = int(t.IndexIntervalBytes)
	lc.MaxIndexBytes = int(t.SegmentIndexBytes)
	lc.FlushIntervalMessages = t.FlushMessages
	if t.FlushMs > 0 && t.FlushMs < int64(1<<62/time.Millisecond) {
		lc.FlushInterval = time.Duration(t.FlushMs) * time.Millisecond
	}
	return &topicSettings{
		topic:                t,
		logConfig:            lc,
		LogAppendTime:        t.MessageTimestampType == config.LogAppendTime,
		MaxMessageBytes:      int(t.MaxMessageBytes),
		MinInsyncReplicas:    int(t.MinInsyncReplicas),
		TimestampBeforeMaxMs: unboundedIfHuge(t.MessageTimestampBeforeMaxMs),
		TimestampAfterMaxMs:  unboundedIfHuge(t.MessageTimestampAfterMaxMs),
		RetentionMs:          t.RetentionMs,
		RetentionBytes:       t.RetentionBytes,
		SegmentMs:            t.SegmentMs,
	}
}

// unboundedIfHuge maps Kafka's Long.MAX_VALUE "no limit" to -1.
func unboundedIfHuge(v int64) int64 {
	if v < 0 || v >= 1<<62 {
		return -1
	}
	return v
}
