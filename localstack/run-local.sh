#!/usr/bin/env bash
# The local stack without Docker: a real MinIO and Tiercel brokers as plain
# processes, every one on 127.0.0.1. This is what a developer on a machine
# without a Docker engine uses in place of `make up`.
#
# Usage:
#   localstack/run-local.sh [up] [--brokers N]   start MinIO and N brokers (default 1)
#   localstack/run-local.sh down                 stop everything it started
#   localstack/run-local.sh status               show what is running
#
# One broker by default: until the cluster issue lands (gossip, --join, the
# controller lease), brokers that share an object store contend for the
# controller. --brokers 3 starts the three-broker layout of the compose
# stack; the script passes --gossip-listen/--join/--metrics-listen only when
# the built binary has them, and says so.
#
# Broker i (1-based) listens on Kafka 9092+i-1, gossip 7946+i-1 and metrics
# 9644+i-1. MinIO listens on 9000 (console 9001). The state (binaries, MinIO
# data, broker data, logs, pid files) is in $TIERCEL_LOCAL_STATE, default
# <repo>/.cache/run-local; `up` starts from an empty state, `down` keeps it
# for a look at the logs.
#
# Environment (all optional):
#   TIERCEL_LOCAL_STATE          state directory
#   TIERCEL_LOCAL_MINIO_PORT     MinIO S3 port (9000)
#   TIERCEL_LOCAL_CONSOLE_PORT   MinIO console port (MinIO port + 1)
#   TIERCEL_LOCAL_KAFKA_PORT     first broker's Kafka port (9092)
#   TIERCEL_LOCAL_GOSSIP_PORT    first broker's gossip port (7946)
#   TIERCEL_LOCAL_METRICS_PORT   first broker's metrics port (9644)
#   TIERCEL_MINIO_BIN            a MinIO server binary; default: scripts/install-minio.sh builds one
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="${TIERCEL_LOCAL_STATE:-$root/.cache/run-local}"
minio_port="${TIERCEL_LOCAL_MINIO_PORT:-9000}"
console_port="${TIERCEL_LOCAL_CONSOLE_PORT:-$((minio_port + 1))}"
kafka_base="${TIERCEL_LOCAL_KAFKA_PORT:-9092}"
gossip_base="${TIERCEL_LOCAL_GOSSIP_PORT:-7946}"
metrics_base="${TIERCEL_LOCAL_METRICS_PORT:-9644}"

# The same bucket and prefix as the compose stack. The credentials only
# guard a server on 127.0.0.1 with throwaway data.
readonly bucket=tiercel prefix=cluster region=us-east-1
readonly access_key=tiercel-local secret_key=tiercel-local-secret

log() { echo "run-local: $*"; }
die() {
	echo "run-local: $*" >&2
	exit 1
}

usage() {
	sed -n '6,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

# alive PIDFILE: the process the file names is running and is one of ours
# (its command line mentions the state directory), so a reused pid of some
# unrelated process is never signalled.
alive() {
	local pid
	[[ -f $1 ]] || return 1
	pid="$(<"$1")"
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$state"
}

# stop PIDFILE NAME: SIGTERM (the broker's controlled shutdown), then
# SIGKILL after 30 seconds.
stop() {
	local file=$1 name=$2 pid i
	if ! alive "$file"; then
		rm -f "$file"
		return 0
	fi
	pid="$(<"$file")"
	log "stopping $name (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "$name did not stop in 30s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$file"
}

down() {
	local file name
	[[ -d $state/pids ]] || {
		log "nothing to stop ($state/pids does not exist)"
		return 0
	}
	# Brokers first, while the object store they flush to is still up.
	for file in "$state"/pids/broker*.pid; do
		[[ -e $file ]] || continue
		name="$(basename "$file" .pid)"
		stop "$file" "$name"
	done
	stop "$state/pids/minio.pid" minio
	log "stopped; logs and data stay in $state until the next up"
}

status() {
	local file found=0
	for file in "$state"/pids/*.pid; do
		[[ -e $file ]] || continue
		found=1
		if alive "$file"; then
			echo "$(basename "$file" .pid): running (pid $(<"$file"))"
		else
			echo "$(basename "$file" .pid): not running"
		fi
	done
	((found)) || echo "nothing started (state: $state)"
}

# port_free PORT: nothing accepts connections on 127.0.0.1:PORT.
port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_port PORT PIDFILE NAME: wait up to 60s for the process to accept
# connections on PORT; fail early if it exits.
wait_port() {
	local port=$1 file=$2 name=$3 i
	for ((i = 0; i < 600; i++)); do
		if ! port_free "$port"; then
			return 0
		fi
		if ! alive "$file"; then
			echo "run-local: $name exited during start-up; the end of its log:" >&2
			tail -n 20 "$state/logs/$name.log" >&2 || true
			return 1
		fi
		sleep 0.1
	done
	echo "run-local: $name is not listening on 127.0.0.1:$port after 60s; see $state/logs/$name.log" >&2
	return 1
}

# start NAME COMMAND...: run a process in its own session (so that a Ctrl-C
# in this terminal later does not reach it), logging to logs/NAME.log.
start() {
	local name=$1
	shift
	setsid "$@" >"$state/logs/$name.log" 2>&1 </dev/null &
	echo $! >"$state/pids/$name.pid"
}

up() {
	local brokers=$1 file i port minio_bin

	for file in "$state"/pids/*.pid; do
		if [[ -e $file ]] && alive "$file"; then
			die "already running ($(basename "$file" .pid)); run: localstack/run-local.sh down"
		fi
	done
	for port in "$minio_port" "$console_port"; do
		port_free "$port" || die "port 127.0.0.1:$port is in use (set TIERCEL_LOCAL_MINIO_PORT / TIERCEL_LOCAL_CONSOLE_PORT)"
	done
	for ((i = 0; i < brokers; i++)); do
		for port in $((kafka_base + i)) $((gossip_base + i)) $((metrics_base + i)); do
			port_free "$port" || die "port 127.0.0.1:$port is in use (set TIERCEL_LOCAL_KAFKA_PORT, _GOSSIP_PORT or _METRICS_PORT)"
		done
	done

	# A fresh state: MinIO's bucket and the brokers' logs must start empty
	# together, or the brokers would find partitions the metadata lacks.
	rm -rf "$state"
	mkdir -p "$state/bin" "$state/logs" "$state/pids" "$state/minio"
	# If anything below fails, stop what was started.
	trap 'echo "run-local: start-up failed; stopping what was started" >&2; down' ERR

	if [[ -n ${TIERCEL_MINIO_BIN:-} ]]; then
		minio_bin="$TIERCEL_MINIO_BIN"
	else
		log "getting MinIO (scripts/install-minio.sh; the first build takes a few minutes)"
		minio_bin="$("$root/scripts/install-minio.sh" | tail -n 1)"
	fi
	[[ -x $minio_bin ]] || die "MinIO binary $minio_bin is not executable"

	log "building tiercel and mkbucket"
	(cd "$root" && go build -o "$state/bin/tiercel" ./cmd/tiercel && go build -o "$state/bin/mkbucket" ./localstack/cmd/mkbucket)

	log "starting MinIO on 127.0.0.1:$minio_port (console 127.0.0.1:$console_port)"
	MINIO_ROOT_USER="$access_key" MINIO_ROOT_PASSWORD="$secret_key" MINIO_REGION="$region" \
		MINIO_UPDATE=off MINIO_CI_CD=on \
		start minio "$minio_bin" server --quiet --address "127.0.0.1:$minio_port" \
		--console-address "127.0.0.1:$console_port" "$state/minio"
	wait_port "$minio_port" "$state/pids/minio.pid" minio
	AWS_ACCESS_KEY_ID="$access_key" AWS_SECRET_ACCESS_KEY="$secret_key" \
		"$state/bin/mkbucket" --endpoint "http://127.0.0.1:$minio_port" --bucket "$bucket" --region "$region" --wait 60s

	# Flags of the cluster and operations issues, only if this build has
	# them: a broker refuses flags it does not know.
	local help
	help="$("$state/bin/tiercel" serve --help 2>&1 || true)"
	knows_flag() { grep -Eq -- "^ +--?$1( |$)" <<<"$help"; }
	local cluster_flags=1 metrics_flag=1
	knows_flag gossip-listen && knows_flag join || cluster_flags=0
	knows_flag metrics-listen || metrics_flag=0
	if ((!cluster_flags)); then
		log "this tiercel has no --gossip-listen/--join yet (they come with the cluster issue); brokers start without gossip"
		if ((brokers > 1)); then
			log "WARNING: $brokers brokers share s3://$bucket/$prefix without a controller lease; they will contend for the controller"
		fi
	fi
	((metrics_flag)) || log "this tiercel has no --metrics-listen yet (it comes with the operations issue); no metrics endpoints"

	local kafka gossip join j args
	for ((i = 1; i <= brokers; i++)); do
		kafka=$((kafka_base + i - 1))
		gossip=$((gossip_base + i - 1))
		mkdir -p "$state/broker$i"
		args=(serve
			--node-id "$i"
			--listen "127.0.0.1:$kafka"
			--advertise "127.0.0.1:$kafka"
			--data-dir "$state/broker$i"
			--object-store "s3://$bucket/$prefix"
			--s3-endpoint "http://127.0.0.1:$minio_port"
			--s3-region "$region"
			--log-level info)
		if ((cluster_flags)); then
			join=""
			for ((j = 1; j <= brokers; j++)); do
				((j == i)) || join+="${join:+,}127.0.0.1:$((gossip_base + j - 1))"
			done
			args+=(--gossip-listen "127.0.0.1:$gossip")
			[[ -z $join ]] || args+=(--join "$join")
		fi
		((!metrics_flag)) || args+=(--metrics-listen "127.0.0.1:$((metrics_base + i - 1))")
		log "starting broker $i on 127.0.0.1:$kafka"
		AWS_ACCESS_KEY_ID="$access_key" AWS_SECRET_ACCESS_KEY="$secret_key" AWS_REGION="$region" \
			start "broker$i" "$state/bin/tiercel" "${args[@]}"
	done
	for ((i = 1; i <= brokers; i++)); do
		wait_port $((kafka_base + i - 1)) "$state/pids/broker$i.pid" "broker$i"
	done
	trap - ERR

	local servers=""
	for ((i = 0; i < brokers; i++)); do
		servers+="${servers:+,}127.0.0.1:$((kafka_base + i))"
	done
	cat <<EOF

Tiercel is up: $brokers broker(s) and MinIO, all on 127.0.0.1.
  Kafka        $servers
  MinIO        http://127.0.0.1:$minio_port  (console http://127.0.0.1:$console_port; $access_key / $secret_key)
  object store s3://$bucket/$prefix
EOF
	if ((metrics_flag)); then
		echo "  metrics      http://127.0.0.1:$metrics_base/metrics ... (one port per broker), /healthz, /readyz"
	fi
	cat <<EOF
  state, logs  $state  (logs/broker1.log, logs/minio.log)

Try:
  kcat -b $servers -L
  printf 'k1:hello\nk2:world\n' | kcat -b $servers -t demo -P -K:
  kcat -b $servers -t demo -C -o beginning -e -f '%k=%s @%o\n'
Stop:
  localstack/run-local.sh down
EOF
}

main() {
	local cmd=up brokers=1
	if [[ $# -gt 0 && $1 != -* ]]; then
		cmd=$1
		shift
	fi
	while [[ $# -gt 0 ]]; do
		case $1 in
		--brokers)
			[[ $# -ge 2 ]] || die "--brokers needs a number"
			brokers=$2
			shift 2
			;;
		--brokers=*)
			brokers=${1#--brokers=}
			shift
			;;
		-h | --help)
			usage
			exit 0
			;;
		*) die "unknown argument $1 (try --help)" ;;
		esac
	done
	[[ $brokers =~ ^[1-9]$ ]] || die "--brokers must be 1-9, not $brokers"
	case $cmd in
	up) up "$brokers" ;;
	down) down ;;
	status) status ;;
	*) die "unknown command $cmd (up, down or status)" ;;
	esac
}

main "$@"
