//! The outbox rows a relay works on, in short statements of their own: a
//! batch of due events claimed under a lease (`claimed_until`, `claim_token`)
//! in one committed `UPDATE`, the outcome of a delivery recorded only while
//! the claim is still the relay's, and given-up events put back in the queue.
//! No statement here is ever part of a transaction that spans a POST.

use sea_orm::sea_query::{
    Cond, Expr, ExprTrait as _, Func, Order, Query, SelectStatement, UpdateStatement,
};
use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};

use super::outbox::{OUTBOX_TABLE, unix_millis};

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

/// `column`, of the outbox row `table` (an alias) when given.
fn col(table: Option<&'static str>, column: &'static str) -> Expr {
    match table {
        Some(table) => Expr::col((table, column)),
        None => Expr::col(column),
    }
}

/// Not delivered and not given up.
fn pending(table: Option<&'static str>) -> Cond {
    Cond::all()
        .add(col(table, "delivered_at").is_null())
        .add(col(table, "failed_at").is_null())
}

/// Not held by a lease that is still running at `now`.
fn unclaimed(table: Option<&'static str>, now: i64) -> Cond {
    Cond::any()
        .add(col(table, "claimed_until").is_null())
        .add(col(table, "claimed_until").lte(now))
}

/// Up to `limit` due events, each the oldest pending event of its stream
/// and not claimed by a live lease at `now`, oldest first.
fn candidates(now: i64, limit: usize) -> SelectStatement {
    let earlier_pending = Query::select()
        .expr(Expr::val(1))
        .from_as(OUTBOX_TABLE, "e")
        .and_where(Expr::col(("e", "stream")).equals(("o", "stream")))
        .and_where(Expr::col(("e", "id")).lt(Expr::col(("o", "id"))))
        .cond_where(pending(Some("e")))
        .to_owned();
    Query::select()
        .column(("o", "id"))
        .from_as(OUTBOX_TABLE, "o")
        .cond_where(
            pending(Some("o"))
                .add(Expr::col(("o", "next_attempt_at")).lte(now))
                .add(unclaimed(Some("o"), now))
                .add(Expr::exists(earlier_pending).not()),
        )
        .order_by(("o", "id"), Order::Asc)
        .limit(u64::try_from(limit).unwrap_or(u64::MAX))
        .to_owned()
}

/// Claims `ids` until `until` under `token`, those still pending and free
/// at `now`.
fn claim(ids: &[i64], token: &str, now: i64, until: i64) -> UpdateStatement {
    Query::update()
        .table(OUTBOX_TABLE)
        .value("claimed_until", until)
        .value("claim_token", token)
        .cond_where(
            pending(None)
                .add(unclaimed(None, now))
                .add(Expr::col("id").is_in(ids.iter().copied())),
        )
        .to_owned()
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
    let now = unix_millis();
    let candidates = conn.query_all(&candidates(now, limit)).await?;
    if candidates.is_empty() {
        return Ok(Batch {
            found: 0,
            claimed: Vec::new(),
        });
    }
    let ids = candidates
        .iter()
        .map(|row| int(row, "id"))
        .collect::<Result<Vec<_>, DbErr>>()?;
    conn.execute(&claim(&ids, token, now, now.saturating_add(lease_ms)))
        .await?;
    // What this claim won, looked up by primary key.
    let won = Query::select()
        .columns(["id", "webhook_id", "event_name", "payload", "attempts"])
        .from(OUTBOX_TABLE)
        .and_where(Expr::col("claim_token").eq(token))
        .and_where(Expr::col("id").is_in(ids.iter().copied()))
        .order_by("id", Order::Asc)
        .to_owned();
    let rows = conn.query_all(&won).await?;
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

/// The `UPDATE` recording `outcome` at `now` for the event `id` if the claim
/// `token` is still on it.
fn record_statement(id: i64, token: &str, outcome: Outcome<'_>, now: i64) -> UpdateStatement {
    let mut update = Query::update().table(OUTBOX_TABLE).to_owned();
    match outcome {
        Outcome::Delivered => update.value("delivered_at", now),
        Outcome::Retry {
            error,
            next_attempt_at,
        } => update
            .value("next_attempt_at", next_attempt_at)
            .value("last_error", error),
        Outcome::GivenUp { error } => update.value("failed_at", now).value("last_error", error),
    };
    update
        .value("attempts", Expr::col("attempts").add(1))
        .value("claimed_until", Value::BigInt(None))
        .value("claim_token", Value::String(None))
        .and_where(Expr::col("id").eq(id))
        .and_where(Expr::col("claim_token").eq(token))
        .to_owned()
}

/// Records `outcome` for the event `id` if the claim `token` is still on
/// it; `false` when another relay took the claim over (its lease ran out).
pub(crate) async fn record<C: ConnectionTrait>(
    conn: &C,
    id: i64,
    token: &str,
    outcome: Outcome<'_>,
) -> Result<bool, DbErr> {
    let update = record_statement(id, token, outcome, unix_millis());
    Ok(conn.execute(&update).await?.rows_affected() == 1)
}

/// Puts given-up events back in the queue (all of them, or the one with
/// `webhook_id`): due now, attempts from zero; returns how many.
pub(crate) async fn requeue<C: ConnectionTrait>(
    conn: &C,
    webhook_id: Option<&str>,
) -> Result<u64, DbErr> {
    let mut update = Query::update()
        .table(OUTBOX_TABLE)
        .value("failed_at", Value::BigInt(None))
        .value("attempts", 0)
        .value("next_attempt_at", unix_millis())
        .value("claimed_until", Value::BigInt(None))
        .value("claim_token", Value::String(None))
        .and_where(Expr::col("failed_at").is_not_null())
        .and_where(Expr::col("delivered_at").is_null())
        .to_owned();
    if let Some(id) = webhook_id {
        update.and_where(Expr::col("webhook_id").eq(id));
    }
    Ok(conn.execute(&update).await?.rows_affected())
}

/// How many outbox events wait: pending (not delivered, not given up) and
/// given up.
pub(crate) async fn backlog<C: ConnectionTrait>(conn: &C) -> Result<Backlog, DbErr> {
    let not_failed = || Expr::col("failed_at").is_null();
    let query = Query::select()
        .expr_as(Func::count(Expr::case(not_failed(), 1)), "pending")
        .expr_as(Func::count(Expr::col("failed_at")), "failed")
        .expr_as(
            Func::min(Expr::case(not_failed(), Expr::col("created_at"))),
            "oldest",
        )
        .from(OUTBOX_TABLE)
        .and_where(Expr::col("delivered_at").is_null())
        .to_owned();
    let row = conn
        .query_one(&query)
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

#[cfg(test)]
mod tests {
    use sea_orm::DbBackend;

    use super::*;

    /// The claim's statements as sea-query renders them (the version in
    /// Cargo.lock), with each engine's placeholders.
    #[test]
    fn the_claim_statements_render_for_every_engine() {
        let pg = DbBackend::Postgres.build(&candidates(7, 16));
        assert_eq!(
            pg.sql,
            r#"SELECT "o"."id" FROM "conflictkit_outbox" AS "o" WHERE "o"."delivered_at" IS NULL AND "o"."failed_at" IS NULL AND "o"."next_attempt_at" <= $1 AND ("o"."claimed_until" IS NULL OR "o"."claimed_until" <= $2) AND (NOT EXISTS(SELECT $3 FROM "conflictkit_outbox" AS "e" WHERE "e"."stream" = "o"."stream" AND "e"."id" < "o"."id" AND "e"."delivered_at" IS NULL AND "e"."failed_at" IS NULL)) ORDER BY "o"."id" ASC LIMIT $4"#
        );
        let mysql = DbBackend::MySql.build(&claim(&[1, 2], "tok", 7, 9));
        assert_eq!(
            mysql.sql,
            "UPDATE `conflictkit_outbox` SET `claimed_until` = ?, `claim_token` = ? WHERE `delivered_at` IS NULL AND `failed_at` IS NULL AND (`claimed_until` IS NULL OR `claimed_until` <= ?) AND `id` IN (?, ?)"
        );
        let sqlite = DbBackend::Sqlite.build(&record_statement(
            3,
            "tok",
            Outcome::Retry {
                error: "503",
                next_attempt_at: 11,
            },
            7,
        ));
        assert_eq!(
            sqlite.sql,
            r#"UPDATE "conflictkit_outbox" SET "next_attempt_at" = ?, "last_error" = ?, "attempts" = "attempts" + ?, "claimed_until" = ?, "claim_token" = ? WHERE "id" = ? AND "claim_token" = ?"#
        );
    }
}
