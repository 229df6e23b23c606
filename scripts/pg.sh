#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the demo and the tests.
#   scripts/pg.sh start DIR   initdb into DIR/data, listen on a Unix socket in DIR (and on
#                             127.0.0.1 at a free port), print eval-able exports
#   scripts/pg.sh stop DIR    stop it and remove DIR
# As root the server runs as the postgres user (it refuses to run as root).
set -euo pipefail
# Run under the sanitizer suites, callers may carry LD_PRELOAD=libasan; PostgreSQL's
# programs deadlock at exit with it, and they never need it.
unset LD_PRELOAD

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bin/initdb" ] || { echo "pg.sh: PostgreSQL server binaries not found (install postgresql)" >&2; exit 1; }

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Prints a port nobody listens on; the first attempt scans from the bottom of the range, later
# ones (after losing a race for it) from a random point.
free_port() {
  local port start=54320
  [ "${1:-1}" -gt 1 ] && start=$((54320 + RANDOM % 600))
  for port in $(seq "$start" 54999); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && [ ! -e "/tmp/.s.PGSQL.$port" ]; then
      echo "$port"
      return
    fi
  done
  echo "pg.sh: no free port" >&2
  exit 1
}

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: pg.sh start|stop DIR" >&2; exit 2; }

case "$cmd" in
  start)
    mkdir -p "$dir"
    chmod 755 "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 \
      --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    # Several clusters may start at once (the test lanes, fleet specs): a port found free can
    # be taken before this server binds it, so a failed bind is retried on another port.
    started=
    for attempt in 1 2 3 4 5; do
      port=$(free_port "$attempt")
      if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
          -o "-k $dir -p $port -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100" \
          start >/dev/null; then
        started=1
        break
      fi
      grep -q "could not \(bind\|create listen socket\)" "$dir/log" 2>/dev/null || break
    done
    [ -n "$started" ] || { cat "$dir/log" >&2; exit 1; }
    echo "export PGHOST=$dir PGPORT=$port PGUSER=postgres PGDATABASE=postgres LUAMIGRATE_TEST_PGHOST=$dir"
    ;;
  stop)
    if [ -d "$dir/data" ]; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *)
    echo "usage: pg.sh start|stop DIR" >&2
    exit 2
    ;;
esac
