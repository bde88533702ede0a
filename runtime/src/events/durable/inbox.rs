//! The transactional inbox: exactly-once effects of a delivery across
//! processes and restarts. A handler records the delivery's `webhook-id` in
//! the `conflictkit_inbox` table inside the same managed transaction as its
//! own writes: both commit, or neither does, and a delivery whose id is
//! already there changes nothing. The listener's in-memory de-duplication
//! only covers one process; this covers every process sharing the database.
//!
//! The inbox is keyed by the delivery *and its consumer*: each handler that
//! applies a delivery records it under its own name, so two transactional
//! handlers of one event (or two services sharing the database) each apply
//! it once. A transactional handler's consumer is its name, the label of its
//! managed transaction (`module::function`).
//!
//! Works on PostgreSQL, MySQL/MariaDB and SQLite. Two transactions recording
//! the same id for the same consumer at once conflict (a serialization
//! failure, a deadlock or a busy database, by engine); the resolver replays
//! the loser, which then sees the id and does nothing.
//!
//! An inbox created before consumers were recorded (keyed by `webhook_id`
//! alone) is migrated by [`migrate_inbox`], which documents how and what its
//! rows mean afterwards.

use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict, Query};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, TransactionTrait};

use super::inbox_migrate::{has_consumer_column, migrate_legacy, seconds_to_millis};
use super::outbox::unix_millis;

/// The inbox table's name.
pub const INBOX_TABLE: &str = "conflictkit_inbox";

/// The longest `webhook-id` (and consumer name) the inbox records, in
/// characters: its columns are `VARCHAR(255)`. The listener answers a
/// longer id of a delivery for a transactional handler with 400
/// `webhook_id_too_long`; [`first_delivery`] refuses one with an error.
pub const MAX_WEBHOOK_ID_CHARS: usize = 255;

/// The consumer of the rows an inbox from before consumers held (see
/// [`migrate_inbox`]): the empty string. Such a row counts as applied for
/// every consumer; no handler records it anew, and [`first_delivery`]
/// refuses it as a consumer.
pub const LEGACY_CONSUMER: &str = "";

/// Creates the inbox table if it does not exist (the migration helper), and
/// migrates an inbox from before consumers (keyed by `webhook_id` alone) to
/// this shape: the `webhook-id` and the consumer that applied it (together
/// the primary key, each up to [`MAX_WEBHOOK_ID_CHARS`] characters), the
/// event name and the time it was recorded, in Unix milliseconds (as the
/// outbox's times).
///
/// ```sql
/// CREATE TABLE IF NOT EXISTS conflictkit_inbox (
///     webhook_id  VARCHAR(255) NOT NULL,
///     consumer    VARCHAR(255) NOT NULL,
///     event_name  VARCHAR(255) NOT NULL,
///     received_at BIGINT       NOT NULL, -- Unix milliseconds
///     PRIMARY KEY (webhook_id, consumer)
/// )
/// ```
///
/// Run it once at start-up (it is idempotent), or put the statement above in
/// your own migrations.
///
/// # An inbox that recorded seconds
///
/// Earlier builds recorded `received_at` in Unix seconds. This function
/// converts those rows to milliseconds: a value that can only be seconds
/// (from 10^8, March 1973, up to 10^11, which as milliseconds is March 1973
/// again) is multiplied by 1000, in one `UPDATE` in a transaction (`BEGIN
/// IMMEDIATE` on SQLite). It is idempotent (a converted value is never in
/// that range), safe for two processes at once (the second waits for the
/// first's row locks and then finds nothing left to convert), and costs one
/// non-locking read when there is nothing to convert. Stop the processes of
/// the earlier build first, or run it again once they are gone: a row one of
/// them records meanwhile is in seconds until then (and
/// [`purge_inbox`](crate::events::purge_inbox) reads such a value as seconds, so
/// it does not purge it early).
///
/// # An inbox from before consumers
///
/// Earlier builds keyed the table by `webhook_id` alone, with no `consumer`
/// column. This function finds that shape and migrates it in place: it adds
/// the `consumer` column, gives the rows already there the consumer
/// [`LEGACY_CONSUMER`] (the empty string) and makes `(webhook_id, consumer)`
/// the primary key.
///
/// - PostgreSQL: one transaction, the table locked (`ACCESS EXCLUSIVE`).
/// - MySQL/MariaDB: one `ALTER TABLE` (atomic on its own), then the column's
///   default is dropped.
/// - SQLite cannot change a primary key: the table is rebuilt (created anew,
///   rows copied, the old one dropped, the new one renamed) in one
///   `BEGIN IMMEDIATE` transaction. Indexes you added to the old table go
///   with it: create them again.
///
/// Processes migrating at the same time are safe: the one that comes second
/// finds the table migrated. Stop the processes of the earlier build first:
/// they neither see the rows of the new shape nor (on PostgreSQL) can record
/// their own.
///
/// What an old row means: *some* handler applied that delivery, and which
/// one was not recorded. Running any handler for it again could apply the
/// delivery twice (the one that had applied it), while not running one can at
/// worst keep missing what the earlier build already missed (its fault: a
/// second transactional handler of an event never applied a delivery, and
/// the sender was answered 200). So an old row counts as applied **for every
/// consumer**: [`first_delivery`] answers `false` for its id, whatever the
/// consumer. Deliveries recorded after the migration are per consumer. Old
/// rows go away with [`purge_inbox`](crate::events::purge_inbox) like the others.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let db = sea_orm::Database::connect("sqlite::memory:").await?;
/// conflictkit::events::migrate_inbox(&db).await?;
/// conflictkit::events::migrate_inbox(&db).await?; // idempotent
/// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
/// ```
pub async fn migrate_inbox<C>(db: &C) -> Result<(), DbErr>
where
    C: ConnectionTrait + TransactionTrait,
{
    db.execute_unprepared(&format!(
        "CREATE TABLE IF NOT EXISTS {INBOX_TABLE} (\
         webhook_id VARCHAR(255) NOT NULL, \
         consumer VARCHAR(255) NOT NULL, \
         event_name VARCHAR(255) NOT NULL, \
         received_at BIGINT NOT NULL, \
         PRIMARY KEY (webhook_id, consumer))"
    ))
    .await?;
    if !has_consumer_column(db).await? {
        tracing::info!(
            table = INBOX_TABLE,
            "migrating an inbox from before consumers: its rows count as applied for every consumer"
        );
        match migrate_legacy(db).await {
            Ok(()) => {}
            // Another process migrated it meanwhile (MySQL/MariaDB: "duplicate
            // column"; the other engines recheck under a lock and skip).
            Err(_) if has_consumer_column(db).await? => {}
            Err(e) => return Err(e),
        }
    }
    seconds_to_millis(db).await?;
    Ok(())
}

/// Records that `consumer` applies the delivery `webhook_id` of `event_name`,
/// in the inbox, inside the transaction `txn`: `true` the first time for this
/// consumer (apply its effects in the same transaction), `false` when the
/// consumer already recorded it (do nothing: it applied the delivery before,
/// here or in another process) or when a row from before consumers records
/// the id (it counts as applied for every consumer; see
/// [`migrate_inbox`](migrate_inbox#an-inbox-from-before-consumers)).
///
/// `consumer` names what applies the delivery, so that several consumers of
/// one delivery each apply it once: a transactional handler's consumer is its
/// name (`module::function`); pick names of your own that do not collide with
/// those. It must not be empty ([`LEGACY_CONSUMER`]).
///
/// Errors (`DbErr::Custom`, before anything is written) when `webhook_id` or
/// `consumer` is longer than [`MAX_WEBHOOK_ID_CHARS`] characters or
/// `consumer` is empty; an `event_name` that long is recorded cut to that
/// length (it is not part of the key).
///
/// Call it first in a managed transaction, with the id from
/// [`EventContext::webhook_id`](crate::events::EventContext::webhook_id) (sign the
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
///                 if first_delivery(txn, &id, "deposit", "totals").await? {
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
    consumer: &str,
) -> Result<bool, DbErr> {
    check_key("webhook-id", webhook_id)?;
    check_key("consumer", consumer)?;
    if consumer == LEGACY_CONSUMER {
        return Err(DbErr::Custom(
            "the inbox consumer must not be empty: the empty consumer marks rows from before consumers".into(),
        ));
    }
    let event_name = match event_name.char_indices().nth(MAX_WEBHOOK_ID_CHARS) {
        Some((cut, _)) => &event_name[..cut],
        None => event_name,
    };
    let backend = txn.get_database_backend();
    let insert = insert_if_absent(backend, webhook_id, consumer, event_name, unix_millis())?;
    let inserted = txn.execute_raw(insert).await?.rows_affected() == 1;
    if !inserted {
        return Ok(false);
    }
    // First for this consumer; a row from before consumers still makes it a
    // redelivery (applied by some handler). A primary-key lookup, after the
    // insert: the row it looks for is never written any more.
    let legacy = Query::select()
        .expr(Expr::val(1))
        .from(INBOX_TABLE)
        .and_where(Expr::col("webhook_id").eq(webhook_id))
        .and_where(Expr::col("consumer").eq(LEGACY_CONSUMER))
        .to_owned();
    Ok(txn.query_one(&legacy).await?.is_none())
}

/// The `INSERT` of an inbox row that does nothing when the row is there:
/// `ON CONFLICT (webhook_id, consumer) DO NOTHING` on PostgreSQL and SQLite,
/// `INSERT IGNORE` on MySQL/MariaDB. Either way one affected row means it
/// was inserted.
///
/// MySQL is the one form written by hand: sea-query (1.0.2) renders its
/// `do_nothing()` as `ON DUPLICATE KEY IGNORE`, which is not MySQL, and its
/// `do_nothing_on(..)` as `ON DUPLICATE KEY UPDATE webhook_id = webhook_id`,
/// which sqlx (connecting with `CLIENT_FOUND_ROWS`) reports as one affected
/// row for a duplicate too: an insert could not be told from a redelivery.
/// So the statement is sea-query's plain `INSERT` with `IGNORE` added.
fn insert_if_absent(
    backend: DbBackend,
    webhook_id: &str,
    consumer: &str,
    event_name: &str,
    received_at: i64,
) -> Result<Statement, DbErr> {
    let mut insert = Query::insert()
        .into_table(INBOX_TABLE)
        .columns(["webhook_id", "consumer", "event_name", "received_at"])
        .values([
            webhook_id.into(),
            consumer.into(),
            event_name.into(),
            received_at.into(),
        ])
        .map_err(|e| DbErr::Custom(format!("building the inbox insert: {e}")))?
        .to_owned();
    if backend != DbBackend::MySql {
        insert.on_conflict(
            OnConflict::columns(["webhook_id", "consumer"])
                .do_nothing()
                .to_owned(),
        );
    }
    let mut statement = backend.build(&insert);
    if backend == DbBackend::MySql {
        statement.sql = statement
            .sql
            .replacen("INSERT INTO", "INSERT IGNORE INTO", 1);
    }
    Ok(statement)
}

/// Refuses an inbox key the `VARCHAR(255)` column would not hold: PostgreSQL
/// would fail every delivery of it, MySQL/MariaDB would cut it (two long ids
/// with one prefix would then be one delivery).
fn check_key(what: &str, value: &str) -> Result<(), DbErr> {
    let chars = value.chars().count();
    if chars > MAX_WEBHOOK_ID_CHARS {
        return Err(DbErr::Custom(format!(
            "the {what} is {chars} characters long; the inbox holds at most {MAX_WEBHOOK_ID_CHARS}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What sea-query renders for each engine (the version in Cargo.lock):
    /// a valid do-nothing insert everywhere.
    #[test]
    fn the_inbox_insert_is_a_do_nothing_insert_on_every_engine() {
        let sql = |backend| {
            insert_if_absent(backend, "msg_1", "c", "e", 1)
                .map(|statement| statement.sql)
                .unwrap()
        };
        assert_eq!(
            sql(DbBackend::Postgres),
            r#"INSERT INTO "conflictkit_inbox" ("webhook_id", "consumer", "event_name", "received_at") VALUES ($1, $2, $3, $4) ON CONFLICT ("webhook_id", "consumer") DO NOTHING"#
        );
        assert_eq!(
            sql(DbBackend::Sqlite),
            r#"INSERT INTO "conflictkit_inbox" ("webhook_id", "consumer", "event_name", "received_at") VALUES (?, ?, ?, ?) ON CONFLICT ("webhook_id", "consumer") DO NOTHING"#
        );
        assert_eq!(
            sql(DbBackend::MySql),
            "INSERT IGNORE INTO `conflictkit_inbox` (`webhook_id`, `consumer`, `event_name`, `received_at`) VALUES (?, ?, ?, ?)"
        );
    }

    /// Why MySQL's form is written by hand: sea-query's own do-nothing forms.
    #[test]
    fn sea_querys_mysql_do_nothing_is_not_usable_here() {
        let insert = |on_conflict: OnConflict| {
            Query::insert()
                .into_table(INBOX_TABLE)
                .columns(["webhook_id"])
                .values_panic(["msg_1".into()])
                .on_conflict(on_conflict)
                .to_owned()
        };
        let nothing = insert(OnConflict::column("webhook_id").do_nothing().to_owned());
        assert!(
            DbBackend::MySql
                .build(&nothing)
                .sql
                .ends_with("ON DUPLICATE KEY IGNORE"),
            "not MySQL syntax; if sea-query renders valid SQL now, use it"
        );
        let nothing_on = insert(
            OnConflict::column("webhook_id")
                .do_nothing_on(["webhook_id"])
                .to_owned(),
        );
        assert!(
            DbBackend::MySql
                .build(&nothing_on)
                .sql
                .ends_with("ON DUPLICATE KEY UPDATE `webhook_id` = `webhook_id`"),
            "counted as one affected row by sqlx (CLIENT_FOUND_ROWS)"
        );
    }
}
