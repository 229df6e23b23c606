#!/usr/bin/env bash
# Every test: installs what is missing, builds, starts a throwaway PostgreSQL, runs the
# whole ctest suite (C unit tests; busted unit, integration and cli tiers), then the same
# suite again on the AddressSanitizer + UndefinedBehaviorSanitizer build; then clang-tidy,
# a set of CLI specs under valgrind memcheck, the libFuzzer targets for a bounded time, and
# the .deb installed and run on a freshly debootstrapped Debian 12. Each of the last four is
# a script of its own (scripts/lint_c.sh, memcheck.sh, fuzz.sh, test_deb.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
bash scripts/build.sh
bash scripts/build.sh --sanitize

pgdir=$(mktemp -d /tmp/luamigrate-test.XXXXXX)
trap 'bash scripts/pg.sh stop "$pgdir"' EXIT
eval "$(bash scripts/pg.sh start "$pgdir")"

status=0
echo "== tests (build/)"
ctest --test-dir build --output-on-failure || status=1

# The busted tiers load core.so into an uninstrumented lua5.4, so the sanitizer runtime is
# preloaded for them. Leak checking stays on for the C tests only: the busted tiers' setting
# reaches the binaries they start too, so the CLI's leaks are the memcheck tier's to find.
echo "== tests under ASan + UBSan (build-asan/)"
asan_rt=$(gcc -print-file-name=libasan.so)
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -R '^c_' || status=1
LD_PRELOAD="$asan_rt" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -R '^busted_' || status=1

echo "== clang-tidy (src/, src/bind/)"
bash scripts/lint_c.sh || status=1

echo "== CLI specs under valgrind memcheck (build/)"
bash scripts/memcheck.sh || status=1

echo "== fuzz targets, 60 s each (build-fuzz/)"
bash scripts/fuzz.sh 60 || status=1

# The package as a user gets it: cpack's .deb, apt-get installed into a fresh minimal
# bookworm (so its Depends are resolved for real), run there against this server over TCP.
echo "== packaging: the .deb installed and run on a fresh Debian 12 (scripts/test_deb.sh)"
bash scripts/test_deb.sh build || status=1

exit $status
