//! The replay loop of a managed call: plan it, then for each run take
//! admission (contention control), run it (see `attempt`), and on a
//! conflict report it, back off and run it again, up to the plan's retries.

use std::future::Future;
use std::time::Duration;

use tracing::Instrument;

use super::attempt::Attempt;
use super::body::ManagedBody;
use super::call_error::TransactionError;
use super::carried;
use super::classify::Conflict;
use super::contention::Entry;
use super::deadline::{self, within};
use super::deadline_exceeded::DeadlineExceeded;
use super::driver_error::is_unreachable;
use super::error::{AmbiguousCommit, CannotResolveDatabaseConflict};
use super::inner::ConflictResolver;
use super::lifecycle::FailedAttempt;
use super::metrics::{self, Outcome, Wait};
use super::options::{CallOptions, Contention};
use super::plan::Plan;
use super::replica::ReadAsk;
use super::retry_event::Phase;
use super::retry_event::RetryEvent;

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
    /// `body` is called once per run with a fresh [`Txn`](super::Txn); it returns a boxed
    /// future (`Box::pin(async move { … })`) that may borrow the `Txn` and the
    /// caller's data. Errors that are not conflicts
    /// are returned unchanged after the rollback; when every run conflicts the
    /// result is [`CannotResolveDatabaseConflict`] (converted into `E`).
    ///
    /// **Nesting.** A managed call made while another managed transaction of
    /// the same resolver runs in the same task runs as a *savepoint* of it
    /// (see `savepoint`): no retry and no stats of its own; if it returns
    /// `Err`, its writes and after-commit hooks are rolled back to the
    /// savepoint and the error goes to the caller's body, which may handle
    /// it and commit the rest; a conflict propagates to the outermost call,
    /// which replays everything. An option that cannot apply inside the
    /// caller's transaction (another `isolation`, `read_only` inside a
    /// writing call) fails it with [`NestedOption`](super::NestedOption).
    /// Made through *another* resolver on the
    /// same database, or while a [`transaction()`](Self::transaction) guard
    /// on the same database is open in the same task, it fails at once with
    /// [`NestedTransaction`](super::NestedTransaction) (its own transaction
    /// would wait for the outer one's locks forever); on another database it
    /// runs as a transaction of its own. A task *spawned* from a managed body
    /// (or from a guard's task) is not the same task: a managed call there
    /// runs as a transaction of its own, and if the body awaits it while
    /// holding locks it needs, it waits forever, so do not await such a task
    /// inside the body.
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
        #[cfg(feature = "serde")]
        options.refuse_idempotency_key::<E>("run")?;
        if let Some(outer) = self.enclosing() {
            return self.run_nested(outer, options, body).await;
        }
        if let Some(refusal) = self.refuse_nested(options.label(), true).await {
            self.inner.stats.error();
            return Err(E::from(refusal));
        }
        let ask = ReadAsk {
            max_lag: options.max_lag,
            after: options.after,
            wait: options.replica_wait,
        };
        let plan = Plan::resolve(options, &self.inner.defaults, self.inner.engine);
        let span = tracing::info_span!("managed_transaction", label = %plan.label(), attempts = tracing::field::Empty);
        if plan.read_only && !plan.deferrable && !self.inner.replicas.is_empty() {
            return self.routed(plan, ask, &mut body).instrument(span).await;
        }
        self.replay_loop(&plan, &mut body).instrument(span).await
    }

    pub(crate) async fn replay_loop<'a, F, T, E>(&self, plan: &Plan, body: &mut F) -> Result<T, E>
    where
        F: ManagedBody<'a, T, E>,
        T: Send,
        E: TransactionError,
    {
        let contention = (plan.contention == Contention::Adaptive)
            .then(|| self.inner.contention.of(plan.label(), plan.key));
        // every run's conflict, kept for `on_give_up` when one is set
        let mut failures = self.inner.defaults.on_give_up.as_ref().map(|_| Vec::new());
        let mut attempt: u32 = 0;
        // the longest run so far: what a replay is expected to take
        let mut longest = Duration::ZERO;
        loop {
            attempt += 1;
            let turn = plan.turn(attempt);
            let entry = match &contention {
                Some(c) => {
                    let enter = c.enter(turn, plan.admit_next_before_commit, || self.begin(plan));
                    match within(plan.deadline, enter).await {
                        Some(entry) => entry,
                        None => {
                            let at = plan.deadline.unwrap_or(plan.started);
                            let exceeded = deadline::exceeded(
                                plan.label(),
                                plan.started,
                                at,
                                attempt - 1,
                                Phase::Admission,
                            );
                            return Err(self.expired(plan, exceeded));
                        }
                    }
                }
                None => Entry::uncontrolled(),
            };
            let Entry {
                begun,
                admitted,
                alone_across_processes,
                release,
                waited,
            } = entry;
            if let Some(took) = waited.queue {
                self.waited(plan, Wait::Queue, took);
            }
            if let Some(took) = waited.lease {
                self.waited(plan, Wait::Lease, took);
            }
            let run_started = tokio::time::Instant::now();
            let outcome = self.attempt(plan, body, attempt, begun, release).await;
            longest = longest.max(run_started.elapsed());
            let (err, phase) = match outcome {
                Attempt::Committed(value) => {
                    if let Some(c) = &contention {
                        c.on_commit();
                        let (limit, hot) = c.state();
                        metrics::contention(plan, limit, hot);
                    }
                    self.ended(plan, Outcome::Committed, attempt);
                    tracing::Span::current().record("attempts", attempt);
                    return Ok(value);
                }
                Attempt::Failed(err, phase) => (err, phase),
                Attempt::Final(err) => {
                    // a read-only call on a replica whose COMMIT got no
                    // answer wrote nothing: it runs again on the primary
                    // (see `replica`), and that run counts
                    if plan.replica.is_some() && AmbiguousCommit::find(&err).is_some() {
                        return Err(err);
                    }
                    let outcome = if AmbiguousCommit::find(&err).is_some() {
                        Outcome::Ambiguous
                    } else {
                        Outcome::Error
                    };
                    self.ended(plan, outcome, attempt);
                    return Err(err);
                }
                Attempt::Expired(exceeded) => {
                    return Err(self.expired(plan, exceeded));
                }
            };
            let Some(conflict) = self.classify(&err) else {
                // a call that lost its replica runs again on the primary
                // (see `replica`): that run counts, not this one
                if plan.replica.is_none() || !is_unreachable(&err) {
                    self.ended(plan, Outcome::Error, attempt);
                }
                return Err(err);
            };
            if let Some(c) = &contention {
                if let Some(admitted) = admitted {
                    c.on_conflict(admitted, phase == Phase::Commit);
                }
                let (limit, hot) = c.state();
                metrics::contention(plan, limit, hot);
            }
            if plan.retryable {
                self.conflicted(plan);
            }
            if let Some(failures) = &mut failures {
                failures.push(FailedAttempt::new(attempt, phase, conflict.clone(), &err));
            }
            if !plan.replay_left(attempt) {
                self.ended(plan, Outcome::GaveUp, attempt);
                self.gave_up(plan, failures.as_deref());
                tracing::Span::current().record("attempts", attempt);
                if alone_across_processes {
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
            let queued = contention.as_ref().is_some_and(|c| c.queue_spaces_replay());
            let delay = if queued {
                Duration::ZERO
            } else {
                self.inner.defaults.backoff.delay(attempt)
            };
            // no replay starts that cannot finish in time
            if let Some(at) = plan.deadline
                && tokio::time::Instant::now() + delay + longest >= at
            {
                tracing::warn!(label = %plan.label(), attempt, code = %conflict, longest_run_ms = longest.as_millis() as u64, "not replaying: what is left of the call's time budget cannot fit another run");
                let exceeded =
                    deadline::exceeded(plan.label(), plan.started, at, attempt, Phase::Backoff)
                        .with_source(Box::new(err));
                return Err(self.expired(plan, exceeded));
            }
            self.before_replay(plan, attempt, &conflict, phase, delay)
                .await;
        }
    }

    /// Ends a call on its deadline: counted, logged, `on_deadline` called,
    /// and made an `E`.
    pub(crate) fn expired<E: TransactionError>(
        &self,
        plan: &Plan,
        exceeded: DeadlineExceeded,
    ) -> E {
        self.ended(plan, Outcome::Deadline, exceeded.attempts());
        tracing::Span::current().record("attempts", exceeded.attempts());
        tracing::warn!(label = %plan.label(), attempts = exceeded.attempts(), phase = %exceeded.phase(), by_server = exceeded.by_server(), "the call ran out of its time budget before COMMIT; rolled back");
        if let Some(cb) = &self.inner.defaults.on_deadline {
            // each member of a batch ran out of time
            for _ in 0..plan.batch.unwrap_or(1) {
                cb(&exceeded);
            }
        }
        E::from(carried::into_db_err(exceeded))
    }

    /// Logs the conflict, calls `on_retry` and sleeps the backoff. The
    /// connection is already back in the pool: the attempt rolled back.
    async fn before_replay(
        &self,
        plan: &Plan,
        attempt: u32,
        conflict: &Conflict,
        phase: Phase,
        delay: Duration,
    ) {
        tracing::info!(
            label = %plan.label(),
            attempt,
            code = %conflict,
            %phase,
            delay_ms = delay.as_secs_f64() * 1000.0,
            "serialization conflict; replaying the transaction"
        );
        if let Some(cb) = &self.inner.defaults.on_retry {
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
}
