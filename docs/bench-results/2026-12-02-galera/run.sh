#!/usr/bin/env bash
# The Galera contention cells of BENCHMARKS.md ("Beyond one server"): starts a
# throwaway MariaDB server and a 3-node Galera cluster on loopback, runs the
# cells (debug build, as in that run), stops both whatever happens.
# (The recorded run used the suite's already running MariaDB server instead of
# starting one; otherwise the same commands.)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/servers.sh
source scripts/galera.sh
_stop() { local status=$?; set +e; galera_stop; (exit "$status"); servers_stop; }
trap _stop EXIT
trap 'exit 130' INT TERM
cargo build --example bench
servers_start
galera_start
mkdir -p target/bench
./target/debug/examples/bench contention --galera "$CONFLICTKIT_GALERA_URLS" --nodes 1,2,3 \
  --mysql "$CONFLICTKIT_MYSQL_URL" --threads 3,12 --rows 1 --ops 400 --repeat 3 --cell-timeout 20 \
  --strategies ck-adaptive,ck-off,immediate,for-update --json target/bench/galera.jsonl
