#!/usr/bin/env bash
# One node of the cluster scripts/galera.sh started (CONFLICTKIT_GALERA_DIR).
#
#   galera-node.sh bootstrap N   start node N as a new cluster (galera_start, node 1)
#   galera-node.sh start N       start node N joining the others; after a
#                                crash it first recovers its position, so it
#                                rejoins by incremental state transfer
#   galera-node.sh kill N        SIGKILL node N's server, wait until it is gone
#   galera-node.sh stop N        clean shutdown (SIGKILL after 60 s)
#   galera-node.sh wait N [SIZE] wait (120 s at most) until node N is Synced,
#                                ready, in a primary cluster of SIZE (3) nodes
#   galera-node.sh pid N         the server's pid (empty when not running)
#
# start and bootstrap return once the server process runs; use wait for the
# node to be usable.
set -euo pipefail

cmd=${1:?usage: galera-node.sh bootstrap|start|kill|stop|wait|pid N}
n=${2:?node number 1..3}
dir=${CONFLICTKIT_GALERA_DIR:?CONFLICTKIT_GALERA_DIR is not set: source scripts/galera.sh and call galera_start}
d="$dir/node$n"
[ -f "$d/my.cnf" ] || { echo "galera-node.sh: no node $n in $dir" >&2; exit 1; }

user_args=()
if [ "$(id -u)" = 0 ]; then user_args=(--user=mysql); fi

server_pid() { # the pid launch recorded (the server writes its own pid file late, after SST)
  local pid
  [ -f "$d/server.pid" ] || return 0
  pid=$(cat "$d/server.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

sql() {
  mariadb --no-defaults -uroot --socket="$d/mysqld.sock" -N -B -e "$1" 2>/dev/null
}

status_var() {
  sql "SHOW GLOBAL STATUS LIKE '$1'" | awk '{print $2}'
}

wait_gone() { # wait_gone PID SECONDS
  local deadline=$((SECONDS + $2))
  while kill -0 "$1" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then return 1; fi
    sleep 0.1
  done
}

launch() {
  if [ -n "$(server_pid)" ]; then
    echo "galera-node.sh: node $n is already running" >&2
    exit 1
  fi
  rm -f "$d/mysqld.pid"
  # detached from the caller (its own session, no inherited pipes), so a
  # test that runs this script does not wait for the server; setsid execs
  # (a background job is no group leader), so $! is the server's pid
  setsid mariadbd --defaults-file="$d/my.cnf" "${user_args[@]}" "$@" \
    </dev/null >>"$d/stdout.log" 2>&1 &
  echo $! >"$d/server.pid"
}

# The position a crashed node committed up to, so that it asks for the
# missing write sets only (IST) instead of a full copy.
recovered_position() {
  [ -f "$d/data/grastate.dat" ] || return 0
  grep -q '^seqno: *-1' "$d/data/grastate.dat" || return 0
  rm -f "$d/recover.log"
  mariadbd --defaults-file="$d/my.cnf" "${user_args[@]}" --wsrep-recover \
    --log-error="$d/recover.log" >/dev/null 2>&1 || true
  sed -n 's/.*WSREP: Recovered position: *\([^ ]*\).*/\1/p' "$d/recover.log" 2>/dev/null | tail -n1
}

case "$cmd" in
  bootstrap)
    launch --wsrep-new-cluster
    ;;
  start)
    pos=$(recovered_position)
    if [ -n "$pos" ]; then launch --wsrep-start-position="$pos"; else launch; fi
    ;;
  kill)
    pid=$(server_pid)
    if [ -z "$pid" ]; then echo "galera-node.sh: node $n is not running" >&2; exit 1; fi
    kill -9 "$pid"
    wait_gone "$pid" 30
    ;;
  stop)
    pid=$(server_pid)
    [ -n "$pid" ] || exit 0
    mariadb-admin --no-defaults -uroot --socket="$d/mysqld.sock" shutdown >/dev/null 2>&1 \
      || kill "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" 60; then
      echo "galera-node.sh: node $n did not shut down in 60 s; SIGKILL" >&2
      kill -9 "$pid" 2>/dev/null || true
      wait_gone "$pid" 10
    fi
    ;;
  wait)
    size=${3:-3}
    deadline=$((SECONDS + 120))
    until [ "$(status_var wsrep_local_state_comment)" = Synced ] \
      && [ "$(status_var wsrep_ready)" = ON ] \
      && [ "$(status_var wsrep_cluster_status)" = Primary ] \
      && [ "$(status_var wsrep_cluster_size)" = "$size" ]; do
      if [ $SECONDS -ge $deadline ] || [ -z "$(server_pid)" ]; then
        echo "galera-node.sh: node $n is not synced in a cluster of $size" >&2
        tail -n 40 "$d/error.log" >&2 || true
        exit 1
      fi
      sleep 0.2
    done
    ;;
  pid)
    server_pid
    ;;
  *)
    echo "galera-node.sh: unknown command $cmd" >&2
    exit 2
    ;;
esac
