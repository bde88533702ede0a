//! What a resolver tells about each replay: where the run failed
//! ([`Phase`]) and the [`RetryEvent`] its `on_retry` callback receives.

use std::sync::Arc;
use std::time::Duration;

use super::classify::Conflict;

/// Where a run of a managed call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Waiting for admission: the contention queue of the (label, key), or
    /// the lease of the lock across processes (only a deadline ends a run
    /// here: see [`DeadlineExceeded`](super::DeadlineExceeded)).
    Admission,
    /// Beginning the transaction (nothing ran yet).
    Begin,
    /// The body, or an error it ignored (see [`Txn`](super::Txn)).
    Body,
    /// `COMMIT`, which answered with a definite error (an unknown outcome is
    /// an [`AmbiguousCommit`](super::AmbiguousCommit), never replayed).
    Commit,
    /// Between runs: about to back off and replay (only a deadline ends a
    /// call here, when what is left could not fit another run).
    Backoff,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Admission => "admission",
            Phase::Begin => "begin",
            Phase::Body => "body",
            Phase::Commit => "commit",
            Phase::Backoff => "backoff",
        })
    }
}

/// Called before each replay with what happened.
pub type OnRetry = Arc<dyn Fn(&RetryEvent<'_>) + Send + Sync>;

/// What [`ConflictResolverBuilder::on_retry`](super::ConflictResolverBuilder::on_retry) callbacks receive.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RetryEvent<'a> {
    /// Label of the managed call.
    pub label: &'a str,
    /// The run that conflicted (1 = first run).
    pub attempt: u32,
    /// The conflict.
    pub conflict: &'a Conflict,
    /// Where the run met it: in the body (or an error the body ignored), or
    /// at `COMMIT`.
    pub phase: Phase,
    /// How long the resolver waits before the replay.
    pub delay: Duration,
}
