package broker

import (
	"context"
	"errors"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/tiercel/tiercel/broker/config"
	"github.com/tiercel/tiercel/broker/controller"
	plog "github.com/tiercel/tiercel/broker/log"
	"github.com/tiercel/tiercel/wire/batch"
)

// errCode classifies an error as a Kafka error code. Errors that carry a
// kerr value keep it; the storage and codec layers' errors map to the
// codes Kafka uses for them; anything else is UNKNOWN_SERVER_ERROR and is
// logged, because it means a bug or an unexpected environment failure.
func errCode(logger *slog.Logger, err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	switch {
	case errors.As(err, &ke):
		return ke.Code
	case errors.Is(err, batch.ErrUnsupportedMagic):
		return kerr.UnsupportedForMessageFormat.Code
	case errors.Is(err, batch.ErrUnsupportedCompression):
		return kerr.UnsupportedCompressionType.Code
	case errors.Is(err, batch.ErrCorrupt), errors.Is(err, batch.ErrShort):
		return kerr.CorruptMessage.Code
	case errors.Is(err, plog.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, controller.ErrTopicExists):
		return kerr.TopicAlreadyExists.Code
	case errors.Is(err, controller.ErrUnknownTopic):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, controller.ErrInvalidTopicName):
		return kerr.InvalidTopicException.Code
	case errors.Is(err, controller.ErrInvalidPartitions):
		return kerr.InvalidPartitions.Code
	case errors.Is(err, controller.ErrInvalidReplicationFactor):
		return kerr.InvalidReplicationFactor.Code
	case errors.Is(err, controller.ErrInvalidReplicaAssignment):
		return kerr.InvalidReplicaAssignment.Code
	case errors.Is(err, config.ErrInvalidRequest):
		// Checked before ErrInvalidConfig: a request that is malformed as
		// a whole (a name twice, an unknown operation) is INVALID_REQUEST
		// even when some of its values are also bad.
		return kerr.InvalidRequest.Code
	case errors.Is(err, config.ErrInvalidConfig):
		return kerr.InvalidConfig.Code
	case errors.Is(err, controller.ErrFenced):
		return kerr.NotController.Code
	case errors.Is(err, controller.ErrStoreUnavailable), errors.Is(err, context.DeadlineExceeded):
		// Retriable: clients retry REQUEST_TIMED_OUT.
		return kerr.RequestTimedOut.Code
	}
	if logger != nil {
		logger.Error("unclassified error", "err", err)
	}
	return kerr.UnknownServerError.Code
}

// errMessage is the message sent with an error code where the protocol
// has room for one.
func errMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}
