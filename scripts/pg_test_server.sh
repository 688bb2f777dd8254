#!/usr/bin/env bash
# Starts (or stops) a throw-away PostgreSQL for the server's tests: a fresh cluster in a temporary
# folder owned by an unprivileged user, password authentication, listening on 127.0.0.1 only.
#
#   eval "$(scripts/pg_test_server.sh start [PORT])"   # exports PETREL_TEST_PG_URL, PETREL_TEST_PG_DIR
#   scripts/pg_test_server.sh restart "$PETREL_TEST_PG_DIR"   # fast shutdown and start (outage tests)
#   scripts/pg_test_server.sh stop "$PETREL_TEST_PG_DIR"
#
# Needs Debian's `postgresql` package (initdb and pg_ctl under /usr/lib/postgresql/<v>/bin). Run as
# root it runs the cluster as the `postgres` user (created by the package); otherwise as the caller.
set -euo pipefail
cmd=${1:-}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bin" ]; then echo "pg_test_server: no PostgreSQL found (apt-get install postgresql)" >&2; exit 1; fi
as_user() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$cmd" in
start)
  port=${2:-54329}
  # The next free port from the one asked for (another cluster may hold it).
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
  dir=$(mktemp -d /tmp/petrel-pg.XXXXXX)
  chmod 755 "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  pw=petrel-test-$RANDOM$RANDOM
  as_user bash -c "printf '%s\n' '$pw' > '$dir/pw' && chmod 600 '$dir/pw'"
  as_user "$bin/initdb" -D "$dir/data" -U petrel --auth=scram-sha-256 --pwfile="$dir/pw" \
    -E UTF8 --no-sync >"$dir/initdb.log" 2>&1
  as_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
    start >/dev/null
  echo "export PETREL_TEST_PG_DIR='$dir'"
  echo "export PETREL_TEST_PG_URL='postgres://petrel:$pw@127.0.0.1:$port/postgres'"
  ;;
restart)
  dir=${2:?usage: pg_test_server.sh restart DIR}
  as_user "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 30 restart >/dev/null
  ;;
stop)
  dir=${2:?usage: pg_test_server.sh stop DIR}
  as_user "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  ;;
*)
  echo "usage: pg_test_server.sh start [PORT] | restart DIR | stop DIR" >&2
  exit 2
  ;;
esac
