//! What a resolver tells its callbacks when a call ends: committed
//! ([`CommitEvent`]), given up ([`GiveUpEvent`], with every run's
//! failure), or out of time ([`DeadlineExceeded`]). Set them with
//! [`on_commit`](super::ConflictResolverBuilder::on_commit),
//! [`on_give_up`](super::ConflictResolverBuilder::on_give_up) and
//! [`on_deadline`](super::ConflictResolverBuilder::on_deadline), beside
//! [`on_retry`](super::ConflictResolverBuilder::on_retry).
//!
//! Callbacks run in the calling task, before the call returns: keep them
//! short (count, log, record), and never block in them.

use std::sync::Arc;
use std::time::Duration;

use super::classify::Conflict;
use super::deadline_exceeded::DeadlineExceeded;
use super::retry_event::Phase;

/// Called when a managed call commits.
pub type OnCommit = Arc<dyn Fn(&CommitEvent<'_>) + Send + Sync>;
/// Called when a managed call gives up on conflicts.
pub type OnGiveUp = Arc<dyn Fn(&GiveUpEvent<'_>) + Send + Sync>;
/// Called when a managed call runs out of its time budget before `COMMIT`.
pub type OnDeadline = Arc<dyn Fn(&DeadlineExceeded) + Send + Sync>;

/// What [`on_commit`](super::ConflictResolverBuilder::on_commit) callbacks
/// receive.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CommitEvent<'a> {
    /// Label of the managed call.
    pub label: &'a str,
    /// Runs of the body, the committed one included (1: no replay).
    pub attempts: u32,
    /// From the start of the call to the answer of `COMMIT`.
    pub elapsed: Duration,
}

/// What [`on_give_up`](super::ConflictResolverBuilder::on_give_up)
/// callbacks receive: every run's conflict, in order (as Jdbi's
/// `SerializableTransactionRunner` hands `onFailure` every attempt's
/// exception).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GiveUpEvent<'a> {
    /// Label of the managed call.
    pub label: &'a str,
    /// Every run, in order; all of them conflicted.
    pub attempts: &'a [FailedAttempt],
    /// From the start of the call to the last conflict.
    pub elapsed: Duration,
}

/// One run that conflicted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailedAttempt {
    /// The run (1 = first).
    pub attempt: u32,
    /// Where it met the conflict.
    pub phase: Phase,
    /// The conflict.
    pub conflict: Conflict,
    /// The error, as it displays.
    pub error: String,
}

impl FailedAttempt {
    pub(crate) fn new(
        attempt: u32,
        phase: Phase,
        conflict: Conflict,
        err: &(dyn std::error::Error + 'static),
    ) -> Self {
        Self {
            attempt,
            phase,
            conflict,
            error: err.to_string(),
        }
    }
}
