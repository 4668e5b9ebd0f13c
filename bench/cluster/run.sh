#!/usr/bin/env bash
# bench/cluster/run.sh: the cluster benchmarks of issue 5, on three real
# broker processes on 127.0.0.1 and a real MinIO (the harness of
# test/cluster), next to the machine's limits measured in the same run.
#
#   bench/cluster/run.sh          # everything; BENCH lines at the end
#
# What runs (test/cluster/bench_test.go):
#   TestBenchProduceLatency  p50/p99/p999 produce latency at fixed rates,
#                            acks=all (idempotent) vs acks=1, RF 3, in the
#                            same run; latency counts from each record's slot
#                            in the fixed-rate schedule to its ack
#   TestBenchFailover        SIGKILL of a partition leader (and of the
#                            controller when it leads) until an acks=all
#                            produce succeeds, with the test's fast failure
#                            detection and with the broker defaults
#   TestBenchWipedRejoin     wipe a follower's disk and restart it, at two
#                            retained sizes with the same local tail
#
# Environment (defaults in brackets):
#   BENCH_RATES_MBPS ["5 20 50"]  fixed produce rates, MB/s (1 MB = 1e6 B)
#   BENCH_SECONDS [20]         measured seconds per rate and acks (after 3 s warm-up)
#   BENCH_RECORD_BYTES [1024]  record value size
#   BENCH_PARTITIONS [6]       partitions of the latency topic
#   BENCH_FAILOVERS [6]        failover runs per settings profile (alternating kinds)
#   BENCH_REJOIN_SMALL_MB [50] BENCH_REJOIN_LARGE_MB [200] BENCH_REJOINS [3]
#   BENCH_PERF []              =1: perf-record broker 1 for half of the last rate's acks=all run
#                              (that line then measures a profiled broker)
#   TIERCEL_BIN                broker binary (default: built here, without -race)
#   OUT                        output directory (default: a new temp dir)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/tiercel-cluster-bench.XXXXXX")}
mkdir -p "$OUT"
export BENCH_RATES_MBPS=${BENCH_RATES_MBPS:-"5 20 50"}
export BENCH_PERF=${BENCH_PERF:-}
export TIERCEL_CLUSTER_BENCH=1

cd "$REPO"
if [[ -z ${TIERCEL_BIN:-} ]]; then
	TIERCEL_BIN="$OUT/tiercel"
	go build -o "$TIERCEL_BIN" ./cmd/tiercel
fi
export TIERCEL_BIN

{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown) (plus uncommitted changes: $(git status --porcelain 2>/dev/null | wc -l) files)"
	echo "kernel: $(uname -r)"
	echo "cpus: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
	echo "memory: $(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
	echo "disk of the temp dir: $(df -h "${TMPDIR:-/tmp}" | awk 'NR==2 {print $1, $2}')"
	echo "go: $(go version)"
	echo "env: BENCH_RATES_MBPS='$BENCH_RATES_MBPS' BENCH_SECONDS=${BENCH_SECONDS:-20} BENCH_FAILOVERS=${BENCH_FAILOVERS:-6} BENCH_REJOIN_SMALL_MB=${BENCH_REJOIN_SMALL_MB:-50} BENCH_REJOIN_LARGE_MB=${BENCH_REJOIN_LARGE_MB:-200}"
} | tee "$OUT/machine.txt"

# Not -race: the test binary is the load generator here.
go test -count=1 -timeout 60m -run '^TestBench' -v ./test/cluster 2>&1 | tee "$OUT/bench.log"
echo
echo "==== results ($OUT/bench.log) ===="
grep '^BENCH ' "$OUT/bench.log" | sed 's/^BENCH //'
