#!/usr/bin/env bash
# Cold metadata commands, as on a fresh clone: heads, current and history on generated
# 10,000-revision projects (linear and branched) with versions/.luamigrate_cache deleted
# before each run, the given builds alternating run by run; prints the median wall clock and
# CPU time (user + system of every thread, perf stat's task-clock) of RUNS runs each.
#   bash bench/cold.sh BIN...              e.g. bash bench/cold.sh /tmp/before/luamigrate build-rel/luamigrate
#   RUNS=11 N=10000 SHAPES="linear branched" COMMANDS="heads current history" CACHE=1
# CACHE=1 keeps the cache (the warm path) instead. Needs perf and, for current, a server
# (scripts/pg.sh; PGHOST/PGPORT as it exports them).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "usage: bash bench/cold.sh BIN..." >&2; exit 2; }
RUNS=${RUNS:-11}
N=${N:-10000}
SHAPES=${SHAPES:-"linear branched"}
COMMANDS=${COMMANDS:-"heads current history"}
bins=() labels=("$@")
for b in "$@"; do bins+=("$(cd "$(dirname "$b")" && pwd)/$(basename "$b")"); done
work=$(mktemp -d /tmp/luamigrate-cold.XXXXXX)
trap 'rm -rf "$work"' EXIT
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '| shape | command | build | wall (median of %s) | CPU (median) |\n|---|---|---|---:|---:|\n' "$RUNS"
for shape in $SHAPES; do
  proj=$work/$shape
  lua5.4 bench/gen_dag.lua "$proj" "$N" "$shape"
  db="cold_${shape}_$$"
  url="dbname=$db"
  if [[ " $COMMANDS " == *" current "* ]]; then
    psql -XAtq -d postgres -c "CREATE DATABASE $db" >/dev/null
    (cd "$proj" && "${bins[0]}" --url "$url" stamp heads >/dev/null 2>&1)
  fi
  for cmd in $COMMANDS; do
    args=("$cmd")
    [ "$cmd" = current ] && args=(--url "$url" current)
    declare -A walls=() cpus=()
    for _ in $(seq "$RUNS"); do
      for i in "${!bins[@]}"; do
        [ -n "${CACHE:-}" ] || rm -f "$proj/migrations/versions/.luamigrate_cache"
        (cd "$proj" && perf stat -e task-clock -o "$work/stat" "${bins[$i]}" "${args[@]}" >/dev/null 2>&1)
        walls[$i]+="$(awk '/seconds time elapsed/ {printf "%d", $1 * 10000}' "$work/stat") "
        cpus[$i]+="$(awk '/task-clock/ {gsub(",", "", $1); printf "%d", $1 * 10}' "$work/stat") "
      done
    done
    for i in "${!bins[@]}"; do
      w=$(tr ' ' '\n' <<<"${walls[$i]}" | grep . | median)
      c=$(tr ' ' '\n' <<<"${cpus[$i]}" | grep . | median)
      printf '| %s | %s | %s | %s ms | %s ms |\n' "$shape" "$cmd" "${labels[$i]}" \
        "$(awk -v v="$w" 'BEGIN {printf "%.1f", v / 10}')" "$(awk -v v="$c" 'BEGIN {printf "%.1f", v / 10}')"
    done
    unset walls cpus
  done
  [[ " $COMMANDS " != *" current "* ]] || psql -XAtq -d postgres -c "DROP DATABASE $db" >/dev/null
done
