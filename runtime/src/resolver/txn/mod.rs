//! [`Txn`]: the transaction a managed body receives, a full SeaORM
//! connection: statements ([`ConnectionTrait`]), savepoints
//! ([`TransactionTrait`](sea_orm::TransactionTrait), see `session`) and
//! streams ([`StreamTrait`](sea_orm::StreamTrait), see `stream`), all run
//! through its first-error record and the SQLite writer queue.

mod connection;
mod session;
mod stream;

pub use session::TxnSavepoint;

use std::sync::{Arc, Mutex};

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr};

use super::engine::Engine;
use super::guards::OpenGuard;
use super::inner::ConflictResolver;
use super::sqlite_writer::{TxnWriter, WriteSlot};
use crate::panic::panic_message;
use crate::sync::lock;

/// A hook that runs after the final successful commit.
pub(crate) type Hook = Box<dyn FnOnce() + Send + 'static>;

/// The transaction a managed body runs in.
///
/// It is usable wherever sea-orm wants a connection (`Entity::find().one(txn)`,
/// `active_model.update(txn)`, raw statements), because it implements
/// [`ConnectionTrait`], [`TransactionTrait`](sea_orm::TransactionTrait)
/// (`txn.begin()` and `txn.transaction(…)` open a savepoint, a
/// [`TxnSavepoint`]; `ActiveModelEx` saves of nested models use it) and
/// [`StreamTrait`](sea_orm::StreamTrait) (`Entity::find().stream(txn)`).
/// Generic helpers written for any SeaORM connection accept `&Txn`. It adds [`after_commit`](Txn::after_commit) for side
/// effects that must happen once, and only if the data really committed.
///
/// **Errors a body ignores still count.** The `Txn` records the first error
/// any statement run through it returned. If the body then returns `Ok`
/// anyway:
/// - a serialization conflict (40001, 1213, `SQLITE_BUSY`, …) rolls the
///   attempt back and replays it, as if the body had returned it;
/// - an error after which the database aborted the transaction (any failed
///   statement on PostgreSQL, a lost connection anywhere) fails the call with
///   [`AbortedTransaction`](super::AbortedTransaction): nothing it wrote
///   could commit, so the call never reports success;
/// - an error that leaves the transaction usable (a duplicate key on
///   MySQL/MariaDB or SQLite, whose statement alone failed) is the body's
///   business: the rest commits.
///
/// ```
/// use conflictkit::{ConflictResolver, Txn};
/// use sea_orm::{ConnectionTrait, Database};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let db = Database::connect("sqlite::memory:").await?;
/// let resolver = ConflictResolver::new(db);
/// let n: i64 = resolver
///     .managed(|txn: &Txn| Box::pin(async move {
///         txn.execute_unprepared("CREATE TABLE t (x INTEGER)").await?;
///         txn.execute_unprepared("INSERT INTO t VALUES (41)").await?;
///         let row = txn.query_one_raw(sea_orm::Statement::from_string(
///             txn.get_database_backend(), "SELECT x + 1 AS y FROM t")).await?.unwrap();
///         txn.after_commit(|| tracing::info!("committed"));
///         Ok::<_, conflictkit::Error>(row.try_get::<i64>("", "y")?)
///     }))
///     .await?;
/// assert_eq!(n, 42);
/// # Ok::<(), conflictkit::Error>(()) }).unwrap();
/// ```
pub struct Txn {
    state: Arc<TxnState>,
}

struct TxnState {
    inner: DatabaseTransaction,
    /// Set on a [`ConflictResolver::transaction`] guard (committed by its
    /// resolver, with the managed path's checks): its place among the guards
    /// open in its task.
    guard: Option<OpenGuard>,
    /// The resolver that began it: its rules say which recorded errors are
    /// conflicts (its own predicates too).
    resolver: ConflictResolver,
    writer: TxnWriter,
    /// The first error a statement returned through this `Txn`.
    first_error: Mutex<Option<DbErr>>,
    /// Set after an error that left the connection outside the transaction
    /// (SQLite rolled it back by itself; MySQL's driver awaits a reply that
    /// never comes): every later statement is refused without being run.
    outside: std::sync::atomic::AtomicBool,
    hooks: Mutex<Vec<Hook>>,
    /// Savepoints opened for nested managed calls so far (their names).
    savepoints: std::sync::atomic::AtomicU32,
    /// Savepoints of [`TxnSavepoint`] dropped without `commit` or
    /// `rollback`: their `ROLLBACK TO SAVEPOINT` is queued on the connection
    /// and sent before its next statement. Until a statement succeeds after
    /// it (which proves the rollback went through), an error recorded inside
    /// them still counts.
    dropped: Mutex<Vec<Mark>>,
    label: String,
    attempt: u32,
}

/// Where a [`Txn`] stood when a nested call's savepoint opened (see
/// `savepoint`): what rolling back to the savepoint takes back.
#[derive(Debug, Clone)]
pub(crate) struct Mark {
    /// The savepoint's number, unique in the transaction.
    pub(crate) number: u32,
    hooks: usize,
    clean: bool,
}

impl std::fmt::Debug for Txn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Txn")
            .field("label", &self.state.label)
            .field("attempt", &self.state.attempt)
            .finish_non_exhaustive()
    }
}

/// A [`Txn`] was still referenced when it had to be committed or rolled back:
/// it was moved into a spawned task, or returned out of the managed body.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the transaction of `{label}` is still in use elsewhere (moved into a spawned task or returned \
     from the body?); keep the `Txn` inside the managed body so it can be committed or rolled back"
)]
pub(crate) struct TxnStillInUse {
    label: String,
}

impl Txn {
    pub(crate) fn new(
        inner: DatabaseTransaction,
        writer: TxnWriter,
        label: &str,
        attempt: u32,
        resolver: &ConflictResolver,
    ) -> Self {
        Self::with_guard(inner, writer, label, attempt, resolver, None)
    }

    fn with_guard(
        inner: DatabaseTransaction,
        writer: TxnWriter,
        label: &str,
        attempt: u32,
        resolver: &ConflictResolver,
        guard: Option<OpenGuard>,
    ) -> Self {
        Self {
            state: Arc::new(TxnState {
                inner,
                guard,
                resolver: resolver.clone(),
                writer,
                first_error: Mutex::new(None),
                outside: std::sync::atomic::AtomicBool::new(false),
                hooks: Mutex::new(Vec::new()),
                savepoints: std::sync::atomic::AtomicU32::new(0),
                dropped: Mutex::new(Vec::new()),
                label: label.to_owned(),
                attempt,
            }),
        }
    }

    /// A guard of [`ConflictResolver::transaction`]: committed by
    /// [`commit`](Txn::commit) with the same checks as a managed call.
    pub(crate) fn guard(
        inner: DatabaseTransaction,
        writer: TxnWriter,
        label: &str,
        resolver: &ConflictResolver,
    ) -> Self {
        let guard = Some(OpenGuard::register(resolver));
        Self::with_guard(inner, writer, label, 1, resolver, guard)
    }

    /// Another handle to the same transaction (for joining nested calls).
    pub(crate) fn share(&self) -> Txn {
        Txn {
            state: self.state.clone(),
        }
    }

    /// Whether `other` is a handle to this same transaction.
    pub(crate) fn same_as(&self, other: &Txn) -> bool {
        Arc::ptr_eq(&self.state, &other.state)
    }

    /// Marks where the transaction stands as a nested call's savepoint opens.
    pub(crate) fn mark(&self) -> Mark {
        Mark {
            number: self
                .state
                .savepoints
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                + 1,
            hooks: lock(&self.state.hooks).len(),
            clean: lock(&self.state.first_error).is_none(),
        }
    }

    /// The transaction was rolled back to the savepoint opened at `mark` (a
    /// nested managed call's or a [`TxnSavepoint`]'s): the hooks registered
    /// since are dropped, and an error recorded since was handled (its
    /// statement's effects are undone), so it no longer counts against the
    /// call, unless it is a serialization conflict (it dooms the whole
    /// transaction: the outermost call replays it).
    pub(crate) fn rewind(&self, mark: &Mark) {
        lock(&self.state.hooks).truncate(mark.hooks);
        self.forgive(mark);
    }

    /// An error recorded since `mark` was undone by a rollback to the
    /// savepoint: it no longer counts, unless it is a conflict.
    fn forgive(&self, mark: &Mark) {
        if mark.clean {
            let mut first = lock(&self.state.first_error);
            if first
                .as_ref()
                .is_some_and(|e| self.state.resolver.classify(e).is_none())
            {
                *first = None;
            }
        }
    }

    /// A [`TxnSavepoint`] opened at `mark` was dropped: its hooks go now,
    /// its errors once a later statement proves the queued rollback ran.
    pub(crate) fn dropped(&self, mark: Mark) {
        lock(&self.state.hooks).truncate(mark.hooks);
        lock(&self.state.dropped).push(mark);
    }

    /// Whether an error left the connection outside the transaction (see
    /// `Engine::leaves_the_connection_outside_the_transaction`).
    pub(crate) fn is_outside(&self) -> bool {
        self.state
            .outside
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// The error a statement returned since `mark`, when there was none
    /// before it.
    pub(crate) fn recorded_since(&self, mark: &Mark) -> Option<DbErr> {
        if !mark.clean {
            return None;
        }
        lock(&self.state.first_error).clone()
    }

    /// Records `err` as if a statement of the body had returned it.
    pub(crate) fn record(&self, err: &DbErr) {
        let mut first = lock(&self.state.first_error);
        if first.is_none() {
            *first = Some(err.clone());
        }
    }

    /// Runs `hook` once, after the final successful commit of this managed
    /// call. If this attempt rolls back (a conflict that is replayed, an
    /// error, a panic), the hook is discarded: the replay registers its own.
    /// A panicking hook is logged and never turns the commit into an error.
    pub fn after_commit(&self, hook: impl FnOnce() + Send + 'static) {
        match self.state.hooks.lock() {
            Ok(mut hooks) => hooks.push(Box::new(hook)),
            Err(poisoned) => poisoned.into_inner().push(Box::new(hook)),
        }
    }

    /// Which run of the body this is: 1 for the first, 2 for the first replay, …
    pub fn attempt(&self) -> u32 {
        self.state.attempt
    }

    /// The label of the managed call (by default the function's path).
    pub fn label(&self) -> &str {
        &self.state.label
    }

    /// The underlying sea-orm transaction.
    ///
    /// Statements run on it directly are invisible to the resolver. Their
    /// errors are not recorded: an error the body ignores can no longer turn
    /// the call into a replay or a failure (see [`Txn`]), so return them.
    /// Nor are they refused after an error that ended the transaction on
    /// the connection (a deadlock on MySQL/MariaDB, `SQLITE_FULL`): run
    /// after one, a write commits on its own, outside the transaction, and
    /// a replay does it again. On PostgreSQL a statement error ignored here
    /// makes `COMMIT` answer `ROLLBACK` without an error.
    /// On SQLite they also bypass the writer queue: in a deferred
    /// transaction, a write made this way waits in SQLite's busy handler
    /// instead (still correct, slower under contention). Prefer running
    /// statements on the `Txn` itself.
    pub fn as_database_transaction(&self) -> &DatabaseTransaction {
        &self.state.inner
    }

    /// Commits a transaction begun with
    /// [`ConflictResolver::transaction`](super::ConflictResolver::transaction),
    /// then runs its after-commit hooks. (A managed body only gets `&Txn`: the
    /// resolver commits it.)
    ///
    /// It keeps the promises of a managed call's commit, except the replay:
    /// - `Ok` means the writes committed. An error a statement returned and
    ///   the caller ignored still counts (see [`Txn`]): a serialization
    ///   conflict rolls back and is returned (so
    ///   [`ConflictResolver::is_retryable`] says to run the whole
    ///   transaction again), and an error after which the database aborted
    ///   the transaction rolls back and returns
    ///   [`AbortedTransaction`](super::AbortedTransaction).
    /// - `COMMIT` runs in a task of its own: a caller dropped (or timed out)
    ///   while it is under way does not stop it, and the hooks run exactly
    ///   once if and only if it committed.
    /// - A `COMMIT` whose outcome is unknown (the connection failed before
    ///   the answer) returns [`AmbiguousCommit`](super::AmbiguousCommit).
    ///
    /// All of these arrive as a [`DbErr`]; find the typed ones with
    /// [`AbortedTransaction::find`](super::AbortedTransaction::find) and
    /// [`AmbiguousCommit::find`](super::AmbiguousCommit::find).
    ///
    /// ```
    /// use conflictkit::ConflictResolver;
    /// use sea_orm::{ConnectionTrait, Database};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let resolver = ConflictResolver::new(Database::connect("sqlite::memory:").await?);
    /// let txn = resolver.transaction().await?;
    /// txn.execute_unprepared("CREATE TABLE t (x INTEGER PRIMARY KEY)").await?;
    /// txn.execute_unprepared("INSERT INTO t VALUES (1)").await?;
    /// // a duplicate key fails its statement alone on SQLite: the rest commits
    /// let _ignored = txn.execute_unprepared("INSERT INTO t VALUES (1)").await;
    /// txn.commit().await?;
    /// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
    /// ```
    pub async fn commit(self) -> Result<(), DbErr> {
        let label = self.state.label.clone();
        let resolver = self
            .state
            .guard
            .is_some()
            .then(|| self.state.resolver.clone());
        let parts = self
            .into_parts()
            .map_err(|e| DbErr::Custom(e.to_string()))?;
        match resolver {
            Some(resolver) => resolver.commit_guard(&label, parts).await,
            // not reachable from outside the crate: a managed body only
            // ever gets `&Txn`
            None => {
                parts.dbtx.commit().await?;
                drop(parts.slot);
                run_hooks(&label, parts.hooks);
                Ok(())
            }
        }
    }

    /// Rolls back a transaction begun with
    /// [`ConflictResolver::transaction`](super::ConflictResolver::transaction),
    /// discarding its after-commit hooks. Dropping it does the same.
    pub async fn rollback(self) -> Result<(), DbErr> {
        let parts = self
            .into_parts()
            .map_err(|e| DbErr::Custom(e.to_string()))?;
        let rolled_back = parts.dbtx.rollback().await;
        drop(parts.slot);
        rolled_back
    }

    /// The sea-orm transaction, the hooks and the SQLite write slot, once
    /// this is the last handle.
    pub(crate) fn into_parts(self) -> Result<TxnParts, TxnStillInUse> {
        let label = self.state.label.clone();
        let state = Arc::into_inner(self.state).ok_or(TxnStillInUse { label })?;
        let hooks = match state.hooks.into_inner() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        let first_error = match state.first_error.into_inner() {
            Ok(e) => e,
            Err(poisoned) => poisoned.into_inner(),
        };
        Ok(TxnParts {
            dbtx: state.inner,
            hooks,
            slot: state.writer.into_slot(),
            first_error,
        })
    }

    /// Refuses a statement once an earlier error left the connection
    /// outside the transaction: run, it would commit on its own (SQLite) or
    /// hang (MySQL).
    fn usable(&self) -> Result<(), DbErr> {
        if self
            .state
            .outside
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return Err(DbErr::Custom(format!(
                "a statement of `{}` was not run: an earlier error ended the transaction on this \
                 connection (see the first error the transaction returned), so it would no longer \
                 run inside it; return the database errors you get (`?`)",
                self.state.label
            )));
        }
        Ok(())
    }

    /// [`observe`](Self::observe) for a statement that ran on the
    /// connection: a success also proves that the rollbacks queued by
    /// dropped savepoints went through (PostgreSQL sends them first and a
    /// failed one fails this statement; elsewhere a statement error aborts
    /// nothing), so what was recorded inside them was handled.
    fn observe_statement<T>(&self, result: Result<T, DbErr>) -> Result<T, DbErr> {
        let dropped = std::mem::take(&mut *lock(&self.state.dropped));
        let result = self.observe(result);
        if result.is_ok() {
            // the outermost dropped savepoint decides: it was first
            if let Some(mark) = dropped.first() {
                self.forgive(mark);
            }
        }
        result
    }

    /// Remembers the first statement error, even if the body ignores it.
    fn observe<T>(&self, result: Result<T, DbErr>) -> Result<T, DbErr> {
        if let Err(e) = &result {
            if Engine::new(self.state.inner.get_database_backend())
                .leaves_the_connection_outside_the_transaction(e)
            {
                self.state
                    .outside
                    .store(true, std::sync::atomic::Ordering::Release);
            }
            let mut first = match self.state.first_error.lock() {
                Ok(f) => f,
                Err(poisoned) => poisoned.into_inner(),
            };
            if first.is_none() {
                *first = Some(e.clone());
            }
        }
        result
    }
}

/// What a finished [`Txn`] leaves to commit or roll back. The SQLite write
/// slot, if taken, is held until `COMMIT` or `ROLLBACK` returned.
pub(crate) struct TxnParts {
    pub(crate) dbtx: DatabaseTransaction,
    pub(crate) hooks: Vec<Hook>,
    pub(crate) slot: Option<WriteSlot>,
    /// The first error a statement returned, whether the body handled it or not.
    pub(crate) first_error: Option<DbErr>,
}

/// Runs after-commit hooks, each isolated: a panic is logged and the rest still run.
pub(crate) fn run_hooks(label: &str, hooks: Vec<Hook>) {
    for hook in hooks {
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(hook)) {
            tracing::error!(
                label,
                panic = %panic_message(&panic),
                "an after-commit hook panicked; the transaction stays committed"
            );
        }
    }
}
