//! One run of a managed call: begin, body, commit (or roll back), with the
//! checks that keep its promise (an error the body ignored still counts; a
//! `COMMIT` that started finishes, and its hooks run, whatever the caller
//! does; an unknown `COMMIT` outcome is never taken for success). The guard
//! of [`ConflictResolver::transaction`] commits through the same checks.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, Statement};

use super::body::ManagedBody;
use super::carried;
use super::contention::{LeaseGuard, Release};
use super::deadline::{self, ServerSettings, within};
use super::deadline_exceeded::DeadlineExceeded;
use super::driver_error::is_lost_connection;
use super::engine::{Restore, is_server_timeout};
use super::error::{AbortedTransaction, AmbiguousCommit};
use super::inner::ConflictResolver;
use super::metrics;
use super::nesting::{ACTIVE, Active};
use super::plan::Plan;
use super::retry_event::Phase;
use super::sqlite_writer::{TxnWriter, WriteSlot};
use super::txn::{Hook, Txn, TxnParts, run_hooks};
use crate::panic::panic_message;

/// How one run of the body ended.
pub(crate) enum Attempt<T, E> {
    Committed(T),
    /// Failed in `Phase`: replayed if the error is a conflict.
    Failed(E, Phase),
    /// Failed for good: never classified, never replayed.
    Final(E),
    /// The call's time budget ran out before `COMMIT` was sent (rolled
    /// back): never replayed.
    Expired(DeadlineExceeded),
}

impl ConflictResolver {
    /// One run: begin, body, commit (or roll back). A panic in the body rolls
    /// back explicitly, so the pooled connection is clean, then resumes.
    /// With a deadline, each wait is bounded by it (see `deadline`).
    pub(crate) async fn attempt<'a, F, T, E>(
        &self,
        plan: &Plan,
        body: &mut F,
        attempt: u32,
        begun: Option<Result<DatabaseTransaction, DbErr>>,
        mut release: Release,
    ) -> Attempt<T, E>
    where
        F: ManagedBody<'a, T, E>,
        E: From<DbErr> + StdError + Send + Sync + 'static,
    {
        let expired = |phase| {
            let at = plan.deadline.unwrap_or(plan.started);
            deadline::exceeded(plan.label(), plan.started, at, attempt, phase)
        };
        // A replay on SQLite begins behind the writer queue, whatever the mode,
        // so it cannot fail again for a stale snapshot.
        let begin = async {
            match begun {
                Some(begun) => begun
                    .map(|dbtx| Txn::new(dbtx, TxnWriter::default(), plan.label(), attempt, self)),
                None => self.begin_txn(plan, attempt, attempt > 1).await,
            }
        };
        let begun = match within(plan.deadline, begin).await {
            Some(begun) => begun,
            // BEGIN runs in a task of its own: a transaction nobody takes
            // rolls back
            None => return Attempt::Expired(expired(Phase::Begin)),
        };
        let txn = match begun {
            Ok(t) => t,
            Err(e) => return Attempt::Failed(E::from(e), Phase::Begin),
        };
        let (settings, server_until) = match plan.deadline {
            Some(at) => match self.push_budget(plan, &txn, at).await {
                Ok(pushed) => pushed,
                Err(settings) => {
                    self.abandon(plan.label(), txn, settings, release);
                    return Attempt::Expired(expired(Phase::Begin));
                }
            },
            None => (ServerSettings::none(), None),
        };
        let active = Active {
            resolver: self.clone(),
            txn: txn.share(),
            isolation: plan.isolation,
            read_only: plan.read_only,
        };
        let body_started = tokio::time::Instant::now();
        let run_body = AssertUnwindSafe(ACTIVE.scope(active, body(&txn))).catch_unwind();
        let Some(outcome) = within(plan.deadline, run_body).await else {
            metrics::body_time(plan, body_started.elapsed());
            // the body may be waiting for a statement: the rollback waits
            // for it (the server's timeout ends it), in a task of its own
            self.abandon(plan.label(), txn, settings, release);
            return Attempt::Expired(expired(Phase::Body));
        };
        metrics::body_time(plan, body_started.elapsed());
        settings
            .put_back(plan.label(), self.inner.defaults.rollback_timeout)
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
        // a server-side timeout that the pushed budget explains
        let timed_out = |err: &(dyn StdError + 'static)| {
            server_until.is_some_and(|until| tokio::time::Instant::now() >= until)
                && is_server_timeout(err)
        };
        match outcome {
            Ok(Ok(value)) => {
                if let Some(swallowed) = first_error {
                    if timed_out(&swallowed) {
                        self.rollback(label, dbtx, "after a server-side timeout")
                            .await;
                        drop(slot);
                        return Attempt::Expired(
                            expired(Phase::Body).with_source(Box::new(swallowed)),
                        );
                    }
                    if let Some(verdict) = self.swallowed(label, swallowed) {
                        self.rollback(label, dbtx, "after an error the body ignored")
                            .await;
                        drop(slot);
                        return match verdict {
                            Swallowed::Conflict(e) => Attempt::Failed(E::from(e), Phase::Body),
                            Swallowed::Aborted(e) => Attempt::Final(E::from(e)),
                        };
                    }
                }
                if plan
                    .deadline
                    .is_some_and(|at| tokio::time::Instant::now() >= at)
                {
                    self.rollback(label, dbtx, "at the call's deadline").await;
                    drop(slot);
                    return Attempt::Expired(expired(Phase::Body));
                }
                if plan.replay_left(attempt)
                    && let Some(inject) = &self.inner.defaults.inject
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
                release.at_commit();
                let commit_started = tokio::time::Instant::now();
                let committing = commit_detached(label, dbtx, hooks, slot, release.take_db_lock());
                let committed = match plan.deadline {
                    Some(at) => tokio::time::timeout_at(at + deadline::COMMIT_GRACE, committing)
                        .await
                        .ok(),
                    None => Some(committing.await),
                };
                metrics::commit_time(plan, commit_started.elapsed());
                match committed {
                    Some(Ok(())) => Attempt::Committed(value),
                    Some(Err(Committing::Failed(e))) if timed_out(&e) => {
                        Attempt::Expired(expired(Phase::Commit).with_source(Box::new(e)))
                    }
                    Some(Err(Committing::Failed(e))) => Attempt::Failed(E::from(e), Phase::Commit),
                    Some(Err(Committing::Unknown(e, hooks))) => {
                        tracing::error!(label, error = %e, "the outcome of COMMIT is unknown; not replaying");
                        // the hooks go with the error: run by an idempotent
                        // call whose key shows that this run committed
                        let owned = label.to_owned();
                        let ambiguous = AmbiguousCommit::new(label, e)
                            .with_after_commit(Box::new(move || run_hooks(&owned, hooks)));
                        Attempt::Final(E::from(carried::into_db_err(ambiguous)))
                    }
                    None => {
                        tracing::error!(
                            label,
                            grace_ms = deadline::COMMIT_GRACE.as_millis() as u64,
                            "COMMIT gave no answer by the call's deadline and its grace; its outcome is unknown"
                        );
                        Attempt::Final(E::from(carried::into_db_err(
                            AmbiguousCommit::after_deadline(label),
                        )))
                    }
                }
            }
            Ok(Err(err)) => {
                let first_error = match first_error {
                    None if self.classify(&err).is_none() => self.aborted_meanwhile(&dbtx).await,
                    first => first,
                };
                self.rollback(label, dbtx, "after an error in the transaction body")
                    .await;
                drop(slot);
                if timed_out(&err) {
                    return Attempt::Expired(expired(Phase::Body).with_source(Box::new(err)));
                }
                // A conflict the body ignored, then another error it returned
                // (on PostgreSQL every statement after the conflict fails with
                // 25P02): the conflict is what happened, and is replayed.
                match first_error {
                    Some(first) if timed_out(&first) => {
                        Attempt::Expired(expired(Phase::Body).with_source(Box::new(first)))
                    }
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

    /// Pushes what is left of the budget to the server (see
    /// `Engine::server_budget`): the settings to put back, and when the
    /// server's timeout runs out. `Err` when the budget ran out first, with
    /// what to put back if the settings were sent.
    async fn push_budget(
        &self,
        plan: &Plan,
        txn: &Txn,
        at: tokio::time::Instant,
    ) -> Result<(ServerSettings, Option<tokio::time::Instant>), ServerSettings> {
        let now = tokio::time::Instant::now();
        let remaining = at.saturating_duration_since(now);
        if remaining.is_zero() {
            return Err(ServerSettings::none());
        }
        let server = deadline::server_budget(remaining);
        let Some(sql) = self.inner.engine.server_budget(server) else {
            return Ok((ServerSettings::none(), None));
        };
        let could_not = |e: &DbErr| {
            tracing::warn!(label = %plan.label(), error = %e, "could not push the call's time budget to the server; the call still ends at its deadline");
        };
        let db = txn.as_database_transaction();
        let restore = match sql.restore {
            Restore::Nothing => None,
            Restore::Sql(restore) => Some(Cow::Borrowed(restore)),
            Restore::SqliteBusyTimeout => {
                let ask = Statement::from_string(db.get_database_backend(), "PRAGMA busy_timeout");
                match within(Some(at), db.query_one_raw(ask)).await {
                    Some(Ok(Some(row))) => match row.try_get_by_index::<i64>(0) {
                        Ok(was) => Some(Cow::Owned(format!("PRAGMA busy_timeout = {was}"))),
                        Err(e) => {
                            could_not(&e);
                            return Ok((ServerSettings::none(), None));
                        }
                    },
                    Some(Ok(None)) => return Ok((ServerSettings::none(), None)),
                    Some(Err(e)) => {
                        could_not(&e);
                        return Ok((ServerSettings::none(), None));
                    }
                    None => return Err(ServerSettings::none()),
                }
            }
        };
        match within(Some(at), db.execute_unprepared(&sql.set)).await {
            Some(Ok(_)) => Ok((ServerSettings::pushed(restore, txn), Some(now + server))),
            Some(Err(e)) => {
                could_not(&e);
                Ok((ServerSettings::none(), None))
            }
            // the settings may reach the server still: put them back
            None => Err(ServerSettings::pushed(restore, txn)),
        }
    }

    /// Ends a run that ran out of time before `COMMIT`, in a task of its
    /// own: puts the session's settings back, rolls back, then gives back
    /// the SQLite write slot, the admission permit and the lease.
    fn abandon(&self, label: &str, txn: Txn, settings: ServerSettings, release: Release) {
        let resolver = self.clone();
        let label = label.to_owned();
        tokio::spawn(async move {
            let bound = resolver.inner.defaults.rollback_timeout;
            settings.put_back(&label, bound).await;
            match txn.into_parts() {
                Ok(parts) => {
                    resolver
                        .rollback(&label, parts.dbtx, "at the call's deadline")
                        .await;
                    drop(parts.slot);
                }
                Err(in_use) => tracing::error!(label, "{in_use}"),
            }
            drop(release);
        });
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
        if self.inner.engine.aborts_transaction(&swallowed) {
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
            // a guard's caller has no key to find out by: its hooks never run
            Err(Committing::Unknown(e, _hooks)) => {
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
    /// The conflict the server killed `dbtx` for, if it did so between
    /// statements without the body seeing it (see
    /// [`Engine::may_abort_between_statements`](super::engine::Engine::may_abort_between_statements)).
    async fn aborted_meanwhile(&self, dbtx: &DatabaseTransaction) -> Option<DbErr> {
        if !self.inner.engine.may_abort_between_statements() {
            return None;
        }
        let bound = self.inner.defaults.rollback_timeout;
        match tokio::time::timeout(bound, dbtx.execute_unprepared("DO 0")).await {
            Ok(Err(e)) if self.classify(&e).is_some() => Some(e),
            _ => None,
        }
    }

    pub(crate) async fn rollback(&self, label: &str, dbtx: DatabaseTransaction, why: &str) {
        let bound = self.inner.defaults.rollback_timeout;
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
    /// No answer (the connection failed, the task died): it may have
    /// committed. With the after-commit hooks, unrun (none when the task
    /// died: they went with it).
    Unknown(DbErr, Vec<Hook>),
}

/// Commits in a task of its own, then releases the SQLite write slot and,
/// if it committed, runs the after-commit hooks. Once `COMMIT` is under way,
/// finishing it and running the hooks no longer depend on the caller: a
/// caller dropped meanwhile only abandons the result. When the outcome is
/// unknown the hooks come back unrun, with [`Committing::Unknown`].
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
        match committed {
            Ok(()) => {
                run_hooks(&owned_label, hooks);
                Ok(())
            }
            Err(e) => Err((e, hooks)),
        }
    });
    match task.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err((e, hooks))) if is_lost_connection(&e) => Err(Committing::Unknown(e, hooks)),
        Ok(Err((e, _))) => Err(Committing::Failed(e)),
        Err(join) => Err(Committing::Unknown(
            DbErr::Custom(format!(
                "the COMMIT task of `{label}` ended without an answer: {join}"
            )),
            Vec::new(),
        )),
    }
}
