//! The outbox rows a relay works on, in short statements of their own: a
//! batch of due events claimed under a lease (`claimed_until`, `claim_token`)
//! in one committed `UPDATE`, the outcome of a delivery recorded only while
//! the claim is still the relay's, and given-up events put back in the queue.
//! No statement here is ever part of a transaction that spans a POST.

use sea_orm::{ConnectionTrait, DbErr, QueryResult, Statement};

use super::outbox::{OUTBOX_TABLE, placeholder, unix_millis};

/// One event as claimed.
pub(crate) struct Claimed {
    pub(crate) id: i64,
    pub(crate) webhook_id: String,
    pub(crate) event_name: String,
    pub(crate) payload: String,
    /// Failed attempts before this one.
    pub(crate) attempts: u32,
}

/// The events a claim found free, and those of them it won.
pub(crate) struct Batch {
    /// Due and unclaimed when read: 0 means nothing was left to claim.
    pub(crate) found: usize,
    pub(crate) claimed: Vec<Claimed>,
}

/// Claims up to `limit` due events, each the oldest pending event of its
/// stream and not claimed by a live lease, until `now + lease_ms`, under
/// `token`. The candidates are read, then claimed by one `UPDATE` that
/// re-checks they are still free: of two relays that read the same
/// candidates, each row goes to one (the engine re-evaluates the condition
/// on the row the other's committed claim wrote).
pub(crate) async fn claim_batch<C: ConnectionTrait>(
    conn: &C,
    token: &str,
    limit: usize,
    lease_ms: i64,
) -> Result<Batch, DbErr> {
    let backend = conn.get_database_backend();
    let p = |i| placeholder(backend, i);
    let now = unix_millis();
    let candidates = conn
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT id FROM {OUTBOX_TABLE} o \
                 WHERE o.delivered_at IS NULL AND o.failed_at IS NULL AND o.next_attempt_at <= {} \
                 AND (o.claimed_until IS NULL OR o.claimed_until <= {}) \
                 AND NOT EXISTS (SELECT 1 FROM {OUTBOX_TABLE} e WHERE e.stream = o.stream \
                 AND e.id < o.id AND e.delivered_at IS NULL AND e.failed_at IS NULL) \
                 ORDER BY o.id LIMIT {limit}",
                p(1),
                p(2)
            ),
            [now.into(), now.into()],
        ))
        .await?;
    if candidates.is_empty() {
        return Ok(Batch {
            found: 0,
            claimed: Vec::new(),
        });
    }
    let ids = candidates
        .iter()
        .map(|row| int(row, "id").map(sea_orm::Value::from))
        .collect::<Result<Vec<_>, DbErr>>()?;
    // `first, first + 1, …` placeholders for the ids after `first - 1` others.
    let id_list = |first: usize| {
        (first..first + ids.len())
            .map(p)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut values: Vec<sea_orm::Value> = vec![
        now.saturating_add(lease_ms).into(),
        token.into(),
        now.into(),
    ];
    values.extend(ids.iter().cloned());
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        format!(
            "UPDATE {OUTBOX_TABLE} SET claimed_until = {}, claim_token = {} \
             WHERE delivered_at IS NULL AND failed_at IS NULL \
             AND (claimed_until IS NULL OR claimed_until <= {}) AND id IN ({})",
            p(1),
            p(2),
            p(3),
            id_list(4)
        ),
        values,
    ))
    .await?;
    // What this claim won, looked up by primary key.
    let mut values: Vec<sea_orm::Value> = vec![token.into()];
    values.extend(ids.iter().cloned());
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT id, webhook_id, event_name, payload, attempts FROM {OUTBOX_TABLE} \
                 WHERE claim_token = {} AND id IN ({}) ORDER BY id",
                p(1),
                id_list(2)
            ),
            values,
        ))
        .await?;
    let claimed = rows
        .iter()
        .map(|row| {
            Ok(Claimed {
                id: int(row, "id")?,
                webhook_id: row.try_get("", "webhook_id")?,
                event_name: row.try_get("", "event_name")?,
                payload: row.try_get("", "payload")?,
                attempts: u32::try_from(int(row, "attempts")?).unwrap_or(u32::MAX),
            })
        })
        .collect::<Result<_, DbErr>>()?;
    Ok(Batch {
        found: candidates.len(),
        claimed,
    })
}

/// How a delivery ended, as the outbox records it.
pub(crate) enum Outcome<'a> {
    Delivered,
    /// Retried at `next_attempt_at` (Unix ms).
    Retry {
        error: &'a str,
        next_attempt_at: i64,
    },
    GivenUp {
        error: &'a str,
    },
}

/// Records `outcome` for the event `id` if the claim `token` is still on
/// it; `false` when another relay took the claim over (its lease ran out).
pub(crate) async fn record<C: ConnectionTrait>(
    conn: &C,
    id: i64,
    token: &str,
    outcome: Outcome<'_>,
) -> Result<bool, DbErr> {
    let backend = conn.get_database_backend();
    let p = |i| placeholder(backend, i);
    let now = unix_millis();
    let (set, mut values): (String, Vec<sea_orm::Value>) = match outcome {
        Outcome::Delivered => (format!("delivered_at = {}", p(1)), vec![now.into()]),
        Outcome::Retry {
            error,
            next_attempt_at,
        } => (
            format!("next_attempt_at = {}, last_error = {}", p(1), p(2)),
            vec![next_attempt_at.into(), error.into()],
        ),
        Outcome::GivenUp { error } => (
            format!("failed_at = {}, last_error = {}", p(1), p(2)),
            vec![now.into(), error.into()],
        ),
    };
    values.push(id.into());
    values.push(token.into());
    let sql = format!(
        "UPDATE {OUTBOX_TABLE} SET {set}, attempts = attempts + 1, claimed_until = NULL, \
         claim_token = NULL WHERE id = {} AND claim_token = {}",
        p(values.len() - 1),
        p(values.len())
    );
    let done = conn
        .execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Puts given-up events back in the queue (all of them, or the one with
/// `webhook_id`): due now, attempts from zero; returns how many.
pub(crate) async fn requeue<C: ConnectionTrait>(
    conn: &C,
    webhook_id: Option<&str>,
) -> Result<u64, DbErr> {
    let backend = conn.get_database_backend();
    let p = |i| placeholder(backend, i);
    let mut values: Vec<sea_orm::Value> = vec![unix_millis().into()];
    let mut sql = format!(
        "UPDATE {OUTBOX_TABLE} SET failed_at = NULL, attempts = 0, next_attempt_at = {}, \
         claimed_until = NULL, claim_token = NULL \
         WHERE failed_at IS NOT NULL AND delivered_at IS NULL",
        p(1)
    );
    if let Some(id) = webhook_id {
        values.push(id.into());
        sql.push_str(&format!(" AND webhook_id = {}", p(2)));
    }
    let done = conn
        .execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(done.rows_affected())
}

/// How many outbox events wait: pending (not delivered, not given up) and
/// given up.
pub(crate) async fn backlog<C: ConnectionTrait>(conn: &C) -> Result<Backlog, DbErr> {
    let backend = conn.get_database_backend();
    let row = conn
        .query_one_raw(Statement::from_string(
            backend,
            format!(
                "SELECT COUNT(CASE WHEN failed_at IS NULL THEN 1 END) AS pending, \
                 COUNT(failed_at) AS failed, \
                 MIN(CASE WHEN failed_at IS NULL THEN created_at END) AS oldest \
                 FROM {OUTBOX_TABLE} WHERE delivered_at IS NULL"
            ),
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("the outbox backlog count".into()))?;
    let count = |column| int(&row, column).map(|n| u64::try_from(n).unwrap_or(0));
    let oldest = match row.try_get::<Option<i64>>("", "oldest") {
        Ok(oldest) => oldest,
        Err(_) => row.try_get::<Option<i32>>("", "oldest")?.map(i64::from),
    };
    Ok(Backlog {
        pending: count("pending")?,
        failed: count("failed")?,
        oldest_pending: oldest.map(|created_ms| {
            let age = unix_millis().saturating_sub(created_ms);
            std::time::Duration::from_millis(u64::try_from(age).unwrap_or(0))
        }),
    })
}

/// An integer column, whichever width the engine returns it in.
fn int(row: &QueryResult, column: &str) -> Result<i64, DbErr> {
    match row.try_get::<i64>("", column) {
        Ok(n) => Ok(n),
        Err(_) => Ok(i64::from(row.try_get::<i32>("", column)?)),
    }
}

/// The outbox events that wait (see
/// [`OutboxRelay::backlog`](crate::events::OutboxRelay::backlog)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Backlog {
    /// Not yet delivered and not given up.
    pub pending: u64,
    /// Given up after the last step of the schedule.
    pub failed: u64,
    /// How long ago the oldest pending event was published; `None` when
    /// none is pending.
    pub oldest_pending: Option<std::time::Duration>,
}
