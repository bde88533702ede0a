#!/usr/bin/env bash
# The streaming replica scripts/replicas.sh started (CONFLICTKIT_REPLICA_DIR).
#
#   replica-server.sh start   start the replica, return once it answers and
#                             streams from the primary again
#   replica-server.sh stop    stop it at once (pg_ctl -m immediate: what a
#                             crashed replica looks like to its clients)
set -euo pipefail

cmd=${1:?usage: replica-server.sh start|stop}
dir=${CONFLICTKIT_REPLICA_DIR:?CONFLICTKIT_REPLICA_DIR is not set: source scripts/replicas.sh and call replicas_start}

# shellcheck source=scripts/servers.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/servers.sh"   # _ck_as, _ck_wait_for

bin=$(cat "$dir/bin")
port=$(cat "$dir/replica/port")
streaming() {
  [ "$(_ck_as postgres "$bin/psql" -h "$dir/replica/sock" -p "$port" -U postgres -d postgres -XAtc \
    "SELECT status FROM pg_stat_wal_receiver" 2>/dev/null)" = streaming ]
}
case $cmd in
  start)
    # -w: pg_ctl returns once the standby accepts connections
    _ck_as postgres "$bin/pg_ctl" -D "$dir/replica/data" -l "$dir/replica/server.log" -w -t 60 start >/dev/null \
      || { tail -n 20 "$dir/replica/server.log" >&2; exit 1; }
    _ck_wait_for 60 streaming || { echo "the replica does not stream from the primary" >&2; tail -n 20 "$dir/replica/server.log" >&2; exit 1; }
    ;;
  stop)
    if [ -f "$dir/replica/data/postmaster.pid" ]; then
      _ck_as postgres "$bin/pg_ctl" -D "$dir/replica/data" -m immediate -w -t 60 stop >/dev/null
    fi
    ;;
  *) echo "usage: replica-server.sh start|stop" >&2; exit 2 ;;
esac
