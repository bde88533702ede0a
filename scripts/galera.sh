#!/usr/bin/env bash
# A throwaway 3-node MariaDB Galera cluster on loopback, for the cluster tests
# and the benchmarks. Source it, call galera_start, and trap galera_stop (like
# scripts/servers.sh; it uses that file's helpers, which it sources when
# they are missing).
#
# galera_start exports
#   CONFLICTKIT_GALERA_URLS  three comma-separated mysql:// URLs, node 1..3
#   CONFLICTKIT_GALERA_DIR   the cluster's temp dir (scripts/galera-node.sh
#                            kill|start|wait N works on it, so tests can kill
#                            a node with SIGKILL and bring it back)
#   CONFLICTKIT_GALERA_NODE  the path of scripts/galera-node.sh
# galera_stop stops every node for real (shutdown, then SIGKILL after a
# deadline), checks that no process of the cluster is left and removes the dir.

_ck_galera_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if ! declare -F _ck_free_port >/dev/null; then
  # shellcheck source=scripts/servers.sh
  source "$_ck_galera_here/servers.sh"
fi

_ck_galera_dir=""

_ck_galera_install() {
  local missing=()
  [ -f /usr/lib/galera/libgalera_smm.so ] || missing+=(galera-4)
  command -v rsync >/dev/null 2>&1 || missing+=(rsync)
  # the rsync state transfer script needs one of ss or lsof
  command -v ss >/dev/null 2>&1 || command -v lsof >/dev/null 2>&1 || missing+=(iproute2)
  command -v mariadbd >/dev/null 2>&1 || missing+=(mariadb-server)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} (Debian packages)"
    _ck_apt_install "${missing[@]}"
    (service mariadb stop || true) >/dev/null 2>&1
  fi
}

# _ck_galera_free_ports COUNT: COUNT distinct free loopback ports below the
# ephemeral port range
_ck_galera_free_ports() {
  python3 - "$1" <<'PY'
import random, socket, sys
low = 32768
try:
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except OSError:
    pass
count, found = int(sys.argv[1]), []
for port in random.sample(range(10000, max(low, 10001 + 4 * int(sys.argv[1]))), 4000):
    if len(found) == count:
        break
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        found.append(port)
    except OSError:
        pass
    finally:
        s.close()
if len(found) < count:
    sys.exit("no free ports")
print(" ".join(map(str, found)))
PY
}

# _ck_galera_conf DIR N PORT GCOMM_PORTS... : writes DIR/nodeN/my.cnf
_ck_galera_conf() {
  local dir=$1 n=$2
  local d="$dir/node$n"
  # shellcheck disable=SC1091
  source "$dir/ports"
  local port_var="port$n" gcomm_var="gcomm$n" ist_var="ist$n" sst_var="sst$n"
  cat >"$d/my.cnf" <<EOF
[mysqld]
datadir=$d/data
socket=$d/mysqld.sock
pid-file=$d/mysqld.pid
log-error=$d/error.log
bind-address=127.0.0.1
port=${!port_var}
skip-name-resolve
max-connections=300
innodb-buffer-pool-size=64M
innodb-log-file-size=16M
innodb-flush-log-at-trx-commit=2
default-storage-engine=InnoDB
binlog_format=ROW
innodb_autoinc_lock_mode=2
wsrep_on=ON
wsrep_provider=/usr/lib/galera/libgalera_smm.so
wsrep_cluster_name=conflictkit
wsrep_cluster_address=gcomm://127.0.0.1:$gcomm1,127.0.0.1:$gcomm2,127.0.0.1:$gcomm3
wsrep_node_name=node$n
wsrep_node_address=127.0.0.1:${!gcomm_var}
wsrep_node_incoming_address=127.0.0.1:${!port_var}
wsrep_sst_method=rsync
wsrep_sst_receive_address=127.0.0.1:${!sst_var}
wsrep_slave_threads=2
# causal reads: a statement waits until the node applied every write set
# committed anywhere before it started, so a replay reads what the winner of
# its conflict wrote instead of failing certification again on a stale row
wsrep_sync_wait=1
# Galera's own failure-detection timeouts (a dead node is suspected after 5 s,
# writes stall until then): shorter ones evict live nodes when a busy 2-core
# machine starves them for a second or two
wsrep_provider_options="gmcast.listen_addr=tcp://127.0.0.1:${!gcomm_var};ist.recv_addr=127.0.0.1:${!ist_var};gcache.size=64M"
EOF
}

galera_start() {
  local started=$SECONDS
  _ck_galera_install
  _ck_galera_dir=$(mktemp -d /tmp/conflictkit-galera.XXXXXX)
  chmod 755 "$_ck_galera_dir"
  export CONFLICTKIT_GALERA_DIR="$_ck_galera_dir"
  export CONFLICTKIT_GALERA_NODE="$_ck_galera_here/galera-node.sh"
  local n
  : >"$_ck_galera_dir/ports"
  # below the ephemeral range: the nodes' outgoing connections cannot
  # take a port between its choice and its bind
  local ports
  ports=$(_ck_galera_free_ports 12) || return 1
  set -- $ports
  for n in 1 2 3; do
    {
      echo "port$n=$1"; echo "gcomm$n=$2"; echo "ist$n=$3"; echo "sst$n=$4"
    } >>"$_ck_galera_dir/ports"
    shift 4
  done
  for n in 1 2 3; do
    mkdir -p "$_ck_galera_dir/node$n/data"
    _ck_galera_conf "$_ck_galera_dir" "$n"
  done
  if [ "$(id -u)" = 0 ]; then chown -R mysql:mysql "$_ck_galera_dir"; fi
  # Only node 1 gets a fresh system database: nodes 2 and 3 receive its
  # state by rsync state transfer when they join.
  _ck_as mysql mariadb-install-db --defaults-file="$_ck_galera_dir/node1/my.cnf" \
    --auth-root-authentication-method=normal --skip-test-db \
    >"$_ck_galera_dir/node1/install.log" 2>&1 \
    || { cat "$_ck_galera_dir/node1/install.log"; return 1; }
  "$CONFLICTKIT_GALERA_NODE" bootstrap 1 || return 1
  "$CONFLICTKIT_GALERA_NODE" start 2 || return 1
  "$CONFLICTKIT_GALERA_NODE" start 3 || return 1
  for n in 1 2 3; do
    "$CONFLICTKIT_GALERA_NODE" wait "$n" || return 1
  done
  # CREATE USER is replicated to every node (total order isolation)
  mariadb --no-defaults -uroot --socket="$_ck_galera_dir/node1/mysqld.sock" -e \
    "CREATE USER 'conflictkit'@'127.0.0.1' IDENTIFIED BY 'conflictkit'; GRANT ALL ON *.* TO 'conflictkit'@'127.0.0.1' WITH GRANT OPTION;" \
    || return 1
  # shellcheck disable=SC1091
  source "$_ck_galera_dir/ports"
  export CONFLICTKIT_GALERA_URLS="mysql://conflictkit:conflictkit@127.0.0.1:$port1/mysql,mysql://conflictkit:conflictkit@127.0.0.1:$port2/mysql,mysql://conflictkit:conflictkit@127.0.0.1:$port3/mysql"
  echo "MariaDB Galera $(mariadbd --version | awk '{print $3}'), 3 nodes on 127.0.0.1:$port1,$port2,$port3 (up in $((SECONDS - started)) s)"
}

galera_stop() {
  local status=$?
  if [ -n "$_ck_galera_dir" ] && [ -d "$_ck_galera_dir" ]; then
    local n pids=()
    for n in 3 2 1; do # at once: each waits for its own server
      CONFLICTKIT_GALERA_DIR="$_ck_galera_dir" "$_ck_galera_here/galera-node.sh" stop "$n" &
      pids+=($!)
    done
    wait "${pids[@]}" || true
    # Anything still running from the cluster's dir (an SST's rsync daemon)
    # is a leftover: say so and end it, by pid.
    local pid comm left=""
    for pid in $(pgrep -f "$_ck_galera_dir" 2>/dev/null); do
      comm=$(ps -o comm= -p "$pid" 2>/dev/null || true)
      case "$comm" in
        mariadbd | rsync | wsrep_sst_rsync | socat) ;;
        *) continue ;; # e.g. the shell running this function
      esac
      left="$left $pid($comm)"
      kill -9 "$pid" 2>/dev/null || true
    done
    if [ -n "$left" ]; then echo "galera_stop: killed leftover processes:$left" >&2; fi
    rm -rf "$_ck_galera_dir"
  fi
  _ck_galera_dir=""
  unset CONFLICTKIT_GALERA_URLS CONFLICTKIT_GALERA_DIR
  return $status
}
