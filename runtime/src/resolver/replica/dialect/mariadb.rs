//! MariaDB replicas, replicating by GTID: the primary's
//! `@@gtid_binlog_pos`, the replica's `@@gtid_slave_pos` and its
//! replication threads (`SHOW SLAVE STATUS`), `MASTER_GTID_WAIT` for
//! read-your-writes, and the replica's source (`Master_Server_Id`,
//! `Master_Port`) against the primary's `@@server_id` and `@@port`.
//! MySQL shares sea-orm's backend but not these (its GTIDs are
//! `uuid:interval` sets, waited for with `WAIT_FOR_EXECUTED_GTID_SET`): the
//! check refuses it.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, QueryResult, Statement};

use super::super::check::ReplicaRefused;
use super::super::gtid::{Gtid, GtidSet};
use super::super::position::CommitPosition;
use super::{LogPosition, PrimaryLog, Replay, Waited, row, unreachable};

/// On the primary: its binary log's position, the domain and server id of
/// its commits.
const PRIMARY: &str = "SELECT @@gtid_binlog_pos AS pos, CAST(@@gtid_domain_id AS CHAR) AS domain, \
                       CAST(@@server_id AS CHAR) AS server";
/// On a replica: up to where it has applied the primary's log.
const APPLIED: &str = "SELECT @@gtid_slave_pos AS pos";
/// On a replica: its replication (no row: none is configured).
const STATUS: &str = "SHOW SLAVE STATUS";
/// On either server: who it is.
const IDENTITY: &str = "SELECT CAST(@@server_id AS CHAR) AS server, CAST(@@port AS CHAR) AS port, \
                        VERSION() AS version";

/// The longest one `MASTER_GTID_WAIT` statement waits: a call's wait is
/// made of such steps, so that a call dropped midway leaves at most this
/// long a wait behind on the pooled connection.
const WAIT_STEP: Duration = Duration::from_millis(500);

fn bad(what: &str, text: &str) -> DbErr {
    DbErr::Custom(format!("the server answered `{text}` for {what}"))
}

fn gtids(text: &str) -> Result<GtidSet, DbErr> {
    text.parse().map_err(|()| bad("a GTID position", text))
}

/// A number the server answered, as text (the `CAST`s above) or as an
/// integer (`SHOW SLAVE STATUS`: `INT UNSIGNED` or `BIGINT UNSIGNED`,
/// by column and version).
fn number(row: &QueryResult, column: &str) -> Result<u64, DbErr> {
    if let Ok(n) = row.try_get::<Option<u64>>("", column) {
        return Ok(n.unwrap_or_default());
    }
    if let Ok(n) = row.try_get::<Option<u32>>("", column) {
        return Ok(n.map(u64::from).unwrap_or_default());
    }
    let text = text(row, column)?;
    text.trim().parse().map_err(|_| bad(column, &text))
}

fn text(row: &QueryResult, column: &str) -> Result<String, DbErr> {
    Ok(row
        .try_get::<Option<String>>("", column)?
        .unwrap_or_default())
}

pub(super) async fn primary_log(primary: &DatabaseConnection) -> Result<PrimaryLog, DbErr> {
    let row = row(primary, PRIMARY).await?;
    Ok(PrimaryLog {
        position: LogPosition::Gtids(gtids(&text(&row, "pos")?)?),
        domain: Some(
            u32::try_from(number(&row, "domain")?).map_err(|e| bad("domain", &e.to_string()))?,
        ),
    })
}

/// The replica's replication, if one is configured.
async fn status(replica: &DatabaseConnection) -> Result<Option<QueryResult>, DbErr> {
    replica
        .query_one_raw(Statement::from_string(
            replica.get_database_backend(),
            STATUS,
        ))
        .await
}

pub(super) async fn replay(replica: &DatabaseConnection) -> Result<Replay, DbErr> {
    let Some(status) = status(replica).await? else {
        return Ok(Replay::None);
    };
    let running = |column| text(&status, column).map(|v| v.eq_ignore_ascii_case("Yes"));
    let applying = running("Slave_IO_Running")? && running("Slave_SQL_Running")?;
    let applied = gtids(&text(&row(replica, APPLIED).await?, "pos")?)?;
    Ok(Replay::Replicating {
        applying,
        replayed: Some(LogPosition::Gtids(applied)),
    })
}

pub(super) async fn commit_position(primary: &DatabaseConnection) -> Result<CommitPosition, DbErr> {
    let row = row(primary, PRIMARY).await?;
    let position = gtids(&text(&row, "pos")?)?;
    let domain =
        u32::try_from(number(&row, "domain")?).map_err(|e| bad("domain", &e.to_string()))?;
    let server =
        u32::try_from(number(&row, "server")?).map_err(|e| bad("server", &e.to_string()))?;
    // nothing committed in the domain yet: sequence 0, covered by any replica
    let gtid = position.in_domain(domain).unwrap_or(Gtid {
        domain,
        server,
        seq: 0,
    });
    Ok(CommitPosition::gtid(gtid))
}

pub(super) async fn wait(
    replica: &DatabaseConnection,
    token: CommitPosition,
    bound: Duration,
) -> Result<Waited, DbErr> {
    // an LSN says nothing about a MariaDB replica: the primary answers
    let Some(gtid) = token.as_gtid() else {
        return Ok(Waited::Expired);
    };
    let until = tokio::time::Instant::now() + bound;
    loop {
        let step = WAIT_STEP.min(until.saturating_duration_since(tokio::time::Instant::now()));
        let sql = format!(
            "SELECT CAST(MASTER_GTID_WAIT('{gtid}', {:.3}) AS CHAR) AS reached",
            step.as_secs_f64()
        );
        // 0: applied; -1: not within the step
        let reached = text(&row(replica, &sql).await?, "reached")?;
        match reached.trim() {
            "0" => return Ok(Waited::Reached(token)),
            "-1" => {}
            other => return Err(bad("MASTER_GTID_WAIT", other)),
        }
        if tokio::time::Instant::now() >= until {
            return Ok(Waited::Expired);
        }
        if status(replica).await?.is_none() {
            return Ok(Waited::NotAReplica);
        }
    }
}

/// A server's `@@server_id`, `@@port` and whether it is MariaDB.
async fn identity(db: &DatabaseConnection) -> Result<(u64, u64, bool), DbErr> {
    let row = row(db, IDENTITY).await?;
    Ok((
        number(&row, "server")?,
        number(&row, "port")?,
        text(&row, "version")?.contains("MariaDB"),
    ))
}

pub(super) async fn check(
    primary: &DatabaseConnection,
    replica: &DatabaseConnection,
    i: usize,
) -> Result<(), ReplicaRefused> {
    let (server_id, port, mariadb) = identity(primary)
        .await
        .map_err(unreachable(i, "the primary"))?;
    let (_, _, replica_mariadb) = identity(replica)
        .await
        .map_err(unreachable(i, "the replica"))?;
    if !(mariadb && replica_mariadb) {
        let name = |m| if m { "MariaDB" } else { "MySQL" };
        return Err(ReplicaRefused::Unsupported {
            replica: i,
            primary: name(mariadb),
            replica_engine: name(replica_mariadb),
        });
    }
    let Some(status) = status(replica)
        .await
        .map_err(unreachable(i, "the replica"))?
    else {
        return Err(ReplicaRefused::NotAReplica { replica: i });
    };
    let source = |column| number(&status, column).map_err(unreachable(i, "the replica"));
    // 0 until the replica first reached its source: the port still tells
    let (source_id, source_port) = (source("Master_Server_Id")?, source("Master_Port")?);
    if (source_id != 0 && source_id != server_id) || source_port != port {
        return Err(ReplicaRefused::OtherPrimary {
            replica: i,
            primary: format!("server_id {server_id}, port {port}"),
            replicates: format!(
                "{}:{source_port}, server_id {source_id}",
                text(&status, "Master_Host").unwrap_or_default()
            ),
        });
    }
    Ok(())
}
