#!/usr/bin/env bash
# A PostgreSQL primary and its streaming replica, and a MariaDB primary and
# its replica, reserved for the replica tests (tests/resolver/replicas/),
# which pause the replicas' replay, and stop and start the PostgreSQL one:
# the servers of scripts/servers.sh are shared by every other test, which
# must not see those. The PostgreSQL replica is a `pg_basebackup -R` copy of
# the primary (hot standby, streaming from it over loopback), so its system
# identifier is the primary's. The MariaDB replica (server_id 2, read_only)
# replicates the primary (server_id 1) by GTID (MASTER_USE_GTID=slave_pos),
# both with a binary log and gtid_strict_mode. Source it, call
# replicas_start, and trap replicas_stop (like servers.sh, whose helpers it
# uses, sourcing that file when they are missing).
#
# replicas_start exports
#   CONFLICTKIT_PG_PRIMARY_URL       postgres:// URL of the primary
#   CONFLICTKIT_PG_REPLICA_URL       postgres:// URL of its streaming replica
#   CONFLICTKIT_MARIADB_PRIMARY_URL  mysql:// URL of the MariaDB primary
#                                    (database `conflictkit`)
#   CONFLICTKIT_MARIADB_REPLICA_URL  mysql:// URL of its replica (the same
#                                    database, replicated)
#   CONFLICTKIT_REPLICA_DIR          their temp dir
#   CONFLICTKIT_REPLICA_SERVER       the path of scripts/replica-server.sh,
#                                    which stops / starts the PostgreSQL
#                                    replica (see there)

_ck_replica_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if ! declare -F _ck_free_port >/dev/null; then
  # shellcheck source=scripts/servers.sh
  source "$_ck_replica_here/servers.sh"
fi

_ck_replica_dir=""
_ck_replica_mariadb_pids=()

# _ck_replica_mariadb_has_db DIR: whether the server of DIR has the database `conflictkit`
_ck_replica_mariadb_has_db() {
  [ "$(_ck_mariadb_sql "$1" "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'conflictkit'")" = 1 ]
}

# _ck_replica_mariadb_start DIR: the MariaDB pair, under DIR/primary and
# DIR/replica; returns once the replica has replayed the primary's
# CREATE DATABASE (so replication runs end to end)
_ck_replica_mariadb_start() {
  local dir=$1 primary_port replica_port pos
  primary_port=$(_ck_free_port)
  replica_port=$(_ck_free_port)
  local both=(--max-connections=200 --innodb-buffer-pool-size=64M --log-bin=mariadb-bin
    --binlog-format=ROW --gtid-strict-mode=1 --sync-binlog=0 --innodb-flush-log-at-trx-commit=2)
  _ck_mariadb_launch "$dir/primary" "$primary_port" "${both[@]}" --server-id=1 || return 1
  _ck_replica_mariadb_pids+=("$dir/primary" "$_ck_mariadb_launched")
  _ck_mariadb_launch "$dir/replica" "$replica_port" "${both[@]}" --server-id=2 --read-only=1 || return 1
  _ck_replica_mariadb_pids+=("$dir/replica" "$_ck_mariadb_launched")
  _ck_mariadb_user "$dir/primary" && _ck_mariadb_user "$dir/replica" || return 1
  # the replica starts where the primary's binary log is now (its own
  # system tables were made by its own install)
  pos=$(_ck_mariadb_sql "$dir/primary" "SELECT @@gtid_binlog_pos") || return 1
  _ck_mariadb_sql "$dir/replica" "SET GLOBAL gtid_slave_pos = '$pos';
    CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = $primary_port,
      MASTER_USER = 'conflictkit', MASTER_PASSWORD = 'conflictkit',
      MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1;
    START SLAVE" || return 1
  _ck_mariadb_sql "$dir/primary" "CREATE DATABASE conflictkit" || return 1
  if ! _ck_wait_for 60 _ck_replica_mariadb_has_db "$dir/replica"; then
    echo "the MariaDB replica does not replicate its primary:" >&2
    _ck_mariadb_sql "$dir/replica" "SHOW SLAVE STATUS\G" >&2 || true
    tail -n 20 "$dir/replica/error.log" >&2
    return 1
  fi
  export CONFLICTKIT_MARIADB_PRIMARY_URL="mysql://conflictkit:conflictkit@127.0.0.1:$primary_port/conflictkit"
  export CONFLICTKIT_MARIADB_REPLICA_URL="mysql://conflictkit:conflictkit@127.0.0.1:$replica_port/conflictkit"
  echo "replicas: MariaDB primary on 127.0.0.1:$primary_port, replica on 127.0.0.1:$replica_port"
}

replicas_start() {
  local started=$SECONDS pg_bin primary_port replica_port dir
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  if [ -z "$pg_bin" ]; then
    echo "installing postgresql"; _ck_apt_install postgresql
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
  fi
  _ck_replica_dir=$(mktemp -d /tmp/conflictkit-replicas.XXXXXX)
  dir=$_ck_replica_dir
  chmod 755 "$dir"
  export CONFLICTKIT_REPLICA_DIR="$dir"
  export CONFLICTKIT_REPLICA_SERVER="$_ck_replica_here/replica-server.sh"
  primary_port=$(_ck_free_port)
  replica_port=$(_ck_free_port)
  mkdir -p "$dir/primary/sock" "$dir/replica/sock"
  echo "$pg_bin" >"$dir/bin"
  if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$dir/primary" "$dir/replica"; fi
  _ck_as postgres "$pg_bin/initdb" -D "$dir/primary/data" -U postgres --auth=trust -E UTF8 \
    >"$dir/primary/initdb.log" 2>&1 || { cat "$dir/primary/initdb.log"; return 1; }
  # replication connections from loopback are trusted like the others
  # (initdb --auth=trust writes `host replication all 127.0.0.1/32 trust`)
  cat >>"$dir/primary/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $primary_port
unix_socket_directories = '$dir/primary/sock'
max_connections = 200
shared_buffers = 64MB
max_pred_locks_per_transaction = 256
wal_level = replica
max_wal_senders = 4
wal_keep_size = 256MB
fsync = off
CONF
  _ck_as postgres "$pg_bin/pg_ctl" -D "$dir/primary/data" -l "$dir/primary/server.log" -w -t 60 start >/dev/null \
    || { tail -n 20 "$dir/primary/server.log"; return 1; }
  # -R writes standby.signal and primary_conninfo: the copy starts as a
  # hot standby streaming from the primary
  _ck_as postgres "$pg_bin/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres \
    -D "$dir/replica/data" -R -X stream -c fast >"$dir/replica/basebackup.log" 2>&1 \
    || { cat "$dir/replica/basebackup.log"; return 1; }
  # the settings live in the data dir, so a restart keeps them (they follow
  # the primary's lines copied by pg_basebackup, and the last one wins)
  cat >>"$dir/replica/data/postgresql.conf" <<CONF
port = $replica_port
unix_socket_directories = '$dir/replica/sock'
hot_standby = on
hot_standby_feedback = on
max_standby_streaming_delay = -1
wal_receiver_status_interval = 1s
CONF
  echo "$replica_port" >"$dir/replica/port"
  "$CONFLICTKIT_REPLICA_SERVER" start || return 1
  export CONFLICTKIT_PG_PRIMARY_URL="postgres://postgres@127.0.0.1:$primary_port/postgres"
  export CONFLICTKIT_PG_REPLICA_URL="postgres://postgres@127.0.0.1:$replica_port/postgres"
  echo "replicas: PostgreSQL primary on 127.0.0.1:$primary_port, streaming replica on 127.0.0.1:$replica_port"
  _ck_replica_mariadb_start "$dir/mariadb" || return 1
  echo "replicas: up in $((SECONDS - started)) s"
}

replicas_stop() {
  local status=$? bin
  if [ -n "$_ck_replica_dir" ] && [ -d "$_ck_replica_dir" ]; then
    bin=$(cat "$_ck_replica_dir/bin" 2>/dev/null || true)
    CONFLICTKIT_REPLICA_DIR="$_ck_replica_dir" "$_ck_replica_here/replica-server.sh" stop || true
    if [ -n "$bin" ] && [ -d "$_ck_replica_dir/primary/data" ]; then
      _ck_as postgres "$bin/pg_ctl" -D "$_ck_replica_dir/primary/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
    fi
    # the replica first: it stops replicating before its primary goes
    local i
    for ((i = ${#_ck_replica_mariadb_pids[@]} - 2; i >= 0; i -= 2)); do
      _ck_mariadb_stop "${_ck_replica_mariadb_pids[i]}" "${_ck_replica_mariadb_pids[i + 1]}"
    done
    rm -rf "$_ck_replica_dir"
  fi
  _ck_replica_dir=""
  _ck_replica_mariadb_pids=()
  unset CONFLICTKIT_PG_PRIMARY_URL CONFLICTKIT_PG_REPLICA_URL CONFLICTKIT_REPLICA_DIR CONFLICTKIT_REPLICA_SERVER \
    CONFLICTKIT_MARIADB_PRIMARY_URL CONFLICTKIT_MARIADB_REPLICA_URL
  return $status
}
