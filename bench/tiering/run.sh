#!/usr/bin/env bash
# bench/tiering/run.sh: tiered-storage benchmarks against a local MinIO,
# with the limits (disk, raw S3 PUT and ranged GET) measured in the same run.
#
#   bench/tiering/run.sh            # results in $OUT (printed at the end)
#
# Environment:
#   OUT=<new temp dir>        where the binary, MinIO's and the broker's data,
#                             logs and results.json go
#   COLD_SEGMENT_BYTES=1073741824,134217728
#                             segment.bytes of the offload / cold-read topics
#   COLD_BYTES=3489660928     bytes produced to each of them (3.25 GiB)
#   HOT_BYTES=1073741824      bytes per hot produce run; HOT_RUNS=5
#   TIERCEL_MINIO_BIN         MinIO server (default: scripts/install-minio.sh)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/tiercel-bench-tiering.XXXXXX")}
mkdir -p "$OUT"
log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

MINIO=${TIERCEL_MINIO_BIN:-$(bash "$REPO/scripts/install-minio.sh" | tail -n 1)}
[[ -x $MINIO ]] || { log "no MinIO binary ($MINIO)"; exit 1; }
log "building tiercel into $OUT"
(cd "$REPO" && go build -o "$OUT/tiercel" ./cmd/tiercel && go build -o "$OUT/bench-tiering" ./bench/tiering)

{
	echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "nproc=$(nproc)"
	echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
	echo "mem=$(free -h | awk '/^Mem:/ {print $2}')"
	echo "kernel=$(uname -r)"
	echo "go=$(cd "$REPO" && go version | awk '{print $3, $4}')"
	echo "minio=$("$MINIO" --version 2>/dev/null | head -n 1)"
	echo "fs=$(df -T "$OUT" | awk 'NR==2 {print $2 " on " $1}')"
	echo "commit=$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$REPO" && git diff --quiet HEAD 2>/dev/null || echo ' (dirty tree)')"
	echo "loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

"$OUT/bench-tiering" -tiercel "$OUT/tiercel" -minio "$MINIO" -workdir "$OUT/work" -out "$OUT/results.json" \
	-cold-segment-bytes "${COLD_SEGMENT_BYTES:-1073741824,134217728}" -cold-bytes "${COLD_BYTES:-3489660928}" \
	-hot-bytes "${HOT_BYTES:-1073741824}" -hot-runs "${HOT_RUNS:-5}" 2> >(tee "$OUT/bench.log" >&2) >/dev/null
echo "loadavg_after=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"
rm -rf "$OUT/work/minio/data" "$OUT/work/broker/data"
log "results: $OUT/results.json, log: $OUT/bench.log, machine: $OUT/machine.txt"
