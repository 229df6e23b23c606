#!/usr/bin/env bash
# luamigrate lint against squawk (not in CI): each case of bench/lint_cases.lua becomes a
# two-revision project; luamigrate lints it offline and online (a fresh database from the
# fixture, at the first revision), squawk (npm's squawk-cli, installed into a temporary
# directory) lints the case's `upgrade --sql` script; bench/lint_squawk.lua reports recall and
# precision of each against the expected findings.
#   bash bench/lint_squawk.sh            (results also in bench/results/lint_squawk.md)
#   SQUAWK=/path/to/squawk bash bench/lint_squawk.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
work=$(mktemp -d /tmp/luamigrate-squawk.XXXXXX)
pgdir=$(mktemp -d /tmp/luamigrate-squawk-pg.XXXXXX)
trap 'bash scripts/pg.sh stop "$pgdir" >/dev/null 2>&1; rm -rf "$work" "$pgdir"' EXIT
squawk=${SQUAWK:-}
if [ -z "$squawk" ]; then
  (cd "$work" && npm install --silent --no-audit --no-fund squawk-cli >/dev/null)
  squawk=$work/node_modules/.bin/squawk
fi
eval "$(bash scripts/pg.sh start "$pgdir")"
export PGHOST PGPORT PGUSER
mkdir -p bench/results
{
  echo "squawk $("$squawk" --version | awk '{print $2}'), luamigrate $(build/luamigrate --version | awk '{print $2}'), $(date -u +%Y-%m-%d)"
  echo
  lua5.4 bench/lint_squawk.lua "$PWD/build/luamigrate" "$squawk"
} | tee bench/results/lint_squawk.md
