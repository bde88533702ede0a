#!/usr/bin/env bash
# The whole test suite of conflictkit, on a fresh machine of this image:
#   starts PostgreSQL 15 and MariaDB on loopback, and a 3-node MariaDB Galera
#   cluster shared by the cluster tests, a second PostgreSQL and MariaDB that
#   only the fault tests kill sessions of and restart, and a PgBouncer in
#   transaction pooling mode in front of the first PostgreSQL (installing
#   MariaDB, galera-4, rsync, pgbouncer and the offline ngrok test agent when
#   missing), runs every test of the workspace
#   (unit, integration, UI, doc tests), and stops what it started, whatever happens.
#
# Usage: ./scripts/test.sh [extra cargo test args...]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# shellcheck source=scripts/servers.sh
source "$root/scripts/servers.sh"
# shellcheck source=scripts/galera.sh
source "$root/scripts/galera.sh"
# shellcheck source=scripts/fault-servers.sh
source "$root/scripts/fault-servers.sh"
# shellcheck source=scripts/pgbouncer.sh
source "$root/scripts/pgbouncer.sh"
_ck_stop_all() {
  local status=$?
  set +e
  pgbouncer_stop
  fault_servers_stop
  galera_stop
  (exit "$status") # servers_stop reports the status it finds in $?
  servers_stop
}
trap _ck_stop_all EXIT
trap 'exit 130' INT TERM

# trybuild rewrites its snapshots when TRYBUILD is set in the environment;
# the suite checks them (tests/ui.rs refuses TRYBUILD without CONFLICTKIT_BLESS=1)
unset TRYBUILD CONFLICTKIT_BLESS

servers_start
pgbouncer_start
fault_servers_start
galera_start

# The real ngrok agent (offline: the tests run it in a namespace with only
# loopback). npm comes from Debian when missing.
if ! command -v npm >/dev/null 2>&1; then
  echo "installing npm (Debian package)"
  _ck_apt_install npm
fi
CONFLICTKIT_NGROK_BIN="$(./scripts/install-ngrok.sh)"
export CONFLICTKIT_NGROK_BIN

export CONFLICTKIT_REQUIRE_SERVERS=1
echo "== cargo build --examples (tests/wallet_example.rs runs the wallet binary)"
cargo build --workspace --examples
echo "== cargo nextest (workspace: unit, integration and UI tests)"
cargo nextest run --workspace --lib --bins --tests --examples --no-tests=fail "$@"
echo "== cargo test --doc (workspace doc tests)"
cargo test --workspace --doc
echo "== cargo check --benches (benchmarks keep compiling)"
cargo check --workspace --benches
echo "== all tests passed"
