//! The check of a resolver's replicas when it is built with
//! [`build_checked`](crate::resolver::ConflictResolverBuilder::build_checked):
//! each one must be a replica of the resolver's primary (the engine's own
//! checks are in `dialect`).

use sea_orm::{DatabaseConnection, DbErr};

use super::super::engine::Engine;

/// A pool given as a replica that cannot be one: the resolver was not
/// built. Each variant says which replica (its index, in the order of the
/// [`replica`](crate::resolver::ConflictResolverBuilder::replica) calls) and
/// what to do.
///
/// ```
/// use conflictkit::resolver::ReplicaRefused;
/// let err = ReplicaRefused::NotAReplica { replica: 0 };
/// assert!(err.to_string().contains("not a replica"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicaRefused {
    /// The server replays no other server's log (PostgreSQL:
    /// `pg_is_in_recovery()` is false; MariaDB: `SHOW SLAVE STATUS` is
    /// empty, no replication is configured): a primary, or a promoted
    /// replica.
    #[error(
        "replica #{replica} is not a replica: it replays no primary's log (PostgreSQL: \
         pg_is_in_recovery() is false; MariaDB: SHOW SLAVE STATUS is empty, no replication is \
         configured), so reads routed there would not follow the primary; pass a pool connected \
         to a replica of the resolver's primary"
    )]
    NotAReplica {
        /// Which replica.
        replica: usize,
    },
    /// The server replicates another cluster (PostgreSQL: its system
    /// identifier, from `pg_control_system()`, is not the primary's).
    #[error(
        "replica #{replica} is a replica of another database cluster (system identifier \
         {replica_system_id}; the primary's is {primary_system_id}): reads routed there would \
         see other data; pass a pool connected to a streaming replica of the resolver's primary"
    )]
    OtherCluster {
        /// Which replica.
        replica: usize,
        /// The primary's system identifier.
        primary_system_id: String,
        /// The replica's.
        replica_system_id: String,
    },
    /// The server replicates another MariaDB server (its replication
    /// source, `Master_Server_Id` and `Master_Port` of `SHOW SLAVE STATUS`,
    /// is not the primary's `@@server_id` and `@@port`).
    #[error(
        "replica #{replica} replicates another server ({replicates}; the resolver's primary is \
         {primary}): reads routed there would see other data; pass a pool connected to a \
         replica of the resolver's primary, or point this one at it (CHANGE MASTER TO \
         MASTER_HOST=…, MASTER_PORT=…, MASTER_USE_GTID=slave_pos)"
    )]
    OtherPrimary {
        /// Which replica.
        replica: usize,
        /// The primary's `@@server_id` and `@@port`.
        primary: String,
        /// The replica's source: host, port and server id.
        replicates: String,
    },
    /// Replicas of this engine are not supported (PostgreSQL streaming
    /// replicas and MariaDB GTID replicas are), or the replica's engine is
    /// not the primary's.
    #[error(
        "replica #{replica} cannot serve reads of this resolver: read replicas are PostgreSQL \
         streaming replicas of a PostgreSQL primary, or MariaDB replicas of a MariaDB primary \
         (primary: {primary}, replica: {replica_engine}); build the resolver without \
         `.replica(…)`"
    )]
    Unsupported {
        /// Which replica.
        replica: usize,
        /// The primary's engine.
        primary: &'static str,
        /// The replica's engine.
        replica_engine: &'static str,
    },
    /// The check itself failed: the primary or the replica did not answer.
    #[error(
        "could not check replica #{replica}: {server} did not answer ({source}); check the URL \
         and that the server is up, or build with `build()` to check it in the background"
    )]
    Unreachable {
        /// Which replica.
        replica: usize,
        /// `"the primary"` or `"the replica"`.
        server: &'static str,
        /// The error.
        #[source]
        source: DbErr,
    },
}

/// Checks replica number `i` of a resolver on `primary`.
pub(crate) async fn check(
    primary: &DatabaseConnection,
    replica: &DatabaseConnection,
    i: usize,
) -> Result<(), ReplicaRefused> {
    let (engine, replica_engine) = (Engine::of(primary), Engine::of(replica));
    match engine
        .replica_dialect()
        .filter(|_| engine == replica_engine)
    {
        Some(dialect) => dialect.check(primary, replica, i).await,
        None => Err(ReplicaRefused::Unsupported {
            replica: i,
            primary: engine.system_name(),
            replica_engine: replica_engine.system_name(),
        }),
    }
}
