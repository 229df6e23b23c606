#!/usr/bin/env bash
# Runs chosen busted specs against a throwaway PostgreSQL kept between runs, for development:
#   scripts/spec.sh [--asan] SPEC...      e.g. scripts/spec.sh tests/cli/status_spec.lua
# The server lives in ${LM_DEV_PG:-/tmp/luamigrate-dev-$USER}; `scripts/pg.sh stop DIR` removes
# it. Build first (scripts/build.sh [--sanitize]); scripts/test.sh remains the full suite.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

build=build
preload=
if [ "${1:-}" = "--asan" ]; then
  shift
  build=build-asan
  preload=$(gcc -print-file-name=libasan.so)
fi
[ $# -gt 0 ] || { echo "usage: scripts/spec.sh [--asan] SPEC..." >&2; exit 2; }

pgdir=${LM_DEV_PG:-/tmp/luamigrate-dev-${USER:-$(id -un)}}
if [ ! -f "$pgdir/env" ] || ! (eval "$(cat "$pgdir/env")" && pg_isready -q -h "$PGHOST" -p "$PGPORT"); then
  bash scripts/pg.sh stop "$pgdir" >/dev/null 2>&1 || true
  bash scripts/pg.sh start "$pgdir" >"/tmp/.lm-dev-env.$$"
  mv "/tmp/.lm-dev-env.$$" "$pgdir/env"
fi
eval "$(cat "$pgdir/env")"

export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;$root/tests/?.lua;;"
export LUA_CPATH="$root/$build/lib/?.so;;"
export LUAMIGRATE_BIN="$root/$build/luamigrate" LUAMIGRATE_SRC="$root"
if [ -n "$preload" ]; then
  export LD_PRELOAD="$preload" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi
exec busted --lua=lua5.4 --output=utfTerminal "$@"
