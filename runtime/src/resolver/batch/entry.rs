//! A batched call from its caller's side: whether it can be batched, its
//! place in its lane, and its wait for the batch's answer (bounded by its
//! deadline when it has one).

use std::sync::Arc;

use sea_orm::DbErr;
use tokio::sync::oneshot;

use super::super::body::ManagedBody;
use super::super::call_error::TransactionError;
use super::super::carried;
use super::super::deadline::{self, COMMIT_GRACE};
use super::super::error::AmbiguousCommit;
use super::super::inner::ConflictResolver;
use super::super::options::CallOptions;
use super::super::plan::Plan;
use super::super::retry_event::Phase;
use super::lane::LaneKey;
use super::member::{Delivery, Place, Typed};

impl ConflictResolver {
    /// Runs `body` as [`run`](Self::run) does, in a batch with the calls of
    /// the same (label, key) that queue meanwhile when `options` ask for it
    /// ([`CallOptions::batch`]): group commit. What
    /// `#[managed_transaction(batch)]` expands to.
    ///
    /// The body owns what it uses (`'static`): it runs in the batch's task,
    /// and runs to its end with the batch even if this call's future is
    /// dropped (its writes then commit or roll back with the others, and
    /// its hooks run if and only if they commit). Each call keeps its own
    /// outcome: its `Ok`, its own error (its writes rolled back to its
    /// savepoint, the others commit), its panic (at once). A conflict
    /// replays the whole batch; a batch that gives up runs its calls again
    /// one by one (a give-up is a call's own); a deadline or an ambiguous
    /// `COMMIT` is every member's; any other failure of the batch as a
    /// whole reaches each member as a [`BatchFailed`](super::BatchFailed).
    ///
    /// Not batched, and run as [`run`](Self::run) runs them: a call inside
    /// a managed body (a savepoint of it), a non-retryable call, a
    /// read-only one (or any, on a read-only resolver).
    ///
    /// ```
    /// use conflictkit::{ConflictResolver, Txn};
    /// use conflictkit::resolver::CallOptions;
    /// use sea_orm::ConnectionTrait;
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// db.execute_unprepared("CREATE TABLE fee (n INTEGER NOT NULL)").await?;
    /// db.execute_unprepared("INSERT INTO fee VALUES (0)").await?;
    /// let resolver = ConflictResolver::new(db);
    /// let credit = |cents: i64| {
    ///     let resolver = resolver.clone();
    ///     async move {
    ///         let opts = CallOptions::new("fee::credit").key(&"fee").batch(64);
    ///         resolver
    ///             .run_batched(opts, move |txn: &Txn| Box::pin(async move {
    ///                 txn.execute_unprepared(&format!("UPDATE fee SET n = n + {cents}")).await?;
    ///                 Ok::<_, conflictkit::Error>(())
    ///             }))
    ///             .await
    ///     }
    /// };
    /// futures::future::try_join_all((1..=10).map(credit)).await?;
    /// let stats = &resolver.batch_stats()["fee::credit"];
    /// assert_eq!(stats.members, 10);
    /// # Ok::<(), conflictkit::Error>(()) }).unwrap();
    /// ```
    pub async fn run_batched<F, T, E>(&self, options: CallOptions, body: F) -> Result<T, E>
    where
        F: ManagedBody<'static, T, E> + 'static,
        T: Send + 'static,
        E: TransactionError,
    {
        #[cfg(feature = "serde")]
        options.refuse_idempotency_key::<E>("run_batched")?;
        let batchable = options.retryable
            && !options.read_only
            && !self.inner.defaults.read_only
            && !options.deferrable;
        let Some(max) = options.batch.filter(|_| batchable) else {
            return self.run(options, body).await;
        };
        if self.enclosing().is_some() {
            return self.run(options, body).await;
        }
        if let Some(refusal) = self.refuse_nested(options.label(), true).await {
            self.inner.stats.error();
            return Err(E::from(refusal));
        }
        let plan = Plan::resolve(options, &self.inner.defaults, self.inner.engine);
        let place = Arc::new(Place::default());
        let (to, mut from) = oneshot::channel();
        let member = Typed::new(plan.clone(), place.clone(), body, to);
        self.queue_member(LaneKey::of(&plan, max), Box::new(member));
        let received = match plan.deadline {
            None => from.await,
            Some(at) => match tokio::time::timeout_at(at, &mut from).await {
                Ok(received) => received,
                // still queued: it never runs
                Err(_) if place.cancel() => {
                    let exceeded =
                        deadline::exceeded(plan.label(), plan.started, at, 0, Phase::Admission);
                    return Err(self.expired(&plan, exceeded));
                }
                // in a batch, whose deadline is at most this one: it ends
                // by then, but for its COMMIT's grace
                Err(_) => match tokio::time::timeout_at(at + COMMIT_GRACE, from).await {
                    Ok(received) => received,
                    Err(_) => {
                        let unknown = AmbiguousCommit::after_deadline(plan.label());
                        return Err(E::from(carried::into_db_err(unknown)));
                    }
                },
            },
        };
        match received {
            Ok(Delivery::Done(result)) => result,
            Ok(Delivery::Panicked(panic)) => std::panic::resume_unwind(panic),
            Err(_) => {
                let unknown = AmbiguousCommit::new(
                    plan.label(),
                    DbErr::Custom(
                        "the batch that ran this call stopped without an answer (its runtime \
                         shut down?)"
                            .into(),
                    ),
                );
                Err(E::from(carried::into_db_err(unknown)))
            }
        }
    }
}
