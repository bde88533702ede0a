#!/usr/bin/env bash
# The run recorded here (issue 29, group commit): one release build, three
# invocations back to back (one per part of the grid), strategies
# interleaved within every cell, JSON lines appended to runs.jsonl.
set -euo pipefail
cd "$(dirname "$0")"
: "${BENCH:=/work/targets/batchbench/release/bench}"
: "${CONFLICTKIT_PG_URL:?source the servers env}" "${CONFLICTKIT_MYSQL_URL:?}"
common=(--strategies ck-batch,ck-adaptive,for-update,single-update
        --ops 8000 --repeat 2 --cell-timeout 180 --json runs.jsonl --charts charts)
{ echo "start $(date -u +%FT%TZ) $(uptime)"; } >> load.txt
# one hot row, PostgreSQL and MariaDB, T = 16 and 64, P = 1 and 4
"$BENCH" contention --pg "$CONFLICTKIT_PG_URL" --mysql "$CONFLICTKIT_MYSQL_URL" \
    --rows 1 --threads 16,64 --procs 1,4 "${common[@]}"
echo "after k1 $(date -u +%FT%TZ) $(uptime)" >> load.txt
# ten hot rows keyed, T = 64, P = 1
"$BENCH" contention --pg "$CONFLICTKIT_PG_URL" --mysql "$CONFLICTKIT_MYSQL_URL" \
    --rows 10 --threads 64 --procs 1 "${common[@]}"
echo "after k10 $(date -u +%FT%TZ) $(uptime)" >> load.txt
# SQLite (WAL), synchronous FULL and NORMAL, one hot row, T = 16, P = 1
"$BENCH" contention --sqlite --sqlite-synchronous full,normal \
    --rows 1 --threads 16 --procs 1 "${common[@]}"
echo "end $(date -u +%FT%TZ) $(uptime)" >> load.txt
