//! PostgreSQL streaming replicas: the primary's WAL insert position, the
//! replica's replay LSN (`pg_last_wal_replay_lsn()`), and the cluster's
//! system identifier (`pg_control_system()`) that a replica shares with its
//! primary.

use std::time::Duration;

use sea_orm::{DatabaseConnection, DbErr};

use super::super::check::ReplicaRefused;
use super::super::position::CommitPosition;
use super::{LogPosition, PrimaryLog, Replay, Waited, row, unreachable};

/// On either server: whether it replays another's log, and its cluster.
const IDENTITY: &str = "SELECT pg_is_in_recovery() AS in_recovery, \
                        (SELECT system_identifier::text FROM pg_control_system()) AS system_id";
/// On the primary: the insert position, at or past the end of every commit
/// record already written, whatever `synchronous_commit` is.
const PRIMARY_POSITION: &str = "SELECT pg_current_wal_insert_lsn()::text AS lsn";
/// On a replica: whether it still replays, and up to where (NULL before
/// anything was replayed).
const REPLAYED: &str = "SELECT pg_is_in_recovery() AS in_recovery, \
                        pg_last_wal_replay_lsn()::text AS lsn";

/// How often a call waiting for a replica to replay up to its position
/// asks the replica.
const WAIT_POLL: Duration = Duration::from_millis(10);

fn lsn(text: Option<String>) -> Result<Option<CommitPosition>, DbErr> {
    text.map(|t| t.parse().map_err(|e| DbErr::Custom(format!("{e}"))))
        .transpose()
}

async fn position(primary: &DatabaseConnection) -> Result<Option<CommitPosition>, DbErr> {
    lsn(row(primary, PRIMARY_POSITION).await?.try_get("", "lsn")?)
}

pub(super) async fn primary_log(primary: &DatabaseConnection) -> Result<Option<PrimaryLog>, DbErr> {
    Ok(position(primary).await?.map(|p| PrimaryLog {
        position: LogPosition::Lsn(p),
        domain: None,
    }))
}

/// Whether the replica still replays, and up to where.
async fn replayed(replica: &DatabaseConnection) -> Result<(bool, Option<CommitPosition>), DbErr> {
    let row = row(replica, REPLAYED).await?;
    Ok((
        row.try_get("", "in_recovery")?,
        lsn(row.try_get("", "lsn")?)?,
    ))
}

pub(super) async fn replay(replica: &DatabaseConnection) -> Result<Replay, DbErr> {
    Ok(match replayed(replica).await? {
        (true, replayed) => Replay::Replicating {
            applying: true,
            replayed: replayed.map(LogPosition::Lsn),
        },
        (false, _) => Replay::None,
    })
}

pub(super) async fn commit_position(primary: &DatabaseConnection) -> Result<CommitPosition, DbErr> {
    position(primary)
        .await?
        .ok_or_else(|| DbErr::Custom("the primary answered no log position".into()))
}

pub(super) async fn wait(
    replica: &DatabaseConnection,
    token: CommitPosition,
    bound: Duration,
) -> Result<Waited, DbErr> {
    let until = tokio::time::Instant::now() + bound;
    loop {
        match replayed(replica).await? {
            (true, Some(r)) if r.covers(token) => return Ok(Waited::Reached(r)),
            (true, _) => {}
            (false, _) => return Ok(Waited::NotAReplica),
        }
        let now = tokio::time::Instant::now();
        if now >= until {
            return Ok(Waited::Expired);
        }
        tokio::time::sleep(WAIT_POLL.min(until - now)).await;
    }
}

/// Whether a server replays another's log, and which cluster it is.
async fn identity(db: &DatabaseConnection) -> Result<(bool, String), DbErr> {
    let row = row(db, IDENTITY).await?;
    Ok((
        row.try_get("", "in_recovery")?,
        row.try_get("", "system_id")?,
    ))
}

pub(super) async fn check(
    primary: &DatabaseConnection,
    replica: &DatabaseConnection,
    i: usize,
) -> Result<(), ReplicaRefused> {
    let (_, primary_id) = identity(primary)
        .await
        .map_err(unreachable(i, "the primary"))?;
    let (in_recovery, replica_id) = identity(replica)
        .await
        .map_err(unreachable(i, "the replica"))?;
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
