#!/usr/bin/env bash
# The fault servers scripts/fault-servers.sh started (CONFLICTKIT_FAULT_DIR).
#
#   fault-server.sh start pg|mysql     start the server, return once it answers
#   fault-server.sh stop pg|mysql      clean shutdown (SIGKILL after 60 s for MariaDB)
#   fault-server.sh restart pg|mysql   PostgreSQL: pg_ctl restart -m fast;
#                                      MariaDB: mariadb-admin shutdown, then start;
#                                      returns once the server answers again
set -euo pipefail

cmd=${1:?usage: fault-server.sh start|stop|restart pg|mysql}
which=${2:?pg or mysql}
dir=${CONFLICTKIT_FAULT_DIR:?CONFLICTKIT_FAULT_DIR is not set: source scripts/fault-servers.sh and call fault_servers_start}

# shellcheck source=scripts/servers.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/servers.sh"   # _ck_as, _ck_wait_for

pg() {
  local bin
  bin=$(cat "$dir/pg/bin")
  case $cmd in
    # -w: pg_ctl returns once the server accepts connections
    start) _ck_as postgres "$bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w -t 60 start >/dev/null \
      || { tail -n 20 "$dir/pg/server.log" >&2; exit 1; } ;;
    stop) _ck_as postgres "$bin/pg_ctl" -D "$dir/pg/data" -m fast -w -t 60 stop >/dev/null ;;
    restart) _ck_as postgres "$bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -m fast -w -t 60 restart >/dev/null \
      || { tail -n 20 "$dir/pg/server.log" >&2; exit 1; } ;;
  esac
}

my_sql() {
  mariadb --no-defaults -uroot --socket="$dir/mysql/mysqld.sock" -N -B -e "$1"
}

my_pid() {
  local pid
  [ -f "$dir/mysql/server.pid" ] || return 0
  pid=$(cat "$dir/mysql/server.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

my_start() {
  local user_args=()
  if [ "$(id -u)" = 0 ]; then user_args=(--user=mysql); fi
  # detached (its own session, no inherited pipes): a test running this
  # script does not wait for the server to exit
  setsid mariadbd --defaults-file="$dir/mysql/my.cnf" "${user_args[@]}" \
    </dev/null >>"$dir/mysql/stdout.log" 2>&1 &
  echo $! >"$dir/mysql/server.pid"
  _ck_wait_for 60 my_sql 'SELECT 1' || { tail -n 20 "$dir/mysql/error.log" >&2; exit 1; }
}

my_stop() {
  local pid
  pid=$(my_pid)
  [ -n "$pid" ] || return 0
  my_sql 'SHUTDOWN' >/dev/null 2>&1 || mariadb-admin --no-defaults -uroot --socket="$dir/mysql/mysqld.sock" shutdown >/dev/null 2>&1 || true
  if ! _ck_wait_for 60 bash -c "! kill -0 $pid"; then kill -9 "$pid" 2>/dev/null || true; fi
}

mysql() {
  case $cmd in
    start) my_start ;;
    stop) my_stop ;;
    restart) my_stop; my_start ;;
  esac
}

case $cmd in start | stop | restart) ;; *) echo "fault-server.sh: unknown command $cmd" >&2; exit 1 ;; esac
case $which in
  pg) pg ;;
  mysql) mysql ;;
  *) echo "fault-server.sh: pg or mysql, not $which" >&2; exit 1 ;;
esac
