#!/usr/bin/env bash
# The benchmarks of conflictkit (issue 9) against throwaway servers:
#   when a database scenario (overhead, contention, relay) is asked for, starts
#   PostgreSQL and MariaDB on loopback (scripts/servers.sh), runs it on
#   PostgreSQL, MariaDB and SQLite, and stops the servers, whatever happens.
#   listener and merge need no database server. Tables go to stdout; JSON
#   lines are appended to $BENCH_JSON (default target/bench/results.jsonl).
#
# Usage: ./scripts/bench.sh [scenario...] [-- extra bench args...]
#   ./scripts/bench.sh                      # overhead contention listener merge
#   ./scripts/bench.sh listener merge       # no database servers started
#   ./scripts/bench.sh contention -- --threads 16,64 --rows 1 --repeat 5
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scenarios=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do scenarios+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#scenarios[@]} -eq 0 ] && scenarios=(overhead contention listener merge)

json=${BENCH_JSON:-$root/target/bench/results.jsonl}
mkdir -p "$(dirname "$json")"

# build before the servers start, so they do not idle through a compile
cargo build --release -p conflictkit-bench

need_db=0
for s in "${scenarios[@]}"; do
  case "$s" in overhead|contention|relay) need_db=1 ;; esac
done
db_args=()
if [ "$need_db" = 1 ]; then
  # shellcheck source=scripts/servers.sh
  source "$root/scripts/servers.sh"
  trap servers_stop EXIT INT TERM
  servers_start
  db_args=(--pg "$CONFLICTKIT_PG_URL" --mysql "$CONFLICTKIT_MYSQL_URL" --sqlite)
fi

echo "== $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), commit $(git describe --always --dirty)"
"$root/target/release/bench" "${scenarios[@]}" "${db_args[@]}" \
  --json "$json" "$@"
echo "== JSON lines appended to $json"
