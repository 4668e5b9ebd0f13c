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
	m.Handle(int16(kmsg.Fetch), fetchMinVersion, fetchMaxVersion, b.handleFetch)
	m.Handle(int16(kmsg.ListOffsets), listOffsetsMinVersion, listOffsetsMaxVersion, b.handleListOffsets)
	m.Handle(int16(kmsg.Metadata), metadataMinVersion, metadataMaxVersion, b.handleMetadata)
	m.Handle(int16(kmsg.OffsetForLeaderEpoch), offsetForLeaderEpochMinVersion, offsetForLeaderEpochMaxVersion, b.handleOffsetForLeaderEpoch)
	m.Handle(int16(kmsg.InitProducerID), initProducerIDMinVersion, initProducerIDMaxVersion, b.handleInitProducerID)
	b.registerAdmin(m)
}
