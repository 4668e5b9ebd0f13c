package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/wire"
)

// register adds every API this broker serves. The ranges are those of a
// real Kafka 3.9 release (with Kafka 4.0's minimums where the older
// versions predate record batch v2), so that clients which infer the
// broker's release from them, like kafka-python, pick modern formats.
func (b *Broker) register(m *wire.Mux) {
	m.Handle(int16(kmsg.Produce), produceMinVersion, produceMaxVersion, b.handleProduce)
	// Produce appends its batches before returning and keeps no slice of
	// the request: its frame buffers are reused.
	m.BodyReusable(int16(kmsg.Produce))
	m.Handle(int16(kmsg.Fetch), fetchMinVersion, fetchMaxVersion, b.handleFetch)
	m.Handle(int16(kmsg.ListOffsets), listOffsetsMinVersion, listOffsetsMaxVersion, b.handleListOffsets)
	m.Handle(int16(kmsg.Metadata), metadataMinVersion, metadataMaxVersion, b.handleMetadata)
	m.Handle(int16(kmsg.OffsetForLeaderEpoch), offsetForLeaderEpochMinVersion, offsetForLeaderEpochMaxVersion, b.handleOffsetForLeaderEpoch)
	m.Handle(int16(kmsg.InitProducerID), initProducerIDMinVersion, initProducerIDMaxVersion, b.handleInitProducerID)
	m.Handle(int16(kmsg.AlterPartition), alterPartitionMinVersion, alterPartitionMaxVersion, b.handleAlterPartition)
	m.Handle(int16(kmsg.AllocateProducerIDs), allocateProducerIDsMinVersion, allocateProducerIDsMaxVersion, b.handleAllocateProducerIDs)
	m.Handle(int16(kmsg.ControlledShutdown), controlledShutdownMinVersion, controlledShutdownMaxVersion, b.handleControlledShutdown)
	b.registerAdmin(m)
	b.registerGroups(m)
}
