//! The conflict resolver on real servers: one test binary (one link) for
//! every resolver test, one module per guarantee it pins (DESIGN §7), so a
//! new test goes where its promise is:
//!
//! - a conflict is replayed, a give-up is typed, no update is lost (the
//!   original's tests): [`conflicts`]; where conflicts come from:
//!   [`conflict_sources`]; isolation in effect: [`isolation`];
//! - `Ok` means the writes committed: [`ok_means_committed`];
//! - hooks run once iff the data committed, no pooled connection is left in a
//!   transaction: [`hooks_and_rollback`];
//! - nothing is replayed blindly (unknown COMMIT outcome, give-ups, errors
//!   that are no conflict): [`no_blind_replay`];
//! - a connection lost before COMMIT is replayed: [`lost_connections`];
//!   under a running service (killed sessions, restarts): [`db_faults`];
//! - a repeated request returns the stored outcome, an unknown COMMIT
//!   outcome resolves itself with a key: [`idempotency`]; through the
//!   macro: [`idempotency_macro`]; the hooks of such a call:
//!   [`idempotency_hooks`];
//! - nested calls: [`nesting`]; as savepoints, through the macro:
//!   [`managed_transaction`];
//! - contention control per (label, key) across processes:
//!   [`contention_processes`], [`contention_leases`];
//! - the same promises through `#[managed_transaction]`: [`managed_transaction`];
//!   on SQLite's writer queue: [`sqlite_writer`]; on a Galera cluster:
//!   [`galera`]; under injected conflicts: [`inject_conflicts`];
//! - read-only calls on a streaming replica, within their staleness bound
//!   and after their own commits: [`replicas`];
//! - every wait is bounded by the call's deadline: [`deadlines`]; what an
//!   operator sees (metrics, lifecycle callbacks): [`metrics`];
//! - group commit, each member keeping its own outcome: [`batch`];
//! - the main job, run as a program: [`wallet_example`].

#[path = "../common/mod.rs"]
mod common;

mod batch;
mod conflict_sources;
mod conflicts;
mod contention_leases;
mod contention_processes;
mod db_faults;
mod deadlines;
mod galera;
mod hooks_and_rollback;
mod idempotency;
mod idempotency_hooks;
mod idempotency_macro;
mod inject_conflicts;
mod isolation;
mod lost_connections;
mod managed_transaction;
mod metrics;
mod nesting;
mod no_blind_replay;
mod ok_means_committed;
mod replicas;
mod seaorm_citizen;
mod sqlite_writer;
mod wallet_example;
