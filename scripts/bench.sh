#!/usr/bin/env bash
# The benchmarks of conflictkit (issue 9) against throwaway servers:
#   starts PostgreSQL and MariaDB on loopback (scripts/servers.sh), runs the
#   given scenarios on PostgreSQL, MariaDB and SQLite, and stops the servers,
#   whatever happens. Tables go to stdout; JSON lines are appended to
#   $BENCH_JSON (default target/bench/results.jsonl).
#
# Usage: ./scripts/bench.sh [scenario...] [-- extra bench args...]
#   ./scripts/bench.sh                      # overhead and contention
#   ./scripts/bench.sh contention -- --threads 16,64 --rows 1 --repeat 5
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scenarios=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do scenarios+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#scenarios[@]} -eq 0 ] && scenarios=(overhead contention)

json=${BENCH_JSON:-$root/target/bench/results.jsonl}
mkdir -p "$(dirname "$json")"

# build before the servers start, so they do not idle through a compile
cargo build --release --example bench

# shellcheck source=scripts/servers.sh
source "$root/scripts/servers.sh"
trap servers_stop EXIT INT TERM

servers_start

echo "== $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), commit $(git describe --always --dirty)"
"$root/target/release/examples/bench" "${scenarios[@]}" \
  --pg "$CONFLICTKIT_PG_URL" --mysql "$CONFLICTKIT_MYSQL_URL" --sqlite \
  --json "$json" "$@"
echo "== JSON lines appended to $json"
