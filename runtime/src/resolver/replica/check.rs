//! The check of a resolver's replicas when it is built with
//! [`build_checked`](crate::resolver::ConflictResolverBuilder::build_checked):
//! each one must be a streaming replica of the resolver's primary.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement};

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
    /// `pg_is_in_recovery()` is false): a primary, or a promoted replica.
    #[error(
        "replica #{replica} is not a replica: it replays no primary's log (pg_is_in_recovery() \
         is false), so reads routed there would not follow the primary; pass a pool connected \
         to a streaming replica of the resolver's primary"
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
    /// Replicas of this engine are not supported (PostgreSQL streaming
    /// replicas are), or the replica's engine is not the primary's.
    #[error(
        "replica #{replica} cannot serve reads of this resolver: read replicas are PostgreSQL \
         streaming replicas of a PostgreSQL primary (primary: {primary}, replica: {replica_engine}); \
         build the resolver without `.replica(…)`"
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

/// Whether a server replays another's log, and which cluster it is.
async fn identity(db: &DatabaseConnection, sql: &str) -> Result<(bool, String), DbErr> {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?
        .ok_or_else(|| DbErr::Custom("the server answered no row".into()))?;
    Ok((
        row.try_get("", "in_recovery")?,
        row.try_get("", "system_id")?,
    ))
}

/// Checks replica number `i` of a resolver on `primary`.
pub(crate) async fn check(
    primary: &DatabaseConnection,
    replica: &DatabaseConnection,
    i: usize,
) -> Result<(), ReplicaRefused> {
    let (engine, replica_engine) = (Engine::of(primary), Engine::of(replica));
    let queries = engine
        .replica_queries()
        .filter(|_| engine == replica_engine);
    let Some(q) = queries else {
        return Err(ReplicaRefused::Unsupported {
            replica: i,
            primary: engine.system_name(),
            replica_engine: replica_engine.system_name(),
        });
    };
    let unreachable = |server| {
        move |source| ReplicaRefused::Unreachable {
            replica: i,
            server,
            source,
        }
    };
    let (_, primary_id) = identity(primary, q.identity)
        .await
        .map_err(unreachable("the primary"))?;
    let (in_recovery, replica_id) = identity(replica, q.identity)
        .await
        .map_err(unreachable("the replica"))?;
    if !in_recovery {
        return Err(ReplicaRefused::NotAReplica { replica: i });
    }
    if replica_id != primary_id {
        return Err(ReplicaRefused::OtherCluster {
            replica: i,
            primary_system_id: primary_id,
            replica_system_id: replica_id,
        });
    }
    Ok(())
}
