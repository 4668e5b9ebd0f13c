// Package cluster_test runs Tiercel as a cluster of real broker processes
// against a real MinIO and checks, with faults injected, what the cluster
// issue promises: no acknowledged record is lost or duplicated when
// leaders die, brokers pause or lose the network; exactly one controller
// holds the lease and a fenced one cannot write; a broker with an empty
// disk rejoins from the bucket and the leader's local tail; consumer
// groups keep their committed offsets across a coordinator failover.
//
// Every test starts its own brokers (loopback ports, or network
// namespaces it creates for isolation faults) and its own bucket. Tests
// that need MinIO or namespaces fail, with the reason, when they cannot
// have them; nothing skips silently.
//
// Environment:
//
//	TIERCEL_BIN            use this broker binary instead of building one
//	TIERCEL_CLUSTER_SEED   seed of the fault schedule in TestRepeatedFaults
//	TIERCEL_CLUSTER_LOGS   copy every broker's log into this directory
//	TIERCEL_CLUSTER_LOG_LEVEL  the brokers' --log-level (default info)
//	TIERCEL_CLUSTER_PPROF  =1 starts the brokers with --pprof (profiles on
//	                       their metrics listeners)
//	TIERCEL_CLUSTER_BENCH  =1 runs the benchmarks (TestBench*), which are
//	                       otherwise skipped; see bench/cluster/run.sh
package cluster_test

import (
	"testing"

	"github.com/tiercel/tiercel/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
