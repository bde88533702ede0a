//! Group commit: calls of one (label, key) that arrive while a run of it is
//! in flight queue, and the next run takes up to `max` of them into **one**
//! transaction, each body in a savepoint of its own, with one `COMMIT`. On
//! a hot row every per-call strategy is bounded by one `COMMIT` (a WAL
//! flush) per call; a batch serves many calls with one. No timer: a call
//! alone runs alone, and batches grow with the load by themselves.
//!
//! Opt in per function: `#[managed_transaction(key = …, batch)]`, or
//! [`CallOptions::batch`](super::CallOptions::batch) with
//! [`ConflictResolver::run_batched`](super::ConflictResolver::run_batched).
//!
//! What each member keeps (rooms: `composite` for the savepoints,
//! `run_batch` for the ends, `lane` for the queues, `entry` for the
//! caller's side):
//! - its own outcome: `Ok` once the batch committed; its own `Err` with its
//!   writes and hooks rolled back to its savepoint while the others commit;
//!   a panic, rolled back likewise, reaches its caller at once;
//! - its hooks run after the shared `COMMIT`, if and only if it committed
//!   with the member's writes in it;
//! - a conflict (or a `COMMIT` conflict, or an injected one) replays the
//!   whole batch, every member's body again; a batch that gives up runs
//!   its members again one by one, each with replays of its own, so a
//!   give-up is a member's own; a deadline (the batch runs to its earliest
//!   member's) and an ambiguous `COMMIT` are every member's; any other
//!   failure of the batch as a whole fails each member with
//!   [`BatchFailed`], nothing of it committed;
//! - a caller dropped while its member waits or runs leaves the member in
//!   the batch: it commits or rolls back with the others, and its hooks
//!   follow the data, as when a single call is dropped after `COMMIT` was
//!   sent. That is why a batched body owns its data (`'static`).
//!
//! Batches run through the replay loop a single call uses, so contention
//! control, the lease across processes and the SQLite writer slot apply to
//! a batch as to one call: each process batches what it holds while it
//! holds the lease.
//!
//! Counted per member in [`stats`](super::ConflictResolver::stats) and
//! the `conflictkit.calls` metric; batch sizes in
//! [`batch_stats`](super::ConflictResolver::batch_stats) and the
//! `conflictkit.batch.size` metric.

mod composite;
mod entry;
mod error;
mod lane;
mod member;
mod run_batch;

pub use error::BatchFailed;
pub use lane::BatchStats;
pub(crate) use lane::Lanes;
