//! What a resolver's replicas were configured with (kept in its
//! `Defaults`, never changed after the build).

use std::time::Duration;

use sea_orm::DatabaseConnection;

/// The staleness bound of a read-only call routed to a replica, unless the
/// resolver or the call sets one (see
/// [`ConflictResolverBuilder::max_lag`](crate::resolver::ConflictResolverBuilder::max_lag)).
pub const DEFAULT_MAX_LAG: Duration = Duration::from_secs(1);

/// How long a read-only call carrying a [`CommitPosition`](crate::resolver::CommitPosition)
/// waits for a replica to replay up to it before it reads the primary,
/// unless the resolver or the call sets another bound.
pub const DEFAULT_REPLICA_WAIT: Duration = Duration::from_secs(1);

/// How often the lag of each replica is sampled, unless the resolver sets
/// another interval.
pub const DEFAULT_LAG_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// The replicas of a resolver and their bounds.
#[derive(Clone)]
pub(crate) struct ReplicaSetup {
    pub(crate) pools: Vec<DatabaseConnection>,
    pub(crate) max_lag: Duration,
    pub(crate) wait: Duration,
    pub(crate) interval: Duration,
}

impl Default for ReplicaSetup {
    fn default() -> Self {
        Self {
            pools: Vec::new(),
            max_lag: DEFAULT_MAX_LAG,
            wait: DEFAULT_REPLICA_WAIT,
            interval: DEFAULT_LAG_SAMPLE_INTERVAL,
        }
    }
}
