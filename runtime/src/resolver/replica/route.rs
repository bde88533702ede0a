//! Read-only calls on replicas: the choice of a replica (its sampled lag
//! within the call's bound, then its replay past the call's
//! [`CommitPosition`], waited for within a bound), the run there, and the
//! primary when no replica fits or the chosen one is lost midway.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DbErr;

use super::super::body::ManagedBody;
use super::super::call_error::TransactionError;
use super::super::carried;
use super::super::driver_error::is_unreachable;
use super::super::engine::is_write_in_read_only;
use super::super::error::AmbiguousCommit;
use super::super::inner::ConflictResolver;
use super::super::metrics;
use super::super::plan::Plan;
use super::dialect::{Dialect, Waited};
use super::errors::WriteOnReplica;
use super::position::CommitPosition;
use super::sampler;
use super::set::Choice;
use super::stats::{ReplicaStats, ReplicaStatus, Route};

/// What a read-only call asks of a replica (unset: the resolver's bounds).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ReadAsk {
    pub(crate) max_lag: Option<Duration>,
    pub(crate) after: Option<CommitPosition>,
    pub(crate) wait: Option<Duration>,
}

impl ConflictResolver {
    /// Runs a read-only call on a replica that fits it, else on the primary.
    pub(crate) async fn routed<'a, F, T, E>(
        &self,
        plan: Plan,
        ask: ReadAsk,
        body: &mut F,
    ) -> Result<T, E>
    where
        F: ManagedBody<'a, T, E>,
        T: Send,
        E: TransactionError,
    {
        self.start_samplers();
        let set = &self.inner.replicas;
        let Some(dialect) = self.inner.engine.replica_dialect() else {
            return self.on_primary(&plan, Route::PrimaryDown, body).await;
        };
        let max_lag = ask.max_lag.unwrap_or(set.setup.max_lag);
        let mut choice = set.choose(max_lag);
        if let (Choice::Replica(i, replayed), Some(token)) = (choice, ask.after)
            && !replayed.is_some_and(|r| r.covers(token))
        {
            let mut bound = ask.wait.unwrap_or(set.setup.wait);
            if let Some(at) = plan.deadline {
                bound = bound.min(at.saturating_duration_since(tokio::time::Instant::now()));
            }
            choice = self.wait_for(dialect, i, token, bound).await;
        }
        let i = match choice {
            Choice::Replica(i, _) => i,
            Choice::Primary(route) => return self.on_primary(&plan, route, body).await,
        };
        let on_replica = plan.on_replica(i, dialect.isolation());
        match self.replay_loop(&on_replica, body).await {
            // a replica lost before or during the call, or at its COMMIT
            // (a read-only transaction on a replica wrote nothing)
            Err(e) if is_unreachable(&e) || AmbiguousCommit::find(&e).is_some() => {
                tracing::warn!(label = %plan.label(), replica = i, error = %e, "lost the replica during a read-only call; running it on the primary");
                set.mark_down(i);
                self.on_primary(&plan, Route::PrimaryFellBack, body).await
            }
            Err(e) if is_write_in_read_only(&e) => {
                set.counters.routed(Route::Replica);
                metrics::read_routed(&plan, Route::Replica.name());
                tracing::error!(label = %plan.label(), error = %e, "a read-only call routed to a replica wrote");
                Err(E::from(carried::into_db_err(WriteOnReplica::new(
                    plan.label(),
                    Box::new(e),
                ))))
            }
            ran => {
                set.counters.routed(Route::Replica);
                metrics::read_routed(&plan, Route::Replica.name());
                ran
            }
        }
    }

    async fn on_primary<'a, F, T, E>(&self, plan: &Plan, route: Route, body: &mut F) -> Result<T, E>
    where
        F: ManagedBody<'a, T, E>,
        T: Send,
        E: TransactionError,
    {
        self.inner.replicas.counters.routed(route);
        metrics::read_routed(plan, route.name());
        tracing::debug!(label = %plan.label(), route = route.name(), "read-only call on the primary");
        self.replay_loop(plan, body).await
    }

    /// Waits, at most `bound`, for replica `i` to replay up to `token`.
    async fn wait_for(
        &self,
        dialect: Dialect,
        i: usize,
        token: CommitPosition,
        bound: Duration,
    ) -> Choice {
        let set = &self.inner.replicas;
        let _waiting = set.counters.wait();
        match dialect.wait(set.pool(i), token, bound).await {
            Ok(Waited::Reached(r)) => Choice::Replica(i, Some(r)),
            Ok(Waited::Expired) => Choice::Primary(Route::PrimaryWaitExpired),
            Ok(Waited::NotAReplica) | Err(_) => {
                set.mark_down(i);
                Choice::Primary(Route::PrimaryDown)
            }
        }
    }

    /// Starts the lag samplers of the replicas, the first time only (a
    /// resolver built outside a runtime starts them at its first read).
    pub(crate) fn start_samplers(&self) {
        let set = &self.inner.replicas;
        if set.is_empty() || !set.start_sampling() {
            return;
        }
        match self.inner.engine.replica_dialect() {
            Some(dialect) => sampler::spawn(Arc::downgrade(set), self.inner.db.clone(), dialect),
            None => tracing::error!(
                "read replicas are PostgreSQL streaming replicas or MariaDB replicas of a primary of the same engine: reads of this resolver stay on its primary"
            ),
        }
    }

    /// Samples every replica once, now (what `build_checked` does before it
    /// returns, so that reads may go to the replicas at once).
    pub(crate) async fn sample_replicas_now(&self) {
        let set = &self.inner.replicas;
        let Some(dialect) = self.inner.engine.replica_dialect() else {
            return;
        };
        for i in 0..set.setup.pools.len() {
            let mut history = sampler::History::default();
            let sample =
                sampler::sample_once(&self.inner.db, set.pool(i), dialect, &mut history, i).await;
            set.record(i, sample);
        }
    }

    /// The position of the primary's log now: every commit that finished
    /// before this call lies at or before it (PostgreSQL: the WAL insert
    /// LSN; MariaDB: the GTID of `@@gtid_binlog_pos` in the primary's
    /// `@@gtid_domain_id`, the domain of every commit of a session that does
    /// not set its own). Take it after a call that
    /// wrote returned `Ok`, and pass it to a later read-only call with
    /// [`CallOptions::after`](crate::resolver::CallOptions::after) so that call
    /// sees the write (read-your-writes; see
    /// [`resolver`](crate::resolver#read-replicas)). One round trip to the
    /// primary.
    ///
    /// # Errors
    /// The database's error; on engines without a log position (SQLite) a
    /// `DbErr::Custom` saying so.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let resolver = conflictkit::ConflictResolver::connect("sqlite::memory:").await?;
    /// assert!(resolver.commit_position().await.is_err(), "PostgreSQL and MariaDB only");
    /// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
    /// ```
    pub async fn commit_position(&self) -> Result<CommitPosition, DbErr> {
        let Some(dialect) = self.inner.engine.replica_dialect() else {
            return Err(DbErr::Custom(
                "commit positions (read-your-writes tokens) exist on PostgreSQL and MariaDB only"
                    .into(),
            ));
        };
        dialect.commit_position(&self.inner.db).await
    }

    /// Where this resolver's read-only calls went, and why (see
    /// [`ReplicaStats`]); all zero without replicas.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let resolver = conflictkit::ConflictResolver::connect("sqlite::memory:").await?;
    /// assert_eq!(resolver.replica_stats().on_replica, 0);
    /// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
    /// ```
    pub fn replica_stats(&self) -> ReplicaStats {
        self.inner.replicas.counters.snapshot()
    }

    /// Each replica as its last lag sample found it, in the order they were
    /// added (see [`ReplicaStatus`]); empty without replicas.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let resolver = conflictkit::ConflictResolver::connect("sqlite::memory:").await?;
    /// assert!(resolver.replica_status().is_empty());
    /// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
    /// ```
    pub fn replica_status(&self) -> Vec<ReplicaStatus> {
        self.inner.replicas.status()
    }
}
