//! The transactional inbox: exactly-once effects of a delivery across
//! processes and restarts. A handler records the delivery's `webhook-id` in
//! the `conflictkit_inbox` table inside the same managed transaction as its
//! own writes: both commit, or neither does, and a delivery whose id is
//! already there changes nothing. The listener's in-memory de-duplication
//! only covers one process; this covers every process sharing the database.
//!
//! Works on PostgreSQL, MySQL/MariaDB and SQLite. Two transactions recording
//! the same id at once conflict (a serialization failure, a deadlock or a
//! busy database, by engine); the resolver replays the loser, which then sees
//! the id and does nothing.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

use super::signature::unix_now;

/// The inbox table's name.
pub const INBOX_TABLE: &str = "conflictkit_inbox";

/// Creates the inbox table if it does not exist (the migration helper): the
/// `webhook-id` (primary key, up to 255 characters), the event name and the
/// Unix time it was recorded.
///
/// ```sql
/// CREATE TABLE IF NOT EXISTS conflictkit_inbox (
///     webhook_id  VARCHAR(255) NOT NULL PRIMARY KEY,
///     event_name  VARCHAR(255) NOT NULL,
///     received_at BIGINT       NOT NULL
/// )
/// ```
///
/// Run it once at start-up (it is idempotent), or put the statement above in
/// your own migrations.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let db = sea_orm::Database::connect("sqlite::memory:").await?;
/// conflictkit::events::migrate_inbox(&db).await?;
/// conflictkit::events::migrate_inbox(&db).await?; // idempotent
/// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
/// ```
pub async fn migrate_inbox<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    db.execute_unprepared(&format!(
        "CREATE TABLE IF NOT EXISTS {INBOX_TABLE} (\
         webhook_id VARCHAR(255) NOT NULL PRIMARY KEY, \
         event_name VARCHAR(255) NOT NULL, \
         received_at BIGINT NOT NULL)"
    ))
    .await?;
    Ok(())
}

/// Records the delivery `webhook_id` of `event_name` in the inbox, inside
/// the transaction `txn`: `true` the first time (apply the effects in the
/// same transaction), `false` when the id is already recorded (do nothing:
/// the delivery was applied before, here or in another process).
///
/// Call it first in a managed transaction, with the id from
/// [`EventContext::webhook_id`](super::EventContext::webhook_id) (sign the
/// deliveries, so the id can be trusted):
///
/// ```
/// use conflictkit::events::{EventContext, State, first_delivery, migrate_inbox};
/// use conflictkit::{ConflictResolver, Txn};
/// use sea_orm::ConnectionTrait;
///
/// async fn on_deposit(
///     State(resolver): State<ConflictResolver>,
///     ctx: EventContext,
///     cents: i64,
/// ) -> Result<(), conflictkit::Error> {
///     let Some(id) = ctx.webhook_id().map(str::to_owned) else {
///         return Ok(()); // this sender gives no id: nothing to de-duplicate on
///     };
///     resolver
///         .managed(|txn: &Txn| {
///             let id = id.clone();
///             Box::pin(async move {
///                 if first_delivery(txn, &id, "deposit").await? {
///                     txn.execute_unprepared(&format!(
///                         "UPDATE totals SET cents = cents + {cents}"
///                     ))
///                     .await?;
///                 }
///                 Ok::<_, conflictkit::Error>(())
///             })
///         })
///         .await
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let db = sea_orm::Database::connect("sqlite::memory:").await?;
/// migrate_inbox(&db).await?;
/// db.execute_unprepared("CREATE TABLE totals (cents BIGINT)").await?;
/// db.execute_unprepared("INSERT INTO totals VALUES (0)").await?;
/// let resolver = ConflictResolver::new(db.clone());
/// let ctx = EventContext::new("deposit").with_webhook_id("msg_1");
/// on_deposit(State(resolver.clone()), ctx.clone(), 250).await?;
/// on_deposit(State(resolver.clone()), ctx, 250).await?; // the same delivery again
/// let row = db
///     .query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), "SELECT cents FROM totals"))
///     .await?
///     .unwrap();
/// assert_eq!(row.try_get::<i64>("", "cents")?, 250, "applied once");
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
pub async fn first_delivery<C: ConnectionTrait>(
    txn: &C,
    webhook_id: &str,
    event_name: &str,
) -> Result<bool, DbErr> {
    let backend = txn.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => format!(
            "INSERT INTO {INBOX_TABLE} (webhook_id, event_name, received_at) \
             VALUES ($1, $2, $3) ON CONFLICT (webhook_id) DO NOTHING"
        ),
        DbBackend::MySql => format!(
            "INSERT IGNORE INTO {INBOX_TABLE} (webhook_id, event_name, received_at) \
             VALUES (?, ?, ?)"
        ),
        _ => format!(
            "INSERT OR IGNORE INTO {INBOX_TABLE} (webhook_id, event_name, received_at) \
             VALUES (?, ?, ?)"
        ),
    };
    let result = txn
        .execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [webhook_id.into(), event_name.into(), unix_now().into()],
        ))
        .await?;
    Ok(result.rows_affected() == 1)
}
