package broker

// The admin APIs: topic creation and deletion, partition growth, configs,
// cluster description, record deletion and log directories. Each has its
// own file; this one registers them and holds what they share.
//
// Every admin change goes through the controller, which writes the cluster
// metadata document and runs the watchers (b.apply) before it returns: by
// the time a handler answers, this broker has opened the new partitions,
// swapped in the new topic settings, or closed and deleted the logs of a
// deleted topic. With one broker there is nothing else to wait for; with
// more, "done" will mean "the controller wrote it", as in Kafka.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/broker/config"
	"github.com/tiercel/tiercel/broker/controller"
	"github.com/tiercel/tiercel/wire"
)

// registerAdmin adds the admin APIs.
func (b *Broker) registerAdmin(m *wire.Mux) {
	m.Handle(int16(kmsg.CreateTopics), createTopicsMinVersion, createTopicsMaxVersion, b.handleCreateTopics)
	m.Handle(int16(kmsg.DeleteTopics), deleteTopicsMinVersion, deleteTopicsMaxVersion, b.handleDeleteTopics)
	m.Handle(int16(kmsg.CreatePartitions), createPartitionsMinVersion, createPartitionsMaxVersion, b.handleCreatePartitions)
	m.Handle(int16(kmsg.DescribeConfigs), describeConfigsMinVersion, describeConfigsMaxVersion, b.handleDescribeConfigs)
	m.Handle(int16(kmsg.AlterConfigs), alterConfigsMinVersion, alterConfigsMaxVersion, b.handleAlterConfigs)
	m.Handle(int16(kmsg.IncrementalAlterConfigs), incrementalAlterConfigsMinVersion, incrementalAlterConfigsMaxVersion, b.handleIncrementalAlterConfigs)
	m.Handle(int16(kmsg.DescribeCluster), describeClusterMinVersion, describeClusterMaxVersion, b.handleDescribeCluster)
	m.Handle(int16(kmsg.DeleteRecords), deleteRecordsMinVersion, deleteRecordsMaxVersion, b.handleDeleteRecords)
	m.Handle(int16(kmsg.DescribeLogDirs), describeLogDirsMinVersion, describeLogDirsMaxVersion, b.handleDescribeLogDirs)
}

// apiError is an error with a Kafka code and the exact message that goes
// in a response's ErrorMessage. Kafka's own messages are used where tools
// and users are likely to match on them.
type apiError struct {
	code *kerr.Error
	msg  string
}

func (e *apiError) Error() string { return e.msg }

// Unwrap lets errCode find the code.
func (e *apiError) Unwrap() error { return e.code }

func apiErrorf(code *kerr.Error, format string, args ...any) error {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}

// adminErrMessage is the ErrorMessage for an admin error: the error's own
// text, except for a bare kerr code, whose text would only repeat the code.
func adminErrMessage(err error) *string {
	if err == nil {
		return nil
	}
	if _, bare := err.(*kerr.Error); bare {
		return nil
	}
	return errMessage(err)
}

// clientAddr is the requesting client's address, for logs.
func clientAddr(req *wire.Request) string {
	if req.Client == nil {
		return ""
	}
	return req.Client.Addr
}

// unknownTopic is Kafka's answer for a topic that does not exist.
func unknownTopic(name string) error {
	return apiErrorf(kerr.UnknownTopicOrPartition, "The topic '%s' does not exist.", name)
}

// isInternalTopic reports Kafka's internal topics, which Tiercel's own
// coordinators create and own: clients may not create, delete, grow or
// trim them.
func isInternalTopic(name string, t *controller.Topic) bool {
	return isInternalTopicName(name) || (t != nil && t.Internal)
}

// checkTopicName applies Kafka's topic name rules, as INVALID_TOPIC_EXCEPTION.
func checkTopicName(name string) error {
	if err := controller.ValidateTopicName(name); err != nil {
		return &apiError{code: kerr.InvalidTopicException, msg: err.Error()}
	}
	return nil
}

// adminContext bounds a controller write by the request's TimeoutMillis.
// Kafka treats a timeout of zero or less as "do not wait for the change to
// propagate"; our changes are synchronous and quick, so that case only
// keeps the connection's own context.
func adminContext(ctx context.Context, timeoutMillis int32) (context.Context, context.CancelFunc) {
	if timeoutMillis <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, time.Duration(timeoutMillis)*time.Millisecond)
}

// unopenedPartitions lists the partitions of a just created or grown topic
// that this broker should host but could not open (apply logged why).
func (b *Broker) unopenedPartitions(name string, id controller.TopicID, from int) []int {
	ts := b.current().topics[name]
	if ts == nil || ts.meta.ID != id {
		return nil // deleted or replaced since; nothing of ours to check
	}
	var missing []int
	for i := from; i < len(ts.meta.Partitions); i++ {
		if containsID(ts.meta.Partitions[i].Replicas, b.cfg.NodeID) && (i >= len(ts.partitions) || ts.partitions[i] == nil) {
			missing = append(missing, i)
		}
	}
	return missing
}

// notOpenedError is the answer when a topic change was written but this
// broker failed to open the new partitions: as in Kafka when a change does
// not propagate in time, the change stands and the client is told it is
// not ready.
func (b *Broker) notOpenedError(name string, missing []int) error {
	return apiErrorf(kerr.RequestTimedOut, "topic %s was written to the cluster metadata, but broker %d could not open partitions %v; see the broker log",
		name, b.cfg.NodeID, missing)
}

// Config resource types of DescribeConfigs, AlterConfigs and
// IncrementalAlterConfigs.
const (
	resourceTopic        = kmsg.ConfigResourceTypeTopic
	resourceBroker       = kmsg.ConfigResourceTypeBroker
	resourceBrokerLogger = kmsg.ConfigResourceTypeBrokerLogger
)

// checkBrokerResource validates the name of a BROKER (or BROKER_LOGGER)
// config resource: empty means the cluster-wide defaults (when allowed),
// otherwise it must be this broker's id, as Kafka requires.
func (b *Broker) checkBrokerResource(name string, allowEmpty bool) error {
	if name == "" {
		if allowEmpty {
			return nil
		}
		return apiErrorf(kerr.InvalidRequest, "Broker id must not be empty")
	}
	id, err := strconv.ParseInt(name, 10, 32)
	if err != nil {
		return apiErrorf(kerr.InvalidRequest, "Broker id must be an integer, but it is: %s", name)
	}
	if int32(id) != b.cfg.NodeID {
		if allowEmpty {
			return apiErrorf(kerr.InvalidRequest, "Unexpected broker id, expected %d or empty string, but received %s", b.cfg.NodeID, name)
		}
		return apiErrorf(kerr.InvalidRequest, "Unexpected broker id, expected %d but received %s", b.cfg.NodeID, name)
	}
	return nil
}

// noDynamicBrokerConfigs answers a request to change broker settings.
// Tiercel has no dynamic broker configuration: every setting is read-only
// at run time (DescribeConfigs says so), as Kafka answers for settings that
// are not dynamic.
func noDynamicBrokerConfigs(names []string) error {
	return apiErrorf(kerr.InvalidRequest,
		"Cannot update these configs dynamically: %v. Tiercel has no dynamic broker configuration; set them in the broker's --config file or with --override and restart it",
		names)
}

// resourceKey identifies a config resource, to find duplicates.
type resourceKey struct {
	typ  kmsg.ConfigResourceType
	name string
}

// duplicateResources returns the indexes of resources named more than once
// in one request. Kafka answers each of them with INVALID_REQUEST.
func duplicateResources(keys []resourceKey) map[int]bool {
	count := make(map[resourceKey]int, len(keys))
	for _, k := range keys {
		count[k]++
	}
	dup := make(map[int]bool)
	for i, k := range keys {
		if count[k] > 1 {
			dup[i] = true
		}
	}
	return dup
}

var errDuplicateResource = apiErrorf(kerr.InvalidRequest, "Each resource must appear at most once.")

// checkConfigNames applies the request-level checks Kafka makes on a config
// resource before anything else: no name twice, and no null value except
// for the operations that take none.
func checkConfigNames(names []string, nullValue func(i int) bool) error {
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if seen[n] {
			return apiErrorf(kerr.InvalidRequest, "Error due to duplicate config keys")
		}
		seen[n] = true
	}
	var nulls []string
	for i, n := range names {
		if nullValue(i) {
			nulls = append(nulls, n)
		}
	}
	if len(nulls) > 0 {
		return apiErrorf(kerr.InvalidRequest, "Null value not supported for : %s", strings.Join(nulls, ", "))
	}
	return nil
}

// alterTopicConfigs applies config changes through the controller, each
// result checked with config.ValidateTopicUpdate. broker.apply then swaps
// in the new settings of the running partitions.
func (b *Broker) alterTopicConfigs(ctx context.Context, changes map[string]controller.ConfigChange, validateOnly bool) (map[string]error, error) {
	checked := make(map[string]controller.ConfigChange, len(changes))
	for name, change := range changes {
		checked[name] = func(current map[string]string) (map[string]string, error) {
			updated, err := change(current)
			if err == nil {
				err = config.ValidateTopicUpdate(b.cfg.Settings, current, updated)
			}
			return updated, err
		}
	}
	errs, err := b.ctrl.AlterTopicConfigs(ctx, checked, validateOnly)
	for name, e := range errs {
		if errors.Is(e, controller.ErrUnknownTopic) {
			errs[name] = unknownTopic(name) // Kafka's wording
		}
	}
	return errs, err
}
