#!/usr/bin/env bash
# Checks bench/delayproxy against what it claims: psql's `SELECT 1` through it at each RTT
# in RTTS (median wall time of RUNS runs, against the same on 127.0.0.1 directly), and its
# round-trip count for a psql script whose round trips are known: libpq's SSLRequest (the
# server has no SSL and refuses it), the start-up, then one per statement psql sends.
#   bash bench/proxy_check.sh            (RUNS=9 RTTS="1 5 20")
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-9}
RTTS=${RTTS:-"1 5 20"}
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench --target delayproxy >/dev/null
proxy=$PWD/build-bench/delayproxy
work=$(mktemp -d /tmp/luamigrate-proxy.XXXXXX)
pgdir=$(mktemp -d /tmp/luamigrate-proxy-pg.XXXXXX)
pid=""
stop_proxy() { if [ -n "$pid" ]; then kill -TERM "$pid"; wait "$pid" || true; pid=""; fi; }
trap 'stop_proxy; bash scripts/pg.sh stop "$pgdir"; rm -rf "$work"' EXIT
eval "$(bash scripts/pg.sh start "$pgdir")"
out=${OUT:-bench/results/proxy.md}
mkdir -p bench/results

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
start_proxy() { # rtt: sets port
  : >"$work/port"
  "$proxy" --rtt "$1" --upstream "$PGPORT" --count "$work/count" >"$work/port" 2>/dev/null &
  pid=$!
  while [ ! -s "$work/port" ]; do sleep 0.01; done
  port=$(head -n 1 "$work/port")
}
select1() { # port: prints µs
  local t0
  t0=$(date +%s%N)
  psql -X -h 127.0.0.1 -p "$1" -d postgres -Atc 'SELECT 1' >/dev/null
  echo $((($(date +%s%N) - t0) / 1000))
}

direct=()
for _ in $(seq "$RUNS"); do direct+=("$(select1 "$PGPORT")"); done
d=$(median "${direct[@]}")
table="| RTT | psql \`SELECT 1\` (median) | minus direct | expected: 4 round trips (TCP, SSLRequest, start-up, query) |\n|---:|---:|---:|---:|\n"
table+="| direct | $(awk -v a="$d" 'BEGIN {printf "%.1f ms", a / 1000}') | | |\n"
for rtt in $RTTS; do
  start_proxy "$rtt"
  t=()
  for _ in $(seq "$RUNS"); do t+=("$(select1 "$port")"); done
  stop_proxy
  m=$(median "${t[@]}")
  table+="| $rtt ms | $(awk -v a="$m" 'BEGIN {printf "%.1f ms", a / 1000}') | $(awk -v a="$m" -v b="$d" 'BEGIN {printf "%.1f ms", (a - b) / 1000}') | $((4 * rtt)) ms |\n"
done

# The known script: three statements, each its own round trip in psql.
printf 'SELECT 1;\nSELECT 2;\nCREATE TEMP TABLE t (i int);\n' >"$work/script.sql"
start_proxy 1
psql -X -q -h 127.0.0.1 -p "$port" -d postgres -f "$work/script.sql" >/dev/null
stop_proxy
counted=$(awk '$1 == "round_trips" {print $2}' "$work/count")

{
  echo "# The delay proxy, checked"
  echo
  echo "Command: \`RUNS=$RUNS bash bench/proxy_check.sh\` ($(date -u +%Y-%m-%d)); PostgreSQL $(psql -XAtq -d postgres -c 'SHOW server_version') by scripts/pg.sh, no SSL."
  echo
  printf '%b' "$table"
  echo
  echo "A psql script of three statements: the proxy counted $counted round trips (expected 5: the SSLRequest, the start-up, one per statement)."
} | tee "$out"
