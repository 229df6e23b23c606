#!/usr/bin/env bash
# The measure of `convert alembic` on a real Alembic history (one not in this repository):
# converts it with no hand edits, runs `upgrade heads` with Alembic (Debian's python3-alembic,
# the project's own env.py replaced by a plain one, so the application need not be installed)
# on one fresh database and with the converted project on another, and compares their
# pg_dump -s without the version tables; then the same after `downgrade base`.
#   scripts/alembic_parity.sh PROJECT [TARGET]
# PROJECT: the history's alembic.ini, pyproject.toml or directory; TARGET: how far Alembic
# and luamigrate upgrade (default heads). The server is libpq's default (PG* variables), e.g.
# `eval "$(cat /tmp/lmpg-conv12/env)"` after scripts/spec.sh started one. What the revisions
# import of the application must be importable by Alembic's Python: set PYTHONPATH to the
# repository root (e.g. PYTHONPATH=~/src/ironic scripts/alembic_parity.sh ~/src/ironic/ironic/db/sqlalchemy).
# Prints one line per step and exits 0 when both steps give identical schemas.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${LUAMIGRATE_BIN:-$root/build/luamigrate}
[ $# -ge 1 ] || { echo "usage: scripts/alembic_parity.sh PROJECT [TARGET]" >&2; exit 2; }
project=$(realpath "$1")
target=${2:-heads}
work=$(mktemp -d /tmp/alembic-parity.XXXXXX)
a=parity_a_$$ b=parity_b_$$
cleanup() {
  psql -XqAt -d postgres -c "DROP DATABASE IF EXISTS $a" -c "DROP DATABASE IF EXISTS $b" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

"$bin" convert alembic "$project" -o "$work/lm" >"$work/convert.out" 2>"$work/convert.err"
convert_rc=$?
tail -n 1 "$work/convert.out"
[ $convert_rc -le 1 ] || { cat "$work/convert.err" >&2; exit 2; }
[ $convert_rc -eq 0 ] || echo "not converted: $(grep -c 'not converted:' "$work/convert.err") places"

# Alembic's side: a copy of the script location with a plain env.py on $PARITY_URL.
script=$(sed -n 's/^script_location = "\(.*\)"$/\1/p' "$work/lm/luamigrate.lua")
vt=$(sed -n 's/^version_table = "\(.*\)"$/\1/p' "$work/lm/luamigrate.lua")
src=$(dirname "$(find "$project" -maxdepth 3 -name env.py -path "*$script*" | head -n 1)")
[ -d "$src" ] || { echo "no env.py under $project" >&2; exit 2; }
mkdir -p "$work/al"
cp -r "$src" "$work/al/$script"
vschema=None
[[ "$vt" == *.* ]] && vschema="'${vt%%.*}'"
cat >"$work/al/$script/env.py" <<EOF
import os
from alembic import context
from sqlalchemy import create_engine

engine = create_engine(os.environ["PARITY_URL"])
with engine.connect() as connection:
    context.configure(connection=connection, version_table="${vt##*.}",
                      version_table_schema=$vschema)
    with context.begin_transaction():
        context.run_migrations()
EOF
# a version_locations list names the original directories: point them at the copy
printf '[alembic]\nscript_location = %%(here)s/%s\n' "$script" >"$work/al/alembic.ini"
if grep -q '^version_locations' "$project"/alembic.ini 2>/dev/null; then
  echo "note: version_locations ignored; revisions are read from $script/versions" >&2
fi

# A TARGET short of the heads: both copies keep only the revisions up to it, so that files
# further on (which may import the application) are not loaded.
if [ "$target" != heads ] && [ "$target" != head ]; then
  keep=$(cd "$work/lm" && "$bin" history -r "base:$target" | sed -n 's/^.*-> \([0-9a-zA-Z_]*\).*$/\1/p')
  [ -n "$keep" ] || { echo "no revisions up to $target" >&2; exit 2; }
  for f in "$work/al/$script"/versions/*.py "$work/lm/$script"/versions/*.lua; do
    id=$(sed -n "s/^revision[^=]*= *[\"']\([^\"']*\)[\"'].*/\1/p" "$f" | head -n 1)
    grep -qx "$id" <<<"$keep" || rm -f "$f"
  done
  echo "kept $(wc -l <<<"$keep") revisions up to $target"
fi

psql -XqAt -d postgres -c "CREATE DATABASE $a" -c "CREATE DATABASE $b" >/dev/null || exit 2
url_of() { echo "postgresql:///$1?host=${PGHOST:-/var/run/postgresql}&port=${PGPORT:-5432}&user=${PGUSER:-postgres}"; }
alembic() {
  (cd "$work/al" && PARITY_URL=$(url_of "$a") /usr/bin/python3 -m alembic "$@") >"$work/alembic.log" 2>&1
}
luamigrate() { (cd "$work/lm" && "$bin" --url "dbname=$b" -q "$@") >"$work/lm.log" 2>&1; }
dump() { pg_dump -s --no-owner --no-privileges -T "${vt}*" -d "$1" | grep -v '^\\\(un\)\?restrict'; }

status=0
step() {
  local name=$1
  shift
  alembic "$@"
  local arc=$?
  luamigrate "$@"
  local lrc=$?
  if [ $arc -ne 0 ]; then
    echo "$name: alembic failed ($(tail -n 1 "$work/alembic.log"))"
    status=1
  elif [ $lrc -ne 0 ]; then
    echo "$name: luamigrate failed ($(grep -m 1 'luamigrate:' "$work/lm.log"))"
    status=1
  elif diff <(dump "$a") <(dump "$b") >"$work/diff"; then
    echo "$name: identical schemas ($(dump "$a" | grep -c '^CREATE TABLE') tables)"
  else
    echo "$name: schemas differ:"
    head -n 40 "$work/diff"
    status=1
  fi
}
step "upgrade $target" upgrade "$target"
[ $status -eq 0 ] && step "downgrade base" downgrade base
exit $status
