//! What watching a replica means on each engine, behind one face: where the
//! primary's log is, up to where a replica has replayed it, the
//! read-your-writes token and its wait, and the check that a replica is one
//! of the primary. PostgreSQL streaming replicas in [`postgres`], MariaDB
//! GTID replicas in [`mariadb`]; the rest of `replica` never asks which.

mod mariadb;
mod postgres;

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, QueryResult, Statement};

use super::super::options::Isolation;
use super::check::ReplicaRefused;
use super::gtid::GtidSet;
use super::position::CommitPosition;

/// The kind of replicas a resolver's primary has (see
/// `Engine::replica_dialect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// PostgreSQL streaming replication (hot standbys).
    Postgres,
    /// MariaDB replication by GTID.
    MariaDb,
}

/// Where a primary's log is, or up to where a replica has replayed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LogPosition {
    /// PostgreSQL: an LSN.
    Lsn(CommitPosition),
    /// MariaDB: a GTID position, one GTID per domain.
    Gtids(GtidSet),
}

impl LogPosition {
    /// Whether a replica that replayed up to `self` has every commit up to
    /// the primary's position `primary`.
    pub(crate) fn covers(&self, primary: &LogPosition) -> bool {
        match (self, primary) {
            (Self::Lsn(r), Self::Lsn(p)) => r.covers(*p),
            (Self::Gtids(r), Self::Gtids(p)) => r.covers(p),
            _ => false,
        }
    }

    /// The position as a [`CommitPosition`] (MariaDB: its GTID in the
    /// primary's domain `domain`, or its only one).
    pub(crate) fn commit_position(&self, domain: Option<u32>) -> Option<CommitPosition> {
        match self {
            Self::Lsn(p) => Some(*p),
            Self::Gtids(set) => domain
                .and_then(|d| set.in_domain(d))
                .or_else(|| set.only())
                .map(CommitPosition::gtid),
        }
    }
}

/// The primary's log, read by the sampler.
#[derive(Debug, Clone)]
pub(crate) struct PrimaryLog {
    pub(crate) position: LogPosition,
    /// The replication domain of its commits (MariaDB `@@gtid_domain_id`).
    pub(crate) domain: Option<u32>,
}

/// What a replica does, read by the sampler.
#[derive(Debug, Clone)]
pub(crate) enum Replay {
    /// It replays no primary's log (PostgreSQL: out of recovery; MariaDB:
    /// no replication configured).
    None,
    /// It replicates: whether its replay runs now (MariaDB: both
    /// replication threads; PostgreSQL: always, a paused replay shows as
    /// lag), and up to where it has replayed.
    Replicating {
        applying: bool,
        replayed: Option<LogPosition>,
    },
}

/// How a wait for a replica to replay up to a token ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waited {
    /// It has replayed up to here (at or past the token).
    Reached(CommitPosition),
    /// Not within the bound.
    Expired,
    /// It replays no log any more.
    NotAReplica,
}

impl Dialect {
    /// The isolation of a transaction on a replica: a consistent snapshot
    /// (PostgreSQL: a hot standby refuses SERIALIZABLE; InnoDB: SERIALIZABLE
    /// reads would take locks the replication applier waits for).
    pub(crate) fn isolation(self) -> Isolation {
        Isolation::RepeatableRead
    }

    /// Where the primary's log is now (`None`: it has none yet).
    pub(crate) async fn primary_log(
        self,
        primary: &DatabaseConnection,
    ) -> Result<Option<PrimaryLog>, DbErr> {
        match self {
            Self::Postgres => postgres::primary_log(primary).await,
            Self::MariaDb => mariadb::primary_log(primary).await.map(Some),
        }
    }

    /// What the replica does.
    pub(crate) async fn replay(self, replica: &DatabaseConnection) -> Result<Replay, DbErr> {
        match self {
            Self::Postgres => postgres::replay(replica).await,
            Self::MariaDb => mariadb::replay(replica).await,
        }
    }

    /// The read-your-writes token: a position at or past every commit the
    /// primary finished before this call.
    pub(crate) async fn commit_position(
        self,
        primary: &DatabaseConnection,
    ) -> Result<CommitPosition, DbErr> {
        match self {
            Self::Postgres => postgres::commit_position(primary).await,
            Self::MariaDb => mariadb::commit_position(primary).await,
        }
    }

    /// Waits, at most `bound`, for the replica to replay up to `token`.
    pub(crate) async fn wait(
        self,
        replica: &DatabaseConnection,
        token: CommitPosition,
        bound: Duration,
    ) -> Result<Waited, DbErr> {
        match self {
            Self::Postgres => postgres::wait(replica, token, bound).await,
            Self::MariaDb => mariadb::wait(replica, token, bound).await,
        }
    }

    /// Checks that replica number `i` is a replica of `primary`.
    pub(crate) async fn check(
        self,
        primary: &DatabaseConnection,
        replica: &DatabaseConnection,
        i: usize,
    ) -> Result<(), ReplicaRefused> {
        match self {
            Self::Postgres => postgres::check(primary, replica, i).await,
            Self::MariaDb => mariadb::check(primary, replica, i).await,
        }
    }
}

/// The single row `sql` answers.
async fn row(db: &DatabaseConnection, sql: &str) -> Result<QueryResult, DbErr> {
    db.query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?
        .ok_or_else(|| DbErr::Custom(format!("`{sql}` answered no row")))
}

/// `ReplicaRefused::Unreachable` for replica `i`, `server` being the one
/// that did not answer.
fn unreachable(i: usize, server: &'static str) -> impl Fn(DbErr) -> ReplicaRefused {
    move |source| ReplicaRefused::Unreachable {
        replica: i,
        server,
        source,
    }
}
