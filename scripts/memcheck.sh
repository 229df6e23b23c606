#!/usr/bin/env bash
# The CLI scenarios under valgrind memcheck: every luamigrate process the chosen specs start
# (build/, the plain build) runs under valgrind (tests/helpers/cli.lua: LUAMIGRATE_WRAPPER).
# Any memcheck error -- invalid read or write, use of uninitialised memory, a definite leak
# -- fails the run, whatever the spec concluded. Needs the server scripts/test.sh (or
# scripts/spec.sh's dev server) exports: PGHOST ... LUAMIGRATE_TEST_PGHOST.
#   scripts/memcheck.sh [SPEC...]     default: the specs listed below
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
[ -n "${LUAMIGRATE_TEST_PGHOST:-}" ] || { echo "memcheck.sh: no test server (run scripts/test.sh)" >&2; exit 2; }

# A representative subset, chosen for time (valgrind makes each process many times slower):
# the main commands, upgrade/downgrade paths, failing migrations, offline SQL, status, the
# example project, the revision cache.
# Left out: specs that time things or send signals (concurrency, faults, retry, pgbouncer,
# dry_run), and the longest ones (bad_input alone takes about 3 minutes under valgrind).
specs=(commands upgrade failure offline status example cache)
if [ $# -gt 0 ]; then paths=("$@"); else paths=("${specs[@]/#/tests/cli/}"); paths=("${paths[@]/%/_spec.lua}"); fi

logs=$(mktemp -d /tmp/luamigrate-memcheck.XXXXXX)
trap 'rm -rf "$logs"' EXIT
export LUAMIGRATE_WRAPPER="valgrind --quiet --error-exitcode=97 --leak-check=full \
--show-leak-kinds=definite --errors-for-leak-kinds=definite --track-fds=no --num-callers=40 \
--suppressions=$root/tests/valgrind.supp --log-file=$logs/vg.%p.log"
export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;$root/tests/?.lua;;"
export LUA_CPATH="$root/build/lib/?.so;;"
export LUAMIGRATE_BIN="$root/build/luamigrate" LUAMIGRATE_SRC="$root"
unset LD_PRELOAD

status=0
busted --lua=lua5.4 --output=utfTerminal "${paths[@]}" || status=1
runs=$(find "$logs" -name 'vg.*.log' | wc -l)
bad=$(find "$logs" -name 'vg.*.log' -size +0)
if [ -n "$bad" ]; then
  echo "memcheck: errors in $(echo "$bad" | wc -l) of $runs luamigrate runs:" >&2
  for f in $bad; do cat "$f" >&2; done
  status=1
elif [ "$runs" -eq 0 ]; then
  echo "memcheck: no luamigrate run went through valgrind" >&2
  status=1
else
  echo "memcheck: $runs luamigrate runs, no errors"
fi
exit $status
