#!/usr/bin/env bash
# Installs what Tiercel's tests need on a Debian machine that has Go and apt.
# Idempotent: what is already there is reused, and a second run prints
# nothing (progress, when there is any, goes to stderr).
#
# Usage: scripts/install-deps.sh [--env] [apt] [minio] [staticcheck]
#   with no component named, installs all three:
#   apt          Debian packages: kcat, kafka-python and confluent-kafka for
#                the end-to-end checks, the compression modules kafka-python
#                needs for snappy, lz4 and zstd, and gcc for `go test -race`
#   minio        MinIO, built by scripts/install-minio.sh (when that exists)
#   staticcheck  staticcheck, pinned, built into the cache directory
#   --env        print, on stdout, shell assignments of the installed tools
#                (TIERCEL_MINIO_BIN, STATICCHECK) for the caller to eval:
#                  env="$(scripts/install-deps.sh --env)" && eval "$env"
#
# Environment:
#   TIERCEL_CACHE  cache root (default $HOME/.cache/tiercel); tools go to
#                  $TIERCEL_CACHE/bin
set -euo pipefail

# staticcheck 2026.2.2; it understands go1.26.
readonly STATICCHECK_VERSION="v0.8.2"
readonly APT_PACKAGES=(
	kcat
	python3-kafka
	python3-confluent-kafka
	python3-snappy
	python3-lz4
	python3-zstandard
	gcc
	libc6-dev
)

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${TIERCEL_CACHE:-${HOME:?HOME is not set}/.cache/tiercel}"
bindir="$cache/bin"

say() { echo "install-deps: $*" >&2; }
die() {
	say "ERROR: $*"
	exit 1
}

installed() { # installed PKG: the Debian package is installed
	local status
	# Not piped into grep -q: dpkg would die of SIGPIPE, and pipefail with it.
	status="$(dpkg -s "$1" 2>/dev/null)" || return 1
	grep -qx 'Status: install ok installed' <<<"$status"
}

install_apt() {
	local missing=() pkg
	command -v dpkg >/dev/null || die "dpkg is not available: this script installs Debian packages"
	for pkg in "${APT_PACKAGES[@]}"; do
		installed "$pkg" || missing+=("$pkg")
	done
	((${#missing[@]})) || return 0

	local sudo=()
	if ((EUID != 0)); then
		command -v sudo >/dev/null || die "need root or sudo to install: ${missing[*]}"
		sudo=(sudo)
	fi
	say "installing Debian packages: ${missing[*]}"
	"${sudo[@]}" apt-get update -qq >&2 || die "apt-get update failed"
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >&2 || die "apt-get install ${missing[*]} failed"
	for pkg in "${missing[@]}"; do
		installed "$pkg" || die "$pkg is still not installed after apt-get install"
	done
}

minio_bin=""
install_minio() {
	local script="$root/scripts/install-minio.sh" out
	if [[ ! -f "$script" ]]; then
		say "note: scripts/install-minio.sh does not exist; MinIO not installed"
		return 0
	fi
	out="$(bash "$script")" || die "scripts/install-minio.sh failed"
	minio_bin="$(tail -n 1 <<<"$out")"
	[[ -x "$minio_bin" ]] || die "scripts/install-minio.sh printed '$minio_bin', which is not an executable"
}

staticcheck_bin="$bindir/staticcheck"
install_staticcheck() {
	local stamp="$bindir/staticcheck.version" work
	mkdir -p "$bindir"
	staticcheck_up_to_date() { [[ -x "$staticcheck_bin" && -f "$stamp" && "$(cat "$stamp")" == "$STATICCHECK_VERSION" ]]; }
	staticcheck_up_to_date && return 0

	command -v go >/dev/null || die "go is not on PATH"
	# Two runs at once wait for one build rather than race it.
	exec 8>"$bindir/.staticcheck.lock"
	flock 8
	if ! staticcheck_up_to_date; then
		say "building staticcheck $STATICCHECK_VERSION into $bindir"
		work="$(mktemp -d "$bindir/.staticcheck.XXXXXX")"
		# Outside the repository, so our go.mod stays out of it.
		if ! (cd "$work" && GOBIN="$work" GOTOOLCHAIN=local GOFLAGS=-trimpath \
			go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION") >&2; then
			rm -rf "$work"
			die "go install staticcheck@$STATICCHECK_VERSION failed"
		fi
		mv -f "$work/staticcheck" "$staticcheck_bin"
		rm -rf "$work"
		printf '%s\n' "$STATICCHECK_VERSION" >"$stamp.tmp"
		mv -f "$stamp.tmp" "$stamp"
	fi
	exec 8>&-
}

main() {
	local print_env=0 components=() c
	for c in "$@"; do
		case "$c" in
		--env) print_env=1 ;;
		apt | minio | staticcheck) components+=("$c") ;;
		-h | --help)
			sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
			return 0
			;;
		*) die "unknown argument '$c' (see --help)" ;;
		esac
	done
	((${#components[@]})) || components=(apt minio staticcheck)

	for c in "${components[@]}"; do
		"install_$c"
	done

	if ((print_env)); then
		for c in "${components[@]}"; do
			case "$c" in
			minio) [[ -z "$minio_bin" ]] || printf 'export TIERCEL_MINIO_BIN=%q\n' "$minio_bin" ;;
			staticcheck) printf 'export STATICCHECK=%q\n' "$staticcheck_bin" ;;
			esac
		done
	fi
}

main "$@"
