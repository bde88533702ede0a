//! The replica settings of [`ConflictResolverBuilder`], and the checked
//! build.

use std::time::Duration;

use sea_orm::DatabaseConnection;

use super::super::conflict_resolver::ConflictResolverBuilder;
use super::super::inner::ConflictResolver;
use super::check::{ReplicaRefused, check};

/// The shortest lag sample interval (a zero one would sample in a loop).
const MIN_SAMPLE_INTERVAL: Duration = Duration::from_millis(1);

impl ConflictResolverBuilder {
    /// Adds a replica of the primary (a pool connected to it): read-only
    /// calls run there when its data is fresh enough (see
    /// [`max_lag`](Self::max_lag)); every other call runs on the primary.
    /// Several replicas share the reads in turn. PostgreSQL streaming
    /// replicas of a PostgreSQL primary, and MariaDB replicas of a MariaDB
    /// primary replicating by GTID (`MASTER_USE_GTID`; the primary with a
    /// binary log); not MySQL, whose GTIDs differ.
    ///
    /// Build with [`build_checked`](Self::build_checked) to refuse a pool
    /// that is no replica of this primary with an error.
    /// [`build`](Self::build) cannot wait for the check: the replica's lag
    /// sampler makes it before the replica is read, and a pool that fails it
    /// is never read (an error is logged; the reads go to the primary). Give the replica's pool a short
    /// `acquire_timeout` (a second or two): when the replica goes down, the
    /// calls routed there in the meantime wait that long before they run
    /// on the primary.
    ///
    /// ```
    /// use conflictkit::ConflictResolver;
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let primary = sea_orm::Database::connect("sqlite::memory:").await?;
    /// let replica = sea_orm::Database::connect("sqlite::memory:").await?;
    /// // SQLite has no replicas: the checked build says so
    /// let refused = ConflictResolver::builder(primary).replica(replica).build_checked().await;
    /// assert!(refused.unwrap_err().to_string().contains("PostgreSQL streaming replicas"));
    /// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
    /// ```
    pub fn replica(mut self, pool: DatabaseConnection) -> Self {
        self.defaults.replicas.pools.push(pool);
        self
    }

    /// The staleness bound of read-only calls (default
    /// [`DEFAULT_MAX_LAG`](crate::resolver::DEFAULT_MAX_LAG), 1 s): a call runs on a
    /// replica only if everything the primary committed more than this long
    /// ago is replayed there (by the replica's last lag sample, taken every
    /// [`lag_sample_interval`](Self::lag_sample_interval), whose age counts
    /// in: keep the bound above the interval); else on the primary.
    /// [`CallOptions::max_lag`](crate::resolver::CallOptions::max_lag) sets it
    /// per call.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// let resolver = conflictkit::ConflictResolver::builder(db)
    ///     .max_lag(std::time::Duration::from_millis(500))
    ///     .build();
    /// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
    /// ```
    pub fn max_lag(mut self, bound: Duration) -> Self {
        self.defaults.replicas.max_lag = bound;
        self
    }

    /// How long a read-only call carrying a
    /// [`CommitPosition`](crate::resolver::CommitPosition) (see
    /// [`CallOptions::after`](crate::resolver::CallOptions::after)) waits for
    /// its replica to replay up to it before it reads the primary instead
    /// (default [`DEFAULT_REPLICA_WAIT`](crate::resolver::DEFAULT_REPLICA_WAIT), 1 s;
    /// never past the call's deadline).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// let resolver = conflictkit::ConflictResolver::builder(db)
    ///     .replica_wait(std::time::Duration::from_millis(200))
    ///     .build();
    /// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
    /// ```
    pub fn replica_wait(mut self, bound: Duration) -> Self {
        self.defaults.replicas.wait = bound;
        self
    }

    /// How often a background task samples each replica's lag (default
    /// [`DEFAULT_LAG_SAMPLE_INTERVAL`](crate::resolver::DEFAULT_LAG_SAMPLE_INTERVAL),
    /// 100 ms; at least 1 ms): two short queries, one on the primary and
    /// one on the replica. Calls never query lag themselves.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// let resolver = conflictkit::ConflictResolver::builder(db)
    ///     .lag_sample_interval(std::time::Duration::from_millis(50))
    ///     .build();
    /// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
    /// ```
    pub fn lag_sample_interval(mut self, every: Duration) -> Self {
        self.defaults.replicas.interval = every.max(MIN_SAMPLE_INTERVAL);
        self
    }

    /// The resolver, once every [`replica`](Self::replica) is checked to be
    /// a replica of the primary (PostgreSQL: `pg_is_in_recovery()` on the
    /// replica, and the same system identifier from `pg_control_system()`
    /// on both; MariaDB: replication configured on the replica, `SHOW SLAVE
    /// STATUS`, from a source whose `Master_Server_Id` and `Master_Port` are
    /// the primary's `@@server_id` and `@@port`; its user needs the
    /// `SLAVE MONITOR` privilege), with the replicas' lag sampled once
    /// already, so that reads may go to them at once. Without replicas, what
    /// [`build`](Self::build) does.
    ///
    /// # Errors
    /// [`ReplicaRefused`] naming the replica and why: not a replica, a
    /// replica of another cluster or server, an engine without replicas, or
    /// no answer.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// let resolver = conflictkit::ConflictResolver::builder(db).build_checked().await?;
    /// assert!(resolver.replica_status().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub async fn build_checked(self) -> Result<ConflictResolver, ReplicaRefused> {
        for (i, replica) in self.defaults.replicas.pools.iter().enumerate() {
            check(&self.db, replica, i).await?;
        }
        let resolver = self.build();
        resolver.sample_replicas_now().await;
        resolver.start_samplers();
        Ok(resolver)
    }
}
