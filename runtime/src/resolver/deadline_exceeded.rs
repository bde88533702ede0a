//! [`DeadlineExceeded`]: a managed call ran out of its time budget before
//! `COMMIT` (see [`deadline`](super::deadline)).

use std::error::Error as StdError;
use std::fmt;

use super::carried;
use super::engine::is_server_timeout;
use super::error::Error;
use super::retry_event::Phase;

/// A managed call ran out of its time budget (see
/// [`deadline`](super::deadline)) **before `COMMIT` was sent**: its
/// transaction was rolled back, so **nothing committed**, and the call is
/// not replayed. Run it again later, or give it a longer budget.
///
/// [`phase`](Self::phase) says what the call was doing when the budget ran
/// out: waiting for admission (the contention queue or the lease of the
/// lock across processes), beginning (a pooled connection, the SQLite write
/// slot, `BEGIN`), running the body, or about to back off and replay
/// ([`Phase::Backoff`](super::Phase::Backoff): what was left could not fit
/// another run, judged by the call's runs so far). `source()` is the
/// server's timeout error, or the conflict that was not replayed, when
/// there was one.
///
/// A budget that runs out *after* `COMMIT` was sent is an
/// [`AmbiguousCommit`](super::AmbiguousCommit) instead (the outcome is unknown).
///
/// It reaches the caller inside a [`DbErr`](sea_orm::DbErr) (so through any error type a
/// managed body uses); find it with [`DeadlineExceeded::find`] or
/// [`Error::is_deadline_exceeded`].
///
/// ```
/// use conflictkit::resolver::DeadlineExceeded;
/// assert!(DeadlineExceeded::find(&sea_orm::DbErr::RecordNotFound("x".into())).is_none());
/// ```
#[derive(Debug)]
pub struct DeadlineExceeded {
    label: String,
    budget: std::time::Duration,
    elapsed: std::time::Duration,
    attempts: u32,
    phase: Phase,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl DeadlineExceeded {
    pub(crate) fn new(
        label: &str,
        budget: std::time::Duration,
        elapsed: std::time::Duration,
        attempts: u32,
        phase: Phase,
    ) -> Self {
        Self {
            label: label.to_owned(),
            budget,
            elapsed,
            attempts,
            phase,
            source: None,
        }
    }

    /// With the error that ended the last run (a server timeout, a conflict
    /// not replayed).
    pub(crate) fn with_source(mut self, source: Box<dyn StdError + Send + Sync + 'static>) -> Self {
        self.source = Some(source);
        self
    }

    /// The label of the managed call.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The call's whole budget.
    pub fn budget(&self) -> std::time::Duration {
        self.budget
    }

    /// How long the call ran before it stopped.
    pub fn elapsed(&self) -> std::time::Duration {
        self.elapsed
    }

    /// Runs of the body begun (0: it ran out before the first one began).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// What the call was doing when the budget ran out.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether the server's own timeout (pushed from the budget) ended the
    /// last run: PostgreSQL `statement_timeout` / `lock_timeout`, MariaDB
    /// `max_statement_time` / `innodb_lock_wait_timeout`.
    pub fn by_server(&self) -> bool {
        self.source.as_deref().is_some_and(|e| is_server_timeout(e))
    }

    /// The `DeadlineExceeded` in `err` or anywhere along its `source()`
    /// chain (it travels inside a [`DbErr`](sea_orm::DbErr)).
    pub fn find<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a Self> {
        carried::find(err)
    }
}

impl fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` ran out of its time budget of {:?} after {:?} ",
            self.label, self.budget, self.elapsed
        )?;
        match self.phase {
            Phase::Backoff => write!(
                f,
                "and was not replayed after its run {}: what was left could not fit another run",
                self.attempts
            )?,
            Phase::Admission => f.write_str(
                "while it waited for admission (the contention queue of its label, or the lock \
                 across processes)",
            )?,
            phase => write!(f, "in {phase} of run {}", self.attempts)?,
        }
        f.write_str(
            "; it was rolled back before COMMIT, so nothing committed: run it again later, or give \
             it a longer timeout",
        )?;
        if let Some(source) = &self.source {
            write!(f, " (last error: {source})")?;
        }
        Ok(())
    }
}

impl StdError for DeadlineExceeded {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

impl Error {
    /// Whether the call ran out of its time budget before `COMMIT`
    /// ([`DeadlineExceeded`]): nothing was committed.
    ///
    /// ```
    /// let err: conflictkit::Error = sea_orm::DbErr::RecordNotFound("x".into()).into();
    /// assert!(!err.is_deadline_exceeded());
    /// ```
    pub fn is_deadline_exceeded(&self) -> bool {
        DeadlineExceeded::find(self).is_some()
    }
}
