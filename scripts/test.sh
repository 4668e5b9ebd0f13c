#!/usr/bin/env bash
# Tiercel's test command (`make test`, and what CI runs through .ci/run):
#   1. install what the tests need      scripts/install-deps.sh
#   2. static checks                    scripts/lint.sh
#   3. unit and component tests         go test -race ./...
#   4. build the broker                 bin/tiercel
#   5. end-to-end checks, real clients  test/e2e/run.sh
# Stops at the first stage that fails, with a non-zero exit.
#
# Usage: scripts/test.sh   (from any directory)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

start=$SECONDS
stage_name=""
stage_start=$SECONDS
timings=()

stage() {
	finish_stage
	stage_name="$1"
	stage_start=$SECONDS
	printf '\n==================== %s ====================\n' "$stage_name"
}

finish_stage() {
	[[ -n "$stage_name" ]] || return 0
	timings+=("$(printf '%-56s %4ds' "$stage_name" $((SECONDS - stage_start)))")
	stage_name=""
}

report() {
	local rc=$? failed_stage="$stage_name" line
	finish_stage
	printf '\n==================== summary ====================\n'
	for line in "${timings[@]}"; do printf '  %s\n' "$line"; done
	local total=$((SECONDS - start))
	if ((rc == 0)); then
		printf 'test.sh: all stages passed in %dm%02ds\n' $((total / 60)) $((total % 60))
	else
		printf 'test.sh: FAILED in stage "%s" (exit %d) after %dm%02ds\n' \
			"$failed_stage" "$rc" $((total / 60)) $((total % 60))
	fi
}
trap report EXIT

stage "1/5 install dependencies"
env_lines="$(scripts/install-deps.sh --env)"
eval "$env_lines"
echo "TIERCEL_MINIO_BIN=${TIERCEL_MINIO_BIN:-(not installed)}"
echo "STATICCHECK=$STATICCHECK"

stage "2/5 lint"
scripts/lint.sh

stage "3/5 go test -race"
export TIERCEL_MINIO_BIN
CGO_ENABLED=1 go test -race -count=1 -timeout 25m ./...

stage "4/5 build bin/tiercel"
go build -o bin/tiercel ./cmd/tiercel
echo "built $root/bin/tiercel"

stage "5/5 end-to-end (kcat, kafka-python, confluent-kafka)"
TIERCEL_BIN="$root/bin/tiercel" test/e2e/run.sh
