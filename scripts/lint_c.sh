#!/usr/bin/env bash
# clang-tidy over the C core and its Lua bindings (.clang-tidy at the top), with the
# compile commands of build/ (scripts/build.sh exports them). Any warning fails.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f build/compile_commands.json ] || bash scripts/build.sh
# One clang-tidy per file, as many at once as there are cores; xargs fails if any does.
out=$(mktemp)
trap 'rm -f "$out"' EXIT
rc=0
printf '%s\n' src/*.c src/bind/*.c tools/*.c bench/*.c |
  xargs -P "$(nproc)" -n 1 clang-tidy -p build --quiet --warnings-as-errors='*' >"$out" 2>&1 || rc=1
grep -v -E '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$' "$out" || true
[ $rc -eq 0 ] && echo "clang-tidy: $(printf '%s\n' src/*.c src/bind/*.c tools/*.c bench/*.c | wc -l) files, no warnings"
exit $rc
