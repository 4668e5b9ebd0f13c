#!/usr/bin/env bash
# kcat (librdkafka) checks against a running Tiercel broker.
#
# Usage: test/e2e/kcat.sh HOST:PORT
#
# Every check compares what kcat reads back (keys, values, headers, offsets,
# partitions, timestamps) with what was produced, line for line. Partitions
# are always named by hand here; groups_kcat.sh covers consumer groups.
#
# Environment:
#   E2E_NODE_ID         id the broker was started with (default 1)
#   E2E_NUM_PARTITIONS  partitions of an auto-created topic (default 1)
#   E2E_RUN_ID          suffix for topic names (default: pid and time)
#   E2E_PYTHON          python with confluent-kafka (default /usr/bin/python3)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bootstrap="${1:?usage: kcat.sh HOST:PORT}"
node_id="${E2E_NODE_ID:-1}"
auto_partitions="${E2E_NUM_PARTITIONS:-1}"
run_id="${E2E_RUN_ID:-$$-$(date +%s)}"
python="${E2E_PYTHON:-/usr/bin/python3}"
helper="$here/e2e_helper.py"
readonly KCAT_TIMEOUT=30 # seconds for any single kcat run

work="$(mktemp -d "${TMPDIR:-/tmp}/tiercel-e2e-kcat.XXXXXX")"
trap 'rm -rf "$work"' EXIT

passed=0
failed=()

# kc runs kcat against the broker, bounded in time. Its stderr is kept in
# $work/kcat.err and shown when the check fails.
kc() {
	timeout "$KCAT_TIMEOUT" kcat -b "$bootstrap" -m 10 -q "$@" 2>>"$work/kcat.err"
}

helper() {
	timeout 60 "$python" "$helper" "$@" 2>>"$work/kcat.err"
}

fail() { # to stderr: a check may be writing its stdout to a file
	printf '    FAIL: %s\n' "$*" >&2
	return 1
}

# expect_same WHAT EXPECTED_FILE GOT_FILE: the files must be identical.
expect_same() {
	if ! diff -u --label "expected $1" --label "got $1" "$2" "$3" >"$work/diff"; then
		printf '    FAIL: %s differs (- expected, + got; %d vs %d lines):\n' \
			"$1" "$(wc -l <"$2")" "$(wc -l <"$3")"
		head -n 40 "$work/diff" | sed 's/^/      /'
		return 1
	fi
}

# expect_line WHAT LINE FILE: FILE must contain LINE exactly.
expect_line() {
	if ! grep -qxF -- "$2" "$3"; then
		printf '    FAIL: %s: expected the line\n      %s\n    got:\n' "$1" "$2"
		sed 's/^/      /' "$3" | head -n 40
		return 1
	fi
}

# run_check NAME FUNCTION ARGS...: runs one check, records the outcome and
# returns the check's status.
run_check() {
	local name="$1" start rc=0
	shift
	echo "--- kcat: $name"
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

# not_run NAME WHY: records a check that could not run.
not_run() {
	echo "--- kcat: $1"
	echo "    FAIL $1: not run: $2"
	failed+=("$1")
}

metadata() { # metadata [-t TOPIC]: broker and topic lines, see e2e_helper.py
	kc -L -J "$@" >"$work/meta.json" || fail "kcat -L $* exited $?" || return 1
	helper metadata <"$work/meta.json" || fail "cannot read kcat -L -J output: $(head -c 500 "$work/meta.json")"
}

leaders() { # leaders N: "id,id,...", N times the broker id
	local i out=""
	for ((i = 0; i < $1; i++)); do out+="${out:+,}$node_id"; done
	echo "$out"
}

check_metadata_and_auto_create() {
	local topic="e2e-kcat-auto-$run_id"
	metadata >"$work/meta" || return 1
	expect_line "kcat -L brokers" "broker $node_id $bootstrap" "$work/meta" || return 1

	printf 'auto-key:auto-value\n' | kc -P -t "$topic" -K: || fail "kcat -P to the new topic $topic exited $?" || return 1
	metadata -t "$topic" >"$work/meta" || return 1
	expect_line "kcat -L -t $topic after auto-create" \
		"topic $topic partitions=$auto_partitions leaders=$(leaders "$auto_partitions") errors=none" "$work/meta" || return 1

	kc -C -t "$topic" -o beginning -e -f '%k:%s:%o\n' >"$work/got" || fail "kcat -C exited $?" || return 1
	printf 'auto-key:auto-value:0\n' >"$work/want"
	expect_same "records in $topic" "$work/want" "$work/got"
}

check_admin_topic_listed() {
	local topic="$1"
	helper create-topic "$bootstrap" "$topic" 3 retention.ms=86400000 ||
		fail "creating $topic (3 partitions) with confluent-kafka's AdminClient failed" || return 1
	metadata >"$work/meta" || return 1
	expect_line "kcat -L (all topics) after AdminClient create_topics" \
		"topic $topic partitions=3 leaders=$(leaders 3) errors=none" "$work/meta" || return 1
	expect_line "kcat -L (all topics) still lists the auto-created topic" \
		"topic e2e-kcat-auto-$run_id partitions=$auto_partitions leaders=$(leaders "$auto_partitions") errors=none" \
		"$work/meta"
}

# Keyed records with headers into each partition of a 3-partition topic,
# read back partition by partition. The format prints key and value
# lengths too, which tells an empty value from a null one.
check_keyed_with_headers() {
	local topic="$1" p i n=40 off key value
	: >"$work/want.all"
	for p in 0 1 2; do
		: >"$work/in"
		: >"$work/want.$p"
		for ((i = 0; i < n; i++)); do
			key="k$p-$i"
			value="value $p/$i héllo ✓ $(printf '%*s' $((i * 7)) '' | tr ' ' 'z')"
			if ((i == 7)); then value=""; fi # an empty (not null) value
			printf '%s:%s\n' "$key" "$value" >>"$work/in"
			printf '%s:%s:%d:%d:%d:%d:src=kcat,part=%d\n' "$key" "$value" \
				"${#key}" "$(printf '%s' "$value" | wc -c)" "$i" "$p" "$p" >>"$work/want.$p"
		done
		kc -P -t "$topic" -p "$p" -K: -H src=kcat -H "part=$p" -l "$work/in" ||
			fail "kcat -P -p $p exited $?" || return 1
	done
	# A null value (-Z) and an empty key, after the rest of partition 0.
	printf 'null-key:\n' | kc -P -t "$topic" -p 0 -K: -Z || fail "kcat -P -Z exited $?" || return 1
	printf ':no key\n' | kc -P -t "$topic" -p 0 -K: || fail "kcat -P exited $?" || return 1
	off=$n
	printf 'null-key::8:-1:%d:0:\n:no key:0:6:%d:0:\n' "$off" "$((off + 1))" >>"$work/want.0"

	for p in 0 1 2; do
		kc -C -t "$topic" -p "$p" -o beginning -e -f '%k:%s:%K:%S:%o:%p:%h\n' >"$work/got.$p" ||
			fail "kcat -C -p $p exited $?" || return 1
		expect_same "records read back from $topic partition $p (key:value:keylen:valuelen:offset:partition:headers)" \
			"$work/want.$p" "$work/got.$p" || return 1
	done

	# The high watermarks of all three partitions, in one query.
	kc -Q -t "$topic:0:-1" -t "$topic:1:-1" -t "$topic:2:-1" | sort >"$work/got" ||
		fail "kcat -Q exited $?" || return 1
	printf '%s [0] offset %d\n%s [1] offset %d\n%s [2] offset %d\n' \
		"$topic" $((n + 2)) "$topic" "$n" "$topic" "$n" | sort >"$work/want"
	expect_same "kcat -Q latest offsets of $topic" "$work/want" "$work/got"
}

# The same partition gets records with each codec in turn; all must read
# back in order with contiguous offsets, also from inside a compressed batch.
check_compression() {
	local topic="$1" codec i off=0 per=50 filler
	filler="$(printf 'compressible %.0s' {1..20})"
	helper create-topic "$bootstrap" "$topic" 1 || fail "creating $topic failed" || return 1
	: >"$work/want"
	for codec in none gzip snappy lz4 zstd; do
		: >"$work/in"
		for ((i = 0; i < per; i++)); do
			printf '%s-%d:%s %d %s\n' "$codec" "$i" "$codec" "$i" "$filler" >>"$work/in"
			printf '%s-%d:%s %d %s:%d\n' "$codec" "$i" "$codec" "$i" "$filler" "$off" >>"$work/want"
			off=$((off + 1))
		done
		kc -P -t "$topic" -p 0 -K: -X "compression.codec=$codec" -X linger.ms=50 -l "$work/in" ||
			fail "kcat -P -X compression.codec=$codec exited $?" || return 1
	done
	kc -C -t "$topic" -p 0 -o beginning -e -f '%k:%s:%o\n' >"$work/got" || fail "kcat -C exited $?" || return 1
	expect_same "records of every codec read back from $topic" "$work/want" "$work/got" || return 1

	# Offset 60 is inside the gzip records (50..99).
	kc -C -t "$topic" -p 0 -o 60 -c 5 -f '%k:%o\n' >"$work/got" || fail "kcat -C -o 60 exited $?" || return 1
	printf 'gzip-%d:%d\n' 10 60 11 61 12 62 13 63 14 64 >"$work/want"
	expect_same "5 records from offset 60 (inside a gzip batch)" "$work/want" "$work/got"
}

# Records with explicit timestamps (kcat cannot set them; confluent-kafka
# does), then kcat -Q and -o s@ to find offsets by time.
check_offsets_by_time() {
	local topic="$1" base step=1000 n=10 i ts want
	base=$((($(date +%s) - 3600) * 1000))
	helper create-topic "$bootstrap" "$topic" 1 || fail "creating $topic failed" || return 1
	helper produce-timestamps "$bootstrap" "$topic" 0 "$base" "$step" "$n" >"$work/got" ||
		fail "producing timestamped records failed" || return 1
	: >"$work/want"
	for ((i = 0; i < n; i++)); do printf '%d %d\n' "$i" $((base + i * step)) >>"$work/want"; done
	expect_same "(offset timestamp) of the produced records" "$work/want" "$work/got" || return 1

	kc -C -t "$topic" -p 0 -o beginning -e -f '%o:%T:%s\n' >"$work/got" || fail "kcat -C exited $?" || return 1
	: >"$work/want"
	for ((i = 0; i < n; i++)); do printf '%d:%d:ts-%d\n' "$i" $((base + i * step)) "$i" >>"$work/want"; done
	expect_same "offset:timestamp:value read back" "$work/want" "$work/got" || return 1

	# timestamp → offset of the first record at or after it; -1 past the
	# last; -2 and -1 ask for the earliest and latest offsets.
	local -a queries=(
		"$base 0"
		"$((base + 1)) 1"
		"$((base + 3500)) 4"
		"$((base + 5000)) 5"
		"$((base + (n - 1) * step)) $((n - 1))"
		"$((base + (n - 1) * step + 1)) -1"
		"-2 0"
		"-1 $n"
	)
	for q in "${queries[@]}"; do
		read -r ts want <<<"$q"
		kc -Q -t "$topic:0:$ts" >"$work/got" || fail "kcat -Q -t $topic:0:$ts exited $?" || return 1
		printf '%s [0] offset %d\n' "$topic" "$want" >"$work/want"
		expect_same "kcat -Q -t $topic:0:$ts (base+$((ts - base)))" "$work/want" "$work/got" || return 1
	done

	kc -C -t "$topic" -p 0 -o "s@$((base + 6500))" -e -f '%o:%s\n' >"$work/got" ||
		fail "kcat -C -o s@ exited $?" || return 1
	printf '%d:ts-%d\n' 7 7 8 8 9 9 >"$work/want"
	expect_same "kcat -C -o s@(base+6500)" "$work/want" "$work/got"
}

main() {
	echo "    $(kcat -V 2>&1 | sed -n 's/^Version \([^ ]*\).*librdkafka \([^ ]*\).*/kcat \1, librdkafka \2/p')"
	local keyed="e2e-kcat-keyed-$run_id"
	local keyed_name="-P -K: -H into 3 partitions, -C reads back exactly"
	run_check "-L lists the broker; produce auto-creates a topic" check_metadata_and_auto_create || true
	if run_check "-L lists a topic created by AdminClient" check_admin_topic_listed "$keyed"; then
		run_check "$keyed_name" check_keyed_with_headers "$keyed" || true
	else
		not_run "$keyed_name" "the check that creates and lists its 3-partition topic failed"
	fi
	run_check "compression none, gzip, snappy, lz4, zstd" check_compression "e2e-kcat-codec-$run_id" || true
	run_check "-Q and -o s@ find offsets by timestamp" check_offsets_by_time "e2e-kcat-ts-$run_id" || true

	if ((${#failed[@]})); then
		printf 'kcat: failed checks: %s\n' "$(IFS=';'; echo "${failed[*]}")"
	fi
	echo "kcat: $passed passed, ${#failed[@]} failed"
	((${#failed[@]} == 0))
}

main
