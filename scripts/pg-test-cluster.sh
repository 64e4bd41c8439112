#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the tests, listening only on
# 127.0.0.1 and a Unix socket in a temporary directory, and prints the
# environment the tests read. Usage:
#
#   eval "$(scripts/pg-test-cluster.sh start)"   # sets LOGPROC_TEST_POSTGRES_DSN, PGTEST_DIR
#   scripts/pg-test-cluster.sh stop "$PGTEST_DIR"
#
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

case "${1:-}" in
start)
  bin=$(find_bin) || { echo "pg-test-cluster: initdb/pg_ctl not found; install PostgreSQL" >&2; exit 1; }
  dir=$(mktemp -d /tmp/logproc-pg.XXXXXX)
  chmod 755 "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  port=${PGTEST_PORT:-55432}
  as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" start >&2 \
    || { cat "$dir/server.log" >&2; exit 1; }
  as_owner "$bin/psql" -h "$dir" -p "$port" -U postgres -d postgres -qc "CREATE DATABASE logproc_test" >&2
  echo "export PGTEST_DIR='$dir' PGTEST_BIN='$bin'"
  echo "export LOGPROC_TEST_POSTGRES_DSN='postgres://postgres@127.0.0.1:$port/logproc_test?sslmode=disable'"
  ;;
stop)
  dir=${2:?usage: $0 stop DIR}
  bin=$(find_bin)
  as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
  rm -rf "$dir"
  ;;
*)
  echo "usage: $0 start | stop DIR" >&2
  exit 2
  ;;
esac
