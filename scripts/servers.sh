#!/usr/bin/env bash
# Starts throwaway database servers on loopback for the test suite and the
# benchmarks. Source it, call servers_start, and trap servers_stop.
# Exports CONFLICTKIT_PG_URL and CONFLICTKIT_MYSQL_URL.

_ck_run_dir=""
_ck_pg_bin=""
_ck_mysql_pid=""

_ck_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

_ck_as() { # run a command as a system user (we are root on CI)
  local user=$1; shift
  if [ "$(id -u)" = 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi
}

_ck_wait_for() { # wait_for SECONDS CMD... : poll until CMD succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then return 1; fi
    sleep 0.2
  done
}

_ck_apt_updated=""
_ck_apt_install() {
  if [ -z "$_ck_apt_updated" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    _ck_apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

_ck_start_postgres() {
  _ck_pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  if [ -z "$_ck_pg_bin" ]; then
    echo "installing postgresql"; _ck_apt_install postgresql
    _ck_pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
  fi
  local dir="$_ck_run_dir/pg" port
  port=$(_ck_free_port)
  mkdir -p "$dir/data" "$dir/sock"
  if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$dir"; fi
  _ck_as postgres "$_ck_pg_bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log"; return 1; }
  _ck_as postgres "$_ck_pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/sock -c max_connections=300 -c shared_buffers=128MB -c max_pred_locks_per_transaction=256" \
    start >/dev/null || { cat "$dir/server.log"; return 1; }
  export CONFLICTKIT_PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "PostgreSQL $("$_ck_pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
}

# _ck_mariadb_launch DIR PORT [MARIADBD OPTION...]: a fresh MariaDB server,
# its data under DIR, on 127.0.0.1:PORT (root over DIR/mysqld.sock), with
# the options given; returns once it answers, with the pid to stop it by
# (see _ck_mariadb_stop) in _ck_mariadb_launched.
_ck_mariadb_launched=""
_ck_mariadb_launch() {
  local dir=$1 port=$2; shift 2
  if ! command -v mariadbd >/dev/null 2>&1; then
    echo "installing mariadb-server (Debian package)"
    _ck_apt_install mariadb-server
    # the package starts a system instance on install where it can; we use our own
    (service mariadb stop || true) >/dev/null 2>&1
  fi
  mkdir -p "$dir/data"
  if [ "$(id -u)" = 0 ]; then chown -R mysql:mysql "$dir"; fi
  _ck_as mysql mariadb-install-db --no-defaults --datadir="$dir/data" --auth-root-authentication-method=normal \
    --skip-test-db >"$dir/install.log" 2>&1 || { cat "$dir/install.log"; return 1; }
  _ck_as mysql mariadbd --no-defaults --datadir="$dir/data" --socket="$dir/mysqld.sock" \
    --pid-file="$dir/mysqld.pid" --bind-address=127.0.0.1 --port="$port" --skip-name-resolve \
    --log-error="$dir/error.log" "$@" &
  _ck_mariadb_launched=$!
  if ! _ck_wait_for 60 _ck_mariadb_sql "$dir" 'select 1'; then
    cat "$dir/error.log"; return 1
  fi
}

# _ck_mariadb_sql DIR SQL: runs SQL as root on the server of DIR (tab-separated, no headers)
_ck_mariadb_sql() {
  mariadb --no-defaults -uroot --socket="$1/mysqld.sock" -N -B -e "$2"
}

# _ck_mariadb_user DIR: the tests' user, conflictkit/conflictkit from
# 127.0.0.1, on the server of DIR only (never written to its binary log)
_ck_mariadb_user() {
  _ck_mariadb_sql "$1" "SET SESSION sql_log_bin = 0; CREATE USER 'conflictkit'@'127.0.0.1' IDENTIFIED BY 'conflictkit'; GRANT ALL ON *.* TO 'conflictkit'@'127.0.0.1' WITH GRANT OPTION; FLUSH PRIVILEGES;"
}

# _ck_mariadb_stop DIR PID: stops the server of DIR that _ck_mariadb_launch
# started as PID, for real (SIGKILL after 30 s)
_ck_mariadb_stop() {
  local dir=$1 launched=$2 server_pid=""
  # $launched is runuser's; it does not pass signals on, so ask the
  # server itself to stop, then make sure its own pid is gone.
  [ -f "$dir/mysqld.pid" ] && server_pid=$(cat "$dir/mysqld.pid")
  mariadb-admin --no-defaults -uroot --socket="$dir/mysqld.sock" shutdown >/dev/null 2>&1 \
    || { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; } || true
  if [ -n "$server_pid" ]; then
    local deadline=$((SECONDS + 30))
    while kill -0 "$server_pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    kill -9 "$server_pid" 2>/dev/null || true
  fi
  wait "$launched" 2>/dev/null || true
}

_ck_start_mariadb() {
  local dir="$_ck_run_dir/mysql" port
  port=$(_ck_free_port)
  _ck_mariadb_launch "$dir" "$port" --max-connections=400 --innodb-buffer-pool-size=128M || return 1
  _ck_mysql_pid=$_ck_mariadb_launched
  _ck_mariadb_user "$dir"
  export CONFLICTKIT_MYSQL_URL="mysql://conflictkit:conflictkit@127.0.0.1:$port/mysql"
  echo "MariaDB $(mariadbd --version | awk '{print $3}') on 127.0.0.1:$port"
}

servers_start() {
  _ck_run_dir=$(mktemp -d /tmp/conflictkit-servers.XXXXXX)
  chmod 755 "$_ck_run_dir"
  _ck_start_postgres
  _ck_start_mariadb
}

servers_stop() {
  local status=$?
  if [ -n "$_ck_pg_bin" ] && [ -d "$_ck_run_dir/pg/data" ]; then
    _ck_as postgres "$_ck_pg_bin/pg_ctl" -D "$_ck_run_dir/pg/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  if [ -n "$_ck_mysql_pid" ]; then
    _ck_mariadb_stop "$_ck_run_dir/mysql" "$_ck_mysql_pid"
  fi
  if [ -n "$_ck_run_dir" ]; then rm -rf "$_ck_run_dir"; fi
  _ck_pg_bin=""; _ck_mysql_pid=""; _ck_run_dir=""
  return $status
}
