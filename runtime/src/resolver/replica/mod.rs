//! Read replicas: read-only calls of a resolver built with
//! [`replica`](crate::resolver::ConflictResolverBuilder::replica) pools run on a
//! replica (a PostgreSQL streaming replica, a MariaDB GTID replica), within
//! a staleness bound, and after the caller's own commits; every other call
//! runs on the primary. What each engine asks of its servers is in
//! `dialect`.
//!
//! ```text
//! run (read_only, not deferrable, replicas set)                 (route)
//!  ├ choose   a replica whose last lag sample is within max_lag,
//!  │          else the primary (lagging / down)                  (set, sampler)
//!  ├ after    a CommitPosition? wait (bounded) for the replica to
//!  │          replay up to it, else the primary (wait expired)   (route)
//!  ├ run      the replay loop on the replica, REPEATABLE READ
//!  │          READ ONLY, no contention control (reads conflict
//!  │          with nothing there but recovery, replayed as 40001)
//!  │          (MariaDB: the wait is MASTER_GTID_WAIT)    (dialect)
//!  └ lost?    the replica went away midway: marked down, the call
//!             runs again on the primary; a write: WriteOnReplica  (route, errors)
//! ```
//!
//! - The lag is sampled by a background task per replica (see `sampler`):
//!   the time since the newest sample of the primary's log position (LSN,
//!   GTID position) the replica had replayed up to, never less than the
//!   real staleness.
//! - Read-your-writes: [`CommitPosition`], taken with
//!   [`ConflictResolver::commit_position`](crate::resolver::ConflictResolver::commit_position)
//!   after a commit, carried by the caller, passed back with
//!   [`CallOptions::after`](crate::resolver::CallOptions::after).
//! - [`ConflictResolverBuilder::build_checked`](crate::resolver::ConflictResolverBuilder::build_checked)
//!   refuses a "replica" that is a primary or replicates another cluster
//!   ([`ReplicaRefused`]).
//! - Counted in [`ReplicaStats`] and the `conflictkit.reads` metric.

mod builder;
mod check;
mod dialect;
mod errors;
mod gtid;
mod position;
mod route;
pub(crate) mod sampler;
pub(crate) mod set;
pub(crate) mod setup;
mod stats;

pub use check::ReplicaRefused;
pub(crate) use dialect::Dialect;
pub use errors::WriteOnReplica;
pub use position::{CommitPosition, InvalidCommitPosition};
pub(crate) use route::ReadAsk;
pub use setup::{DEFAULT_LAG_SAMPLE_INTERVAL, DEFAULT_MAX_LAG, DEFAULT_REPLICA_WAIT};
pub use stats::{ReplicaStats, ReplicaStatus};
