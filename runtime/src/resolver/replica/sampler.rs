//! The lag sampler: one background task per replica asks, every sample
//! interval, the primary where its log is and the replica up to where it
//! has replayed, and records how fresh the replica is, so that no call
//! queries lag itself.
//!
//! Freshness is measured against positions, not replay timestamps (an idle
//! primary writes nothing, so `pg_last_xact_replay_timestamp()` ages
//! without any lag, and MariaDB's `Seconds_Behind_Master` reads 0 while the
//! replica has not even received the primary's last commits): the sampler
//! keeps the primary's positions (an LSN; a GTID position) of the last
//! [`HISTORY`] with the instant each was read, and a replica that replayed
//! up to position `p` holds every commit made before the newest instant
//! whose position is at or before `p`. The lag it reports is the time since
//! that instant: never less than the real staleness (the sample itself is
//! counted in), so a bound on it is a bound on what a call can read. A
//! replica whose replay does not run (MariaDB: a replication thread
//! stopped, or stopped by an error) is no fresher than the last sample that
//! saw it run: its lag grows from then on, as a paused PostgreSQL replay's
//! does, whether the primary writes or not, until calls within their bound
//! no longer go there.

use std::collections::VecDeque;
use std::sync::Weak;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::time::Instant;

use super::check::{ReplicaRefused, check};
use super::dialect::{Dialect, LogPosition, Replay};
use super::set::{ReplicaSet, Sample};

/// How far back the primary's positions are kept: a replica further
/// behind is lagging beyond any bound worth routing with.
pub(crate) const HISTORY: Duration = Duration::from_secs(60);

/// The primary's positions, each with the instant it was read, and the
/// replication domain of its commits (MariaDB); how fresh the replica was
/// found last (a replica never un-replays, so that stays true while it is
/// up: it covers a history that does not reach back that far, a sampler's
/// first samples); and how fresh it was at the last sample that saw its
/// replay run.
#[derive(Debug, Default)]
pub(crate) struct History {
    positions: VecDeque<(Instant, LogPosition)>,
    domain: Option<u32>,
    fresh_floor: Option<Instant>,
    running_fresh_as_of: Option<Instant>,
}

impl History {
    fn push(&mut self, at: Instant, position: LogPosition) {
        self.positions.push_back((at, position));
        while self.positions.len() > 1
            && self
                .positions
                .front()
                .is_some_and(|(t, _)| at.saturating_duration_since(*t) > HISTORY)
        {
            self.positions.pop_front();
        }
    }

    /// The newest instant before which every commit is at or before `replayed`.
    fn fresh_as_of(&self, replayed: &LogPosition) -> Option<Instant> {
        self.positions
            .iter()
            .rev()
            .find(|(_, p)| replayed.covers(p))
            .map(|(t, _)| *t)
    }
}

/// One sample of replica `i`: the primary's position first, then the
/// replica's, so that a replica that replayed up to the first has every
/// commit made before it was read.
pub(crate) async fn sample_once(
    primary: &DatabaseConnection,
    replica: &DatabaseConnection,
    dialect: Dialect,
    history: &mut History,
    i: usize,
) -> Sample {
    let at = Instant::now();
    match dialect.primary_log(primary).await {
        Ok(Some(log)) => {
            history.push(at, log.position);
            history.domain = log.domain;
        }
        Ok(None) => {}
        // the replica's freshness is still measured against older samples
        Err(e) => {
            tracing::debug!(replica = i, error = %e, "could not read the primary's log position")
        }
    }
    let replay = dialect.replay(replica).await;
    if !matches!(replay, Ok(Replay::Replicating { .. })) {
        // down or no replica: when it is back, it may be another copy
        (history.fresh_floor, history.running_fresh_as_of) = (None, None);
    }
    match replay {
        Ok(Replay::Replicating { applying, replayed }) => {
            let found = replayed.as_ref().and_then(|r| history.fresh_as_of(r));
            let fresh = found.max(history.fresh_floor);
            history.fresh_floor = fresh;
            let fresh_as_of = if applying {
                history.running_fresh_as_of = fresh;
                fresh
            } else {
                // stopped: no fresher than when it last ran
                fresh
                    .zip(history.running_fresh_as_of)
                    .map(|(a, b)| a.min(b))
            };
            Sample {
                up: true,
                fresh_as_of,
                replayed: replayed.and_then(|r| r.commit_position(history.domain)),
            }
        }
        Ok(Replay::None) => {
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

fn strong_sample(set: &Weak<ReplicaSet>, i: usize) -> Option<Instant> {
    set.upgrade().and_then(|s| s.sample(i).fresh_as_of)
}

/// Starts the sampler of every replica of `set`; each one ends when the
/// resolver is dropped. A sampler first checks its replica as
/// `build_checked` does (again, when that checked it already) and stops for
/// good, the replica never read, if it is no replica of the primary.
pub(crate) fn spawn(set: Weak<ReplicaSet>, primary: DatabaseConnection, dialect: Dialect) {
    let Some(strong) = set.upgrade() else {
        return;
    };
    let (n, interval) = (strong.setup.pools.len(), strong.setup.interval);
    drop(strong);
    for i in 0..n {
        let (set, primary) = (set.clone(), primary.clone());
        // how fresh the last sample (build_checked's) found it: a replica
        // whose replay stops before this task's first sample ages from there
        let last = strong_sample(&set, i);
        tokio::spawn(async move {
            let mut history = History {
                fresh_floor: last,
                running_fresh_as_of: last,
                ..History::default()
            };
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
                let sample = sample_once(&primary, &replica, dialect, &mut history, i).await;
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

    fn lsn(s: &str) -> LogPosition {
        LogPosition::Lsn(s.parse().unwrap())
    }

    fn gtids(s: &str) -> LogPosition {
        LogPosition::Gtids(s.parse().unwrap())
    }

    #[test]
    fn a_replica_is_as_fresh_as_the_newest_primary_position_it_replayed() {
        let t0 = Instant::now();
        let mut h = History::default();
        h.push(t0, lsn("0/100"));
        h.push(t0 + Duration::from_millis(100), lsn("0/200"));
        h.push(t0 + Duration::from_millis(200), lsn("0/200"));
        assert_eq!(h.fresh_as_of(&lsn("0/50")), None);
        assert_eq!(h.fresh_as_of(&lsn("0/150")), Some(t0));
        assert_eq!(
            h.fresh_as_of(&lsn("0/200")),
            Some(t0 + Duration::from_millis(200))
        );
        h.push(t0 + HISTORY + Duration::from_millis(150), lsn("0/300"));
        assert_eq!(
            h.positions.len(),
            2,
            "positions older than the history are dropped"
        );
        assert_eq!(
            h.fresh_as_of(&lsn("0/150")),
            None,
            "further behind than the history"
        );
    }

    #[test]
    fn a_mariadb_replica_is_fresh_once_it_applied_every_domain() {
        let t0 = Instant::now();
        let mut h = History::default();
        h.push(t0, gtids("0-1-10"));
        h.push(t0 + Duration::from_millis(100), gtids("0-1-12,1-1-3"));
        assert_eq!(h.fresh_as_of(&gtids("0-1-11")), Some(t0));
        assert_eq!(
            h.fresh_as_of(&gtids("0-1-12")),
            Some(t0),
            "domain 1 is missing"
        );
        assert_eq!(
            h.fresh_as_of(&gtids("0-1-12,1-1-3")),
            Some(t0 + Duration::from_millis(100))
        );
        assert_eq!(h.fresh_as_of(&gtids("0-1-9")), None);
    }
}
