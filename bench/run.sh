#!/usr/bin/env bash
# bench/run.sh: measure Tiercel against franz-go's kfake on this machine,
# next to the machine's physical limits measured in the same run.
#
#   bench/run.sh            # everything, results in $OUT (printed at the end)
#
# Environment:
#   RUNS=5                  repetitions of every configuration (medians reported)
#   RECORDS=2000000         records per produce run (1 KiB values: 2.048 GB)
#   PARTITIONS="1 8"        partition counts to measure
#   PORT=19092              broker port; IPERF_PORT=15201
#   OUT=<new temp dir>      where the binary, raw JSON, logs and profiles go
#   WORKDIR=$OUT            where the broker's data dir and fio's file live
#                           (the same filesystem, so fio measures the disk the
#                           broker writes to)
#   TIERCEL_BIN=<path>      use this tiercel binary instead of building one
#   PROFILE=1               perf-record the broker under the produce and the
#                           consume load (needs perf; skipped when missing)
#
# Every configuration runs, in this order, per repetition:
#   tiercel produce, tiercel consume (reads what that produce wrote, from the
#     page cache); the broker is a separate process with a fresh data dir;
#   kfakeproc produce, kfakeproc consume: kfake served from its own process
#     (tiercel bench serve-kfake), driven exactly like tiercel;
#   kfake produce, kfake consume: kfake inside the bench process (--kfake), the
#     peer the issue names; it starts empty, so its consume run first fills
#     the topic with the same produce workload ("prefill").
# All use the same binary, the same franz-go client settings (kgo defaults,
# acks=1) and the same incompressible 1 KiB records.
set -euo pipefail

# The physical limits come from fio and iperf3 (Debian packages); say so
# up front rather than halfway through.
for tool in fio iperf3; do
	command -v "$tool" >/dev/null || { echo "bench/run.sh: needs $tool (apt-get install -y fio iperf3)" >&2; exit 2; }
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-5}
RECORDS=${RECORDS:-2000000}
PARTITIONS=${PARTITIONS:-"1 8"}
PORT=${PORT:-19092}
IPERF_PORT=${IPERF_PORT:-15201}
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/tiercel-bench.XXXXXX")}
WORKDIR=${WORKDIR:-$OUT}
PROFILE=${PROFILE:-1}
mkdir -p "$OUT" "$WORKDIR"

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

BROKER_PID=
cleanup() {
	if [[ -n $BROKER_PID ]]; then
		kill "$BROKER_PID" 2>/dev/null || true
		wait "$BROKER_PID" 2>/dev/null || true
	fi
	rm -rf "$WORKDIR"/data-* "$WORKDIR"/fio
}
trap cleanup EXIT

# ---------------------------------------------------------------------------
if [[ -n ${TIERCEL_BIN:-} ]]; then
	log "using the prebuilt $TIERCEL_BIN"
	cp "$TIERCEL_BIN" "$OUT/tiercel"
else
	log "building into $OUT/tiercel"
	(cd "$REPO" && go build -o "$OUT/tiercel" ./cmd/tiercel)
fi
BIN=$OUT/tiercel

{
	echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "nproc=$(nproc)"
	echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
	echo "mem=$(free -h | awk '/^Mem:/ {print $2}')"
	echo "kernel=$(uname -r)"
	echo "go=$(cd "$REPO" && go version | awk '{print $3, $4}')"
	echo "fs=$(df -T "$WORKDIR" | awk 'NR==2 {print $2 " on " $1}')"
	echo "commit=$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$REPO" && git diff --quiet HEAD 2>/dev/null || echo ' (dirty tree)')"
	echo "records=$RECORDS"
	echo "runs=$RUNS"
} >"$OUT/machine.txt"

# ---------------------------------------------------------------------------
# Physical limits, measured now.
log "fio: sequential write, 1 MiB blocks, 1 GiB, O_DIRECT, in $WORKDIR"
mkdir -p "$WORKDIR/fio"
FIO_CMD=(fio --name=seqwrite --rw=write --bs=1M --size=1G --direct=1 --ioengine=libaio
	--directory="$WORKDIR/fio" --output-format=json)
if "${FIO_CMD[@]}" >"$OUT/fio.json" 2>"$OUT/fio.err"; then
	echo "direct" >"$OUT/fio.mode"
else
	log "fio with --direct=1 failed ($(head -c 200 "$OUT/fio.err")); falling back to buffered IO with a final fsync"
	FIO_CMD=(fio --name=seqwrite --rw=write --bs=1M --size=1G --direct=0 --end_fsync=1 --ioengine=psync
		--directory="$WORKDIR/fio" --output-format=json)
	"${FIO_CMD[@]}" >"$OUT/fio.json"
	echo "buffered+end_fsync (direct IO unsupported)" >"$OUT/fio.mode"
fi
echo "${FIO_CMD[*]}" >"$OUT/fio.cmd"
rm -rf "$WORKDIR/fio"
# The broker writes through the page cache; this is that path, for reference.
mkdir -p "$WORKDIR/fio"
fio --name=seqwrite-buffered --rw=write --bs=1M --size=1G --direct=0 --end_fsync=1 --ioengine=psync \
	--directory="$WORKDIR/fio" --output-format=json >"$OUT/fio-buffered.json"
rm -rf "$WORKDIR/fio"

log "iperf3: loopback TCP, 5 s"
iperf3 -s -1 -p "$IPERF_PORT" >"$OUT/iperf3-server.log" 2>&1 &
IPERF_PID=$!
# Wait for the listener without connecting: -1 serves exactly one client.
for _ in $(seq 50); do ss -Hltn "sport = :$IPERF_PORT" | grep -q . && break; sleep 0.1; done
iperf3 -c 127.0.0.1 -p "$IPERF_PORT" -t 5 -J >"$OUT/iperf3.json"
wait "$IPERF_PID" || true

# ---------------------------------------------------------------------------
# start_kfake serves kfake from its own process (bench serve-kfake) on $PORT;
# it stands in for the broker, so bench() accounts its CPU the same way.
start_kfake() {
	"$BIN" bench serve-kfake --port "$PORT" >>"$OUT/kfake.log" 2>&1 &
	BROKER_PID=$!
	BROKER_KIND=kfake
	for _ in $(seq 100); do
		(echo >/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && return 0
		kill -0 "$BROKER_PID" 2>/dev/null || { log "kfake exited; see $OUT/kfake.log"; exit 1; }
		sleep 0.1
	done
	log "kfake did not listen on $PORT"
	exit 1
}

# The broker's Prometheus endpoint, when it has one, on a port of our own (the
# default one may be taken on a shared machine); bench() reads the broker-side
# request times from it.
METRICS_PORT=${METRICS_PORT:-19644}
METRICS_ARGS=()
if "$BIN" serve --help 2>&1 | grep -q -- '-metrics-listen'; then
	METRICS_ARGS=(--metrics-listen "127.0.0.1:$METRICS_PORT")
fi
BROKER_KIND=

start_broker() { # data dir
	"$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$1" "${METRICS_ARGS[@]}" >>"$OUT/broker.log" 2>&1 &
	BROKER_PID=$!
	BROKER_KIND=tiercel
	for _ in $(seq 100); do
		(echo >/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && return 0
		kill -0 "$BROKER_PID" 2>/dev/null || { log "broker exited; see $OUT/broker.log"; exit 1; }
		sleep 0.1
	done
	log "broker did not listen on $PORT"
	exit 1
}

stop_broker() {
	kill "$BROKER_PID"
	wait "$BROKER_PID" || true
	BROKER_PID=
	BROKER_KIND=
}

# request_times prints "API seconds count" for Produce and Fetch as the
# broker's metrics count them (time from request read to response written).
request_times() {
	if [[ $BROKER_KIND != tiercel || ${#METRICS_ARGS[@]} == 0 ]] || ! command -v curl >/dev/null; then
		return 0
	fi
	curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics" 2>/dev/null |
		awk '/^tiercel_request_duration_seconds_(sum|count)\{api="(Produce|Fetch)"\}/ {
			split($1, a, "\""); k = a[2]; if ($1 ~ /_sum/) s[k] = $2; else c[k] = $2
		} END {for (k in c) print k, s[k], c[k]}' || true
}

# broker_cpu prints the broker's user+system CPU time in clock ticks.
broker_cpu() { awk '{print $14 + $15}' "/proc/$BROKER_PID/stat"; }
# machine_cpu prints the busy CPU time of the whole machine in clock ticks.
machine_cpu() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

# bench NAME ARGS...: one bench run; JSON to $OUT/NAME.json, progress to
# $OUT/NAME.log. NAME.cpu gets, in clock ticks: the broker's CPU (0 without
# a broker process) and the whole machine's busy time over the run; NAME.time
# the bench process's wall, user and system seconds. The machine is shared:
# busy time that is neither ours nor the broker's is other load, and the
# summary reports it.
bench() {
	local name=$1
	shift
	local b0=0 b1=0 m0 m1
	if [[ -n $BROKER_PID ]]; then b0=$(broker_cpu); fi
	m0=$(machine_cpu)
	request_times >"$OUT/$name.req0"
	echo "$BIN bench $* --json" >"$OUT/$name.cmd"
	local TIMEFORMAT="%R %U %S"
	{ time "$BIN" bench "$@" --json >"$OUT/$name.json" 2>"$OUT/$name.log"; } 2>"$OUT/$name.time"
	m1=$(machine_cpu)
	request_times >"$OUT/$name.req1"
	if [[ -n $BROKER_PID ]]; then b1=$(broker_cpu); fi
	echo "$((b1 - b0)) $((m1 - m0))" >"$OUT/$name.cpu"
	log "  $name: $(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print("  ".join("%s %.1f MB/s" % (p["name"], p["mb_per_s"]) for p in r["phases"]))' "$OUT/$name.json")"
}

COMMON=(--record-size 1024 --acks 1)
for rep in $(seq "$RUNS"); do
	for p in $PARTITIONS; do
		log "run $rep/$RUNS, $p partition(s)"
		topic=bench-p$p
		data=$WORKDIR/data-p$p-r$rep
		start_broker "$data"
		bench "tiercel-produce-p$p-r$rep" produce --brokers "127.0.0.1:$PORT" --topic "$topic" --partitions "$p" --records "$RECORDS" "${COMMON[@]}"
		bench "tiercel-consume-p$p-r$rep" consume --brokers "127.0.0.1:$PORT" --topic "$topic" "${COMMON[@]}"
		stop_broker
		rm -rf "$data"
		start_kfake
		bench "kfakeproc-produce-p$p-r$rep" produce --brokers "127.0.0.1:$PORT" --topic "$topic" --partitions "$p" --records "$RECORDS" "${COMMON[@]}"
		bench "kfakeproc-consume-p$p-r$rep" consume --brokers "127.0.0.1:$PORT" --topic "$topic" "${COMMON[@]}"
		stop_broker
		bench "kfake-produce-p$p-r$rep" produce --kfake --topic "$topic" --partitions "$p" --records "$RECORDS" "${COMMON[@]}"
		bench "kfake-consume-p$p-r$rep" consume --kfake --topic "$topic" --partitions "$p" --records "$RECORDS" "${COMMON[@]}"
	done
done

# ---------------------------------------------------------------------------
# CPU profiles, in separate runs so perf's overhead never touches the numbers
# above: the broker process alone (perf record -p), and the whole machine
# (perf record -a: client, broker and kernel threads such as writeback) for
# tiercel and for kfake. perf needs no hardware counters for cpu-clock.
perf_reports() { # NAME
	local d=$OUT/perf-$1.data
	perf report -i "$d" --no-children -F overhead,sym --stdio --percent-limit 0.7 -g none 2>/dev/null |
		grep -v '^$' >"$OUT/perf-$1.self.txt" || true
	perf report -i "$d" --children --sort sym --stdio --percent-limit 3 -g none 2>/dev/null |
		grep -v '^$' >"$OUT/perf-$1.children.txt" || true
}
perf_system_reports() { # NAME BROKER_PID
	local d=$OUT/perf-$1.data
	# Samples per process (perf's own pid sort key is per thread).
	perf script -i "$d" -F comm,pid 2>/dev/null |
		awk '{n++; c[$NF " " $1]++} END {for (k in c) printf "%6.2f%%  %s\n", 100 * c[k] / n, k}' |
		sort -rn >"$OUT/perf-$1.bypid.txt" || true
	# The bench process: the busiest tiercel process that is not the broker.
	local client
	client=$(awk -v b="$2" '$3 == "tiercel" && $2 != b {print $2; exit}' "$OUT/perf-$1.bypid.txt")
	if [[ -n $client ]]; then
		perf report -i "$d" --pid "$client" --no-children -F overhead,sym --stdio --percent-limit 1 -g none 2>/dev/null |
			grep -v '^$' >"$OUT/perf-$1.client.txt" || true
	fi
}
if [[ $PROFILE == 1 ]] && command -v perf >/dev/null && perf record -e cpu-clock -o /dev/null -- true 2>/dev/null; then
	for p in $PARTITIONS; do
		log "profiling the broker, $p partition(s)"
		data=$WORKDIR/data-prof-p$p
		start_broker "$data"
		echo "$BROKER_PID" >"$OUT/profiled-broker-p$p.pid"
		for phase in produce consume; do
			args=(--brokers "127.0.0.1:$PORT" --topic "prof-p$p" "${COMMON[@]}")
			[[ $phase == produce ]] && args+=(--partitions "$p" --records "$RECORDS")
			perf record -e cpu-clock -F 999 -g -p "$BROKER_PID" -o "$OUT/perf-$phase-p$p.data" 2>"$OUT/perf-$phase-p$p.err" &
			PERF_PID=$!
			sleep 0.5
			bench "profiled-tiercel-$phase-p$p" "$phase" "${args[@]}"
			kill -INT "$PERF_PID"
			wait "$PERF_PID" || true
			perf_reports "$phase-p$p"
		done
		stop_broker
		rm -rf "$data"
	done
	# Whole machine, largest partition count, produce then consume.
	p=${PARTITIONS##* }
	log "profiling the whole machine, $p partition(s)"
	data=$WORKDIR/data-sys-p$p
	start_broker "$data"
	echo "$BROKER_PID" >"$OUT/system-broker.pid"
	for phase in produce consume; do
		for target in tiercel kfake; do
			if [[ $target == tiercel ]]; then
				args=(--brokers "127.0.0.1:$PORT" --topic "sys-p$p" "${COMMON[@]}")
				[[ $phase == produce ]] && args+=(--partitions "$p" --records "$RECORDS")
			else
				args=(--kfake --topic "sys-p$p" --partitions "$p" --records "$RECORDS" "${COMMON[@]}")
			fi
			perf record -a -e cpu-clock -F 499 -g -o "$OUT/perf-system-$target-$phase-p$p.data" 2>"$OUT/perf-system-$target-$phase-p$p.err" &
			PERF_PID=$!
			sleep 0.5
			bench "system-$target-$phase-p$p" "$phase" "${args[@]}"
			kill -INT "$PERF_PID"
			wait "$PERF_PID" || true
			perf_system_reports "system-$target-$phase-p$p" "$BROKER_PID"
		done
	done
	stop_broker
	rm -rf "$data"
	{
		echo "perf record -e cpu-clock -F 999 -g -p <broker pid>   (broker only)"
		echo "perf record -a -e cpu-clock -F 499 -g                (whole machine)"
	} >"$OUT/perf.cmd"
else
	log "perf unavailable: no broker profile"
fi

python3 "$REPO/bench/summarize.py" "$OUT" | tee "$OUT/summary.md"
log "raw results in $OUT"
