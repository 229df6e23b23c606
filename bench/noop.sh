#!/usr/bin/env bash
# The short start: a no-op `upgrade head` and `status` with N applied revisions (1,000 by
# default, bench/gen_apply.lua's create-table chain, applied once), each run from a fresh
# clone of the project (a `cp -r`: every mtime new, no versions/.luamigrate_cache), at each
# round-trip time in RTTS: 0 is the Unix socket, the others go through bench/delayproxy
# on 127.0.0.1 (RTT ms each round trip, the TCP handshake's included). For each: the
# median wall time of RUNS runs and the round trips the proxy counted (at RTT 0 through a
# proxy adding nothing, on one extra run). With BASELINE=/path/to/older/luamigrate the
# older build runs in the same rotation (alternating with this one).
#   bash bench/noop.sh                          (N=1000 RUNS=5 RTTS="0 1 5 20")
#   BASELINE=/tmp/lm-main/build-rel/luamigrate bash bench/noop.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000}
RUNS=${RUNS:-5}
RTTS=${RTTS:-"0 1 5 20"}

if [ -n "${LUAMIGRATE:-}" ]; then
  bin=$(realpath "$LUAMIGRATE")
else
  cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build-bench -j "$(nproc)" >/dev/null
  bin=$PWD/build-bench/luamigrate
fi
cmake --build build-bench --target delayproxy >/dev/null 2>&1 ||
  { cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build-bench --target delayproxy >/dev/null; }
proxy=$PWD/build-bench/delayproxy
baseline=${BASELINE:+$(realpath "$BASELINE")}

work=$(mktemp -d /tmp/luamigrate-noop.XXXXXX)
pgdir=$(mktemp -d /tmp/luamigrate-noop-pg.XXXXXX)
ppid_file=$work/proxy.pid
# The proxy may be a child of another subshell: waits for it to be gone (its counts written).
stop_proxy() {
  local pid
  pid=$(cat "$ppid_file" 2>/dev/null || true)
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.01; done
  fi
  : >"$ppid_file"
}
trap 'stop_proxy || true; bash scripts/pg.sh stop "$pgdir"; rm -rf "$work"' EXIT
out=${OUT:-bench/results/noop.md}
mkdir -p bench/results
eval "$(bash scripts/pg.sh start "$pgdir")"
export PGHOST

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# Starts the proxy at rtt ms (counting into $work/count); prints its port.
start_proxy() {
  : >"$work/port"
  "$proxy" --rtt "$1" --upstream "$PGPORT" --count "$work/count" >"$work/port" 2>/dev/null &
  echo $! >"$ppid_file"
  while [ ! -s "$work/port" ]; do sleep 0.01; done
  head -n 1 "$work/port"
}
fresh_clone() {
  rm -rf "$work/clone"
  cp -r "$proj" "$work/clone"
  rm -f "$work/clone/migrations/versions/.luamigrate_cache"
}
# rtt binary command...: one run from a fresh clone, through a proxy of its own when rtt > 0;
# prints "ms trips" (trips "-" on the socket).
run_once() {
  local rtt=$1 b=$2 url="dbname=bench_noop" t0 ms trips=-
  shift 2
  fresh_clone
  if [ "$rtt" != socket ]; then url="host=127.0.0.1 port=$(start_proxy "$rtt") dbname=bench_noop"; fi
  t0=$(date +%s%N)
  (cd "$work/clone" && "$b" --url "$url" "$@" >/dev/null 2>"$work/err") || { cat "$work/err" >&2; exit 1; }
  ms=$((($(date +%s%N) - t0) / 1000000))
  if [ "$rtt" != socket ]; then stop_proxy; trips=$(awk '$1 == "round_trips" {print $2}' "$work/count"); fi
  echo "$ms $trips"
}

proj=$work/proj
lua5.4 bench/gen_apply.lua "$proj" "$N"
psql -XAtq -d postgres -c "CREATE DATABASE bench_noop" >/dev/null
(cd "$proj" && "$bin" --url "dbname=bench_noop" upgrade head >/dev/null 2>&1)

if [ -n "$baseline" ]; then
  table="| RTT | command | round trips | wall (median) | baseline round trips | baseline wall | runs |\n|---:|---|---:|---:|---:|---:|---:|\n"
else
  table="| RTT | command | round trips | wall (median) | runs |\n|---:|---|---:|---:|---:|\n"
fi
for rtt in $RTTS; do
  for cmd in "upgrade head" "status"; do
    mode=$rtt
    [ "$rtt" = 0 ] && mode=socket
    # the counts (at RTT 0 through a proxy that adds nothing), from one run each; cmd is
    # two words on purpose
    # shellcheck disable=SC2086
    trips=$(run_once "$rtt" "$bin" $cmd | cut -d' ' -f2) btrips=""
    # shellcheck disable=SC2086
    [ -z "$baseline" ] || btrips=$(run_once "$rtt" "$baseline" $cmd | cut -d' ' -f2)
    lm=() bl=()
    for i in $(seq "$RUNS"); do # alternating, when there is a baseline
      # shellcheck disable=SC2086
      if [ -n "$baseline" ] && [ $((i % 2)) -eq 0 ]; then
        bl+=("$(run_once "$mode" "$baseline" $cmd | cut -d' ' -f1)")
        lm+=("$(run_once "$mode" "$bin" $cmd | cut -d' ' -f1)")
      else
        lm+=("$(run_once "$mode" "$bin" $cmd | cut -d' ' -f1)")
        [ -z "$baseline" ] || bl+=("$(run_once "$mode" "$baseline" $cmd | cut -d' ' -f1)")
      fi
    done
    label=$rtt
    [ "$rtt" = 0 ] && label="0 (socket)"
    echo "noop $label $cmd: ${lm[*]} ms${baseline:+ / baseline ${bl[*]} ms}" >&2
    if [ -n "$baseline" ]; then
      table+="| $label | \`$cmd\` | $trips | $(median "${lm[@]}") ms | $btrips | $(median "${bl[@]}") ms | $RUNS |\n"
    else
      table+="| $label | \`$cmd\` | $trips | $(median "${lm[@]}") ms | $RUNS |\n"
    fi
  done
done

{
  echo "# The short start: a no-op upgrade and status from a fresh clone"
  echo
  echo "Machine: $(nproc) cores, $(uname -sr); PostgreSQL $(psql -XAtq -d postgres -c 'SHOW server_version') started by scripts/pg.sh, no SSL (libpq's SSLRequest is refused in one round trip)."
  echo "Command: \`${BASELINE:+BASELINE=$BASELINE }RUNS=$RUNS N=$N bash bench/noop.sh\` ($(date -u +%Y-%m-%d)); $N applied revisions, each run from a fresh \`cp -r\` of the project with no revision cache; RTT through bench/delayproxy (0: the Unix socket, round trips counted through a proxy adding nothing)."
  echo
  printf '%b' "$table"
} | tee "$out"
