#!/usr/bin/env bash
# Runs every benchmark (each bench/*.sh but this one, in name order; each writes its table
# to bench/results/<name>.md) and gathers their tables into bench/results/all.md.
#   bash bench/run.sh            (each script's own settings: RUNS, SIZES, ... pass through)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
failed=()
for script in bench/*.sh; do
  name=$(basename "$script" .sh)
  [ "$name" = run ] && continue
  echo "== bench/$name.sh" >&2
  bash "$script" >/dev/null || failed+=("$name")
done
{
  echo "# Benchmarks"
  echo
  echo "Written by \`bash bench/run.sh\` ($(date -u '+%Y-%m-%d %H:%M UTC')); one section per bench/*.sh."
  for script in bench/*.sh; do
    name=$(basename "$script" .sh)
    [ "$name" = run ] && continue
    echo
    if [ -f "bench/results/$name.md" ] && [[ ! " ${failed[*]} " =~ " $name " ]]; then
      sed 's/^# /## /' "bench/results/$name.md"
    else
      echo "## $name"
      echo
      echo "bench/$name.sh failed; no table."
    fi
  done
} >bench/results/all.md
cat bench/results/all.md
[ ${#failed[@]} -eq 0 ] || { echo "bench/run.sh: failed: ${failed[*]}" >&2; exit 1; }
