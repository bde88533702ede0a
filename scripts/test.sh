#!/usr/bin/env bash
# The whole test suite of conflictkit, on a fresh machine of this image:
#   starts PostgreSQL 15 and MariaDB on loopback, and a 3-node MariaDB Galera
#   cluster shared by the cluster tests, a second PostgreSQL and MariaDB that
#   only the fault tests kill sessions of and restart, a PostgreSQL primary
#   with a streaming replica (pg_basebackup -R) for the replica tests, which
#   pause its replay and stop it, and a PgBouncer in
#   transaction pooling mode in front of the first PostgreSQL (installing
#   MariaDB, galera-4, rsync, pgbouncer and the offline ngrok test agent when
#   missing), runs every test of the workspace
#   (unit, integration, UI, doc tests), and stops what it started, whatever happens.
#
# Usage: ./scripts/test.sh [extra cargo nextest args...]
#   (they go to the nextest run of every test but the UI test, which runs on
#   its own since the build)
#
# Each step prints the wall-clock time and the seconds since the start. The
# build of every target starts first, in the background, while the servers
# start; the tests run once both are done.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

_ck_t0=$SECONDS
step() { printf '== [%s UTC, +%ss] %s\n' "$(date -u +%H:%M:%S)" "$((SECONDS - _ck_t0))" "$*"; }

# shellcheck source=scripts/servers.sh
source "$root/scripts/servers.sh"
# shellcheck source=scripts/galera.sh
source "$root/scripts/galera.sh"
# shellcheck source=scripts/fault-servers.sh
source "$root/scripts/fault-servers.sh"
# shellcheck source=scripts/pgbouncer.sh
source "$root/scripts/pgbouncer.sh"
# shellcheck source=scripts/replicas.sh
source "$root/scripts/replicas.sh"
_ck_build_pid=""
_ck_nextest_pid=""
_ck_stop_all() {
  local status=$?
  set +e
  if [ -n "$_ck_build_pid" ]; then kill -- "$_ck_build_pid" 2>/dev/null; wait "$_ck_build_pid" 2>/dev/null; fi
  if [ -n "$_ck_nextest_pid" ]; then kill -- "$_ck_nextest_pid" 2>/dev/null; wait "$_ck_nextest_pid" 2>/dev/null; fi
  if [ -n "${ui_pid:-}" ] && [ -s "$ui_pid" ] && [ ! -s "$ui_status" ]; then kill -- "$(cat "$ui_pid")" 2>/dev/null; fi
  pgbouncer_stop
  replicas_stop
  fault_servers_stop
  galera_stop
  (exit "$status") # servers_stop reports the status it finds in $?
  servers_stop
  step "done (exit status $status)"
}
trap _ck_stop_all EXIT
trap 'exit 130' INT TERM

# trybuild rewrites its snapshots when TRYBUILD is set in the environment;
# the suite checks them (ui-tests/tests/ui.rs refuses TRYBUILD without CONFLICTKIT_BLESS=1)
unset TRYBUILD CONFLICTKIT_BLESS
# Nothing carries over between runs on CI: incremental bookkeeping only costs.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# Every target of the workspace (libraries, the bench binary, the examples
# and harness programs the tests run as processes, the test binaries), built
# while the servers start. The UI test binary comes first and starts at once:
# trybuild type-checks the dependency graph in a target directory of its own
# (no lock shared with this build), the longest single test, so it runs beside
# the rest of the build and the other tests instead of after them. Output goes
# to logs shown when they are done.
target_dir=$(cargo metadata --no-deps --format-version 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
mkdir -p "$target_dir"
build_log="$target_dir/test-build.log"
ui_log="$target_dir/test-ui.log"
ui_status="$target_dir/test-ui.status"
ui_pid="$target_dir/test-ui.pid"
rm -f "$ui_status" "$ui_pid"
step "cargo build (UI test first, then --workspace --all-targets; in the background, log: $build_log)"
(
  set -euo pipefail
  # The binary and the directory of its package: trybuild finds the package
  # (its cases, its dev-dependencies) through CARGO_MANIFEST_DIR, which cargo
  # sets when it runs a test and this script must set itself.
  read -r ui_bin ui_dir < <(cargo build --workspace --test ui --message-format=json-render-diagnostics \
    | python3 -c 'import json,os,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "ui" and m.get("executable"):
        print(m["executable"], os.path.dirname(m["manifest_path"]))')
  [ -n "$ui_bin" ] && [ -d "$ui_dir" ] || { echo "the UI test binary was not built"; exit 1; }
  echo "== [$(date -u +%H:%M:%S) UTC] UI test binary built; trybuild starts (log: $ui_log)"
  (
    cd "$ui_dir"
    CARGO_MANIFEST_DIR="$ui_dir" "$ui_bin" >"$ui_log" 2>&1 &
    echo "$!" >"$ui_pid"
    rc=0
    wait "$!" || rc=$?
    echo "$rc" >"$ui_status"
  ) &
  cargo build --workspace --all-targets
) >"$build_log" 2>&1 &
_ck_build_pid=$!

step "servers"
servers_start
pgbouncer_start
fault_servers_start
replicas_start
step "galera"
galera_start

# The real ngrok agent (offline: the tests run it in a namespace with only
# loopback). npm comes from Debian when missing.
step "ngrok agent"
if ! command -v npm >/dev/null 2>&1; then
  echo "installing npm (Debian package)"
  _ck_apt_install npm
fi
CONFLICTKIT_NGROK_BIN="$(./scripts/install-ngrok.sh)"
export CONFLICTKIT_NGROK_BIN

step "waiting for the build"
build_status=0
wait "$_ck_build_pid" || build_status=$?
_ck_build_pid=""
tail -n 3 "$build_log"
if [ "$build_status" != 0 ]; then
  cat "$build_log"
  step "the build failed (exit status $build_status)"
  exit "$build_status"
fi

export CONFLICTKIT_REQUIRE_SERVERS=1
# nextest runs in the background (its output still shows here, and goes to
# a log): once it has listed its tests it holds no cargo lock, and most of
# its time is spent waiting on database servers, so the doc tests (a
# compile of their own, about a minute) run beside it instead of after it.
nextest_log="$target_dir/test-nextest.log"
doc_log="$target_dir/test-doc.log"
rm -f "$nextest_log"
step "cargo nextest (workspace: unit and integration tests; the UI test runs since the build)"
(
  set -o pipefail
  cargo nextest run --workspace --lib --bins --tests --no-tests=fail -E 'not binary(ui)' "$@" 2>&1 \
    | tee "$nextest_log"
) &
_ck_nextest_pid=$!
until grep -qE '^ *Starting [0-9]+ tests? across' "$nextest_log" 2>/dev/null \
  || ! kill -0 "$_ck_nextest_pid" 2>/dev/null; do
  sleep 1
done
step "cargo test --doc (workspace doc tests, beside the nextest run; log: $doc_log)"
doc_status=0
cargo test --workspace --doc >"$doc_log" 2>&1 || doc_status=$?
nextest_status=0
wait "$_ck_nextest_pid" || nextest_status=$?
_ck_nextest_pid=""
step "doc tests done (exit status $doc_status)"
if [ "$doc_status" != 0 ]; then cat "$doc_log"; else grep -E '^(test result|all doctests)' "$doc_log"; fi
if [ "$nextest_status" != 0 ] || [ "$doc_status" != 0 ]; then
  step "tests failed (nextest exit status $nextest_status, doc tests $doc_status)"
  exit 1
fi
step "waiting for the UI test (trybuild)"
until [ -s "$ui_status" ]; do sleep 1; done
cat "$ui_log"
if [ "$(cat "$ui_status")" != 0 ]; then
  step "the UI test failed (exit status $(cat "$ui_status"))"
  exit 1
fi
# Packaging only: a verifying dry-run builds every crate again in a workspace
# of its own (other profile, no dev-dependency features), that is the whole
# dependency graph once more; the builds above compile the same sources.
step "cargo publish --dry-run (every crate packages as published)"
cargo publish --workspace --dry-run --no-verify --allow-dirty
step "all tests passed"
