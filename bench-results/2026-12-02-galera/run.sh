#!/usr/bin/env bash
set -euo pipefail
cd /work/galera
set -a; source <(grep = /tmp/servers.env); set +a
source scripts/servers.sh
source scripts/galera.sh
trap galera_stop EXIT
galera_start
mkdir -p target/bench
./target/debug/examples/bench contention --galera "$CONFLICTKIT_GALERA_URLS" --nodes 1,2,3 \
  --mysql "$CONFLICTKIT_MYSQL_URL" --threads 3,12 --rows 1 --ops 400 --repeat 3 --cell-timeout 20 \
  --strategies ck-adaptive,ck-off,immediate,for-update --json target/bench/galera.jsonl
