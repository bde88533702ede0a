//! Deadlines of managed calls: the time budget a call may spend, whatever
//! it waits for.
//!
//! A call with a deadline ([`CallOptions::timeout`], [`CallOptions::deadline`],
//! or the resolver's [`timeout`](super::ConflictResolverBuilder::timeout))
//! spends its budget on everything: the contention queue and the lease of
//! the lock across processes, the SQLite write slot, `BEGIN` (and a pooled
//! connection), the body's statements, backoff sleeps and replays.
//!
//! - **Before `COMMIT` is sent**, expiry rolls the transaction back (in a
//!   task of its own, so the call returns at once) and the call fails with
//!   [`DeadlineExceeded`]: nothing committed.
//! - **Once `COMMIT` is sent**, the call waits for its answer up to
//!   [`COMMIT_GRACE`] past the deadline; with no answer by then it fails
//!   with [`AmbiguousCommit`] (the outcome is
//!   unknown). The `COMMIT` goes on in its task, and the after-commit hooks
//!   run if and only if it committed, as for a caller that was dropped.
//! - **The server stops too.** The remaining budget, less a margin (a tenth,
//!   at most 100 ms, so that the server's own timeout answers first), is
//!   pushed to the server after `BEGIN`: PostgreSQL `SET LOCAL
//!   statement_timeout` and `lock_timeout` (they end with the transaction);
//!   MariaDB `SET SESSION max_statement_time` and `innodb_lock_wait_timeout`,
//!   restored to the session's own values before `COMMIT` or `ROLLBACK` (and
//!   by a task of their own when the caller is dropped midway), so nothing
//!   leaks to the next user of the pooled connection. A server-side timeout
//!   met after that point (PostgreSQL `57014`, `55P03`; MariaDB `1969`,
//!   MySQL `3024`, and `1205`, which is otherwise replayed as a conflict)
//!   ends the call with [`DeadlineExceeded`] instead of a replay.
//! - **No replay starts that cannot finish in time**: before a replay, the
//!   backoff plus the longest run of the call so far must fit in what is
//!   left, else the call ends with [`DeadlineExceeded`] at once.
//!
//! On SQLite the budget bounds the wait for the write slot; SQLite's own
//! busy handler (for writers of *other* processes) keeps its
//! `busy_timeout`, and the call still returns at its deadline.
//!
//! The deadline is a [`tokio::time::Instant`]: the resolver waits with
//! tokio's timers, which follow tokio's clock (a test that pauses time sees
//! deadlines pass with it), and a [`std::time::Instant`] converts into it,
//! so [`CallOptions::deadline`] takes either.

use std::borrow::Cow;
use std::time::Duration;

use tokio::time::Instant;

use sea_orm::{ConnectionTrait, DbErr};

use super::deadline_exceeded::DeadlineExceeded;
use super::error::AmbiguousCommit;
use super::options::{Budget, CallOptions};
use super::txn::Txn;

/// The longest budget a call or a resolver accepts: one hour. A managed
/// transaction meant to run longer than that holds locks and a pooled
/// connection for too long to be a transaction (split the work).
/// `#[managed_transaction(timeout = "...")]` checks the same bound at compile
/// time (`MAX_TIMEOUT_MS` in the macros crate mirrors it).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// How long past its deadline a call waits for the answer to a `COMMIT` it
/// sent before it reports the outcome as unknown.
pub const COMMIT_GRACE: Duration = Duration::from_secs(1);

/// The most that the budget pushed to the server is shortened by, so that
/// the server's timeout fires (with a definite error) before the call's.
const SERVER_MARGIN_MAX: Duration = Duration::from_millis(100);

/// A budget a call or a resolver refused (see [`CallOptions::timeout`]).
///
/// ```
/// use std::time::Duration;
/// use conflictkit::resolver::{CallOptions, InvalidDeadline};
/// let err = CallOptions::new("x").timeout(Duration::ZERO).unwrap_err();
/// assert_eq!(err, InvalidDeadline::NotPositive);
/// assert!(err.to_string().contains("positive"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidDeadline {
    /// A zero timeout, or a deadline that already passed.
    #[error(
        "a managed call's time budget must be positive: a zero timeout, or a deadline that already \
         passed, leaves no time to run it; give a positive timeout, or drop it for no deadline"
    )]
    NotPositive,
    /// A budget above [`MAX_TIMEOUT`].
    #[error(
        "a managed call's time budget of {given:?} is above the maximum of {max:?}: a transaction \
         that long holds its locks and pooled connection too long; split the work into shorter \
         transactions, or drop the timeout for no deadline"
    )]
    TooLong {
        /// The budget asked for.
        given: Duration,
        /// [`MAX_TIMEOUT`].
        max: Duration,
    },
}

/// Checks a budget against zero and [`MAX_TIMEOUT`].
pub(crate) fn check(budget: Duration) -> Result<Duration, InvalidDeadline> {
    if budget.is_zero() {
        Err(InvalidDeadline::NotPositive)
    } else if budget > MAX_TIMEOUT {
        Err(InvalidDeadline::TooLong {
            given: budget,
            max: MAX_TIMEOUT,
        })
    } else {
        Ok(budget)
    }
}

impl CallOptions {
    /// Bounds the whole call by `budget`, from the moment it starts:
    /// queue, lease and SQLite-slot waits, `BEGIN`, the body's statements,
    /// backoff sleeps and replays (see the [`deadline`](super::deadline)
    /// module for what happens on expiry). Overrides the resolver's
    /// [`timeout`](super::ConflictResolverBuilder::timeout).
    ///
    /// What `#[managed_transaction(timeout = "2s")]` calls.
    ///
    /// # Errors
    /// [`InvalidDeadline`] for a zero budget or one above [`MAX_TIMEOUT`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use conflictkit::resolver::CallOptions;
    /// let opts = CallOptions::new("wallet::transfer").timeout(Duration::from_secs(2))?;
    /// assert!(CallOptions::new("x").timeout(Duration::from_secs(7200)).is_err());
    /// # Ok::<(), conflictkit::resolver::InvalidDeadline>(())
    /// ```
    pub fn timeout(mut self, budget: Duration) -> Result<Self, InvalidDeadline> {
        self.budget = Some(Budget::Timeout(check(budget)?));
        Ok(self)
    }

    /// What `#[managed_transaction(timeout = "…")]` expands to: the
    /// macro has checked the budget at compile time (positive, at most
    /// [`MAX_TIMEOUT`], a compile error spanned on the value otherwise), so
    /// this cannot fail; a budget out of range anyway is clamped into it
    /// rather than panicking in generated code. Not for hand-written calls:
    /// use [`timeout`](Self::timeout).
    #[doc(hidden)]
    pub fn timeout_checked_by_macro(mut self, budget: Duration) -> Self {
        let budget = budget.clamp(Duration::from_millis(1), MAX_TIMEOUT);
        self.budget = Some(Budget::Timeout(budget));
        self
    }

    /// Bounds the whole call by the instant `at` (a [`tokio::time::Instant`]
    /// or a [`std::time::Instant`]), as [`timeout`](Self::timeout) does with
    /// a duration: for a budget shared with the caller's own work (the
    /// deadline of an HTTP request). A deadline that passes before the call
    /// starts fails the call with [`DeadlineExceeded`] without running it.
    ///
    /// # Errors
    /// [`InvalidDeadline`] for an instant already past, or more than
    /// [`MAX_TIMEOUT`] away.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use conflictkit::resolver::CallOptions;
    /// let request_deadline = Instant::now() + Duration::from_millis(1500);
    /// let opts = CallOptions::new("api::pay").deadline(request_deadline)?;
    /// # Ok::<(), conflictkit::resolver::InvalidDeadline>(())
    /// ```
    pub fn deadline(mut self, at: impl Into<Instant>) -> Result<Self, InvalidDeadline> {
        let at = at.into();
        check(at.saturating_duration_since(Instant::now()))?;
        self.budget = Some(Budget::At(at));
        Ok(self)
    }
}

/// Session settings a run pushed to the server (MariaDB), to be put back
/// before the connection goes back to the pool: by
/// [`put_back`](Self::put_back), or, when the call is dropped midway, by a
/// task of its own (which keeps the transaction until then).
pub(crate) struct ServerSettings {
    restore: Option<(Cow<'static, str>, Txn)>,
}

impl ServerSettings {
    /// Nothing to put back.
    pub(crate) fn none() -> Self {
        Self { restore: None }
    }

    /// `restore` puts `txn`'s session back.
    pub(crate) fn pushed(restore: Option<Cow<'static, str>>, txn: &Txn) -> Self {
        Self {
            restore: restore.map(|sql| (sql, txn.share())),
        }
    }

    /// Puts the session's settings back (bounded by `bound`, as a rollback).
    pub(crate) async fn put_back(mut self, label: &str, bound: Duration) {
        let Some((sql, txn)) = self.restore.take() else {
            return;
        };
        let restore = txn.as_database_transaction().execute_unprepared(&sql);
        match tokio::time::timeout(bound, restore).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(label, error = %e, "could not put the session's timeouts back")
            }
            Err(_) => {
                tracing::error!(
                    label,
                    "putting the session's timeouts back got no answer in time"
                )
            }
        }
    }
}

impl Drop for ServerSettings {
    fn drop(&mut self) {
        if let Some((sql, txn)) = self.restore.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            // the caller was dropped midway: the transaction (and its
            // connection) stays with this task until the session is put back
            runtime.spawn(async move {
                if let Err(e) = txn.as_database_transaction().execute_unprepared(&sql).await {
                    tracing::warn!(label = %txn.label(), error = %e, "could not put the session's timeouts back");
                }
            });
        }
    }
}

/// `None` when `deadline` passed before `fut` finished; `fut`'s output
/// otherwise (no deadline: it waits).
pub(crate) async fn within<F: std::future::Future>(
    deadline: Option<Instant>,
    fut: F,
) -> Option<F::Output> {
    match deadline {
        Some(at) => tokio::time::timeout_at(at, fut).await.ok(),
        None => Some(fut.await),
    }
}

/// The budget pushed to the server when `remaining` is left: a little less,
/// so that the server's own timeout answers first.
pub(crate) fn server_budget(remaining: Duration) -> Duration {
    remaining.saturating_sub((remaining / 10).min(SERVER_MARGIN_MAX))
}

/// The deadline error of `label`, started at `started`, ending in `phase`.
pub(crate) fn exceeded(
    label: &str,
    started: Instant,
    deadline: Instant,
    attempts: u32,
    phase: super::retry_event::Phase,
) -> DeadlineExceeded {
    DeadlineExceeded::new(
        label,
        deadline.saturating_duration_since(started),
        started.elapsed(),
        attempts,
        phase,
    )
}

impl AmbiguousCommit {
    /// `COMMIT` was sent, and gave no answer within
    /// [`COMMIT_GRACE`](super::COMMIT_GRACE) past the call's deadline.
    pub(crate) fn after_deadline(label: &str) -> Self {
        Self::new(
            label,
            DbErr::Custom(format!(
                "COMMIT gave no answer within {:?} past the call's deadline; it goes on in the \
                 background, and the after-commit hooks run if it commits",
                COMMIT_GRACE
            )),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_are_checked_against_zero_and_the_maximum() {
        assert_eq!(check(Duration::ZERO), Err(InvalidDeadline::NotPositive));
        assert!(matches!(
            check(MAX_TIMEOUT + Duration::from_secs(1)),
            Err(InvalidDeadline::TooLong { .. })
        ));
        assert_eq!(check(MAX_TIMEOUT), Ok(MAX_TIMEOUT));
        let past = Instant::now() - Duration::from_millis(1);
        assert_eq!(
            CallOptions::new("x").deadline(past).unwrap_err(),
            InvalidDeadline::NotPositive
        );
    }

    #[test]
    fn the_server_gets_a_little_less_than_what_is_left() {
        assert_eq!(
            server_budget(Duration::from_millis(500)),
            Duration::from_millis(450)
        );
        assert_eq!(
            server_budget(Duration::from_secs(10)),
            Duration::from_millis(9900)
        );
    }
}
