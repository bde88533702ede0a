#!/usr/bin/env bash
# A PostgreSQL and a MariaDB reserved for the fault tests (tests/resolver/db_faults.rs),
# which kill sessions and restart the servers: the servers of scripts/servers.sh
# are shared by every other test, which must not see those faults. Source it,
# call fault_servers_start, and trap fault_servers_stop (like servers.sh, whose
# helpers it uses, sourcing that file when they are missing).
#
# fault_servers_start exports
#   CONFLICTKIT_FAULT_PG_URL     postgres:// URL of the fault PostgreSQL
#   CONFLICTKIT_FAULT_MYSQL_URL  mysql:// URL of the fault MariaDB
#   CONFLICTKIT_FAULT_DIR        their temp dir
#   CONFLICTKIT_FAULT_SERVER     the path of scripts/fault-server.sh, which
#                                restarts / stops / starts them (see there)

_ck_fault_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if ! declare -F _ck_free_port >/dev/null; then
  # shellcheck source=scripts/servers.sh
  source "$_ck_fault_here/servers.sh"
fi

_ck_fault_dir=""

fault_servers_start() {
  local started=$SECONDS pg_bin pg_port my_port
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  if [ -z "$pg_bin" ]; then
    echo "installing postgresql"; _ck_apt_install postgresql
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
  fi
  if ! command -v mariadbd >/dev/null 2>&1; then
    echo "installing mariadb-server (Debian package)"
    _ck_apt_install mariadb-server
    (service mariadb stop || true) >/dev/null 2>&1
  fi
  _ck_fault_dir=$(mktemp -d /tmp/conflictkit-faults.XXXXXX)
  chmod 755 "$_ck_fault_dir"
  export CONFLICTKIT_FAULT_DIR="$_ck_fault_dir"
  export CONFLICTKIT_FAULT_SERVER="$_ck_fault_here/fault-server.sh"
  pg_port=$(_ck_free_port)
  my_port=$(_ck_free_port)
  mkdir -p "$_ck_fault_dir/pg/sock" "$_ck_fault_dir/mysql/data"
  echo "$pg_bin" >"$_ck_fault_dir/pg/bin"
  if [ "$(id -u)" = 0 ]; then
    chown -R postgres:postgres "$_ck_fault_dir/pg"
    chown -R mysql:mysql "$_ck_fault_dir/mysql"
  fi
  _ck_as postgres "$pg_bin/initdb" -D "$_ck_fault_dir/pg/data" -U postgres --auth=trust -E UTF8 \
    >"$_ck_fault_dir/pg/initdb.log" 2>&1 || { cat "$_ck_fault_dir/pg/initdb.log"; return 1; }
  # the settings live in the data dir, so a restart keeps them
  cat >>"$_ck_fault_dir/pg/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$_ck_fault_dir/pg/sock'
max_connections = 100
shared_buffers = 32MB
fsync = off
CONF
  cat >"$_ck_fault_dir/mysql/my.cnf" <<CONF
[mysqld]
datadir=$_ck_fault_dir/mysql/data
socket=$_ck_fault_dir/mysql/mysqld.sock
pid-file=$_ck_fault_dir/mysql/mysqld.pid
log-error=$_ck_fault_dir/mysql/error.log
bind-address=127.0.0.1
port=$my_port
skip-name-resolve
max-connections=100
innodb-buffer-pool-size=32M
innodb-log-file-size=16M
innodb-flush-log-at-trx-commit=2
CONF
  _ck_as mysql mariadb-install-db --defaults-file="$_ck_fault_dir/mysql/my.cnf" \
    --auth-root-authentication-method=normal --skip-test-db \
    >"$_ck_fault_dir/mysql/install.log" 2>&1 || { cat "$_ck_fault_dir/mysql/install.log"; return 1; }
  "$CONFLICTKIT_FAULT_SERVER" start pg || return 1
  "$CONFLICTKIT_FAULT_SERVER" start mysql || return 1
  mariadb --no-defaults -uroot --socket="$_ck_fault_dir/mysql/mysqld.sock" -e \
    "CREATE USER 'conflictkit'@'127.0.0.1' IDENTIFIED BY 'conflictkit'; GRANT ALL ON *.* TO 'conflictkit'@'127.0.0.1' WITH GRANT OPTION;" \
    || return 1
  export CONFLICTKIT_FAULT_PG_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"
  export CONFLICTKIT_FAULT_MYSQL_URL="mysql://conflictkit:conflictkit@127.0.0.1:$my_port/mysql"
  echo "fault servers: PostgreSQL on 127.0.0.1:$pg_port, MariaDB on 127.0.0.1:$my_port (up in $((SECONDS - started)) s)"
}

fault_servers_stop() {
  local status=$?
  if [ -n "$_ck_fault_dir" ] && [ -d "$_ck_fault_dir" ]; then
    CONFLICTKIT_FAULT_DIR="$_ck_fault_dir" "$_ck_fault_here/fault-server.sh" stop pg || true
    CONFLICTKIT_FAULT_DIR="$_ck_fault_dir" "$_ck_fault_here/fault-server.sh" stop mysql || true
    rm -rf "$_ck_fault_dir"
  fi
  _ck_fault_dir=""
  unset CONFLICTKIT_FAULT_PG_URL CONFLICTKIT_FAULT_MYSQL_URL CONFLICTKIT_FAULT_DIR
  return $status
}
