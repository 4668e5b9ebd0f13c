#!/usr/bin/env bash
# bench/fetch_size.sh: single-partition consume with kgo's default 1 MiB
# per-partition fetch limit and with 8 MiB, for tiercel, kfake in its own
# process and kfake in the bench process, interleaved. It shows how much of
# single-partition consume is per-fetch round trip (see RESULTS.md).
#
#   bench/fetch_size.sh [tiercel binary]     (default: build one)
#
# Environment: REPS=3, RECORDS=2000000, PORT=19792, KPORT=19793,
# METRICS_PORT=19744.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
REPS=${REPS:-3}
RECORDS=${RECORDS:-2000000}
PORT=${PORT:-19792}
KPORT=${KPORT:-19793}
METRICS_PORT=${METRICS_PORT:-19744}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tiercel-fetchsize.XXXXXX")
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"' EXIT

BIN=${1:-}
if [[ -z $BIN ]]; then
	BIN=$TMP/tiercel
	(cd "$REPO" && go build -o "$BIN" ./cmd/tiercel)
fi
METRICS_ARGS=()
if "$BIN" serve --help 2>&1 | grep -q -- '-metrics-listen'; then
	METRICS_ARGS=(--metrics-listen "127.0.0.1:$METRICS_PORT")
fi

wait_port() { for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
consume() { # target args...
	local target=$1 fp
	shift
	for fp in 1048576 8388608; do
		"$BIN" bench consume "$@" --fetch-max-partition-bytes "$fp" --json 2>/dev/null |
			python3 -c 'import json, sys
r = json.load(sys.stdin); c = r["phases"][-1]
print("%-10s fetch-max-partition-bytes=%-8s %6.0f MB/s  %5d fetches  %6.2f ms/fetch" % (
    sys.argv[1], sys.argv[2], c["mb_per_s"], c["requests"], 1e3 * c["seconds"] / c["requests"]))' "$target" "$fp"
	done
}

for rep in $(seq "$REPS"); do
	echo "repetition $rep"
	"$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$TMP/data" "${METRICS_ARGS[@]}" >"$TMP/broker.log" 2>&1 &
	PIDS+=($!)
	wait_port "$PORT"
	"$BIN" bench produce --brokers "127.0.0.1:$PORT" --topic fs --partitions 1 --records "$RECORDS" --json >/dev/null 2>&1
	consume tiercel --brokers "127.0.0.1:$PORT" --topic fs
	kill "${PIDS[-1]}"; wait "${PIDS[-1]}" || true
	rm -rf "$TMP/data"

	"$BIN" bench serve-kfake --port "$KPORT" >/dev/null 2>&1 &
	PIDS+=($!)
	wait_port "$KPORT"
	"$BIN" bench produce --brokers "127.0.0.1:$KPORT" --topic fs --partitions 1 --records "$RECORDS" --json >/dev/null 2>&1
	consume kfake-proc --brokers "127.0.0.1:$KPORT" --topic fs
	kill "${PIDS[-1]}"; wait "${PIDS[-1]}" || true

	consume kfake --kfake --topic fs --partitions 1 --records "$RECORDS"
done
