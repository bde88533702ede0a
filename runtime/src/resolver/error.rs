//! Error types of the resolver.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Mutex;

use sea_orm::DbErr;

use crate::sync::lock;

/// A serialization conflict that could not be resolved by replaying the
/// transaction: every allowed attempt ended in a conflict (or the call was
/// non-retryable).
///
/// The last conflict is kept as [`source()`](std::error::Error::source), so the
/// database error (SQLSTATE, error number) stays inspectable.
///
/// ```
/// use conflictkit::resolver::CannotResolveDatabaseConflict;
/// use sea_orm::{DbErr, RuntimeErr};
///
/// let last = DbErr::Query(RuntimeErr::Internal("could not serialize access".into()));
/// let err = CannotResolveDatabaseConflict::new("wallet::top_up", 4, 3, last);
/// assert_eq!(err.attempts(), 4);
/// assert!(err.to_string().contains("wallet::top_up"));
/// assert!(std::error::Error::source(&err).is_some());
/// ```
#[derive(Debug)]
pub struct CannotResolveDatabaseConflict {
    label: String,
    attempts: u32,
    retries: u32,
    last: GaveUp,
}

/// The `source()` of a give-up: the last conflict, behind a marker that
/// tells classification that the conflict was already given up on (a
/// give-up is not itself a conflict, as in the original). Transparent
/// otherwise: it shows and chains on as the last conflict does.
#[derive(Debug)]
pub(crate) struct GaveUp(Box<dyn StdError + Send + Sync + 'static>);

impl fmt::Display for GaveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl StdError for GaveUp {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}

impl CannotResolveDatabaseConflict {
    /// Builds the error for `label` after `attempts` runs with `retries`
    /// allowed replays, `last` being the final conflict.
    pub fn new(
        label: impl Into<String>,
        attempts: u32,
        retries: u32,
        last: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        Self {
            label: label.into(),
            attempts,
            retries,
            last: GaveUp(last.into()),
        }
    }

    /// The label of the managed call (by default the function's path).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// How many times the transaction body ran (every run ended in a conflict).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// How many replays the call allowed (`0` for a non-retryable call).
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// The last conflict error, as returned by the body or by `COMMIT`.
    pub fn last_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.last.0
    }

    /// The last conflict error, owned (a batch shares it among its members).
    pub(crate) fn into_last_error(self) -> Box<dyn StdError + Send + Sync + 'static> {
        self.last.0
    }
}

impl fmt::Display for CannotResolveDatabaseConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if super::driver_error::is_lost_connection(&*self.last.0) {
            write!(
                f,
                "could not run the transaction `{}`: the last of its {} attempts ({} retries \
                 allowed) lost its database connection before COMMIT, so nothing committed; \
                 check that the database is up and reachable",
                self.label, self.attempts, self.retries
            )
        } else if self.retries == 0 && self.attempts == 1 {
            write!(
                f,
                "cannot resolve the database conflict in `{}`: the transaction is not retryable \
                 and hit a serialization conflict",
                self.label
            )
        } else {
            write!(
                f,
                "could not replay the transaction `{}` even after {} attempts ({} retries allowed); \
                 raise `retries`, or reduce contention on the rows it touches",
                self.label, self.attempts, self.retries
            )
        }
    }
}

impl StdError for CannotResolveDatabaseConflict {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.last)
    }
}

/// A managed body returned `Ok` although a statement it ran had failed and
/// the database had aborted the transaction because of it (PostgreSQL after
/// any failed statement; MySQL/MariaDB after a deadlock), so nothing it wrote
/// could commit. The call fails with this error instead of reporting success;
/// the swallowed database error is its `source()`.
///
/// It reaches the caller inside a [`DbErr`] (so through any error type a
/// managed body uses); find it with [`AbortedTransaction::find`].
///
/// ```
/// use conflictkit::resolver::AbortedTransaction;
/// let err = sea_orm::DbErr::RecordNotFound("x".into());
/// assert!(AbortedTransaction::find(&err).is_none());
/// ```
#[derive(Debug, thiserror::Error)]
#[error(
    "a statement of `{label}` failed and the database aborted the transaction, so nothing was \
     committed, although the error was ignored and the transaction was to commit: return the \
     database errors you get (`?`) instead of ignoring them (the ignored error: {swallowed})"
)]
pub struct AbortedTransaction {
    label: String,
    #[source]
    swallowed: DbErr,
}

impl AbortedTransaction {
    pub(crate) fn new(label: &str, swallowed: DbErr) -> Self {
        Self {
            label: label.to_owned(),
            swallowed,
        }
    }

    /// The label of the managed call.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The database error the body ignored.
    pub fn swallowed(&self) -> &DbErr {
        &self.swallowed
    }

    /// The `AbortedTransaction` in `err` or anywhere along its `source()`
    /// chain (it travels inside a [`DbErr`]).
    pub fn find<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a Self> {
        super::carried::find(err)
    }
}

/// `COMMIT` was sent but its outcome is unknown: the connection failed
/// (I/O error, connection lost, SQLSTATE class `08`, MySQL 2006/2013) before
/// the database answered. The transaction may or may not have committed, so
/// it is **never replayed**, whatever codes or predicates the resolver
/// retries on: check the state in the database before doing the work again
/// (an idempotency key makes that easy). After-commit hooks did not run:
/// the error carries them, and a call with an idempotency key runs them
/// once when its key's lookup finds that this run committed; otherwise
/// they are dropped with the error, unrun.
///
/// It reaches the caller inside a [`DbErr`] (so through any error type a
/// managed body uses); find it with [`AmbiguousCommit::find`].
///
/// ```
/// use conflictkit::resolver::AmbiguousCommit;
/// let err = sea_orm::DbErr::RecordNotFound("x".into());
/// assert!(AmbiguousCommit::find(&err).is_none());
/// ```
#[derive(Debug, thiserror::Error)]
#[error(
    "the outcome of COMMIT of `{label}` is unknown (the connection failed while committing): it \
     may have committed and was not replayed; check the database before doing the work again \
     ({source})"
)]
pub struct AmbiguousCommit {
    label: String,
    #[source]
    source: DbErr,
    after_commit: UnrunHooks,
}

/// The after-commit hooks of a run whose `COMMIT` outcome is unknown, as
/// one closure that runs them (made where the hooks are, so that this
/// module needs nothing of the transaction's): taken at most once.
#[derive(Default)]
struct UnrunHooks(Mutex<Option<Box<dyn FnOnce() + Send>>>);

impl fmt::Debug for UnrunHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unrun = lock(&self.0).is_some();
        f.debug_struct("UnrunHooks").field("unrun", &unrun).finish()
    }
}

impl AmbiguousCommit {
    pub(crate) fn new(label: &str, source: DbErr) -> Self {
        Self {
            label: label.to_owned(),
            source,
            after_commit: UnrunHooks::default(),
        }
    }

    /// With `run`, which runs the run's after-commit hooks.
    pub(crate) fn with_after_commit(self, run: Box<dyn FnOnce() + Send>) -> Self {
        *lock(&self.after_commit.0) = Some(run);
        self
    }

    /// The run's after-commit hooks, once: for the caller that found out
    /// that the `COMMIT` succeeded (by its idempotency key).
    #[cfg(feature = "serde")]
    pub(crate) fn take_after_commit(&self) -> Option<Box<dyn FnOnce() + Send>> {
        lock(&self.after_commit.0).take()
    }

    /// The label of the managed call.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The `AmbiguousCommit` in `err` or anywhere along its `source()` chain
    /// (it travels inside a [`DbErr`]).
    pub fn find<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a Self> {
        super::carried::find(err)
    }
}

/// A second transaction on the same database was asked for from a task
/// that already has one open: a managed call inside a
/// [`transaction()`](super::ConflictResolver::transaction) guard, a guard
/// inside a managed body, or a managed call through another resolver inside
/// a managed body. Nothing ran. The second transaction would wait for the
/// first's row locks while the first's session idles (the task awaits the
/// second), and no database reports that as a deadlock: it would hang.
///
/// It reaches the caller inside a [`DbErr`]; find it with
/// [`NestedTransaction::find`].
///
/// ```
/// use conflictkit::resolver::NestedTransaction;
/// assert!(NestedTransaction::find(&sea_orm::DbErr::RecordNotFound("x".into())).is_none());
/// ```
#[derive(Debug, thiserror::Error)]
#[error(
    "`{inner}` was started inside the transaction `{outer}`, open in the same task on the same \
     database: its own transaction could wait forever for the locks of the first, whose session \
     idles meanwhile (no deadlock is ever reported); {advice}"
)]
pub struct NestedTransaction {
    inner: String,
    outer: String,
    advice: &'static str,
}

impl NestedTransaction {
    pub(crate) fn new(inner: &str, outer: &str, advice: &'static str) -> Self {
        Self {
            inner: inner.to_owned(),
            outer: outer.to_owned(),
            advice,
        }
    }

    /// The label of the refused call.
    pub fn label(&self) -> &str {
        &self.inner
    }

    /// The label of the transaction already open.
    pub fn outer_label(&self) -> &str {
        &self.outer
    }

    /// The `NestedTransaction` in `err` or anywhere along its `source()`
    /// chain (it travels inside a [`DbErr`]).
    pub fn find<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a Self> {
        super::carried::find(err)
    }
}

/// A managed call made inside another managed call of the same resolver
/// asked for an option that cannot apply to it: it runs as a savepoint of
/// its caller's transaction, which already has its isolation level and
/// access mode. Nothing ran.
///
/// It reaches the caller inside a [`DbErr`]; find it with
/// [`NestedOption::find`].
///
/// ```
/// use conflictkit::resolver::NestedOption;
/// assert!(NestedOption::find(&sea_orm::DbErr::RecordNotFound("x".into())).is_none());
/// ```
#[derive(Debug, thiserror::Error)]
#[error(
    "`{inner}` asks for {asked}, but it was called inside the managed transaction `{outer}` \
     ({outer_has}) and runs as a savepoint of it, which cannot change that; drop the option from \
     `{inner}`, give it to `{outer}`, or call `{inner}` outside `{outer}`"
)]
pub struct NestedOption {
    inner: String,
    outer: String,
    asked: String,
    outer_has: String,
}

impl NestedOption {
    pub(crate) fn new(inner: &str, outer: &str, asked: String, outer_has: String) -> Self {
        Self {
            inner: inner.to_owned(),
            outer: outer.to_owned(),
            asked,
            outer_has,
        }
    }

    /// The label of the refused call.
    pub fn label(&self) -> &str {
        &self.inner
    }

    /// The `NestedOption` in `err` or anywhere along its `source()` chain
    /// (it travels inside a [`DbErr`]).
    pub fn find<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a Self> {
        super::carried::find(err)
    }
}

/// A `durable` managed call was called inside another managed call
/// ([`CallOptions::durable`](super::CallOptions::durable),
/// `#[managed_transaction(durable)]`). It would have run as a savepoint whose
/// writes the caller could still roll back, so it refused, and nothing ran.
///
/// It reaches the caller inside a [`DbErr`]; find it with
/// [`DurableNested::find`].
///
/// ```
/// use conflictkit::resolver::DurableNested;
/// assert!(DurableNested::find(&sea_orm::DbErr::RecordNotFound("x".into())).is_none());
/// ```
#[derive(Debug, thiserror::Error)]
#[error(
    "`{inner}` is durable (its `Ok` means committed) but was called inside the managed \
     transaction `{outer}`, where it would only be a savepoint; call `{inner}` after `{outer}` \
     returns, or drop `durable` from `{inner}` to let it run as part of `{outer}`"
)]
pub struct DurableNested {
    inner: String,
    outer: String,
}

impl DurableNested {
    pub(crate) fn new(inner: &str, outer: &str) -> Self {
        Self {
            inner: inner.to_owned(),
            outer: outer.to_owned(),
        }
    }

    /// The label of the refused call.
    pub fn label(&self) -> &str {
        &self.inner
    }

    /// The label of the managed call it was called inside.
    pub fn outer(&self) -> &str {
        &self.outer
    }

    /// The `DurableNested` in `err` or anywhere along its `source()` chain
    /// (it travels inside a [`DbErr`]).
    pub fn find<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a Self> {
        super::carried::find(err)
    }
}

/// A write transaction on SQLite could not get its database's write slot
/// (SQLite lets one transaction write at a time; the resolver queues the
/// writers of the process for it). Nothing ran. It reaches the caller inside
/// a [`DbErr`]; find it with [`WriteSlotUnavailable::find`].
///
/// ```
/// use conflictkit::resolver::WriteSlotUnavailable;
/// let err = WriteSlotUnavailable::TimedOut { waited: std::time::Duration::from_secs(30) };
/// assert!(err.to_string().contains("CONFLICTKIT_SQLITE_SLOT_WAIT"));
/// assert!(WriteSlotUnavailable::find(&sea_orm::DbErr::RecordNotFound("x".into())).is_none());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteSlotUnavailable {
    /// Another write transaction of this process held the slot longer than
    /// the bound.
    #[error(
        "waited {waited:?} for the SQLite write slot of this database: another write \
         transaction of this process held it all that time (one left open, such as a \
         `resolver.transaction()` guard neither committed nor dropped, perhaps by this very \
         task?); finish it before beginning another write transaction, or raise \
         the bound with the CONFLICTKIT_SQLITE_SLOT_WAIT environment variable (seconds)"
    )]
    TimedOut {
        /// How long the transaction waited.
        waited: std::time::Duration,
    },
}

impl WriteSlotUnavailable {
    /// The `WriteSlotUnavailable` in `err` or anywhere along its `source()`
    /// chain (it travels inside a [`DbErr`]).
    pub fn find<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a Self> {
        super::carried::find(err)
    }
}

/// A ready-made error type for managed transactions: a database error or an
/// unresolved conflict. Use your own enum instead when the body has errors of
/// its own; it needs `From<DbErr>` and `From<CannotResolveDatabaseConflict>`.
///
/// ```
/// use conflictkit::Error;
/// use sea_orm::DbErr;
///
/// let err: Error = DbErr::RecordNotFound("account 7".into()).into();
/// assert!(matches!(err, Error::Db(_)));
/// assert_eq!(err.to_string(), "RecordNotFound Error: account 7");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error from the database that is not a conflict (or was raised
    /// outside a managed transaction).
    #[error(transparent)]
    Db(#[from] DbErr),
    /// Every attempt ended in a serialization conflict.
    #[error(transparent)]
    Unresolved(#[from] CannotResolveDatabaseConflict),
}

impl Error {
    /// Whether the call failed with an unknown `COMMIT` outcome
    /// ([`AmbiguousCommit`]): the work may have committed.
    pub fn is_ambiguous_commit(&self) -> bool {
        AmbiguousCommit::find(self).is_some()
    }

    /// Whether the body ignored a database error that aborted the
    /// transaction ([`AbortedTransaction`]): nothing was committed.
    pub fn is_aborted_transaction(&self) -> bool {
        AbortedTransaction::find(self).is_some()
    }
}
