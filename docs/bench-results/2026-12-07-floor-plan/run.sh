#!/usr/bin/env bash
# Before (b15a081) and after (this floor plan) of the contention cells,
# interleaved so that both see the same machine load: old, new, old, new.
set -u
source /tmp/ck-env.sh
for round in 1 2; do
  for which in old new; do
    /work/bench-$which contention --pg "$CONFLICTKIT_PG_URL" --rows 1 --threads 16,64 --procs 1,4 \
      --ops 4000 --repeat 1 --cell-timeout 30 --strategies for-update,ck-adaptive \
      --json pg-k1-$which.jsonl >> pg-k1-$which.txt 2>&1
    /work/bench-$which contention --mysql "$CONFLICTKIT_MYSQL_URL" --rows 1 --threads 4,16,64 --procs 1,4 \
      --ops 4000 --repeat 1 --cell-timeout 30 --strategies for-update,ck-adaptive \
      --json my-k1-$which.jsonl >> my-k1-$which.txt 2>&1
  done
done
echo done > run.done
