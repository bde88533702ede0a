//! What a resolver's replicas did ([`ReplicaStats`]) and how they are now
//! ([`ReplicaStatus`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::position::CommitPosition;

/// Where the read-only calls of a resolver with replicas went, and why
/// (see [`ConflictResolver::replica_stats`](crate::resolver::ConflictResolver::replica_stats)).
/// A call counts once, where it ran.
///
/// ```
/// let stats = conflictkit::resolver::ReplicaStats::default();
/// assert_eq!(stats.on_replica + stats.primary_lagging + stats.primary_down, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicaStats {
    /// Calls that ran on a replica.
    pub on_replica: u64,
    /// Calls that read the primary because every replica up was behind
    /// their staleness bound (`max_lag`).
    pub primary_lagging: u64,
    /// Calls that read the primary because no replica was up (or none
    /// was sampled yet).
    pub primary_down: u64,
    /// Calls that read the primary because no replica replayed up to
    /// their [`CommitPosition`] within their wait bound.
    pub primary_wait_expired: u64,
    /// Calls that began on a replica, lost it (connection refused or cut,
    /// pool timed out) and ran again on the primary.
    pub primary_fell_back: u64,
    /// Calls that waited for a replica to replay up to their
    /// [`CommitPosition`] (whether it did in time or not).
    pub waited: u64,
    /// Calls waiting for a replica to replay up to their position now.
    pub waiting: u64,
}

/// How one replica of a resolver looks now, from its last lag sample (see
/// [`ConflictResolver::replica_status`](crate::resolver::ConflictResolver::replica_status)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicaStatus {
    /// Whether its last sample answered (and it is still a replica).
    pub up: bool,
    /// How old, at most, the newest data it has replayed is: the time since
    /// the last sample of the primary's position it had replayed up to
    /// (while its replay is stopped, MariaDB: since it last ran).
    /// `None` when it is down, was never sampled, or never ran.
    pub lag: Option<Duration>,
    /// Up to where it had replayed at its last sample.
    pub replayed: Option<CommitPosition>,
}

/// The counters behind [`ReplicaStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    on_replica: AtomicU64,
    primary_lagging: AtomicU64,
    primary_down: AtomicU64,
    primary_wait_expired: AtomicU64,
    primary_fell_back: AtomicU64,
    waited: AtomicU64,
    waiting: AtomicU64,
}

/// Where a read-only call ran, and why (also the `route` label of the
/// `conflictkit.reads` metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Replica,
    PrimaryLagging,
    PrimaryDown,
    PrimaryWaitExpired,
    PrimaryFellBack,
}

impl Route {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Route::Replica => "replica",
            Route::PrimaryLagging => "primary_lagging",
            Route::PrimaryDown => "primary_down",
            Route::PrimaryWaitExpired => "primary_wait_expired",
            Route::PrimaryFellBack => "primary_fell_back",
        }
    }
}

impl Counters {
    pub(crate) fn routed(&self, route: Route) {
        let counter = match route {
            Route::Replica => &self.on_replica,
            Route::PrimaryLagging => &self.primary_lagging,
            Route::PrimaryDown => &self.primary_down,
            Route::PrimaryWaitExpired => &self.primary_wait_expired,
            Route::PrimaryFellBack => &self.primary_fell_back,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A call starts waiting for a replica; it stops when the guard drops.
    pub(crate) fn wait(&self) -> WaitingGuard<'_> {
        self.waited.fetch_add(1, Ordering::Relaxed);
        self.waiting.fetch_add(1, Ordering::SeqCst);
        WaitingGuard(&self.waiting)
    }

    pub(crate) fn snapshot(&self) -> ReplicaStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ReplicaStats {
            on_replica: get(&self.on_replica),
            primary_lagging: get(&self.primary_lagging),
            primary_down: get(&self.primary_down),
            primary_wait_expired: get(&self.primary_wait_expired),
            primary_fell_back: get(&self.primary_fell_back),
            waited: get(&self.waited),
            waiting: self.waiting.load(Ordering::SeqCst),
        }
    }
}

/// One call waiting for a replica (see [`Counters::wait`]).
pub(crate) struct WaitingGuard<'a>(&'a AtomicU64);

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
