#!/usr/bin/env bash
# Installs what luamigrate needs to build and test, from Debian's packages. Idempotent:
# does nothing when everything is already installed.
set -euo pipefail

packages=(build-essential cmake pkg-config liblua5.4-dev lua5.4 libpq-dev libssl-dev lua-filesystem
  lua-filesystem-dev lua-busted lua-check postgresql postgresql-client luarocks
  lua-cjson                                                     # json values of op.get_bind():query()
  libpg-query-dev                                               # PostgreSQL's parser: splitting, lint
  pgbouncer python3-alembic python3-psycopg2 bsdutils           # these four: tests only
  python3-sqlalchemy-utils python3-oslo.db python3-flask-sqlalchemy  # convert_spec, python_spec: libraries migrations import
  groff-base man-db zsh debootstrap                             # packaging tests: man page, completions, the .deb
  valgrind clang clang-tidy libclang-rt-14-dev)                 # memcheck, fuzz and lint_c tiers
# (bsdutils: script(1), which output_spec and docs_spec use for a terminal; Debian installs it anyway)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
