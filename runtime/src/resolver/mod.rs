//! The conflict resolver: run a transaction, and replay it when the database
//! reports a serialization conflict.
//!
//! The heart of conflictkit and the port of cryptoassets.core's
//! `ConflictResolver`. Start with [`ConflictResolver`]; the
//! `#[managed_transaction]` attribute expands to [`ConflictResolver::run`].
//!
//! What counts as a conflict on each database is listed in [`classify`].

pub mod classify;
mod conflict_resolver;
mod contention;
mod error;
mod policy;
mod replay_arg;
mod run;
mod stats;
mod txn;

pub use classify::{Conflict, ConflictCode};
pub use conflict_resolver::{ConflictResolver, ConflictResolverBuilder, OnRetry, RetryEvent};
pub use contention::{CUT_ABOVE, Contention, MAX_QUEUE_WAIT, SLOW_START_FROM, UNLIMITED_ABOVE};
pub use error::{CannotResolveDatabaseConflict, Error};
pub use policy::{Backoff, CallOptions, Isolation, SqliteMode, UnknownOption};
pub use replay_arg::ReplayArg;
pub use run::{BodyFuture, ImpliedBound, ScopedFuture};
pub use stats::Stats;
pub use txn::Txn;
