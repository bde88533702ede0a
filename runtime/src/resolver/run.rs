//! The replay loop: begin, run the body, commit; on a conflict roll back,
//! back off and run it again.

use std::error::Error as StdError;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::time::Duration;

use futures::FutureExt;
use sea_orm::{DatabaseTransaction, DbBackend, DbErr};
use tracing::Instrument;

use super::call_error::TransactionError;
use super::carried;
use super::classify::{Conflict, aborts_transaction, is_lost_connection};
use super::conflict_resolver::{ConflictResolver, RetryEvent};
use super::contention::{Contention, Permit, Turn};
use super::coordination;
use super::error::{
    AbortedTransaction, AmbiguousCommit, CannotResolveDatabaseConflict, NestedTransaction,
};
use super::key::lock_id;
use super::lease::LeaseGuard;
use super::nesting;
use super::plan::Plan;
use super::policy::{CallOptions, Isolation};
use super::sqlite_writer::{TxnWriter, WriteSlot};
use super::txn::{Hook, Txn, TxnParts, run_hooks};
use crate::panic::panic_message;

/// The future a managed body returns: boxed, `Send`, borrowing the [`Txn`]
/// (for `'t`) and possibly the caller's data (for `'a`, which outlives `'t`).
///
/// Write it as `Box::pin(async move { … })`: the coercion does the rest. The
/// `'a` parameter is what lets a body borrow the caller's arguments (`&str`,
/// `&self`, …); with only `'t` the body could capture nothing borrowed.
pub type BodyFuture<'a, 't, T, E> = Pin<Box<dyn ScopedFuture<'a, 't, Output = Result<T, E>> + 't>>;

/// `&'t &'a ()`: naming it in [`BodyFuture`] tells the compiler that `'a: 't`
/// inside the body closure (an implied bound), so the body may borrow data
/// that lives for `'a`.
#[doc(hidden)]
pub type ImpliedBound<'a, 't> = std::marker::PhantomData<&'t &'a ()>;

/// A `Send` future that lives for `'t` and may borrow data living for `'a`
/// (`'a: 't`). Implemented for every such future; see [`BodyFuture`].
pub trait ScopedFuture<'a, 't, Bound = ImpliedBound<'a, 't>>: Future + Send + 't {}

impl<'a: 't, 't, Fut: Future + Send + 't> ScopedFuture<'a, 't> for Fut {}

/// A managed body: called once per run with that run's [`Txn`], it returns
/// the run's [`BodyFuture`]. Every `FnMut(&Txn) -> BodyFuture + Send` closure
/// is one (write its parameter type, `|txn: &Txn|`).
///
/// Sealed: implemented for every such closure, by nobody else.
///
/// ```
/// use conflictkit::Txn;
/// use conflictkit::resolver::ManagedBody;
/// fn body<'a, F: ManagedBody<'a, u32, conflictkit::Error>>(f: F) -> F { f }
/// let _ = body(|txn: &Txn| Box::pin(async move { Ok(txn.attempt()) }));
/// ```
pub trait ManagedBody<'a, T, E>:
    for<'t> FnMut(&'t Txn) -> BodyFuture<'a, 't, T, E> + Send + sealed::SealedBody<'a, T, E>
{
}

impl<'a, T, E, F> ManagedBody<'a, T, E> for F where
    F: for<'t> FnMut(&'t Txn) -> BodyFuture<'a, 't, T, E> + Send
{
}

mod sealed {
    use super::{BodyFuture, Txn};

    pub trait SealedBody<'a, T, E> {}
    impl<'a, T, E, F> SealedBody<'a, T, E> for F where
        F: for<'t> FnMut(&'t Txn) -> BodyFuture<'a, 't, T, E> + Send
    {
    }
}

tokio::task_local! {
    /// The managed transaction running in this task, so that a nested managed
    /// call joins it instead of opening a second transaction.
    static ACTIVE: Active;
}

struct Active {
    resolver: ConflictResolver,
    txn: Txn,
}

/// The admission permit of one run and its lease of the database lock
/// across processes, and when to give them back.
struct Release {
    permit: Option<Permit>,
    /// Left after `COMMIT` answered, whatever the engine: a lease given back
    /// while its last run commits would be given back (and taken again)
    /// between every two runs of a process that runs one call at a time.
    db_lock: Option<LeaseGuard>,
    /// Give the permit back before `COMMIT` rather than after the run.
    before_commit: bool,
}

impl Release {
    fn before_commit(&mut self) {
        if let Some(permit) = &self.permit {
            permit.committing();
        }
        if self.before_commit {
            self.permit = None;
        }
    }
}

/// Where a run of a managed call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Beginning the transaction (nothing ran yet).
    Begin,
    /// The body, or an error it ignored (see [`Txn`]).
    Body,
    /// `COMMIT`, which answered with a definite error (an unknown outcome is
    /// an [`AmbiguousCommit`], never replayed).
    Commit,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Begin => "begin",
            Phase::Body => "body",
            Phase::Commit => "commit",
        })
    }
}

/// How one run of the body ended.
enum Attempt<T, E> {
    Committed(T),
    /// Failed in `Phase`: replayed if the error is a conflict.
    Failed(E, Phase),
    /// Failed for good: never classified, never replayed.
    Final(E),
}

/// `file:line` of the caller: the label of a closure-form managed call.
#[track_caller]
fn caller_label() -> String {
    let at = std::panic::Location::caller();
    format!("{}:{}", at.file(), at.line())
}

impl ConflictResolver {
    /// Runs `body` in a transaction and replays it on serialization conflicts
    /// (from the body or from `COMMIT`), up to the resolver's `retries` replays.
    /// The closure form of `#[managed_transaction]`.
    ///
    /// `body` is called once per run with a fresh [`Txn`]; it returns a boxed
    /// future (`Box::pin(async move { … })`) that may borrow the `Txn` and the
    /// caller's data. Errors that are not conflicts
    /// are returned unchanged after the rollback; when every run conflicts the
    /// result is [`CannotResolveDatabaseConflict`] (converted into `E`).
    ///
    /// **Nesting.** A managed call made while another managed transaction of
    /// the same resolver runs in the same task *joins* it: its body runs once
    /// inside the outer transaction, with no retry and no stats of its own; a
    /// conflict propagates to the outermost call, which replays everything.
    /// There are never SAVEPOINT replays. Made through *another* resolver on
    /// the same database, or while a [`transaction()`](Self::transaction)
    /// guard on the same database is open in the same task, it fails at once
    /// with [`NestedTransaction`] (its own transaction would wait for the
    /// outer one's locks forever); on another database it runs as a
    /// transaction of its own. A task *spawned* from a managed body (or from
    /// a guard's task) is not the same task: a managed call there runs as a
    /// transaction of its own, and if the body awaits it while holding locks
    /// it needs, it waits forever, so do not await such a task inside the
    /// body.
    ///
    /// ```
    /// use conflictkit::{ConflictResolver, Txn};
    /// use sea_orm::{ConnectionTrait, Database};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let resolver = ConflictResolver::new(Database::connect("sqlite::memory:").await?);
    /// let answer = resolver
    ///     .managed(|txn: &Txn| Box::pin(async move {
    ///         txn.execute_unprepared("CREATE TABLE IF NOT EXISTS t (x INTEGER)").await?;
    ///         Ok::<_, conflictkit::Error>(42)
    ///     }))
    ///     .await?;
    /// assert_eq!(answer, 42);
    /// # Ok::<(), conflictkit::Error>(()) }).unwrap();
    /// ```
    #[track_caller]
    pub fn managed<'a, F, T, E>(&self, body: F) -> impl Future<Output = Result<T, E>> + Send
    where
        F: ManagedBody<'a, T, E>,
        T: Send,
        E: TransactionError,
    {
        self.run(CallOptions::new(caller_label()), body)
    }

    /// Runs `body` once in a transaction: a conflict becomes
    /// [`CannotResolveDatabaseConflict`] at once. The closure form of
    /// `#[managed_non_retryable_transaction]`.
    ///
    /// ```
    /// use conflictkit::{ConflictResolver, Txn};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let resolver = ConflictResolver::new(sea_orm::Database::connect("sqlite::memory:").await?);
    /// let v = resolver
    ///     .managed_non_retryable(|_txn: &Txn| Box::pin(async { Ok::<_, conflictkit::Error>(1) }))
    ///     .await?;
    /// assert_eq!(v, 1);
    /// # Ok::<(), conflictkit::Error>(()) }).unwrap();
    /// ```
    #[track_caller]
    pub fn managed_non_retryable<'a, F, T, E>(
        &self,
        body: F,
    ) -> impl Future<Output = Result<T, E>> + Send
    where
        F: ManagedBody<'a, T, E>,
        T: Send,
        E: TransactionError,
    {
        self.run(CallOptions::new(caller_label()).non_retryable(), body)
    }

    /// Runs `body` with per-call options (label, retries, isolation, …):
    /// what the macros expand to.
    ///
    /// ```
    /// use conflictkit::{ConflictResolver, Txn};
    /// use conflictkit::resolver::CallOptions;
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let resolver = ConflictResolver::new(sea_orm::Database::connect("sqlite::memory:").await?);
    /// let opts = CallOptions::new("demo::read").read_only(true).retries(0);
    /// let v = resolver
    ///     .run(opts, |txn: &Txn| Box::pin(async move { Ok::<_, conflictkit::Error>(txn.attempt()) }))
    ///     .await?;
    /// assert_eq!(v, 1);
    /// # Ok::<(), conflictkit::Error>(()) }).unwrap();
    /// ```
    pub async fn run<'a, F, T, E>(&self, options: CallOptions, mut body: F) -> Result<T, E>
    where
        F: ManagedBody<'a, T, E>,
        T: Send,
        E: TransactionError,
    {
        if let Some(outer) = self.active_txn() {
            tracing::debug!(label = %options.label(), outer = %outer.label(), "joining the enclosing managed transaction");
            return body(&outer).await;
        }
        if let Some(refusal) = self.refuse_nested(options.label(), true).await {
            self.inner.stats.error();
            return Err(E::from(refusal));
        }
        let plan = Plan::resolve(options, &self.inner);
        let span = tracing::info_span!("managed_transaction", label = %plan.label(), attempts = tracing::field::Empty);
        self.replay_loop(&plan, &mut body).instrument(span).await
    }

    /// Why a transaction of `label` may not begin in this task: another
    /// transaction on the same database is open in it (a managed body of
    /// any resolver, or, for a managed call (`guards`), a
    /// [`transaction()`](Self::transaction) guard), and the new one would
    /// wait for its locks forever. A managed call of this resolver inside
    /// its own managed body joins instead (checked before). Two guards in
    /// one task are two explicit transactions, as two sessions are: allowed.
    pub(crate) async fn refuse_nested(&self, label: &str, guards: bool) -> Option<DbErr> {
        if let Some((outer, outer_label)) = self.enclosing_managed().await
            && self.same_database(&outer).await
        {
            let advice = if outer.id() == self.id() {
                "run its statements on the managed body's `txn` instead"
            } else {
                "call it with the caller's resolver, so that it joins the caller's transaction, \
                 or after the caller returns"
            };
            return Some(carried::into_db_err(NestedTransaction::new(
                label,
                &outer_label,
                advice,
            )));
        }
        let open = if guards {
            nesting::guards_in_this_task()
        } else {
            Vec::new()
        };
        for guard in open {
            if self.same_database(&guard).await {
                return Some(carried::into_db_err(NestedTransaction::new(
                    label,
                    "ConflictResolver::transaction",
                    "run its statements on the open guard's `txn`, or commit or drop the guard \
                     first",
                )));
            }
        }
        None
    }

    /// The resolver and label of the managed transaction running in this
    /// task, if any, with that resolver's database identity learnt through
    /// the open transaction (its pool may have no connection left).
    async fn enclosing_managed(&self) -> Option<(ConflictResolver, String)> {
        let (outer, txn) = ACTIVE
            .try_with(|a| (a.resolver.clone(), a.txn.share()))
            .ok()?;
        if outer.id() != self.id() {
            outer.learn_identity(txn.as_database_transaction()).await;
        }
        let label = txn.label().to_owned();
        Some((outer, label))
    }

    fn active_txn(&self) -> Option<Txn> {
        ACTIVE
            .try_with(|a| (a.resolver.id() == self.id()).then(|| a.txn.share()))
            .ok()
            .flatten()
    }

    async fn replay_loop<'a, F, T, E>(&self, plan: &Plan, body: &mut F) -> Result<T, E>
    where
        F: ManagedBody<'a, T, E>,
        T: Send,
        E: TransactionError,
    {
        let stats = &self.inner.stats;
        let gate = (plan.contention == Contention::Adaptive)
            .then(|| self.inner.gates.gate(plan.label(), plan.key));
        let backend = self.inner.db.get_database_backend();
        // A queued run may begin while it waits: on PostgreSQL and MySQL the
        // snapshot is taken by the first statement, not by BEGIN. SQLite's
        // BEGIN IMMEDIATE takes the write lock, so there it waits first.
        let begin_while_queued = backend != DbBackend::Sqlite;
        // InnoDB's SERIALIZABLE reads are locking reads of the latest
        // committed rows: the next run of the label may start while this
        // one commits (its reads wait for the commit, as FOR UPDATE would).
        let admit_next_before_commit =
            backend == DbBackend::MySql && plan.isolation == Isolation::Serializable;
        let lock_across_processes = coordination::supported(&self.inner.db);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let turn = plan.turn(attempt);
            // Across processes: a last replay, and every run of a hot gate,
            // runs inside its process's lease of the database lock of its
            // (label, key) (see `lease`), from after BEGIN (which takes no
            // snapshot) to before its first statement (which does). The run
            // says so before it queues, so that the lease is kept for it.
            let ticket = match &gate {
                Some(g) if lock_across_processes && (turn == Turn::Last || g.hot()) => {
                    Some(self.inner.leases.ticket(lock_id(plan.label(), plan.key)))
                }
                _ => None,
            };
            // Admission comes before the first statement: a queued run takes
            // its snapshot after the one ahead of it finished.
            let (permit, begun) = match &gate {
                Some(g) => {
                    let begin = begin_while_queued.then(|| self.begin(plan));
                    let (permit, begun) = g.admit(turn, begin).await;
                    (Some(permit), begun)
                }
                None => (None, None),
            };
            let admitted = permit.as_ref().map(Permit::admission);
            // A run admitted at once begins before it enters the lease
            // (where BEGIN takes no snapshot), off the serialised path. Never
            // both at once: a run holding the lease (a lock-pool connection)
            // while it waits for a pooled connection, beside runs holding
            // pooled connections while they wait for a lock-pool connection,
            // would be a lock-order cycle (pool, then lease, always).
            let (entered, begun) = match ticket {
                Some(ticket) if begun.is_none() && begin_while_queued => {
                    let begun = self.begin(plan).await;
                    let entered = match &begun {
                        Ok(_) => Some(ticket.enter(turn == Turn::Last).await),
                        // nothing to run: the ticket goes unused
                        Err(_) => None,
                    };
                    (entered, Some(begun))
                }
                Some(ticket) => (Some(ticket.enter(turn == Turn::Last).await), begun),
                None => (None, begun),
            };
            let db_lock = match entered {
                Some(entered) => match entered {
                    Ok(guard) => {
                        // Other processes want this key too: the gate stays
                        // hot while the lease keeps their runs and ours from
                        // conflicting (else it would cool down and its runs
                        // would go without the lock, beside theirs).
                        if guard.contended()
                            && let Some(g) = &gate
                        {
                            g.mark_hot();
                        }
                        Some(guard)
                    }
                    Err(e) => {
                        tracing::warn!(label = %plan.label(), error = %e, "could not take the contention lock across processes; running without it");
                        None
                    }
                },
                None => None,
            };
            let ran_alone = turn == Turn::Last && db_lock.is_some();
            let release = Release {
                permit,
                db_lock,
                before_commit: admit_next_before_commit,
            };
            let outcome = self.attempt(plan, body, attempt, begun, release).await;
            let (err, phase) = match outcome {
                Attempt::Committed(value) => {
                    if let Some(g) = &gate {
                        g.on_commit();
                    }
                    stats.success();
                    tracing::Span::current().record("attempts", attempt);
                    return Ok(value);
                }
                Attempt::Failed(err, phase) => (err, phase),
                Attempt::Final(err) => {
                    stats.error();
                    return Err(err);
                }
            };
            let Some(conflict) = self.classify(&err) else {
                stats.error();
                return Err(err);
            };
            if let (Some(g), Some(admitted)) = (&gate, admitted) {
                g.on_conflict(
                    admitted,
                    phase == Phase::Commit,
                    backend == DbBackend::MySql,
                );
            }
            if plan.retryable {
                stats.retry();
            }
            if !plan.replay_left(attempt) {
                stats.unresolved();
                tracing::Span::current().record("attempts", attempt);
                if ran_alone {
                    // every run that asks for the lock was held off: the
                    // winner took none (a process cold on this key) or was
                    // another function
                    tracing::warn!(label = %plan.label(), attempt, code = %conflict, "giving up on a serialization conflict, though the last run held the lock across processes exclusive: a run that did not ask for it won (a process that had seen no conflict on this key recently, or another function writing the same rows)");
                } else {
                    tracing::warn!(label = %plan.label(), attempt, code = %conflict, "giving up on a serialization conflict");
                }
                return Err(E::from(CannotResolveDatabaseConflict::new(
                    plan.label(),
                    attempt,
                    plan.retries,
                    err,
                )));
            }
            // While the gate queues this label behind the transactions it
            // conflicted with, sleeping as well would only idle the connection.
            let queued = gate.as_ref().is_some_and(|g| g.queue_spaces_replay());
            self.before_replay(plan, attempt, &conflict, phase, queued)
                .await;
        }
    }

    /// Logs the conflict, calls `on_retry` and sleeps the backoff. The
    /// connection is already back in the pool: the attempt rolled back.
    async fn before_replay(
        &self,
        plan: &Plan,
        attempt: u32,
        conflict: &Conflict,
        phase: Phase,
        queued: bool,
    ) {
        let delay = if queued {
            Duration::ZERO
        } else {
            self.inner.backoff.delay(attempt)
        };
        tracing::info!(
            label = %plan.label(),
            attempt,
            code = %conflict,
            %phase,
            delay_ms = delay.as_secs_f64() * 1000.0,
            "serialization conflict; replaying the transaction"
        );
        if let Some(cb) = &self.inner.on_retry {
            cb(&RetryEvent {
                label: plan.label(),
                attempt,
                conflict,
                phase,
                delay,
            });
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }

    /// One run: begin, body, commit (or roll back). A panic in the body rolls
    /// back explicitly, so the pooled connection is clean, then resumes.
    async fn attempt<'a, F, T, E>(
        &self,
        plan: &Plan,
        body: &mut F,
        attempt: u32,
        begun: Option<Result<DatabaseTransaction, DbErr>>,
        mut release: Release,
    ) -> Attempt<T, E>
    where
        F: ManagedBody<'a, T, E>,
        E: From<DbErr> + StdError + 'static,
    {
        // A replay on SQLite begins behind the writer queue, whatever the mode,
        // so it cannot fail again for a stale snapshot.
        let begun = match begun {
            Some(begun) => {
                begun.map(|dbtx| Txn::new(dbtx, TxnWriter::default(), plan.label(), attempt))
            }
            None => self.begin_txn(plan, attempt, attempt > 1).await,
        };
        let txn = match begun {
            Ok(t) => t,
            Err(e) => return Attempt::Failed(E::from(e), Phase::Begin),
        };
        let active = Active {
            resolver: self.clone(),
            txn: txn.share(),
        };
        let outcome = AssertUnwindSafe(ACTIVE.scope(active, body(&txn)))
            .catch_unwind()
            .await;
        let TxnParts {
            dbtx,
            hooks,
            slot,
            first_error,
        } = match txn.into_parts() {
            Ok(parts) => parts,
            // The body kept a handle (moved into a spawned task, or returned):
            // nothing can be committed. Dropping our handle lets the last one
            // roll back when it goes.
            Err(in_use) => {
                tracing::error!(label = %plan.label(), "{in_use}");
                return Attempt::Final(E::from(DbErr::Custom(in_use.to_string())));
            }
        };
        let label = plan.label();
        match outcome {
            Ok(Ok(value)) => {
                if let Some(swallowed) = first_error
                    && let Some(verdict) = self.swallowed(label, swallowed)
                {
                    self.rollback(label, dbtx, "after an error the body ignored")
                        .await;
                    drop(slot);
                    return match verdict {
                        Swallowed::Conflict(e) => Attempt::Failed(E::from(e), Phase::Body),
                        Swallowed::Aborted(e) => Attempt::Final(E::from(e)),
                    };
                }
                if plan.replay_left(attempt)
                    && let Some(inject) = &self.inner.inject
                    && inject.hit()
                {
                    tracing::info!(
                        label,
                        attempt,
                        "injecting a conflict (conflict injection is on)"
                    );
                    self.rollback(label, dbtx, "for an injected conflict").await;
                    drop(slot);
                    let injected = carried::into_db_err(inject.conflict(label));
                    return Attempt::Failed(E::from(injected), Phase::Body);
                }
                release.before_commit();
                match commit_detached(label, dbtx, hooks, slot, release.db_lock.take()).await {
                    Ok(()) => Attempt::Committed(value),
                    Err(Committing::Failed(e)) => Attempt::Failed(E::from(e), Phase::Commit),
                    Err(Committing::Unknown(e)) => {
                        tracing::error!(label, error = %e, "the outcome of COMMIT is unknown; not replaying");
                        Attempt::Final(E::from(carried::into_db_err(AmbiguousCommit::new(
                            label, e,
                        ))))
                    }
                }
            }
            Ok(Err(err)) => {
                self.rollback(label, dbtx, "after an error in the transaction body")
                    .await;
                drop(slot);
                // A conflict the body ignored, then another error it returned
                // (on PostgreSQL every statement after the conflict fails with
                // 25P02): the conflict is what happened, and is replayed.
                match first_error {
                    Some(first)
                        if self.classify(&err).is_none() && self.classify(&first).is_some() =>
                    {
                        tracing::warn!(label, error = %first, returned = %err, "the transaction body ignored a serialization conflict, then failed; replaying it");
                        Attempt::Failed(E::from(first), Phase::Body)
                    }
                    _ => Attempt::Failed(err, Phase::Body),
                }
            }
            Err(panic) => {
                tracing::error!(label, panic = %panic_message(&*panic), "the transaction body panicked; rolling back");
                self.rollback(label, dbtx, "after a panic in the transaction body")
                    .await;
                drop(slot);
                std::panic::resume_unwind(panic)
            }
        }
    }
}

/// What an error ignored before `COMMIT` makes of a transaction that was
/// about to commit.
enum Swallowed {
    /// A serialization conflict: roll back (and replay, in a managed call).
    Conflict(DbErr),
    /// The database aborted the transaction: roll back and fail with this
    /// ([`AbortedTransaction`], carried in a `DbErr`).
    Aborted(DbErr),
}

impl ConflictResolver {
    /// What an error the body ignored before returning `Ok` makes of the
    /// run: `None` when the transaction is still good to commit.
    fn swallowed(&self, label: &str, swallowed: DbErr) -> Option<Swallowed> {
        if self.classify(&swallowed).is_some() {
            tracing::warn!(label, error = %swallowed, "the transaction body ignored a serialization conflict; not committing");
            return Some(Swallowed::Conflict(swallowed));
        }
        if aborts_transaction(self.inner.db.get_database_backend(), &swallowed) {
            tracing::error!(label, error = %swallowed, "the transaction body ignored an error that aborted the transaction; failing the call");
            return Some(Swallowed::Aborted(carried::into_db_err(
                AbortedTransaction::new(label, swallowed),
            )));
        }
        tracing::debug!(label, error = %swallowed, "the transaction body handled a statement error; committing the rest");
        None
    }

    /// Commits a [`transaction()`](Self::transaction) guard with the
    /// managed path's checks and its detached `COMMIT` (see [`Txn::commit`]).
    pub(crate) async fn commit_guard(&self, label: &str, parts: TxnParts) -> Result<(), DbErr> {
        let TxnParts {
            dbtx,
            hooks,
            slot,
            first_error,
        } = parts;
        if let Some(swallowed) = first_error
            && let Some(verdict) = self.swallowed(label, swallowed)
        {
            self.rollback(label, dbtx, "after an error the caller ignored")
                .await;
            drop(slot);
            return Err(match verdict {
                Swallowed::Conflict(e) | Swallowed::Aborted(e) => e,
            });
        }
        match commit_detached(label, dbtx, hooks, slot, None).await {
            Ok(()) => Ok(()),
            Err(Committing::Failed(e)) => Err(e),
            Err(Committing::Unknown(e)) => {
                tracing::error!(label, error = %e, "the outcome of COMMIT is unknown");
                Err(carried::into_db_err(AmbiguousCommit::new(label, e)))
            }
        }
    }
}

impl ConflictResolver {
    /// Rolls back, logging a failure (the connection goes back to the pool
    /// either way; sqlx rolls it back on return). Bounded by the resolver's
    /// [`rollback_timeout`](super::ConflictResolverBuilder::rollback_timeout):
    /// on expiry the transaction is dropped, and the call goes on.
    async fn rollback(&self, label: &str, dbtx: DatabaseTransaction, why: &str) {
        let bound = self.inner.rollback_timeout;
        match tokio::time::timeout(bound, dbtx.rollback()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(label, error = %e, "rollback failed {why}"),
            Err(_) => tracing::error!(
                label,
                timeout_ms = bound.as_millis() as u64,
                "rollback {why} got no answer in time; dropping the transaction"
            ),
        }
    }
}

/// Why a detached `COMMIT` did not succeed.
enum Committing {
    /// The database answered with an error: nothing committed.
    Failed(DbErr),
    /// No answer (the connection failed, the task died): it may have committed.
    Unknown(DbErr),
}

/// Commits in a task of its own, then releases the SQLite write slot and,
/// if it committed, runs the after-commit hooks. Once `COMMIT` is under way,
/// finishing it and running the hooks no longer depend on the caller: a
/// caller dropped meanwhile only abandons the result.
async fn commit_detached(
    label: &str,
    dbtx: DatabaseTransaction,
    hooks: Vec<Hook>,
    slot: Option<WriteSlot>,
    db_lock: Option<LeaseGuard>,
) -> Result<(), Committing> {
    let owned_label = label.to_owned();
    let task = tokio::spawn(async move {
        let committed = dbtx.commit().await;
        drop(slot);
        // after COMMIT answered, or failed to: an ambiguous end unlocks too
        drop(db_lock);
        if committed.is_ok() {
            run_hooks(&owned_label, hooks);
        }
        committed
    });
    match task.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) if is_lost_connection(&e) => Err(Committing::Unknown(e)),
        Ok(Err(e)) => Err(Committing::Failed(e)),
        Err(join) => Err(Committing::Unknown(DbErr::Custom(format!(
            "the COMMIT task of `{label}` ended without an answer: {join}"
        )))),
    }
}
