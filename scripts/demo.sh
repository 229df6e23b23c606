#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs the example project in
# migrations/ (`upgrade head`, then `current` and `history`). Without DATABASE_URL it runs
# against a throwaway local PostgreSQL that is removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
bash scripts/build.sh

if [ -z "${DATABASE_URL:-}" ]; then
  pgdir=$(mktemp -d /tmp/luamigrate-demo.XXXXXX)
  trap 'bash scripts/pg.sh stop "$pgdir"' EXIT
  eval "$(bash scripts/pg.sh start "$pgdir")"
  psql -XAtq -v ON_ERROR_STOP=1 -c "CREATE DATABASE users_db" postgres
  export DATABASE_URL="host=$PGHOST port=$PGPORT user=postgres dbname=users_db"
  echo "Using a throwaway PostgreSQL at $PGHOST, database users_db"
fi

set -x
build/luamigrate upgrade head
build/luamigrate current
build/luamigrate history
build/luamigrate check
