#!/usr/bin/env bash
# Tiercel's end-to-end client checks.
#
# Starts one broker on a free loopback port with a fresh data directory,
# waits until it answers, then runs the real clients against it:
#   kcat.sh            kcat (librdkafka)
#   kafka_python.py    kafka-python 2.0.2
#   confluent_kafka.py confluent-kafka-python (librdkafka)
#   groups_kcat.sh, groups_kafka_python.py, groups_confluent.py
#                      consumer groups with the same three clients
# and finally restarts the broker and checks that every topic and record
# read before the restart reads back the same after it.
#
# The broker is always stopped at the end. When anything fails, the
# broker's log is printed and the exit status is non-zero.
#
# Usage: test/e2e/run.sh            (from any directory)
#
# Environment:
#   TIERCEL_BIN     broker binary to test (default: built from ./cmd/tiercel)
#   E2E_BOOTSTRAP   HOST:PORT of a broker that is already running: start
#                   nothing and skip the restart check (for developing the
#                   checks against another broker, e.g. franz-go's kfake;
#                   set E2E_NODE_ID and E2E_NUM_PARTITIONS to match it)
#   E2E_NODE_ID     --node-id for the broker (default 1)
#   E2E_ONLY        run only the checks whose names contain this (kcat,
#                   kafka_python, confluent_kafka, restart)
#   E2E_RACE        1: build the broker with -race (when TIERCEL_BIN is unset)
#   E2E_KEEP        1: keep the temporary directory (data, logs)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

readonly PYTHON=/usr/bin/python3 # Debian's, with the client packages; not a pyenv shim
readonly CHECK_TIMEOUT=300       # seconds for one client script
readonly READY_TIMEOUT=60        # seconds for the broker to answer kcat -L
readonly STOP_TIMEOUT=15         # seconds for the broker to exit on SIGTERM
readonly NODE_ID="${E2E_NODE_ID:-1}" # --node-id
readonly NUM_PARTITIONS=2 # --override num.partitions: what auto-created topics get

log() { printf '[e2e %s] %s\n' "$(date +%T)" "$*"; }
die() {
	log "ERROR: $*" >&2
	exit 1
}

require_tools() {
	command -v kcat >/dev/null || die "kcat is not installed: run scripts/install-deps.sh"
	[[ -x "$PYTHON" ]] || die "$PYTHON is missing: run scripts/install-deps.sh"
	"$PYTHON" -c 'import kafka, confluent_kafka' 2>/dev/null ||
		die "$PYTHON cannot import kafka and confluent_kafka: run scripts/install-deps.sh"
}

work="$(mktemp -d "${TMPDIR:-/tmp}/tiercel-e2e.XXXXXX")"
broker_pid=""
broker_log="$work/broker.log"
bootstrap=""
failed=()
passed=0

# stop_broker stops the broker this script started: SIGTERM, then SIGKILL
# if it has not exited after STOP_TIMEOUT seconds. Returns 1 if it had to
# be killed.
stop_broker() {
	local pid="$broker_pid" i rc=0
	[[ -n "$pid" ]] || return 0
	broker_pid=""
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "WARNING: the broker (pid $pid) did not exit ${STOP_TIMEOUT}s after SIGTERM; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		rc=1
	fi
	wait "$pid" 2>/dev/null || true
	return "$rc"
}

print_broker_log() {
	[[ -s "$broker_log" ]] || return 0
	local lines
	lines="$(wc -l <"$broker_log")"
	echo "===== broker log ($broker_log, last 300 of $lines lines) ====="
	tail -n 300 "$broker_log"
	echo "===== end of broker log ====="
}

cleanup() {
	local rc=$?
	stop_broker || true
	if ((rc != 0)); then
		print_broker_log
	fi
	if ((rc != 0)) || [[ "${E2E_KEEP:-}" == 1 ]]; then
		log "kept $work (broker data and logs)"
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

build_broker() {
	if [[ -n "${TIERCEL_BIN:-}" ]]; then
		[[ -x "$TIERCEL_BIN" ]] || die "TIERCEL_BIN=$TIERCEL_BIN is not an executable file"
		echo "$TIERCEL_BIN"
		return
	fi
	local flags=()
	if [[ "${E2E_RACE:-}" == 1 ]]; then flags=(-race); fi
	log "building ./cmd/tiercel ${flags[*]}" >&2
	go build "${flags[@]}" -o "$work/tiercel" ./cmd/tiercel || die "go build ./cmd/tiercel failed"
	echo "$work/tiercel"
}

free_port() {
	"$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_ready waits until kcat -L gets an answer from the broker, or fails
# when the broker exits or READY_TIMEOUT passes.
wait_ready() {
	local deadline=$((SECONDS + READY_TIMEOUT))
	while ((SECONDS < deadline)); do
		if [[ -n "$broker_pid" ]] && ! kill -0 "$broker_pid" 2>/dev/null; then
			log "the broker exited before it answered"
			return 1
		fi
		if timeout 5 kcat -b "$bootstrap" -L -m 2 -q >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.3
	done
	log "the broker did not answer kcat -L on $bootstrap within ${READY_TIMEOUT}s"
	return 1
}

# start_broker BIN [PORT]: starts the broker on PORT (default: a free one)
# with the data directory $work/data, and waits until it answers. A port
# taken between free_port and the broker's bind gets another try.
start_broker() {
	local bin="$1" port="${2:-}" attempt
	for attempt in 1 2 3; do
		[[ -n "$port" ]] || port="$(free_port)"
		bootstrap="127.0.0.1:$port"
		log "starting the broker on $bootstrap (attempt $attempt), log: $broker_log"
		echo "----- start on $bootstrap -----" >>"$broker_log"
		"$bin" serve --node-id "$NODE_ID" --listen "$bootstrap" --data-dir "$work/data" --metrics-listen 127.0.0.1:0 \
			--override "num.partitions=$NUM_PARTITIONS" >>"$broker_log" 2>&1 &
		broker_pid=$!
		if wait_ready; then
			log "the broker (pid $broker_pid) answers on $bootstrap"
			return 0
		fi
		stop_broker || true
		if [[ -z "${2:-}" ]] && grep -qi 'address already in use' "$broker_log"; then
			port=""
			continue
		fi
		break
	done
	return 1
}

# run_check NAME COMMAND...: runs one check script with a time limit.
run_check() {
	local name="$1" start rc=0
	shift
	if [[ -n "${E2E_ONLY:-}" && "$name" != *"$E2E_ONLY"* ]]; then
		return 0
	fi
	log "===== $name ====="
	start=$SECONDS
	if declare -F "$1" >/dev/null; then
		"$@" || rc=$? # a function of this script, bounded inside
	else
		timeout --kill-after=10 "$CHECK_TIMEOUT" "$@" || rc=$?
	fi
	if ((rc == 124 || rc == 137)); then
		log "$name did not finish within ${CHECK_TIMEOUT}s"
	fi
	if [[ -n "$broker_pid" ]] && ! kill -0 "$broker_pid" 2>/dev/null; then
		log "the broker exited during $name"
		rc=1
	fi
	if ((rc == 0)); then
		passed=$((passed + 1))
		log "ok   $name ($((SECONDS - start))s)"
	else
		failed+=("$name")
		log "FAIL $name (exit $rc, $((SECONDS - start))s)"
	fi
}

# dump_all prints every record of every topic, one sorted line each:
# topic, partition, offset, key and value lengths, key, value, headers,
# timestamp. It fails if kcat does.
dump_all() {
	local topics topic
	topics="$(timeout 30 kcat -b "$bootstrap" -L -J -m 10 -q |
		"$PYTHON" -c 'import json, sys; print("\n".join(sorted(t["topic"] for t in json.load(sys.stdin)["topics"])))')" ||
		return 1
	[[ -n "$topics" ]] || {
		log "kcat -L lists no topics at all" >&2
		return 1
	}
	while IFS= read -r topic; do
		echo "topic $topic"
		timeout 60 kcat -b "$bootstrap" -m 10 -q -C -t "$topic" -o beginning -e \
			-f '%t|%p|%o|%K|%S|%k|%s|%h|%T\n' || return 1
	done <<<"$topics" | LC_ALL=C sort
}

# check_restart: everything read before a clean restart reads back the
# same after it, from the same data directory and port.
check_restart() {
	local bin="$1" port="${bootstrap##*:}" n
	dump_all >"$work/before" || {
		log "cannot read the topics before the restart"
		return 1
	}
	n="$(grep -vc '^topic ' "$work/before" || true)"
	log "read $n records in $(grep -c '^topic ' "$work/before") topics; restarting the broker"
	if ! stop_broker; then
		log "FAIL: the broker needed SIGKILL to stop"
		return 1
	fi
	start_broker "$bin" "$port" || return 1
	dump_all >"$work/after" || {
		log "cannot read the topics after the restart (before it: $n records in $(grep -c '^topic ' "$work/before") topics)"
		return 1
	}
	if ! diff -u --label "before restart" --label "after restart" "$work/before" "$work/after" >"$work/restart.diff"; then
		log "the topics read back differently after the restart (- before, + after):"
		head -n 60 "$work/restart.diff"
		return 1
	fi
	log "all $n records read back the same after the restart"
}

# check_broker_log: the broker's log shows no crash, recovered panic or
# data race. Lines at level ERROR are shown but do not fail the run.
check_broker_log() {
	local bad
	bad="$(grep -nE '^panic:|panic\(|fatal error:|WARNING: DATA RACE' "$broker_log" || true)"
	if [[ -n "$bad" ]]; then
		log "the broker's log shows a panic, fatal error or data race:"
		head -n 20 <<<"$bad"
		return 1
	fi
	if grep -q 'level=ERROR' "$broker_log"; then
		log "note: the broker logged errors:"
		grep 'level=ERROR' "$broker_log" | head -n 20
	fi
	return 0
}

main() {
	local start=$SECONDS bin=""
	require_tools
	export E2E_RUN_ID="${E2E_RUN_ID:-$$}"
	export E2E_PYTHON="$PYTHON" PYTHONDONTWRITEBYTECODE=1
	if [[ -n "${E2E_BOOTSTRAP:-}" ]]; then
		bootstrap="$E2E_BOOTSTRAP"
		export E2E_NODE_ID="$NODE_ID" E2E_NUM_PARTITIONS="${E2E_NUM_PARTITIONS:-1}"
		log "using the broker already running at $bootstrap"
		wait_ready || die "nothing answers on $bootstrap"
	else
		bin="$(build_broker)"
		export E2E_NODE_ID="$NODE_ID" E2E_NUM_PARTITIONS="$NUM_PARTITIONS"
		start_broker "$bin" || die "the broker did not start"
	fi

	run_check kcat "$here/kcat.sh" "$bootstrap"
	run_check kafka_python "$PYTHON" "$here/kafka_python.py" "$bootstrap"
	run_check confluent_kafka "$PYTHON" "$here/confluent_kafka.py" "$bootstrap"
	run_check groups_kcat "$here/groups_kcat.sh" "$bootstrap"
	run_check groups_kafka_python "$PYTHON" "$here/groups_kafka_python.py" "$bootstrap"
	run_check groups_confluent "$PYTHON" "$here/groups_confluent.py" "$bootstrap"
	if [[ -n "$bin" ]]; then
		run_check restart check_restart "$bin"
	else
		log "note: not checking a restart of a broker this script did not start"
	fi
	if [[ -n "$bin" ]]; then
		run_check broker_log check_broker_log
	fi

	log "took $((SECONDS - start))s"
	if ((${#failed[@]})); then
		log "failed: ${failed[*]}"
	fi
	echo "e2e: $passed passed, ${#failed[@]} failed"
	((${#failed[@]} == 0))
}

main "$@"
