#!/usr/bin/env bash
# Every feature set a user is likely to pick, one at a time: `cargo check`
# and `cargo doc` of the facade with warnings denied, so a single-backend
# build or one without `serde`, `events` or `tower` stays warning-free and
# its docs' links resolve. Not part of scripts/test.sh (each set re-checks
# the dependency graph with other features: minutes per set); run it when
# a change adds a `cfg(feature = …)`.
#
# Usage: ./scripts/feature-sets.sh [SET...]   (default: all below)
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A sets=(
  [postgres]="sqlx-postgres,runtime-tokio-rustls"
  [mysql]="sqlx-mysql,runtime-tokio-rustls"
  [sqlite]="sqlx-sqlite,runtime-tokio"
  [postgres-serde]="sqlx-postgres,runtime-tokio-rustls,serde"
  [postgres-events]="sqlx-postgres,runtime-tokio-rustls,events"
  [postgres-axum]="sqlx-postgres,runtime-tokio-rustls,tower,metrics"
  [sqlite-sea-orm-value]="sqlx-sqlite,runtime-tokio,sea-orm-value"
  [sqlite-config]="sqlx-sqlite,runtime-tokio,config"
  [sqlite-tunnel]="sqlx-sqlite,runtime-tokio,tunnel"
  [default]=""
  [all]="ALL"
)
order=(postgres mysql sqlite postgres-serde postgres-events postgres-axum sqlite-sea-orm-value sqlite-config sqlite-tunnel default all)
[ "$#" -gt 0 ] && order=("$@")

export RUSTDOCFLAGS="-D warnings"
failed=()
for name in "${order[@]}"; do
  features=${sets[$name]?"unknown set $name; known: ${order[*]}"}
  case "$features" in
    "") flags=() ;;
    ALL) flags=(--all-features) ;;
    *) flags=(--no-default-features --features "$features") ;;
  esac
  echo "== $name: ${flags[*]:-default features}"
  # `cargo check` prints warnings of workspace crates only (dependencies' are capped)
  if ! out=$(cargo check -p conflictkit -p conflictkit-runtime --lib "${flags[@]}" --message-format short 2>&1) \
    || grep -E '^(runtime|src|macros)/.*(warning|error)' <<<"$out"; then
    echo "$out" | tail -20
    failed+=("$name (check)")
  fi
  if ! cargo doc -p conflictkit -p conflictkit-runtime --no-deps "${flags[@]}" -q 2>&1; then
    failed+=("$name (doc)")
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "failed: ${failed[*]}"
  exit 1
fi
echo "all feature sets check and document without warnings"
