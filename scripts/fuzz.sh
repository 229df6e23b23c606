#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang, ASan + UBSan) in build-fuzz/ and runs each for
# a bounded time from its seed corpus (fuzz/corpus/<target>/, which also holds the inputs
# of bugs found so far). A crash, a sanitizer report, a leak or a timeout fails the run and
# leaves the input in build-fuzz/artifacts/.
#   scripts/fuzz.sh [SECONDS [TARGET...]]   default 60 s for each of every target
#   scripts/fuzz.sh --build                   only build them
#   scripts/fuzz.sh --list                    print every target's name
# With LM_FUZZ_BUILT=1 the build is skipped (scripts/test.sh builds once, then runs the
# targets in two lanes at once, which must not build the same tree together).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# Every target, by name (fuzz/fuzz_<name>.c, fuzz/corpus/<name>/).
all=(revision_id url config revision_file revscan python journal_cic typed_array sql_split)
if [ "${1:-}" = --list ]; then printf '%s\n' "${all[@]}"; exit 0; fi

if [ "${LM_FUZZ_BUILT:-}" != 1 ]; then
  CC=clang cmake -S . -B build-fuzz -DLM_FUZZ=ON -DBUILD_TESTING=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build-fuzz -j "$(nproc)" --target "${all[@]/#/fuzz_}" >/dev/null
fi
[ "${1:-}" = --build ] && exit 0
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
for name in "${targets[@]}"; do
  [ -x "$root/build-fuzz/fuzz/fuzz_$name" ] || { echo "fuzz.sh: no target fuzz_$name" >&2; exit 2; }
done

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
