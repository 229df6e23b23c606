#!/usr/bin/env bash
# The measure of `inspect` on a database someone else designed: in a fresh project
# (`luamigrate init`), inspect database A into schema.lua, `check` A against it (must print
# nothing to do and exit 0), then on an empty database B `revision --autogenerate` from that
# schema.lua and `upgrade head`, and compare `pg_dump -s --no-owner` of A and B without the
# engines' own tables (luamigrate_version*, alembic_version).
#   scripts/inspect_roundtrip.sh URL_A [WORKDIR]
# URL_A: the database to inspect (a URL or conninfo; libpq's PG* variables fill the rest).
# B is a database created beside A on the same server (its name: A's with _rt appended),
# dropped at the end.
# WORKDIR keeps the project, schema.lua and both dumps (default: a temporary directory,
# removed at the end). A's database may be built from a real history first, e.g.
#   luamigrate convert alembic ~/src/ctfd/migrations -o /tmp/ctfd
#   (cd /tmp/ctfd && luamigrate --url dbname=ctfd upgrade 4e4d5a9ea000)
#   scripts/inspect_roundtrip.sh dbname=ctfd
# Prints one line per step; exits 0 when check is clean and the dumps are identical.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${LUAMIGRATE_BIN:-$root/build/luamigrate}
[ $# -ge 1 ] || { echo "usage: scripts/inspect_roundtrip.sh URL_A [WORKDIR]" >&2; exit 2; }
url_a=$1
keep=${2:-}
if [ -n "$keep" ]; then
  work=$keep
  mkdir -p "$work"
else
  work=$(mktemp -d /tmp/inspect-rt.XXXXXX)
fi
# URL_A with another database: a URL's path replaced, a conninfo's dbname appended (the
# last one counts)
on_db() {
  case $url_a in
  postgres://* | postgresql://*)
    local rest=${url_a#*://} query=
    [[ $rest == *\?* ]] && query="?${rest#*\?}"
    echo "${url_a%%://*}://${rest%%[/?]*}/$1$query"
    ;;
  *) echo "$url_a dbname=$1" ;;
  esac
}
db_a=$(psql -XqAt -d "$url_a" -c "SELECT current_database()") || exit 2
db_b=${db_a}_rt
url_b=$(on_db "$db_b")
url_postgres=$(on_db postgres)
cleanup() {
  psql -XqAt -d "$url_postgres" -c "DROP DATABASE IF EXISTS \"$db_b\"" >/dev/null 2>&1
  [ -n "$keep" ] || rm -rf "$work"
}
trap cleanup EXIT

dump() { # the schema without the engines' version tables
  pg_dump -s --no-owner -d "$1" -T 'luamigrate_version*' -T alembic_version |
    grep -v -E '^(--|SET |SELECT pg_catalog.set_config|\\restrict|\\unrestrict)' | sed '/^$/d'
}

rm -rf "$work/project"
mkdir -p "$work/project"
cd "$work/project" || exit 2
"$bin" init migrations >/dev/null || exit 2
"$bin" --url "$url_a" inspect -o migrations/schema.lua 2>"$work/inspect.err" ||
  { echo "inspect: failed"; cat "$work/inspect.err" >&2; exit 1; }
echo "inspect: $(grep -c 'sa.Table(' migrations/schema.lua) tables declared"
rc=0
"$bin" --url "$url_a" check >"$work/check.out" 2>&1
check_rc=$?
if [ $check_rc -eq 0 ]; then echo "check: clean"; else
  echo "check: exit $check_rc"; sed 's/^/  /' "$work/check.out"; rc=1
fi

psql -XqAt -d "$url_postgres" -c "SET client_min_messages = warning" \
  -c "DROP DATABASE IF EXISTS \"$db_b\"" -c "CREATE DATABASE \"$db_b\"" >/dev/null || exit 2
"$bin" --url "$url_b" -q revision --autogenerate -m rebuild >"$work/revision.out" 2>&1 ||
  { echo "revision --autogenerate: failed"; cat "$work/revision.out" >&2; exit 1; }
"$bin" --url "$url_b" -q upgrade head >"$work/upgrade.out" 2>&1 ||
  { echo "upgrade head: failed"; cat "$work/upgrade.out" >&2; exit 1; }
dump "$url_a" >"$work/a.sql"
dump "$url_b" >"$work/b.sql"
if diff -u "$work/a.sql" "$work/b.sql" >"$work/dump.diff"; then
  echo "pg_dump -s: identical ($(grep -c '^CREATE TABLE' "$work/a.sql") tables)"
else
  echo "pg_dump -s: differ"; cat "$work/dump.diff"; rc=1
fi
exit $rc
