#!/usr/bin/env bash
# The --procs / keyed contention run of 2026-12-02 (release build, servers
# from the environment: CONFLICTKIT_PG_URL, CONFLICTKIT_MYSQL_URL).
set -euo pipefail
cd "$(dirname "$0")/../../.."
D=docs/bench-results/2026-12-02-procs
cargo build --release -p conflictkit-bench
B=target/release/bench
common=(--ops 8000 --repeat 1 --cell-timeout 10 --procs 1,4 --charts "$D" --json "$D/results.jsonl")
{
  echo "== $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), commit $(git describe --always --dirty), load $(cut -d' ' -f1-3 /proc/loadavg)"
  "$B" contention --pg "$CONFLICTKIT_PG_URL" --rows 1,10 --threads 16,64 "${common[@]}"
  "$B" contention --mysql "$CONFLICTKIT_MYSQL_URL" --rows 1 --threads 4,16,64 "${common[@]}"
  "$B" contention --mysql "$CONFLICTKIT_MYSQL_URL" --rows 10 --threads 16,64 "${common[@]}"
  echo "== done $(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$D/tables.md" 2> "$D/progress.txt"
