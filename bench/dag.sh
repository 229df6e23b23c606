#!/usr/bin/env bash
# DAG commands at scale: times start-up (`--version`, `current` on a small up-to-date
# project), then generates 10,000- and 100,000-revision projects (linear and branched) and
# times heads, current, history, show and `upgrade heads --sql`, and heads, current and
# history with the revision cache deleted before each run, as on a fresh clone (median wall
# clock and CPU time of RUNS runs, the largest peak RSS of them) and writes bench/results/dag.md.
#   bash bench/dag.sh            (RUNS=5 SIZES="10000 100000" by default)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
SIZES=${SIZES:-"10000 100000"}

bash scripts/deps.sh
command -v /usr/bin/time >/dev/null || { echo "bench/dag.sh needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j "$(nproc)" >/dev/null
bin=$PWD/build-bench/luamigrate

work=$(mktemp -d /tmp/luamigrate-bench.XXXXXX)
pgdir=$(mktemp -d /tmp/luamigrate-bench-pg.XXXXXX) # its own: the server runs as postgres
trap 'bash scripts/pg.sh stop "$pgdir"; rm -rf "$work" "$tf"' EXIT
mkdir -p bench/results
eval "$(bash scripts/pg.sh start "$pgdir")"

# median wall time (ms) and max RSS (MiB) of RUNS runs of "$@" in the current directory
tf=$(mktemp /tmp/luamigrate-bench-time.XXXXXX)
one() { # prints "<wall ms> <KiB> <cpu ms>" for one run; COLD=1: with no revision cache
  local t0 t1
  [ -z "${COLD:-}" ] || rm -f migrations/versions/.luamigrate_cache
  t0=$(date +%s%N)
  /usr/bin/time -f "%M %U %S" -o "$tf" "$@" >/dev/null 2>&1 || true
  t1=$(date +%s%N)
  echo "$(( (t1 - t0) / 1000000 )) $(tail -n 1 "$tf" | awk '{printf "%d %d", $1, ($2 + $3) * 1000}')"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# "<wall> | <cpu> | <rss>" cells: median wall and CPU (user+sys, less disturbed by other
# load on the machine) of RUNS runs, and the largest peak RSS among them
measure() {
  local times=() cpus=() rss=0 out
  for _ in $(seq "$RUNS"); do
    out=$(one "$@")
    read -r w k c <<<"$out"
    times+=("$w")
    cpus+=("$c")
    rss=$(( k > rss ? k : rss ))
  done
  printf '%s ms | %s ms | %s MiB' "$(printf '%s\n' "${times[@]}" | median)" \
    "$(printf '%s\n' "${cpus[@]}" | median)" "$(awk -v k="$rss" 'BEGIN {printf "%.1f", k / 1024}')"
}

table="| revisions | shape | command | wall (median of $RUNS) | CPU user+sys (median) | peak RSS |\n|---:|---|---|---:|---:|---:|\n"

# Start-up: what every invocation pays, on a small up-to-date project.
proj=$work/small
lua5.4 bench/gen_dag.lua "$proj" 10 linear
touch -d "1 hour ago" "$proj"/migrations/versions/*.lua
psql -XAtq -c "CREATE DATABASE bench_small" >/dev/null
cd "$proj"
"$bin" heads >/dev/null 2>&1 # writes the cache
"$bin" --url "dbname=bench_small" upgrade heads >/dev/null 2>&1
table+="| 10 | linear | --version (start-up) | $(measure "$bin" --version) |\n"
table+="| 10 | linear | current (up to date) | $(measure "$bin" --url "dbname=bench_small" current) |\n"
cd - >/dev/null
for n in $SIZES; do
  for shape in linear branched; do
    proj=$work/$shape-$n
    lua5.4 bench/gen_dag.lua "$proj" "$n" "$shape"
    touch -d "1 hour ago" "$proj"/migrations/versions/*.lua 2>/dev/null ||
      find "$proj/migrations/versions" -name '*.lua' -exec touch -d "1 hour ago" {} +
    db="bench_${shape}_$n"
    psql -XAtq -c "CREATE DATABASE $db" >/dev/null
    url="dbname=$db"
    cd "$proj"
    cold=$(one "$bin" heads)
    table+="| $n | $shape | heads (first run: runs every file, writes the cache) | $(awk '{printf "%d ms | %d ms | %.1f MiB", $1, $3, $2 / 1024}' <<<"$cold") |\n"
    "$bin" --url "$url" stamp heads >/dev/null 2>&1
    some=$(ls migrations/versions | sed -n "$((n / 2))p" | cut -d_ -f1)
    table+="| $n | $shape | heads | $(measure "$bin" heads) |\n"
    table+="| $n | $shape | current | $(measure "$bin" --url "$url" current) |\n"
    table+="| $n | $shape | history | $(measure "$bin" history) |\n"
    # A fresh clone without a cache: the scanner reads each plain file (src/revscan.c).
    table+="| $n | $shape | heads, no cache | $(COLD=1 measure "$bin" heads) |\n"
    table+="| $n | $shape | current, no cache | $(COLD=1 measure "$bin" --url "$url" current) |\n"
    table+="| $n | $shape | history, no cache | $(COLD=1 measure "$bin" history) |\n"
    table+="| $n | $shape | show REV | $(measure "$bin" show "$some") |\n"
    table+="| $n | $shape | upgrade heads --sql | $(measure "$bin" upgrade heads --sql) |\n"
    cd - >/dev/null
  done
done

{
  echo "# DAG commands at scale"
  echo
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(uname -sr)."
  echo "Command: \`bash bench/dag.sh\` ($(date -u +%Y-%m-%d))."
  echo
  printf '%b' "$table"
} | tee bench/results/dag.md
