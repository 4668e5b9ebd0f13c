#!/usr/bin/env bash
# Consumer group checks with kcat's balanced consumer (-G, librdkafka),
# against a running Tiercel broker.
#
# Usage: test/e2e/groups_kcat.sh HOST:PORT
#
#   - kcat -L lists the internal topic __consumer_offsets once a group has
#     been used, with its partitions led by the broker;
#   - one kcat -G reads everything of a 4-partition topic and commits;
#     a second run in the same group reads exactly what was produced since
#     (it resumes from the committed offsets);
#   - two kcat -G running together split the partitions two and two and
#     read every new record exactly once between them.
#
# Environment: E2E_NODE_ID, E2E_RUN_ID, E2E_PYTHON as for kcat.sh.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bootstrap="${1:?usage: groups_kcat.sh HOST:PORT}"
node_id="${E2E_NODE_ID:-1}"
run_id="${E2E_RUN_ID:-$$-$(date +%s)}"
python="${E2E_PYTHON:-/usr/bin/python3}"
helper="$here/e2e_helper.py"
readonly KCAT_TIMEOUT=60 # seconds for a consuming kcat run

work="$(mktemp -d "${TMPDIR:-/tmp}/tiercel-e2e-groups-kcat.XXXXXX")"
bg_pids=()
cleanup() {
	local pid
	for pid in "${bg_pids[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

passed=0
failed=()

kc() {
	timeout "$KCAT_TIMEOUT" kcat -b "$bootstrap" -m 10 -q "$@" 2>>"$work/kcat.err"
}

fail() {
	printf '    FAIL: %s\n' "$*" >&2
	return 1
}

expect_same() {
	if ! diff -u --label "expected $1" --label "got $1" "$2" "$3" >"$work/diff"; then
		printf '    FAIL: %s differs (- expected, + got; %d vs %d lines):\n' \
			"$1" "$(wc -l <"$2")" "$(wc -l <"$3")"
		head -n 40 "$work/diff" | sed 's/^/      /'
		return 1
	fi
}

run_check() {
	local name="$1" start rc=0
	shift
	echo "--- groups_kcat: $name"
	: >"$work/kcat.err"
	start=$SECONDS
	"$@" || rc=$?
	if ((rc == 0)); then
		passed=$((passed + 1))
		echo "    ok   $name ($((SECONDS - start))s)"
	else
		failed+=("$name")
		echo "    FAIL $name (exit $rc)"
		if [[ -s "$work/kcat.err" ]]; then
			echo "    stderr of the clients:"
			tail -n 20 "$work/kcat.err" | sed 's/^/      /'
		fi
	fi
	return "$rc"
}

# produce TOPIC FROM TO: records "v<i>" with key "k<i>", record i into
# partition i%4, and appends "partition:value" lines to $work/want.
produce() {
	local topic="$1" from="$2" to="$3" p i
	for p in 0 1 2 3; do
		: >"$work/in.$p"
	done
	for ((i = from; i < to; i++)); do
		p=$((i % 4))
		printf 'k%d:v%d\n' "$i" "$i" >>"$work/in.$p"
		printf '%d:v%d\n' "$p" "$i" >>"$work/want"
	done
	for p in 0 1 2 3; do
		[[ -s "$work/in.$p" ]] || continue
		kc -P -t "$topic" -p "$p" -K: -l "$work/in.$p" || fail "kcat -P -p $p exited $?" || return 1
	done
}

# consume_group GROUP TOPIC COUNT OUT: one balanced consumer reads COUNT
# records ("partition:value" lines) and exits, committing on the way out.
consume_group() {
	local group="$1" topic="$2" count="$3" out="$4"
	kc -G "$group" "$topic" -c "$count" -f '%p:%s\n' -X auto.offset.reset=earliest >"$out" ||
		fail "kcat -G $group exited $? after $(wc -l <"$out") of $count records" || return 1
}

check_resume_from_commit() {
	local topic="e2e-groups-kcat-$run_id" group="e2e-kcat-group-$run_id"
	"$python" "$helper" create-topic "$bootstrap" "$topic" 4 2>>"$work/kcat.err" ||
		fail "creating $topic failed" || return 1
	: >"$work/want"
	produce "$topic" 0 200 || return 1
	consume_group "$group" "$topic" 200 "$work/got" || return 1
	sort "$work/want" >"$work/want.sorted"
	sort "$work/got" >"$work/got.sorted"
	expect_same "the first kcat -G run in $group" "$work/want.sorted" "$work/got.sorted" || return 1

	# The group resumes where its commits are: only the new records.
	: >"$work/want"
	produce "$topic" 200 300 || return 1
	consume_group "$group" "$topic" 100 "$work/got" || return 1
	sort "$work/want" >"$work/want.sorted"
	sort "$work/got" >"$work/got.sorted"
	expect_same "the second kcat -G run in $group (resumed from its commits)" "$work/want.sorted" "$work/got.sorted" || return 1

	# __consumer_offsets exists now, every partition led by the broker.
	kc -L -J -t __consumer_offsets >"$work/meta.json" || fail "kcat -L exited $?" || return 1
	"$python" "$helper" metadata <"$work/meta.json" >"$work/meta" || fail "cannot read kcat -L -J" || return 1
	grep -q "^topic __consumer_offsets partitions=50 leaders=\($node_id,\)*$node_id errors=none$" "$work/meta" ||
		fail "kcat -L does not show __consumer_offsets with 50 partitions led by $node_id: $(cat "$work/meta")"
}

# Two balanced consumers at once: once both have their partitions (kcat
# reports its assignment on stderr), new records are split between them
# and read exactly once.
check_two_consumers() {
	local topic="e2e-groups-kcat-pair-$run_id" group="e2e-kcat-pair-$run_id" i deadline
	"$python" "$helper" create-topic "$bootstrap" "$topic" 4 2>>"$work/kcat.err" ||
		fail "creating $topic failed" || return 1
	for i in 1 2; do
		: >"$work/pair.$i.out"
		: >"$work/pair.$i.err"
		timeout 120 kcat -b "$bootstrap" -m 10 -u -G "$group" "$topic" -f '%p:%s\n' \
			-X auto.offset.reset=earliest -X session.timeout.ms=10000 \
			>"$work/pair.$i.out" 2>"$work/pair.$i.err" &
		bg_pids+=($!)
	done
	deadline=$((SECONDS + 60))
	until [[ "$(assigned "$work/pair.1.err")" == 2 && "$(assigned "$work/pair.2.err")" == 2 ]]; do
		if ((SECONDS > deadline)); then
			cat "$work/pair.1.err" "$work/pair.2.err" >>"$work/kcat.err"
			fail "the two consumers did not settle on two partitions each" || return 1
		fi
		sleep 0.3
	done
	: >"$work/want"
	produce "$topic" 0 400 || return 1
	deadline=$((SECONDS + 60))
	until (($(cat "$work/pair.1.out" "$work/pair.2.out" | wc -l) >= 400)); do
		if ((SECONDS > deadline)); then
			fail "the two consumers read $(cat "$work/pair.1.out" "$work/pair.2.out" | wc -l) of 400 records" || return 1
		fi
		sleep 0.2
	done
	sleep 1 # a duplicate, if any, would show up now
	sort "$work/want" >"$work/want.sorted"
	cat "$work/pair.1.out" "$work/pair.2.out" | sort >"$work/got.sorted"
	expect_same "records read by the two consumers together" "$work/want.sorted" "$work/got.sorted" || return 1
	for i in 1 2; do
		local parts
		parts="$(cut -d: -f1 "$work/pair.$i.out" | sort -u | tr '\n' ' ')"
		[[ "$(wc -w <<<"$parts")" == 2 ]] || fail "consumer $i read from partitions $parts, want two" || return 1
	done
}

# assigned FILE: the number of partitions in the last assignment kcat
# reported on stderr ("% Group ... rebalanced ...: assigned: t [0], t [1]").
assigned() {
	local line
	line="$(grep 'assigned:' "$1" | tail -n 1)"
	[[ -n "$line" ]] || {
		echo 0
		return
	}
	grep -o '\[[0-9]*\]' <<<"${line#*assigned:}" | wc -l
}

main() {
	echo "    $(kcat -V 2>&1 | sed -n 's/^Version \([^ ]*\).*librdkafka \([^ ]*\).*/kcat \1, librdkafka \2/p')"
	run_check "-G reads all, commits, and a second run resumes from the commits" check_resume_from_commit || true
	run_check "two -G consumers split the partitions and read each record once" check_two_consumers || true
	if ((${#failed[@]})); then
		printf 'groups_kcat: failed checks: %s\n' "$(IFS=';'; echo "${failed[*]}")"
	fi
	echo "groups_kcat: $passed passed, ${#failed[@]} failed"
	((${#failed[@]} == 0))
}

main
