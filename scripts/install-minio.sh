#!/usr/bin/env bash
# Builds the MinIO server that Tiercel's tests run against, and prints the
# path of the binary on stdout (the last line; progress goes to stderr).
#
# MinIO is built from source with the local Go toolchain rather than
# downloaded, because the only things our machines can reach are package
# registries. The version is pinned so every developer and CI run tests
# against the same server; the build is cached and reused while the stamp
# file next to the binary names the pinned version.
#
# Environment:
#   TIERCEL_CACHE   cache root (default: $HOME/.cache/tiercel); the binary
#                   goes to $TIERCEL_CACHE/bin/minio
#   MINIO_VERSION   override the pinned version (for trying an upgrade)
set -euo pipefail

# Pinned MinIO: the newest module version the Go proxy serves (commit
# 7aac2a2c5b7c of 2026-02-12). It builds with go1.26 and supports
# conditional writes (If-None-Match: *, If-Match) on PutObject.
readonly PINNED_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"
version="${MINIO_VERSION:-$PINNED_VERSION}"

cache="${TIERCEL_CACHE:-${HOME:?HOME is not set}/.cache/tiercel}"
bindir="$cache/bin"
bin="$bindir/minio"
stamp="$bindir/minio.version"

mkdir -p "$bindir"

up_to_date() {
	[[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$version" ]]
}

if up_to_date; then
	echo "$bin"
	exit 0
fi

# Two test binaries may start at once and both find no MinIO; the lock
# makes the second wait for the first build instead of racing it.
exec 9>"$bindir/.minio.lock"
flock 9
if up_to_date; then
	echo "$bin"
	exit 0
fi

command -v go >/dev/null || { echo "install-minio: go is not on PATH" >&2; exit 1; }

# Build into a private directory and rename, so a reader never sees a
# half-written binary. Building from a temporary working directory keeps
# any go.mod around us (ours, when run from the repository) out of it.
work="$(mktemp -d "$bindir/.build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "install-minio: building github.com/minio/minio@$version (takes a few minutes)" >&2
start=$(date +%s)
(
	cd "$work"
	GOBIN="$work" GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-trimpath \
		go install "github.com/minio/minio@$version"
) >&2
echo "install-minio: built in $(( $(date +%s) - start ))s" >&2

mv -f "$work/minio" "$bin"
printf '%s\n' "$version" >"$stamp.tmp"
mv -f "$stamp.tmp" "$stamp"
echo "$bin"
