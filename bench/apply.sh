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
#   bash bench/apply.sh --latency             (RUNS=3 N=200 RTTS="0 1 5 20")
#       the same sides over a dearer network: at each round-trip time in RTTS both connect
#       through bench/delayproxy on 127.0.0.1 (0: the Unix socket), on a chain of N
#       revisions; adds the waits per migration each side makes (the round trips the proxy
#       counts in one run at COUNT_RTT=5 ms, divided by N). BASELINE works here too.
#       bench/results/latency.md.
set -euo pipefail
cd "$(dirname "$0")/.."
latency=
if [ "${1:-}" = "--latency" ]; then latency=1; fi
RUNS=${RUNS:-$([ -n "$latency" ] && echo 3 || echo 5)}
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

# Where the timed sides connect: the Unix socket, or (--latency) the delay proxy.
lm_url="dbname=bench_apply"
psql_conn=(-d bench_apply)
run_lm() { # [binary]; prints ms
  local b=${1:-$bin} t0
  fresh_db bench_apply
  t0=$(date +%s%N)
  (cd "$proj" && "$b" --url "$lm_url" upgrade head >/dev/null 2>"$work/lm.err") ||
    { cat "$work/lm.err" >&2; exit 1; }
  ms_since "$t0"
}
run_psql() {
  fresh_db bench_apply
  local t0
  t0=$(date +%s%N)
  psql -X -q -v ON_ERROR_STOP=1 "${psql_conn[@]}" -f "$sql" >/dev/null 2>"$work/psql.err" ||
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
if [ -n "$latency" ]; then
  cmake --build build-bench --target delayproxy >/dev/null 2>&1 ||
    { cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null &&
      cmake --build build-bench --target delayproxy >/dev/null; }
  proxy=$PWD/build-bench/delayproxy ppid=""
  stop_proxy() { if [ -n "$ppid" ]; then kill -TERM "$ppid" 2>/dev/null; wait "$ppid" 2>/dev/null || true; ppid=""; fi; }
  trap 'stop_proxy; bash scripts/pg.sh stop "$pgdir"; rm -rf "$work"' EXIT
  use_rtt() { # rtt: the sides connect through a proxy at rtt ms (counting into $work/count)
    stop_proxy
    : >"$work/port"
    "$proxy" --rtt "$1" --upstream "$PGPORT" --count "$work/count" >"$work/port" 2>/dev/null &
    ppid=$!
    while [ ! -s "$work/port" ]; do sleep 0.01; done
    lm_url="host=127.0.0.1 port=$(head -n 1 "$work/port") dbname=bench_apply"
    psql_conn=(-h 127.0.0.1 -p "$(head -n 1 "$work/port")" -d bench_apply)
  }
  use_socket() { stop_proxy; lm_url="dbname=bench_apply"; psql_conn=(-d bench_apply); }
  # waits per migration: one run through the proxy at COUNT_RTT ms, its round trips / n.
  # Not at 0: there a pipelined statement's result is back before the next is sent, and the
  # proxy would count a wait the client never made.
  waits() { # n, then run_lm [binary] or run_psql
    local n=$1
    shift
    use_rtt "${COUNT_RTT:-5}"
    "$@" >/dev/null
    stop_proxy
    awk -v n="$n" '$1 == "round_trips" {printf "%.2f", $2 / n}' "$work/count"
  }
  n=${N:-200}
  proj=$work/apply-$n
  lua5.4 bench/gen_apply.lua "$proj" "$n"
  sql=$work/apply-$n.sql
  (cd "$proj" && "$bin" upgrade base:head --sql >"$sql")
  run_lm >/dev/null # warm-up, and the schema both sides must leave
  want=$(schema_of)
  run_psql >/dev/null
  [ "$want" = "$(schema_of)" ] || { echo "apply.sh: the two sides differ" >&2; exit 1; }
  w_lm=$(waits "$n" run_lm) w_ps=$(waits "$n" run_psql) w_bl=""
  [ -z "$baseline" ] || w_bl=$(waits "$n" run_lm "$baseline")
  table="| RTT | luamigrate | psql -f | ratio${baseline:+ | baseline | baseline ratio | luamigrate / baseline} | runs |\n"
  table+="|---:|---:|---:|---:${baseline:+|---:|---:|---:}|---:|\n"
  for rtt in ${RTTS:-0 1 5 20}; do
    if [ "$rtt" = 0 ]; then use_socket; else use_rtt "$rtt"; fi
    lm=() ps=() bl=()
    for i in $(seq "$RUNS"); do # alternating orders, as above
      if [ -n "$baseline" ]; then
        case $((i % 3)) in
          1) lm+=("$(run_lm)"); ps+=("$(run_psql)"); bl+=("$(run_lm "$baseline")") ;;
          2) ps+=("$(run_psql)"); bl+=("$(run_lm "$baseline")"); lm+=("$(run_lm)") ;;
          0) bl+=("$(run_lm "$baseline")"); lm+=("$(run_lm)"); ps+=("$(run_psql)") ;;
        esac
      elif [ $((i % 2)) -eq 1 ]; then
        lm+=("$(run_lm)"); ps+=("$(run_psql)")
      else
        ps+=("$(run_psql)"); lm+=("$(run_lm)")
      fi
      echo "latency $rtt ms run $i: luamigrate ${lm[-1]} ms, psql ${ps[-1]} ms${baseline:+, baseline ${bl[-1]} ms}" >&2
    done
    mlm=$(median "${lm[@]}") mps=$(median "${ps[@]}")
    label=$rtt
    [ "$rtt" = 0 ] && label="0 (socket)"
    row="| $label | $mlm ms | $mps ms | $(awk -v a="$mlm" -v b="$mps" 'BEGIN {printf "%.2f", a / b}')"
    if [ -n "$baseline" ]; then
      mbl=$(median "${bl[@]}")
      row+=" | $mbl ms | $(awk -v a="$mbl" -v b="$mps" 'BEGIN {printf "%.2f", a / b}') | $(awk -v a="$mlm" -v b="$mbl" 'BEGIN {printf "%.2f", a / b}')"
    fi
    table+="$row | $RUNS |\n"
  done
  stop_proxy
  out=${OUT:-bench/results/latency.md}
  {
    echo "# Applying migrations over a dearer network, against psql"
    echo
    echo "Machine: $(nproc) cores, $(uname -sr); PostgreSQL $(psql -XAtq -d postgres -c 'SHOW server_version') started by scripts/pg.sh (fsync=off, synchronous_commit=off), no SSL."
    echo "Command: \`${BASELINE:+BASELINE=$BASELINE }RUNS=$RUNS N=$n bash bench/apply.sh --latency\` ($(date -u +%Y-%m-%d)); $n create-table migrations on a fresh database each run, both sides through bench/delayproxy at RTT ms a round trip (0: the Unix socket); wall time, median of alternating runs."
    echo
    printf '%b' "$table"
    echo
    echo "Waits per migration (round trips the proxy counted in one run at ${COUNT_RTT:-5} ms / $n, the run's fixed ones included): luamigrate $w_lm, psql $w_ps${baseline:+, baseline $w_bl}."
  } | tee "$out"
  exit 0
fi
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
