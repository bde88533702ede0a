#!/usr/bin/env bash
# A PgBouncer in transaction pooling mode on loopback, in front of the test
# PostgreSQL (CONFLICTKIT_PG_URL), for the tests of the locks across
# processes behind a pooler (a transaction-mode pooler hands each
# transaction, or each statement outside one, to any server session).
# Source it after servers_start (or with CONFLICTKIT_PG_URL set), call
# pgbouncer_start, and trap pgbouncer_stop. Installs the Debian package
# pgbouncer when missing. Exports CONFLICTKIT_PGBOUNCER_URL: the same
# database and user as CONFLICTKIT_PG_URL, through the pooler (any database
# of that server is reachable by name, as on the server itself).
#
# Standalone: `bash scripts/pgbouncer.sh start` prints the export line and
# the pid; `bash scripts/pgbouncer.sh stop <dir>` stops the one in <dir>.

if ! declare -F _ck_apt_install >/dev/null 2>&1; then
  # shellcheck source=scripts/servers.sh
  source "$(dirname "${BASH_SOURCE[0]}")/servers.sh"
fi

_ck_pgb_dir=""
_ck_pgb_pid=""

pgbouncer_start() {
  if [ -z "${CONFLICTKIT_PG_URL:-}" ]; then
    echo "pgbouncer_start: CONFLICTKIT_PG_URL is not set (start the servers first)" >&2
    return 1
  fi
  local bin
  bin=$(command -v pgbouncer || ls /usr/sbin/pgbouncer 2>/dev/null || true)
  if [ -z "$bin" ]; then
    echo "installing pgbouncer (Debian package)"
    _ck_apt_install pgbouncer
    # the package may start a system instance where it can; we use our own
    (service pgbouncer stop || true) >/dev/null 2>&1
    bin=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
  fi
  local target host port user db
  # postgres://user[:password]@host:port/db[?query]
  target=$(python3 - "$CONFLICTKIT_PG_URL" <<'EOF'
import sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
print(u.hostname or "127.0.0.1", u.port or 5432, u.username or "postgres", u.path.lstrip("/") or "postgres")
EOF
  ) || return 1
  read -r host port user db <<<"$target"
  _ck_pgb_dir=$(mktemp -d /tmp/conflictkit-pgbouncer.XXXXXX)
  chmod 755 "$_ck_pgb_dir"
  local listen
  listen=$(_ck_free_port)
  # auth_type = any: no password asked, every client logs in to the server
  # as the user of the [databases] line (the test server trusts loopback).
  # extra_float_digits and options are startup parameters sqlx sends that
  # PgBouncer does not track. PgBouncer 1.18 (Debian 12) does not track
  # prepared statements either, and sqlx names its own per client connection:
  # DEALLOCATE ALL after every transaction makes each server session forget
  # them, so that the clients (with statement-cache-capacity=0, preparing
  # inside their transactions) never meet another client's statement. It
  # releases no advisory lock (DISCARD ALL would).
  cat >"$_ck_pgb_dir/pgbouncer.ini" <<EOF
[databases]
* = host=$host port=$port user=$user

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $listen
unix_socket_dir =
auth_type = any
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 40
max_db_connections = 80
server_reset_query = DEALLOCATE ALL
server_reset_query_always = 1
ignore_startup_parameters = extra_float_digits,options
logfile = $_ck_pgb_dir/pgbouncer.log
pidfile = $_ck_pgb_dir/pgbouncer.pid
EOF
  if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$_ck_pgb_dir"; fi
  # PgBouncer refuses to run as root: as the postgres system user then
  _ck_as postgres "$bin" -d "$_ck_pgb_dir/pgbouncer.ini" >"$_ck_pgb_dir/start.log" 2>&1 \
    || { cat "$_ck_pgb_dir/start.log" "$_ck_pgb_dir/pgbouncer.log" 2>/dev/null; return 1; }
  local url="postgres://$user@127.0.0.1:$listen/$db"
  if ! _ck_wait_for 30 psql "$url" -Atc 'select 1'; then
    cat "$_ck_pgb_dir/pgbouncer.log" 2>/dev/null; return 1
  fi
  _ck_pgb_pid=$(cat "$_ck_pgb_dir/pgbouncer.pid")
  export CONFLICTKIT_PGBOUNCER_URL="$url"
  echo "PgBouncer $("$bin" --version 2>/dev/null | head -n1 | awk '{print $2}') (transaction pooling) on 127.0.0.1:$listen in front of $host:$port"
}

pgbouncer_stop() {
  local status=$?
  _ck_pgbouncer_stop_dir "$_ck_pgb_dir"
  _ck_pgb_dir=""; _ck_pgb_pid=""
  return $status
}

_ck_pgbouncer_stop_dir() { # stop the PgBouncer whose files are in $1, remove them
  local dir=$1 pid=""
  [ -n "$dir" ] || return 0
  [ -f "$dir/pgbouncer.pid" ] && pid=$(cat "$dir/pgbouncer.pid")
  if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  case "$dir" in /tmp/conflictkit-pgbouncer.*) rm -rf "$dir" ;; esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    start)
      pgbouncer_start >&2
      echo "export CONFLICTKIT_PGBOUNCER_URL=$CONFLICTKIT_PGBOUNCER_URL"
      echo "# stop with: bash $0 stop $_ck_pgb_dir (pid $_ck_pgb_pid)"
      ;;
    stop) _ck_pgbouncer_stop_dir "${2:?the directory printed by start}" ;;
    *) echo "usage: $0 start | stop <dir>" >&2; exit 2 ;;
  esac
fi
