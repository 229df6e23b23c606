#!/usr/bin/env bash
# Every test: installs what is missing, builds, and runs two lanes side by side, each with a
# throwaway PostgreSQL of its own:
#   lane 1: the whole ctest suite on build/ (C unit tests; busted unit, integration and one
#           test per cli spec file), then clang-tidy, then a set of CLI specs under valgrind
#           memcheck (scripts/lint_c.sh, scripts/memcheck.sh), then half of the libFuzzer
#           targets for a bounded time each (scripts/fuzz.sh);
#   lane 2: the same ctest suite on the AddressSanitizer + UndefinedBehaviorSanitizer build
#           (build-asan/), then the .deb installed and run on a freshly debootstrapped
#           Debian 12 (scripts/test_deb.sh), then the other half of the fuzz targets.
# Each lane writes a log; both are printed in full when they end, then a summary. The lanes
# share nothing but the machine: separate build trees, servers and temporary directories.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
bash scripts/build.sh
bash scripts/build.sh --sanitize
bash scripts/fuzz.sh --build # once, before the lanes share the tree

work=$(mktemp -d /tmp/luamigrate-test.XXXXXX)
chmod 755 "$work" # the servers run as postgres, which must reach their directories
cleanup() {
  bash scripts/pg.sh stop "$work/pg1" || true
  bash scripts/pg.sh stop "$work/pg2" || true
  rm -rf "$work"
}
trap cleanup EXIT

# Runs one step of a lane: a header, the command, its status recorded as "name rc seconds".
# Its output is kept in a file of its own too, so the summary can end with the tail of each
# failed step (the summary is what a truncated CI log still shows).
step() {
  local lane=$1 name=$2
  shift 2
  local t0=$SECONDS rc=0 out
  out="$work/$lane.$({ wc -l <"$work/$lane.status"; } 2>/dev/null || echo 0).out"
  echo "== $name"
  "$@" >"$out" 2>&1 || rc=$?
  cat "$out"
  echo "$name $rc $((SECONDS - t0))" >>"$work/$lane.status"
  return 0
}

# Starts this lane's server and exports its PG* variables into the lane.
server() {
  local exports
  exports=$(bash scripts/pg.sh start "$work/$1") || { echo "the test server did not start"; return 1; }
  eval "$exports"
}

# Every fuzz target (scripts/fuzz.sh --list), half in each lane.
mapfile -t fuzz_all < <(bash scripts/fuzz.sh --list)
half=$(((${#fuzz_all[@]} + 1) / 2))
FUZZ_LANE1=("${fuzz_all[@]:0:$half}")
FUZZ_LANE2=("${fuzz_all[@]:$half}")

lane1() {
  server pg1 || return 1
  step lane1 "tests (build/)" ctest --test-dir build --output-on-failure
  step lane1 "clang-tidy (src/, src/bind/)" bash scripts/lint_c.sh
  step lane1 "CLI specs under valgrind memcheck (build/)" bash scripts/memcheck.sh
  step lane1 "fuzz targets, 60 s each: ${FUZZ_LANE1[*]}" env LM_FUZZ_BUILT=1 bash scripts/fuzz.sh 60 "${FUZZ_LANE1[@]}"
}

# The busted tiers load core.so into an uninstrumented lua5.4, so the sanitizer runtime is
# preloaded for them. Leak checking stays on for the C tests only: the busted tiers' setting
# reaches the binaries they start too, so the CLI's leaks are the memcheck tier's to find.
asan_c() {
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -R '^c_'
}
asan_busted() {
  LD_PRELOAD="$(gcc -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -R '^busted_'
}

lane2() {
  server pg2 || return 1
  step lane2 "C tests under ASan + UBSan (build-asan/)" asan_c
  step lane2 "busted tiers under ASan + UBSan (build-asan/)" asan_busted
  # The package as a user gets it: cpack's .deb, apt-get installed into a fresh minimal
  # bookworm (so its Depends are resolved for real), run there against this lane's server.
  step lane2 "packaging: the .deb on a fresh Debian 12 (scripts/test_deb.sh)" bash scripts/test_deb.sh build
  step lane2 "fuzz targets, 60 s each: ${FUZZ_LANE2[*]}" env LM_FUZZ_BUILT=1 bash scripts/fuzz.sh 60 "${FUZZ_LANE2[@]}"
}

t0=$SECONDS
(lane1) >"$work/lane1.log" 2>&1 &
pid1=$!
(lane2) >"$work/lane2.log" 2>&1 &
pid2=$!
wait "$pid1" || true
wait "$pid2" || true

echo "######## lane 1: build/, clang-tidy, memcheck"
cat "$work/lane1.log"
echo "######## lane 2: build-asan/, fuzz, packaging"
cat "$work/lane2.log"

echo "######## summary ($((SECONDS - t0)) s for both lanes)"
status=0
failed_tails=()
for lane in lane1 lane2; do
  if [ ! -s "$work/$lane.status" ]; then
    echo "$lane: did not run (its server failed to start?)"
    status=1
    continue
  fi
  i=0
  while read -r line; do
    rc=$(awk '{print $(NF-1)}' <<<"$line")
    secs=$(awk '{print $NF}' <<<"$line")
    name=${line% * *}
    if [ "$rc" -eq 0 ]; then echo "ok     ${secs}s  $name"; else
      echo "FAILED ${secs}s  $name (rc $rc)"
      failed_tails+=("$name" "$work/$lane.$i.out")
      status=1
    fi
    i=$((i + 1))
  done <"$work/$lane.status"
done
# Each lane has four steps; one missing means a lane stopped early.
[ "$(cat "$work"/lane*.status | wc -l)" -eq 8 ] || { echo "a lane stopped before its last step"; status=1; }
# ctest's own counts from the three ctest runs, added up.
counts=$(cat "$work"/lane*.log | sed -n 's/.* tests passed, \([0-9]*\) tests\{0,1\} failed out of \([0-9]*\).*/\1 \2/p' |
  awk '{f += $1; n += $2} END {print n - f, f}')
read -r passed failed <<<"$counts"
echo "ctest: ${passed:-0} passed, ${failed:-0} failed"
# Last, where a truncated log still shows it: why each failed step failed.
for ((k = 0; k < ${#failed_tails[@]}; k += 2)); do
  echo "---- why '${failed_tails[k]}' failed (its last 25 lines):"
  tail -n 25 "${failed_tails[k + 1]}"
done
exit $status
