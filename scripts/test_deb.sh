#!/usr/bin/env bash
# Builds the .deb with CPack and proves it installs and runs on a fresh Debian 12:
# debootstraps a minimal bookworm into a temporary directory, installs the package there with
# `apt-get install ./luamigrate_*.deb` (so apt resolves its Depends for real), then runs the
# installed luamigrate inside that system on the example project (luamigrate.lua and
# migrations/) against the host's PostgreSQL over TCP 127.0.0.1: upgrade head, current,
# check, init. Needs root (or sudo), debootstrap and the apt mirror.
#   scripts/test_deb.sh [BUILD_DIR]     (default build/; uses $PGPORT of a running pg.sh
#                                        server, else starts its own)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
step() { echo "-- test_deb: $*"; }
fail() {
  echo "test_deb: FAILED: $*" >&2
  exit 1
}

# The mirror this machine's apt uses (deb822 or one-line sources), else Debian's.
mirror=$({ cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } |
  awk '/^URIs:/ && $2 !~ /security/ { print $2; exit } /^deb / && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }')
mirror=${mirror:-http://deb.debian.org/debian}

work=$(mktemp -d /tmp/luamigrate-deb.XXXXXX)
sys=$work/bookworm
pgdir=
cleanup() {
  # anything still mounted in the tree (our /proc, debootstrap's after a failure), deepest
  # first; then remove it without crossing into another file system
  local m
  for m in $(awk -v root="$sys/" 'index($2, root) == 1 { print $2 }' /proc/mounts | sort -r); do
    "${sudo[@]}" umount -l "$m" || true
  done
  "${sudo[@]}" rm -rf --one-file-system "$work"
  [ -z "$pgdir" ] || bash scripts/pg.sh stop "$pgdir"
}
trap cleanup EXIT

if [ -z "${PGPORT:-}" ] || ! pg_isready -q -h 127.0.0.1 -p "$PGPORT"; then
  pgdir=$work/pg
  eval "$(bash scripts/pg.sh start "$pgdir")"
fi

step "building the package (cpack in $build/)"
rm -f "$build"/luamigrate_*.deb
(cd "$build" && cpack -G DEB >/dev/null)
deb=$(ls "$build"/luamigrate_*.deb)
dpkg-deb -f "$deb" Package Version Depends

step "debootstrap --variant=minbase bookworm from $mirror"
start=$(date +%s)
"${sudo[@]}" debootstrap --variant=minbase bookworm "$sys" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -n 20 "$work/debootstrap.log" >&2; fail "debootstrap"; }
echo "   took $(($(date +%s) - start)) s"

in_sys() { "${sudo[@]}" chroot "$sys" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }

for p in libpq5 liblua5.4-0; do
  if in_sys dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    fail "$p is already in the fresh system, so the Depends would not be tested"
  fi
done

step "apt-get install ./$(basename "$deb") in the fresh system"
"${sudo[@]}" cp "$deb" "$sys/tmp/"
in_sys apt-get update -qq || fail "apt-get update in the fresh system"
in_sys env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  "/tmp/$(basename "$deb")" >"$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; fail "apt-get install"; }
for p in luamigrate libpq5 liblua5.4-0; do
  in_sys dpkg-query -W -f='${Status}' "$p" | grep -q "ok installed" || fail "$p not installed"
done
for f in /usr/bin/luamigrate /usr/share/man/man1/luamigrate.1.gz /usr/share/doc/luamigrate/copyright \
  /usr/share/lua/5.4/luamigrate/helpers/enum.lua /usr/share/luamigrate/luals/op.lua \
  /usr/share/bash-completion/completions/luamigrate /usr/share/zsh/vendor-completions/_luamigrate; do
  [ -f "$sys$f" ] || fail "$f missing after install"
done
core=$(find "$sys/usr/lib" -path '*/lua/5.4/luamigrate/core.so')
[ -n "$core" ] || fail "core.so missing after install"

step "running the installed luamigrate on the example project, database over TCP 127.0.0.1:$PGPORT"
db=luamigrate_deb_test
export PGOPTIONS="-c client_min_messages=warning"
psql -XAtq -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
  -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
url="host=127.0.0.1 port=$PGPORT user=postgres dbname=$db"
"${sudo[@]}" mkdir -p "$sys/proj"
"${sudo[@]}" cp -R luamigrate.lua migrations "$sys/proj/"
"${sudo[@]}" rm -f "$sys/proj/migrations/versions/.luamigrate_cache"
run() { in_sys sh -c 'cd /proj && exec "$@"' sh "$@"; }

in_sys luamigrate --version
run luamigrate --url "$url" upgrade head || fail "upgrade head"
out=$(run luamigrate --url "$url" current) || fail "current"
echo "$out"
[ "$out" = "3c52d30040ed (head)" ] || fail "current printed '$out', expected '3c52d30040ed (head)'"
run luamigrate --url "$url" check || fail "check"
got=$(psql -XAtq -h 127.0.0.1 -p "$PGPORT" -U postgres -d "$db" -c "SELECT version_num FROM luamigrate_version")
[ "$got" = 3c52d30040ed ] || fail "the version table holds '$got'"

# init points .luarc.json at the packaged annotations (it finds them from /proc/self/exe)
if "${sudo[@]}" mount -t proc proc "$sys/proc" 2>/dev/null; then
  in_sys sh -c 'mkdir /fresh && cd /fresh && luamigrate init migrations' || fail "init"
  grep -q '"workspace.library": \["/usr/share/luamigrate/luals"\]' "$sys/fresh/.luarc.json" ||
    fail ".luarc.json does not point at /usr/share/luamigrate/luals"
  "${sudo[@]}" umount "$sys/proc"
else
  echo "   (cannot mount /proc in the chroot here: init's .luarc.json not checked)"
fi
psql -XAtq -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -c "DROP DATABASE $db"
step "passed"
