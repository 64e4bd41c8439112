#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the tests, listening only on
# 127.0.0.1 (on the first free port from $PGTEST_PORT, default 55432) and a
# Unix socket in a temporary directory, and prints the environment the tests
# read. Usage:
#
#   env=$(scripts/pg-test-cluster.sh start) && eval "$env"   # sets LOGPROC_TEST_POSTGRES_DSN, PGTEST_DIR
#   scripts/pg-test-cluster.sh stop "$PGTEST_DIR"
#   scripts/pg-test-cluster.sh crash "$PGTEST_DIR"     # pg_ctl stop -m immediate: a crash
#   scripts/pg-test-cluster.sh restart "$PGTEST_DIR"   # start it again as it was
#
# On any failure it prints the reason, removes what it made, and exits 1.
# PostgreSQL refuses to run as root; as root the cluster runs as the
# `postgres` system user (created by the Debian package).
set -euo pipefail

find_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin /usr/local/pgsql/bin /opt/homebrew/bin /usr/local/bin /usr/bin; do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  command -v initdb >/dev/null 2>&1 && dirname "$(command -v initdb)" && return 0
  return 1
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
  else
    "$@"
  fi
}

# port_busy reports whether something accepts connections on 127.0.0.1:$1.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

fail() { echo "pg-test-cluster: $*" >&2; exit 1; }

case "${1:-}" in
start)
  bin=$(find_bin) || fail "initdb/pg_ctl not found; install the PostgreSQL server (apt-get install postgresql)"
  port=${PGTEST_PORT:-55432}
  case $port in ''|*[!0-9]*) fail "PGTEST_PORT=$port is not a port number" ;; esac
  last=$((port + 100))
  while port_busy "$port"; do
    port=$((port + 1))
    [ "$port" -le "$last" ] || fail "no free port in ${PGTEST_PORT:-55432}-$last"
  done
  dir=$(mktemp -d /tmp/logproc-pg.XXXXXX)
  started=
  cleanup() {
    if [ -n "$started" ]; then as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true; fi
    rm -rf "$dir"
  }
  trap 'cleanup' ERR
  chmod 755 "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
  as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; cleanup; fail "initdb failed (above)"; }
  started=1
  # A port nobody listens on may still be bound (a client's ephemeral
  # port, say): when the server cannot bind it, the next one is tried.
  while :; do
    echo "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" >"$dir/options"
    rm -f "$dir/server.log"
    if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$(cat "$dir/options")" start >&2; then
      break
    fi
    if grep -q "could not bind\|could not create any TCP/IP sockets" "$dir/server.log" && [ "$port" -lt "$last" ]; then
      port=$((port + 1))
      while port_busy "$port" && [ "$port" -lt "$last" ]; do port=$((port + 1)); done
      continue
    fi
    cat "$dir/server.log" >&2; cleanup; fail "the server did not start on port $port (log above)"
  done
  as_owner "$bin/psql" -h "$dir" -p "$port" -U postgres -d postgres -qc "CREATE DATABASE logproc_test" >&2 \
    || { cleanup; fail "could not create the test database"; }
  trap - ERR
  echo "export PGTEST_DIR='$dir' PGTEST_BIN='$bin'"
  echo "export LOGPROC_TEST_POSTGRES_DSN='postgres://postgres@127.0.0.1:$port/logproc_test?sslmode=disable'"
  ;;
stop)
  dir=${2:?usage: $0 stop DIR}
  [ -d "$dir" ] || exit 0
  bin=$(find_bin) || fail "initdb/pg_ctl not found"
  as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
  rm -rf "$dir"
  ;;
crash)
  dir=${2:?usage: $0 crash DIR}
  bin=$(find_bin) || fail "initdb/pg_ctl not found"
  as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >&2
  ;;
restart)
  dir=${2:?usage: $0 restart DIR}
  bin=$(find_bin) || fail "initdb/pg_ctl not found"
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$(cat "$dir/options")" start >&2
  ;;
*)
  echo "usage: $0 start | stop DIR | crash DIR | restart DIR" >&2
  exit 2
  ;;
esac
