#!/usr/bin/env bash
# Applying migrations, against psql: generates a chain of N create-table revisions
# (bench/gen_apply.lua) and, on a fresh database each run, times
#   luamigrate: `luamigrate upgrade head` (Release build, build-bench/)
#   psql:       `psql -X -q -v ON_ERROR_STOP=1 -f script.sql`, the script being what
#               `luamigrate upgrade base:head --sql` prints for the same project
# Both connect over the same Unix socket to the same server. The --sql script already runs
# one transaction per migration (BEGIN; the migration's statements; the version-row INSERT or
# UPDATE; the history-row INSERT; COMMIT), the version and history tables being created in the
# first one; the script checks that it has exactly one BEGIN/COMMIT pair per revision. Runs
# alternate (odd runs luamigrate first, even runs psql first) so the machine's noise hits both
# sides alike; the table gives the median of RUNS runs each, the ratio of the medians and the
# median of each run's own ratio (luamigrate / the psql run next to it).
#   bash bench/apply.sh                       (RUNS=5 SIZES="1000 10000" by default)
#   RUNS_10000=3 bash bench/apply.sh          (fewer runs for one size)
#   LUAMIGRATE=/path/to/luamigrate bash bench/apply.sh   (time that binary instead)
#   BASELINE=/path/to/older/luamigrate bash bench/apply.sh
#       (a third side, e.g. an older commit's build, in the same rotation: runs cycle through
#       the three orders, and the table adds its median and ratio to psql)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
SIZES=${SIZES:-"1000 10000"}

bash scripts/deps.sh
if [ -n "${LUAMIGRATE:-}" ]; then # another build to compare, e.g. an older commit's
  bin=$(realpath "$LUAMIGRATE")
else
  cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build-bench -j "$(nproc)" >/dev/null
  bin=$PWD/build-bench/luamigrate
fi

work=$(mktemp -d /tmp/luamigrate-bench.XXXXXX)
pgdir=$(mktemp -d /tmp/luamigrate-bench-pg.XXXXXX) # its own: the server runs as postgres
trap 'bash scripts/pg.sh stop "$pgdir"; rm -rf "$work"' EXIT
out=${OUT:-bench/results/apply.md}
mkdir -p bench/results
eval "$(bash scripts/pg.sh start "$pgdir")"
export PGHOST # both sides: the Unix socket in $pgdir

ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
fresh_db() {
  psql -XAtq -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null
}

run_lm() { # [binary]; prints ms
  local b=${1:-$bin} t0
  fresh_db bench_apply
  t0=$(date +%s%N)
  (cd "$proj" && "$b" --url "dbname=bench_apply" upgrade head >/dev/null 2>"$work/lm.err") ||
    { cat "$work/lm.err" >&2; exit 1; }
  ms_since "$t0"
}
run_psql() {
  fresh_db bench_apply
  local t0
  t0=$(date +%s%N)
  psql -X -q -v ON_ERROR_STOP=1 -d bench_apply -f "$sql" >/dev/null 2>"$work/psql.err" ||
    { cat "$work/psql.err" >&2; exit 1; }
  ms_since "$t0"
}
# The two sides must leave the same schema behind (tables, columns, indexes, version row).
schema_of() {
  psql -XAtq -d bench_apply -c "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace" \
    -c "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0" \
    -c "SELECT version_num FROM luamigrate_version" -c "SELECT count(*) FROM luamigrate_version_history"
}

# Messages each side sends per migration (its sendto calls, under strace, on an untimed
# run), the round trips the wall times above are made of: only on the smaller projects.
sends_per_migration() { # n, then the command
  local n=$1
  shift
  fresh_db bench_apply
  strace -f -qq -c -e trace=sendto -o "$work/strace" "$@" >/dev/null 2>&1
  awk -v n="$n" '$NF == "sendto" {printf "%.1f", $4 / n}' "$work/strace"
}
trips=""

baseline=${BASELINE:+$(realpath "$BASELINE")}
if [ -n "$baseline" ]; then
  table="| migrations | luamigrate \`upgrade head\` | psql -f (--sql script) | ratio | median of run ratios | baseline | baseline ratio | runs | each run, luamigrate / psql / baseline (s) |\n|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
else
  table="| migrations | luamigrate \`upgrade head\` | psql -f (--sql script) | ratio | median of run ratios | runs | each run, luamigrate / psql (s) |\n|---:|---:|---:|---:|---:|---:|---|\n"
fi
for n in $SIZES; do
  runs_var=RUNS_$n
  runs=${!runs_var:-$RUNS}
  proj=$work/apply-$n
  lua5.4 bench/gen_apply.lua "$proj" "$n"
  sql=$work/apply-$n.sql
  (cd "$proj" && "$bin" upgrade base:head --sql >"$sql")
  begins=$(grep -c '^BEGIN;$' "$sql")
  commits=$(grep -c '^COMMIT;$' "$sql")
  [ "$begins" -eq "$n" ] && [ "$commits" -eq "$n" ] ||
    { echo "apply.sh: expected $n transactions in the --sql script, found $begins BEGIN / $commits COMMIT" >&2; exit 1; }
  run_lm >/dev/null # warm-up of both (page cache, catalogs), not timed
  want=$(schema_of)
  run_psql >/dev/null
  got=$(schema_of)
  [ "$want" = "$got" ] || { printf 'apply.sh: the two sides differ:\n%s\n---\n%s\n' "$want" "$got" >&2; exit 1; }
  if command -v strace >/dev/null && [ "$n" -le "${TRIPS_MAX:-1000}" ]; then
    a=$(cd "$proj" && sends_per_migration "$n" "$bin" --url "dbname=bench_apply" upgrade head)
    b=$(sends_per_migration "$n" psql -X -q -v ON_ERROR_STOP=1 -d bench_apply -f "$sql")
    trips+="- $n migrations: luamigrate sends $a messages per migration, psql $b.\n"
  fi
  lm=() ps=() bl=()
  for i in $(seq "$runs"); do
    if [ -n "$baseline" ]; then # the three orders in turn
      case $((i % 3)) in
        1) lm+=("$(run_lm)"); ps+=("$(run_psql)"); bl+=("$(run_lm "$baseline")") ;;
        2) ps+=("$(run_psql)"); bl+=("$(run_lm "$baseline")"); lm+=("$(run_lm)") ;;
        0) bl+=("$(run_lm "$baseline")"); lm+=("$(run_lm)"); ps+=("$(run_psql)") ;;
      esac
      echo "apply $n run $i: luamigrate ${lm[-1]} ms, psql ${ps[-1]} ms, baseline ${bl[-1]} ms" >&2
    elif [ $((i % 2)) -eq 1 ]; then
      lm+=("$(run_lm)")
      ps+=("$(run_psql)")
      echo "apply $n run $i: luamigrate ${lm[-1]} ms, psql ${ps[-1]} ms" >&2
    else
      ps+=("$(run_psql)")
      lm+=("$(run_lm)")
      echo "apply $n run $i: luamigrate ${lm[-1]} ms, psql ${ps[-1]} ms" >&2
    fi
  done
  mlm=$(median "${lm[@]}")
  mps=$(median "${ps[@]}")
  ratio=$(awk -v a="$mlm" -v b="$mps" 'BEGIN {printf "%.2f", a / b}')
  each="" rr=()
  for i in "${!lm[@]}"; do
    rr+=("$(awk -v a="${lm[$i]}" -v b="${ps[$i]}" 'BEGIN {printf "%.3f", a / b}')")
    each+="${each:+, }$(awk -v a="${lm[$i]}" -v b="${ps[$i]}" -v c="${bl[$i]:-}" \
      'BEGIN {printf "%.1f/%.1f", a / 1000, b / 1000; if (c != "") printf "/%.1f", c / 1000}')"
  done
  rmed=$(printf '%s\n' "${rr[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.2f", (a[int((NR+1)/2)] + a[int(NR/2)+1]) / 2}')
  if [ -n "$baseline" ]; then
    mbl=$(median "${bl[@]}")
    table+="| $n | $mlm ms | $mps ms | $ratio | $rmed | $mbl ms | $(awk -v a="$mbl" -v b="$mps" 'BEGIN {printf "%.2f", a / b}') | $runs | $each |\n"
  else
    table+="| $n | $mlm ms | $mps ms | $ratio | $rmed | $runs | $each |\n"
  fi
  psql -XAtq -d postgres -c "DROP DATABASE IF EXISTS bench_apply" >/dev/null
done

{
  echo "# Applying migrations, against psql"
  echo
  echo "Machine: $(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(uname -sr);"
  echo "$(postgres_version=$(psql -XAtq -d postgres -c 'SHOW server_version'); echo "PostgreSQL $postgres_version") on the same machine, started by scripts/pg.sh (fsync=off, synchronous_commit=off, full_page_writes=off), both clients on its Unix socket."
  echo "Command: \`${BASELINE:+BASELINE=$BASELINE }bash bench/apply.sh\` ($(date -u +%Y-%m-%d)); wall time, median of the runs, runs alternating."
  [ -z "$baseline" ] || echo "Baseline: $("$baseline" --version 2>/dev/null | head -n 1) at $BASELINE (an older build, in the same rotation)."
  echo
  printf '%b' "$table"
  if [ -n "$trips" ]; then
    echo
    echo "Messages (the client's sendto calls under strace, one untimed run; psql waits for each, luamigrate's pipelined op statements do not wait one by one):"
    echo
    printf '%b' "$trips"
  fi
} | tee "$out"
