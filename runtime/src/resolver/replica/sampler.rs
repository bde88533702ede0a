//! The lag sampler: one background task per replica asks, every sample
//! interval, the primary where its log is and the replica up to where it
//! has replayed, and records how fresh the replica is, so that no call
//! queries lag itself.
//!
//! Freshness is measured against positions, not replay timestamps (an idle
//! primary writes nothing, so `pg_last_xact_replay_timestamp()` ages
//! without any lag): the sampler keeps the primary's positions of the last
//! [`HISTORY`] with the instant each was read, and a replica that replayed
//! up to position `p` holds every commit made before the newest instant
//! whose position is at or before `p`. The lag it reports is the time since
//! that instant: never less than the real staleness (the sample itself is
//! counted in), so a bound on it is a bound on what a call can read.

use std::collections::VecDeque;
use std::sync::Weak;
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement};
use tokio::time::Instant;

use super::super::engine::ReplicaQueries;
use super::check::{ReplicaRefused, check};
use super::position::CommitPosition;
use super::set::{ReplicaSet, Sample};

/// How far back the primary's positions are kept: a replica further
/// behind is lagging beyond any bound worth routing with.
pub(crate) const HISTORY: Duration = Duration::from_secs(60);

/// The primary's positions, each with the instant it was read.
#[derive(Debug, Default)]
pub(crate) struct History(VecDeque<(Instant, CommitPosition)>);

impl History {
    fn push(&mut self, at: Instant, position: CommitPosition) {
        self.0.push_back((at, position));
        while self.0.len() > 1
            && self
                .0
                .front()
                .is_some_and(|(t, _)| at.saturating_duration_since(*t) > HISTORY)
        {
            self.0.pop_front();
        }
    }

    /// The newest instant before which every commit is at or before `replayed`.
    fn fresh_as_of(&self, replayed: CommitPosition) -> Option<Instant> {
        self.0
            .iter()
            .rev()
            .find(|(_, p)| *p <= replayed)
            .map(|(t, _)| *t)
    }
}

/// One text column of the single row `sql` answers.
pub(crate) async fn text(
    db: &DatabaseConnection,
    sql: &str,
    column: &str,
) -> Result<Option<String>, DbErr> {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?;
    match row {
        Some(row) => row.try_get::<Option<String>>("", column),
        None => Ok(None),
    }
}

/// The position in column `lsn` of the single row `sql` answers.
pub(crate) async fn position(
    db: &DatabaseConnection,
    sql: &str,
) -> Result<Option<CommitPosition>, DbErr> {
    text(db, sql, "lsn")
        .await?
        .map(|t| t.parse().map_err(|e| DbErr::Custom(format!("{e}"))))
        .transpose()
}

/// Whether the replica still replays, and up to where.
pub(crate) async fn replayed(
    replica: &DatabaseConnection,
    q: &ReplicaQueries,
) -> Result<(bool, Option<CommitPosition>), DbErr> {
    let row = replica
        .query_one_raw(Statement::from_string(
            replica.get_database_backend(),
            q.replayed,
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("the replica answered no row".into()))?;
    let in_recovery: bool = row.try_get("", "in_recovery")?;
    let lsn: Option<String> = row.try_get("", "lsn")?;
    let lsn = lsn
        .map(|t| t.parse().map_err(|e| DbErr::Custom(format!("{e}"))))
        .transpose()?;
    Ok((in_recovery, lsn))
}

/// One sample of replica `i`: the primary's position first, then the
/// replica's, so that a replica that replayed up to the first has every
/// commit made before it was read.
pub(crate) async fn sample_once(
    primary: &DatabaseConnection,
    replica: &DatabaseConnection,
    q: &ReplicaQueries,
    history: &mut History,
    i: usize,
) -> Sample {
    let at = Instant::now();
    match position(primary, q.primary_position).await {
        Ok(Some(p)) => history.push(at, p),
        Ok(None) => {}
        // the replica's freshness is still measured against older samples
        Err(e) => {
            tracing::debug!(replica = i, error = %e, "could not read the primary's log position")
        }
    }
    match replayed(replica, q).await {
        Ok((true, Some(replayed))) => Sample {
            up: true,
            fresh_as_of: history.fresh_as_of(replayed),
            replayed: Some(replayed),
        },
        Ok((true, None)) => Sample {
            up: true,
            ..Sample::default()
        },
        Ok((false, _)) => {
            tracing::warn!(
                replica = i,
                "the replica replays no log any more (promoted?); reads skip it"
            );
            Sample::default()
        }
        Err(e) => {
            tracing::debug!(replica = i, error = %e, "the replica did not answer its lag sample");
            Sample::default()
        }
    }
}

/// Starts the sampler of every replica of `set`; each one ends when the
/// resolver is dropped. A sampler first checks its replica as
/// `build_checked` does (again, when that checked it already) and stops for
/// good, the replica never read, if it is no replica of the primary.
pub(crate) fn spawn(set: Weak<ReplicaSet>, primary: DatabaseConnection, q: ReplicaQueries) {
    let Some(strong) = set.upgrade() else {
        return;
    };
    let (n, interval) = (strong.setup.pools.len(), strong.setup.interval);
    drop(strong);
    for i in 0..n {
        let (set, primary) = (set.clone(), primary.clone());
        tokio::spawn(async move {
            let mut history = History::default();
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut was_up = None;
            let mut checked = false;
            loop {
                ticker.tick().await;
                let Some(replica) = set.upgrade().map(|s| s.pool(i).clone()) else {
                    return;
                };
                // what `build_checked` refuses, a plain `build` never reads
                if !checked {
                    match check(&primary, &replica, i).await {
                        Ok(()) => checked = true,
                        Err(ReplicaRefused::Unreachable { .. }) => continue,
                        Err(refused) => {
                            tracing::error!(replica = i, "{refused}; reads never go to it");
                            return;
                        }
                    }
                }
                let sample = sample_once(&primary, &replica, &q, &mut history, i).await;
                let Some(set) = set.upgrade() else {
                    return;
                };
                if was_up != Some(sample.up) {
                    match sample.up {
                        true => tracing::info!(
                            replica = i,
                            "the replica answers its lag samples; reads may go to it"
                        ),
                        false => tracing::warn!(
                            replica = i,
                            "the replica is down; its reads go to the primary"
                        ),
                    }
                    was_up = Some(sample.up);
                }
                set.record(i, sample);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_is_as_fresh_as_the_newest_primary_position_it_replayed() {
        let t0 = Instant::now();
        let mut h = History::default();
        let p = |s: &str| s.parse::<CommitPosition>().unwrap();
        h.push(t0, p("0/100"));
        h.push(t0 + Duration::from_millis(100), p("0/200"));
        h.push(t0 + Duration::from_millis(200), p("0/200"));
        assert_eq!(h.fresh_as_of(p("0/50")), None);
        assert_eq!(h.fresh_as_of(p("0/150")), Some(t0));
        assert_eq!(
            h.fresh_as_of(p("0/200")),
            Some(t0 + Duration::from_millis(200))
        );
        h.push(t0 + HISTORY + Duration::from_millis(150), p("0/300"));
        assert_eq!(h.0.len(), 2, "positions older than the history are dropped");
        assert_eq!(
            h.fresh_as_of(p("0/150")),
            None,
            "further behind than the history"
        );
    }
}
