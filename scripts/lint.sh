#!/usr/bin/env bash
# Tiercel's static checks: gofmt, go vet and staticcheck (pinned; built by
# scripts/install-deps.sh). Fails on the first that finds anything.
#
# Usage: scripts/lint.sh   (from any directory)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

fail() {
	echo "lint: $*" >&2
	exit 1
}

# go_files: the Go files of the project, NUL-separated: those git tracks or
# would add, outside testdata (which the go tool ignores too).
go_files() {
	local f
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git ls-files -z --cached --others --exclude-standard -- '*.go'
	else
		find . -path ./.git -prune -o -name '*.go' -print0
	fi | while IFS= read -r -d '' f; do
		[[ -f "$f" && "/$f" != */testdata/* ]] && printf '%s\0' "$f"
	done
}

echo "lint: gofmt -l"
unformatted="$(go_files | xargs -0 -r gofmt -l)" || fail "gofmt failed (above)"
if [[ -n "$unformatted" ]]; then
	printf '%s\n' "$unformatted" | sed 's/^/  /' >&2
	fail "gofmt wants to change the files above; run: gofmt -w <file>..."
fi

echo "lint: go vet ./..."
go vet ./... || fail "go vet found problems (above)"

echo "lint: staticcheck ./..."
env_lines="$(scripts/install-deps.sh --env staticcheck)" || fail "cannot install staticcheck"
eval "$env_lines"
"$STATICCHECK" -version
"$STATICCHECK" ./... || fail "staticcheck found problems (above)"
echo "lint: ok"
