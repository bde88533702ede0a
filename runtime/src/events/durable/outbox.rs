//! The transactional outbox: an event published inside a managed transaction
//! is a row of the `conflictkit_outbox` table written by that transaction, so
//! it exists if and only if the transaction committed; an
//! [`OutboxRelay`](crate::events::OutboxRelay) then delivers it (at least once, with
//! the same `webhook-id` on every attempt). An event posted from an
//! after-commit hook is lost if the process dies between COMMIT and the POST;
//! an outbox row is not.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sea_orm::sea_query::{Cond, Expr, ExprTrait as _, InsertStatement, Query};
use sea_orm::{ConnectionTrait, DbBackend, DbErr};
use serde::Serialize;

use super::inbox::INBOX_TABLE;
use super::inbox_migrate::FIRST_MILLIS;
use crate::events::send::poster::message_id;
use crate::resolver::Txn;

/// The outbox table's name.
pub const OUTBOX_TABLE: &str = "conflictkit_outbox";

/// Creates the outbox table if it does not exist (the migration helper, next
/// to [`migrate_inbox`](crate::events::migrate_inbox)). Times are Unix milliseconds.
///
/// ```sql
/// CREATE TABLE IF NOT EXISTS conflictkit_outbox (
///     id              BIGINT PRIMARY KEY,   -- BIGSERIAL / AUTO_INCREMENT / AUTOINCREMENT
///     webhook_id      VARCHAR(255) NOT NULL UNIQUE,
///     stream          VARCHAR(255) NOT NULL, -- delivered in order within a stream
///     event_name      VARCHAR(255) NOT NULL,
///     payload         TEXT         NOT NULL, -- the event data as JSON
///     created_at      BIGINT       NOT NULL,
///     attempts        INTEGER      NOT NULL DEFAULT 0,
///     next_attempt_at BIGINT       NOT NULL,
///     delivered_at    BIGINT,               -- set once delivered
///     failed_at       BIGINT,               -- set when the relay gave up
///     last_error      TEXT,
///     claimed_until   BIGINT,               -- a relay's lease on the event
///     claim_token     VARCHAR(64)           -- which claim holds it
/// );
/// CREATE INDEX conflictkit_outbox_pending ON conflictkit_outbox (stream, id);
/// ```
///
/// Run it once at start-up (it is idempotent, and adds the two claim
/// columns to a table created by an earlier version), or put the statements
/// above, in your engine's dialect, in your own migrations.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let db = sea_orm::Database::connect("sqlite::memory:").await?;
/// conflictkit::events::migrate_outbox(&db).await?;
/// conflictkit::events::migrate_outbox(&db).await?; // idempotent
/// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
/// ```
pub async fn migrate_outbox<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    // DDL stays SQL text: sea-query's schema builder has no `CREATE INDEX IF
    // NOT EXISTS` for MySQL (an index inline in `CREATE TABLE`, as here) and
    // no portable auto-increment `BIGINT` key (`BIGSERIAL` / `AUTO_INCREMENT`
    // / SQLite's `INTEGER PRIMARY KEY AUTOINCREMENT`); the statements are
    // fixed, with no values to bind.
    let backend = db.get_database_backend();
    let (id, text, index) = match backend {
        DbBackend::Postgres => ("id BIGSERIAL PRIMARY KEY", "TEXT", ""),
        DbBackend::MySql => (
            "id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY",
            "LONGTEXT",
            ", INDEX conflictkit_outbox_pending (stream, id)",
        ),
        _ => ("id INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT", ""),
    };
    db.execute_unprepared(&format!(
        "CREATE TABLE IF NOT EXISTS {OUTBOX_TABLE} ({id}, \
         webhook_id VARCHAR(255) NOT NULL UNIQUE, \
         stream VARCHAR(255) NOT NULL, \
         event_name VARCHAR(255) NOT NULL, \
         payload {text} NOT NULL, \
         created_at BIGINT NOT NULL, \
         attempts INTEGER NOT NULL DEFAULT 0, \
         next_attempt_at BIGINT NOT NULL, \
         delivered_at BIGINT NULL, \
         failed_at BIGINT NULL, \
         last_error {text} NULL, \
         claimed_until BIGINT NULL, \
         claim_token VARCHAR(64) NULL{index})"
    ))
    .await?;
    // A table from before claims: add their columns.
    let probe = format!("SELECT claim_token FROM {OUTBOX_TABLE} WHERE 1 = 0");
    if db.execute_unprepared(&probe).await.is_err() {
        for column in ["claimed_until BIGINT NULL", "claim_token VARCHAR(64) NULL"] {
            db.execute_unprepared(&format!("ALTER TABLE {OUTBOX_TABLE} ADD COLUMN {column}"))
                .await?;
        }
    }
    if backend != DbBackend::MySql {
        db.execute_unprepared(&format!(
            "CREATE INDEX IF NOT EXISTS conflictkit_outbox_pending ON {OUTBOX_TABLE} (stream, id)"
        ))
        .await?;
    }
    Ok(())
}

/// Publishing an event from inside a managed transaction: it is written to
/// the outbox by the transaction and delivered by an
/// [`OutboxRelay`](crate::events::OutboxRelay) once (and only if) it commits.
///
/// Errors are [`DbErr`]s, so `?` works in any managed body; data that does
/// not serialise is `DbErr::Json`.
///
/// ```
/// use conflictkit::events::{OUTBOX_TABLE, Publish, migrate_outbox};
/// use conflictkit::{ConflictResolver, Txn};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let db = sea_orm::Database::connect("sqlite::memory:").await?;
/// migrate_outbox(&db).await?;
/// let resolver = ConflictResolver::new(db.clone());
/// let id = resolver
///     .managed(|txn: &Txn| Box::pin(async move {
///         // … the transaction's own writes …
///         Ok::<_, conflictkit::Error>(txn.publish("txupdate", &serde_json::json!({"txid": "ab12"})).await?)
///     }))
///     .await?;
/// assert!(id.starts_with("msg_"));
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
pub trait Publish {
    /// Writes the event `event_name` with `data` to the outbox, in the stream
    /// named like the event; returns its `webhook-id`.
    fn publish<T: Serialize + ?Sized>(
        &self,
        event_name: &str,
        data: &T,
    ) -> impl Future<Output = Result<String, DbErr>> + Send;

    /// Writes the event to the outbox in the stream `stream`: events of one
    /// stream are delivered one at a time in publish order (see
    /// [`OutboxRelay`](crate::events::OutboxRelay)); returns its `webhook-id`.
    ///
    /// ```
    /// use conflictkit::events::{Publish, migrate_outbox};
    /// use conflictkit::{ConflictResolver, Txn};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// migrate_outbox(&db).await?;
    /// ConflictResolver::new(db)
    ///     .managed(|txn: &Txn| Box::pin(async move {
    ///         txn.publish_in("account-7", "credited", &250).await?;
    ///         txn.publish_in("account-7", "debited", &100).await?;
    ///         Ok::<_, conflictkit::Error>(())
    ///     }))
    ///     .await?;
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    fn publish_in<T: Serialize + ?Sized>(
        &self,
        stream: &str,
        event_name: &str,
        data: &T,
    ) -> impl Future<Output = Result<String, DbErr>> + Send;
}

impl Publish for Txn {
    fn publish<T: Serialize + ?Sized>(
        &self,
        event_name: &str,
        data: &T,
    ) -> impl Future<Output = Result<String, DbErr>> + Send {
        self.publish_in(event_name, event_name, data)
    }

    fn publish_in<T: Serialize + ?Sized>(
        &self,
        stream: &str,
        event_name: &str,
        data: &T,
    ) -> impl Future<Output = Result<String, DbErr>> + Send {
        // Serialised before the future, which then borrows nothing of `data`.
        let row = outbox_row(stream, event_name, data);
        async move {
            let (insert, id) = row?;
            self.execute(&insert).await?;
            Ok(id)
        }
    }
}

/// The `INSERT` of one outbox row and its `webhook-id`.
fn outbox_row<T: Serialize + ?Sized>(
    stream: &str,
    event_name: &str,
    data: &T,
) -> Result<(InsertStatement, String), DbErr> {
    if event_name.is_empty() {
        return Err(DbErr::Custom(
            "the event name is empty: every published event needs a name".into(),
        ));
    }
    let payload = serde_json::to_string(data)
        .map_err(|e| DbErr::Json(format!("the event data does not serialise to JSON: {e}")))?;
    let id = message_id();
    let now = unix_millis();
    let insert = Query::insert()
        .into_table(OUTBOX_TABLE)
        .columns([
            "webhook_id",
            "stream",
            "event_name",
            "payload",
            "created_at",
            "next_attempt_at",
        ])
        .values([
            id.clone().into(),
            stream.into(),
            event_name.into(),
            payload.into(),
            now.into(),
            now.into(),
        ])
        .map_err(|e| DbErr::Custom(format!("building the outbox insert: {e}")))?
        .to_owned();
    Ok((insert, id))
}

/// Now, in Unix milliseconds.
pub(crate) fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Deletes inbox rows recorded more than `older_than` ago; returns how many.
///
/// An inbox row is what makes a retried delivery a duplicate: keep rows
/// longer than any sender retries one event (an
/// [`OutboxRelay`](crate::events::OutboxRelay) retries until it delivers or gives up;
/// [`EventPoster`](crate::events::EventPoster) for its retries' backoff). A retry
/// arriving after its row was purged is applied again. Days are a safe
/// retention for most senders; run it periodically (e.g. hourly).
///
/// ```
/// use std::time::Duration;
/// use conflictkit::events::{migrate_inbox, purge_inbox};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let db = sea_orm::Database::connect("sqlite::memory:").await?;
/// migrate_inbox(&db).await?;
/// let purged = purge_inbox(&db, Duration::from_secs(7 * 24 * 3600)).await?;
/// assert_eq!(purged, 0);
/// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
/// ```
pub async fn purge_inbox<C: ConnectionTrait>(db: &C, older_than: Duration) -> Result<u64, DbErr> {
    let now = unix_millis();
    let cutoff_ms = now.saturating_sub(i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX));
    // A row an earlier build recorded in seconds (not yet converted by
    // `migrate_inbox`) is compared in seconds: read as milliseconds it would
    // look 50 years old and go at once, and its delivery could be applied again.
    let cutoff_s = cutoff_ms.div_euclid(1000);
    let received = || Expr::col("received_at");
    let delete = Query::delete()
        .from_table(INBOX_TABLE)
        .cond_where(
            Cond::any()
                .add(received().gte(FIRST_MILLIS).and(received().lt(cutoff_ms)))
                .add(received().lt(FIRST_MILLIS).and(received().lt(cutoff_s))),
        )
        .to_owned();
    Ok(db.execute(&delete).await?.rows_affected())
}

/// Deletes outbox rows delivered more than `older_than` ago; returns how
/// many. Pending events and events the relay gave up on (`failed_at` set)
/// are kept: look at those, then delete them yourself.
///
/// ```
/// use std::time::Duration;
/// use conflictkit::events::{migrate_outbox, purge_outbox};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let db = sea_orm::Database::connect("sqlite::memory:").await?;
/// migrate_outbox(&db).await?;
/// assert_eq!(purge_outbox(&db, Duration::from_secs(24 * 3600)).await?, 0);
/// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
/// ```
pub async fn purge_outbox<C: ConnectionTrait>(db: &C, older_than: Duration) -> Result<u64, DbErr> {
    let cutoff =
        unix_millis().saturating_sub(i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX));
    let delete = Query::delete()
        .from_table(OUTBOX_TABLE)
        .and_where(Expr::col("delivered_at").is_not_null())
        .and_where(Expr::col("delivered_at").lt(cutoff))
        .to_owned();
    Ok(db.execute(&delete).await?.rows_affected())
}
