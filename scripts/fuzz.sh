#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang, ASan + UBSan) in build-fuzz/ and runs each for
# a bounded time from its seed corpus (fuzz/corpus/<target>/, which also holds the inputs
# of bugs found so far). A crash, a sanitizer report, a leak or a timeout fails the run and
# leaves the input in build-fuzz/artifacts/.
#   scripts/fuzz.sh [SECONDS]         default 60 per target
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
secs=${1:-60}

# Every target, by name (fuzz/fuzz_<name>.c, fuzz/corpus/<name>/).
targets=(revision_id url config revision_file python journal_cic typed_array sql_split)

CC=clang cmake -S . -B build-fuzz -DLM_FUZZ=ON -DBUILD_TESTING=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target "${targets[@]/#/fuzz_}" >/dev/null

work=$(mktemp -d /tmp/luamigrate-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p build-fuzz/artifacts
unset LD_PRELOAD
export TMPDIR=$work # the targets write their files there
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
for name in "${targets[@]}"; do
  mkdir -p "$work/new-$name"
  # New inputs go to a scratch directory: the corpus in the repo changes only by hand.
  if "$root/build-fuzz/fuzz/fuzz_$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$root/build-fuzz/artifacts/$name-" \
      "$work/new-$name" "$root/fuzz/corpus/$name" >"$work/$name.log" 2>&1; then
    echo "fuzz_$name: $(grep -E '^#[0-9]+[[:space:]]+DONE' "$work/$name.log" | tail -n 1)"
  else
    echo "fuzz_$name FAILED:" >&2
    tail -n 60 "$work/$name.log" >&2
    status=1
  fi
done
exit $status
