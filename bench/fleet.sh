#!/usr/bin/env bash
# Fleet runs against what users do today (a shell loop of single-target runs): three
# throwaway servers, N_SCHEMAS tenant schemas in one database of the first (schema targets)
# and N_DBS tenant databases spread over the three (database targets), a project of five
# migrations. For each kind of fleet it times
#   loop        one `luamigrate --url TARGET upgrade head` per target, one after another
#   --parallel 2  `luamigrate -t PATTERN --parallel 2 upgrade head`: one target run at a time
#               per server (a run holds 2 connections, a work and a lock one; --parallel 1
#               is refused with lock = session)
#   fleet       `luamigrate -t PATTERN upgrade head` with the default parallelism
# first as the upgrade of the five migrations on every target (from base), then as the no-op
# check (every target already at head), and `-t PATTERN current`. Between upgrades the fleet
# is downgraded to base (untimed). After each upgrade every target is checked at head.
#   nice -n 10 bash bench/fleet.sh                 (N_SCHEMAS=1000 N_DBS=100)
#   N_SCHEMAS=100 N_DBS=12 bash bench/fleet.sh     (a quick run)
#   LUAMIGRATE=build/luamigrate bash bench/fleet.sh  (time that binary, no Release build)
#   RTT=5 N_SCHEMAS=200 N_DBS=30 bash bench/fleet.sh (over a network: see below)
#   WIDE=32 ...                                    (also the upgrade with --parallel 32)
# With RTT=MS every target is reached over 127.0.0.1 TCP through a bench/delayproxy of its
# server's own (MS ms each round trip, the TCP handshake's included), as a fleet whose
# servers are on other hosts; the setup and the checks go to the servers directly. Beside
# the wall times it reports the CPU each measure cost: luamigrate's (the timed processes'
# children's user + system time, the loop's shell helpers included), the servers' (the
# postmasters' reaped children, i.e. the backends) and the proxies'.
set -euo pipefail
cd "$(dirname "$0")/.."
N_SCHEMAS=${N_SCHEMAS:-1000}
N_DBS=${N_DBS:-100}
RTT=${RTT:-}
WIDE=${WIDE:-} # WIDE=N: also the upgrade with --parallel N (beyond the default's 8 runs a server)

bin=${LUAMIGRATE:+$(realpath "$LUAMIGRATE")}
[ -n "$bin" ] || { cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null &&
  cmake --build build-bench -j "$(nproc)" >/dev/null && bin=$PWD/build-bench/luamigrate; }
if [ -n "$RTT" ]; then
  cmake --build build-bench --target delayproxy >/dev/null 2>&1 ||
    { cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build-bench --target delayproxy >/dev/null; }
  proxy=$PWD/build-bench/delayproxy
fi

work=$(mktemp -d /tmp/luamigrate-fleetbench.XXXXXX)
pg1=$(mktemp -d /tmp/luamigrate-fleetbench-pg.XXXXXX)
pg2=$(mktemp -d /tmp/luamigrate-fleetbench-pg.XXXXXX)
pg3=$(mktemp -d /tmp/luamigrate-fleetbench-pg.XXXXXX)
proxy_pids=()
trap 'for p in "${proxy_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for d in "$pg1" "$pg2" "$pg3"; do bash scripts/pg.sh stop "$d/pg" >/dev/null 2>&1; rm -rf "$d"; done; rm -rf "$work"' EXIT
out=${OUT:-bench/results/fleet${RTT:+-rtt$RTT}.md}
mkdir -p bench/results

hosts=() ports=()
for d in "$pg1" "$pg2" "$pg3"; do
  chmod 755 "$d"
  env=$(bash scripts/pg.sh start "$d/pg")
  hosts+=("$(sed -n 's/.*PGHOST=\([^ ]*\).*/\1/p' <<<"$env")")
  ports+=("$(sed -n 's/.*PGPORT=\([0-9]*\).*/\1/p' <<<"$env")")
done
conninfo() { echo "host=${hosts[$1]} port=${ports[$1]} user=postgres dbname=$2"; }
# What the targets are reached by: the server itself, or its proxy.
thosts=("${hosts[@]}") tports=("${ports[@]}")
if [ -n "$RTT" ]; then
  for s in 0 1 2; do
    "$proxy" --rtt "$RTT" --upstream "${ports[$s]}" >"$work/proxy$s.port" 2>/dev/null &
    proxy_pids+=($!)
    while [ ! -s "$work/proxy$s.port" ]; do sleep 0.01; done
    thosts[s]=127.0.0.1 tports[s]=$(head -n 1 "$work/proxy$s.port")
  done
fi
tconninfo() { echo "host=${thosts[$1]} port=${tports[$1]} user=postgres dbname=$2"; }
psql_on() { psql -XAtq -v ON_ERROR_STOP=1 -d "$(conninfo "$1" "$2")" -c "$3"; }

# The tenants: schemas tenant_0001... in database tenants on server 0; databases
# tenant_001... round-robin over the servers.
psql_on 0 postgres "CREATE DATABASE tenants" >/dev/null
psql_on 0 tenants "$(for i in $(seq -f %04g 1 "$N_SCHEMAS"); do echo "CREATE SCHEMA tenant_$i;"; done)" >/dev/null
for i in $(seq -f %03g 1 "$N_DBS"); do
  psql_on $((10#$i % 3)) postgres "CREATE DATABASE tenant_$i" >/dev/null
done

# Five migrations: a table, a column, an index, a constraint, a row logging each run.
mkdir -p "$work/migrations/versions"
prev=nil
bodies=(
  'op.execute("CREATE TABLE accounts (id serial PRIMARY KEY, email text NOT NULL)")
  op.execute("CREATE TABLE applied (rev text NOT NULL)")'
  'op.execute("ALTER TABLE accounts ADD COLUMN plan text NOT NULL DEFAULT '"'"'free'"'"'")'
  'op.execute("CREATE INDEX accounts_email ON accounts (email)")'
  'op.execute("ALTER TABLE accounts ADD CONSTRAINT email_has_at CHECK (email LIKE '"'"'%@%'"'"')")'
  'op.execute("CREATE TABLE invoices (id serial PRIMARY KEY, account int REFERENCES accounts)")'
)
for i in 1 2 3 4 5; do
  id="f${i}aaaaaaaaaa"
  cat >"$work/migrations/versions/${id}_step$i.lua" <<EOF
--[[ fleet bench step $i
Revision ID: $id
]]
revision = "$id"
down_revision = $prev
function upgrade()
  ${bodies[$((i - 1))]}
  op.execute("INSERT INTO applied VALUES ('$id')")
end
function downgrade()
  $(case $i in
      1) echo 'op.execute("DROP TABLE applied") op.execute("DROP TABLE accounts")' ;;
      2) echo 'op.execute("ALTER TABLE accounts DROP COLUMN plan")' ;;
      3) echo 'op.execute("DROP INDEX accounts_email")' ;;
      4) echo 'op.execute("ALTER TABLE accounts DROP CONSTRAINT email_has_at")' ;;
      5) echo 'op.execute("DROP TABLE invoices")' ;;
    esac)
  $([ "$i" -gt 1 ] && echo "op.execute(\"DELETE FROM applied WHERE rev = '$id'\")")
end
EOF
  prev="\"$id\""
done
head_id=f5aaaaaaaaaa
{
  echo 'script_location = "migrations"'
  echo "targets = {}"
  echo "for i = 1, $N_SCHEMAS do"
  echo "  targets[#targets + 1] = { name = ('s%04d'):format(i), schema = ('tenant_%04d'):format(i),"
  echo "    url = \"$(tconninfo 0 tenants)\" }"
  echo "end"
  echo "local servers = { \"${thosts[0]} ${tports[0]}\", \"${thosts[1]} ${tports[1]}\", \"${thosts[2]} ${tports[2]}\" }"
  echo "for i = 1, $N_DBS do"
  echo "  local host, port = servers[i % 3 + 1]:match('(%S+) (%S+)')"
  echo "  targets[#targets + 1] = { name = ('d%03d'):format(i),"
  echo "    url = ('host=%s port=%s user=postgres dbname=tenant_%03d'):format(host, port, i) }"
  echo "end"
} >"$work/luamigrate.lua"

lm() { (cd "$work" && "$bin" "$@"); }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

# Every target at head, each migration applied once: else the bench stops.
verify() { # kind
  local bad=0 i
  if [ "$1" = schemas ]; then
    bad=$(psql_on 0 tenants "SELECT count(*) FROM pg_namespace n WHERE nspname LIKE 'tenant_%' AND
      (SELECT count(*) FROM pg_class WHERE relnamespace = n.oid AND relname = 'applied') = 0" )
    for i in $(seq -f %04g 1 "$N_SCHEMAS"); do echo "SELECT count(*) <> 5 FROM tenant_$i.applied UNION ALL"; done \
      | { cat; echo "SELECT false"; } >"$work/check.sql"
    bad=$((bad + $(psql -XAtq -d "$(conninfo 0 tenants)" -f "$work/check.sql" | grep -c t || true)))
  else
    for i in $(seq -f %03g 1 "$N_DBS"); do
      [ "$(psql_on $((10#$i % 3)) "tenant_$i" "SELECT count(*) FROM applied")" = 5 ] || bad=$((bad + 1))
    done
  fi
  [ "$bad" -eq 0 ] || { echo "fleet.sh: $bad $1 targets are not at head with 5 rows in applied" >&2; exit 1; }
}

# The single-target URL of each target, as a loop over them would pass it.
urls() { # kind
  if [ "$1" = schemas ]; then
    for i in $(seq -f %04g 1 "$N_SCHEMAS"); do echo "$(tconninfo 0 tenants) options='-csearch_path=tenant_$i'"; done
  else
    for i in $(seq -f %03g 1 "$N_DBS"); do tconninfo $((10#$i % 3)) "tenant_$i"; done
  fi
}

# CPU clock ticks: this shell's reaped children (the luamigrate runs it timed), the
# servers' (each postmaster's reaped children: the backends that ended), the proxies'.
tick_ms=$((1000 / $(getconf CLK_TCK)))
ticks() { # fields pids...: sums those /proc/PID/stat fields (man 5 proc, 14 = utime)
  local f=$1 pid sum=0 st i
  shift
  for pid in "$@"; do
    st=$(cat "/proc/$pid/stat")
    st=${st##*) }
    # shellcheck disable=SC2086
    set -- $st
    for i in $f; do i=$((i - 2)); sum=$((sum + ${!i})); done # fields 1-2 cut
  done
  echo "$sum"
}
pm_pids() { for d in "$pg1" "$pg2" "$pg3"; do head -n 1 "$d/pg/data/postmaster.pid"; done; }
# mark PID: where a measure starts (PID: the shell running it); measured PID marks...:
# "ms client_cpu server_cpu proxy_cpu" since those marks
mark() {
  # shellcheck disable=SC2046
  echo "$(date +%s%N) $(ticks "16 17" "$1") $(ticks "14 15 16 17" $(pm_pids)) $(ticks "14 15" "${proxy_pids[@]}")"
}
measured() {
  local now
  read -r -a now <<<"$(mark "$1")"
  shift
  echo "$(((now[0] - $1) / 1000000)) $(((now[1] - $2) * tick_ms)) $(((now[2] - $3) * tick_ms)) $(((now[3] - $4) * tick_ms))"
}

loop() { # kind: prints the measures
  local t0 u me=$BASHPID
  t0=$(mark $me)
  while IFS= read -r u; do lm -q --url "$u" upgrade head >/dev/null; done < <(urls "$1")
  # shellcheck disable=SC2086
  measured $me $t0
}

fleet() { # pattern, args...: prints the measures
  local p=$1 t0 me=$BASHPID
  shift
  t0=$(mark $me)
  lm -t "$p" "$@" >"$work/fleet.out" || { cat "$work/fleet.out" >&2; exit 1; }
  # shellcheck disable=SC2086
  measured $me $t0
}

load0=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A R
for kind in schemas dbs; do
  [ "$kind" = schemas ] && pat='s*' || pat='d*'
  R[$kind,loop_up]=$(loop $kind); verify $kind
  R[$kind,loop_noop]=$(loop $kind)
  fleet "$pat" downgrade base >/dev/null
  R[$kind,p2_up]=$(fleet "$pat" --parallel 2 upgrade head); verify $kind
  R[$kind,p2_noop]=$(fleet "$pat" --parallel 2 upgrade head)
  fleet "$pat" downgrade base >/dev/null
  R[$kind,fleet_up]=$(fleet "$pat" upgrade head); verify $kind
  R[$kind,fleet_noop]=$(fleet "$pat" upgrade head)
  grep -q "^0 upgraded, $([ $kind = schemas ] && echo "$N_SCHEMAS" || echo "$N_DBS") already there" "$work/fleet.out" \
    || { cat "$work/fleet.out" >&2; exit 1; }
  R[$kind,fleet_current]=$(fleet "$pat" current)
  if [ -n "$WIDE" ]; then
    fleet "$pat" downgrade base >/dev/null
    R[$kind,wide_up]=$(fleet "$pat" --parallel "$WIDE" upgrade head); verify $kind
  fi
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / (b > 0 ? b : 1) }'; }
ms() { echo "${R[$1]%% *}"; }  # the wall time of a measure
# The CPU of a measure per target, ms: luamigrate / servers / proxies
per_target() { # key count
  awk -v n="$2" '{ printf "%.1f / %.1f / %.1f", $2 / n, $3 / n, $4 / n }' <<<"${R[$1]}"
}
# The rows of the wall-time table (wall) or of the CPU one (cpu), for each kind of fleet.
rows() {
  local kind label n m
  for kind in schemas dbs; do
    label=$([ $kind = schemas ] && echo "$N_SCHEMAS schemas" || echo "$N_DBS databases")
    n=$([ $kind = schemas ] && echo "$N_SCHEMAS" || echo "$N_DBS")
    for m in up noop; do
      if [ "$1" = wall ]; then
        echo "| $label | $([ $m = up ] && echo "upgrade, 5 migrations each" || echo "no-op check (all at head)") |" \
          "$(ms $kind,loop_$m) | $(ms $kind,p2_$m) | $(ms $kind,fleet_$m) | $(ratio "$(ms $kind,loop_$m)" "$(ms $kind,fleet_$m)")x |"
      else
        echo "| $label | $([ $m = up ] && echo upgrade || echo "no-op check") |" \
          "$(per_target $kind,loop_$m "$n") | $(per_target $kind,p2_$m "$n") | $(per_target $kind,fleet_$m "$n") |"
      fi
    done
    if [ "$1" = wall ]; then
      echo "| $label | current | | | $(ms $kind,fleet_current) | |"
      [ -z "$WIDE" ] || echo "| $label | upgrade, --parallel $WIDE | | | $(ms $kind,wide_up) | $(ratio "$(ms $kind,loop_up)" "$(ms $kind,wide_up)")x |"
    else
      [ -z "$WIDE" ] || echo "| $label | upgrade, --parallel $WIDE | | | $(per_target $kind,wide_up "$n") |"
    fi
  done
}
{
  echo "# bench/fleet.sh: $N_SCHEMAS schema targets, $N_DBS database targets over 3 servers," \
    "$([ -n "$RTT" ] && echo "through delayproxy at RTT $RTT ms" || echo "on Unix sockets")"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $load0 at the start," \
    "$(cut -d' ' -f1-3 /proc/loadavg) at the end"
  echo "(a shared machine: other jobs may run beside it). Times in ms, one run each."
  echo
  echo "| fleet | measure | loop of single runs | --parallel 2 | fleet (default) | loop / fleet |"
  echo "|---|---|---:|---:|---:|---:|"
  rows wall
  echo
  echo "CPU per target, ms: luamigrate (with the loop's shell) / the servers' backends / the proxies"
  echo "(clock ticks of $tick_ms ms summed over the run, divided by the targets)."
  echo
  echo "| fleet | measure | loop of single runs | --parallel 2 | fleet (default) |"
  echo "|---|---|---:|---:|---:|"
  rows cpu
} | tee "$out"
