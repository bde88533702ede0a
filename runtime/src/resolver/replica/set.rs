//! The replicas of a resolver at run time: each one's last lag sample (kept
//! by its sampler, see `sampler`), the choice of a replica for a read-only
//! call, and the counters.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::time::Instant;

use super::position::CommitPosition;
use super::setup::ReplicaSetup;
use super::stats::{Counters, ReplicaStatus, Route};

/// What the last sample of one replica found.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sample {
    /// It answered, and is still a replica.
    pub(crate) up: bool,
    /// Every commit of the primary made before this instant is replayed:
    /// the newest sample of the primary's position the replica had replayed
    /// up to. `None`: down, never sampled, or further behind than the
    /// sampler's history.
    pub(crate) fresh_as_of: Option<Instant>,
    /// Up to where it had replayed.
    pub(crate) replayed: Option<CommitPosition>,
}

/// The replicas of one resolver.
pub(crate) struct ReplicaSet {
    pub(crate) setup: ReplicaSetup,
    samples: Vec<Mutex<Sample>>,
    pub(crate) counters: Counters,
    /// Whether the samplers run (they start with the first routed call, or
    /// in `build_checked`).
    sampling: AtomicBool,
    /// Where the next choice starts, so that replicas share the calls.
    next: AtomicUsize,
}

/// Where a read-only call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice {
    /// Replica number `.0`, with what it had replayed at its last sample.
    Replica(usize, Option<CommitPosition>),
    /// The primary, for this reason.
    Primary(Route),
}

impl ReplicaSet {
    pub(crate) fn new(setup: ReplicaSetup) -> Self {
        Self {
            samples: setup.pools.iter().map(|_| Mutex::default()).collect(),
            setup,
            counters: Counters::default(),
            sampling: AtomicBool::new(false),
            next: AtomicUsize::new(0),
        }
    }

    /// Whether reads can go to replicas at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.setup.pools.is_empty()
    }

    pub(crate) fn pool(&self, i: usize) -> &DatabaseConnection {
        &self.setup.pools[i]
    }

    /// `true` the first time only: the caller starts the samplers.
    pub(crate) fn start_sampling(&self) -> bool {
        !self.sampling.swap(true, Ordering::AcqRel)
    }

    pub(crate) fn record(&self, i: usize, sample: Sample) {
        *crate::sync::lock(&self.samples[i]) = sample;
    }

    pub(crate) fn sample(&self, i: usize) -> Sample {
        *crate::sync::lock(&self.samples[i])
    }

    /// Replica `i` failed a call: skipped until its sampler finds it again.
    pub(crate) fn mark_down(&self, i: usize) {
        self.record(i, Sample::default());
    }

    /// A replica whose data is at most `max_lag` old, the next in turn; or
    /// why the call reads the primary.
    pub(crate) fn choose(&self, max_lag: Duration) -> Choice {
        let n = self.samples.len();
        let now = Instant::now();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut any_up = false;
        for k in 0..n {
            let i = (start + k) % n;
            let sample = self.sample(i);
            any_up |= sample.up;
            let Some(fresh) = sample.fresh_as_of.filter(|_| sample.up) else {
                continue;
            };
            if now.saturating_duration_since(fresh) <= max_lag {
                return Choice::Replica(i, sample.replayed);
            }
        }
        Choice::Primary(if any_up {
            Route::PrimaryLagging
        } else {
            Route::PrimaryDown
        })
    }

    pub(crate) fn status(&self) -> Vec<ReplicaStatus> {
        let now = Instant::now();
        (0..self.samples.len())
            .map(|i| {
                let s = self.sample(i);
                ReplicaStatus {
                    up: s.up,
                    lag: s.fresh_as_of.map(|t| now.saturating_duration_since(t)),
                    replayed: s.replayed,
                }
            })
            .collect()
    }
}
