package broker

// DescribeCluster: versions 0 to 1.
//
// The live brokers, the cluster id and the controller. In Tiercel the
// controller is one of the brokers (the lease holder), so ControllerID names
// a broker clients can reach, which is what KRaft brokers answer too.
// ClusterAuthorizedOperations, when asked for, holds every operation Kafka
// defines on the CLUSTER resource: without an authorizer, Kafka allows them
// all.
//
// v1 (KIP-919) adds EndpointType: this listener serves brokers (1). Asking
// it for the controllers (2) is MISMATCHED_ENDPOINT_TYPE and any other type
// UNSUPPORTED_ENDPOINT_TYPE, each with Kafka's message and nothing else in
// the answer.

import (
	"context"
	"fmt"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tiercel/tiercel/wire"
)

const (
	describeClusterMinVersion = 0
	describeClusterMaxVersion = 1
)

// KIP-919 endpoint types.
const (
	endpointTypeBroker     = 1
	endpointTypeController = 2
)

// Kafka's ACL operation codes that apply to the CLUSTER resource.
const (
	aclCreate          = 5
	aclAlter           = 7
	aclDescribe        = 8
	aclClusterAction   = 9
	aclDescribeConfigs = 10
	aclAlterConfigs    = 11
	aclIdempotentWrite = 12
)

// clusterAuthorizedOperations is the bit field of what anyone may do on the
// cluster with no authorizer configured.
const clusterAuthorizedOperations int32 = 1<<aclCreate | 1<<aclAlter | 1<<aclDescribe | 1<<aclClusterAction |
	1<<aclDescribeConfigs | 1<<aclAlterConfigs | 1<<aclIdempotentWrite

func (b *Broker) handleDescribeCluster(ctx context.Context, req *wire.Request) wire.Response {
	in := req.Msg.(*kmsg.DescribeClusterRequest)
	resp := in.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.Version = req.Version

	if req.Version >= 1 && in.EndpointType != endpointTypeBroker {
		code, msg := kerr.UnsupportedEndpointType, fmt.Sprintf("Unsupported endpoint type %d", in.EndpointType)
		if in.EndpointType == endpointTypeController {
			code, msg = kerr.MismatchedEndpointType, "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER"
		}
		resp.ErrorCode = code.Code
		resp.ErrorMessage = &msg
		return wire.Msg(resp)
	}

	resp.EndpointType = endpointTypeBroker
	resp.ClusterID = b.current().md.ClusterID
	resp.ControllerID = b.controllerID()
	for _, br := range b.liveBrokers() {
		rb := kmsg.NewDescribeClusterResponseBroker()
		rb.NodeID, rb.Host, rb.Port, rb.Rack = br.ID, br.Host, br.Port, br.Rack
		resp.Brokers = append(resp.Brokers, rb)
	}
	if in.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = clusterAuthorizedOperations
	} else {
		resp.ClusterAuthorizedOperations = math.MinInt32 // the schema's "not asked"
	}
	return wire.Msg(resp)
}
