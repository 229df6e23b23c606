#!/usr/bin/env bash
# clang-tidy over the C core and its Lua bindings (.clang-tidy at the top), with the
# compile commands of build/ (scripts/build.sh exports them). Any warning fails.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f build/compile_commands.json ] || bash scripts/build.sh
clang-tidy -p build --quiet --warnings-as-errors='*' src/*.c src/bind/*.c
