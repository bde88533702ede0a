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

use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionSession as _, TransactionTrait,
};

use crate::events::send::signature::unix_now;

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
/// event name and the Unix time it was recorded.
///
/// ```sql
/// CREATE TABLE IF NOT EXISTS conflictkit_inbox (
///     webhook_id  VARCHAR(255) NOT NULL,
///     consumer    VARCHAR(255) NOT NULL,
///     event_name  VARCHAR(255) NOT NULL,
///     received_at BIGINT       NOT NULL,
///     PRIMARY KEY (webhook_id, consumer)
/// )
/// ```
///
/// Run it once at start-up (it is idempotent), or put the statement above in
/// your own migrations.
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
    if has_consumer_column(db).await? {
        return Ok(());
    }
    tracing::info!(
        table = INBOX_TABLE,
        "migrating an inbox from before consumers: its rows count as applied for every consumer"
    );
    match migrate_legacy(db).await {
        Ok(()) => Ok(()),
        // Another process migrated it meanwhile (MySQL/MariaDB: "duplicate
        // column"; the other engines recheck under a lock and skip).
        Err(_) if has_consumer_column(db).await? => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether the inbox table has the `consumer` column (this shape), as
/// opposed to the shape from before consumers.
async fn has_consumer_column<C: ConnectionTrait>(db: &C) -> Result<bool, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        // The table the unqualified name resolves to, as in every statement here.
        DbBackend::Postgres => format!(
            "SELECT COUNT(*) AS n FROM pg_attribute \
             WHERE attrelid = to_regclass('{INBOX_TABLE}') AND attname = 'consumer' \
             AND NOT attisdropped"
        ),
        DbBackend::MySql => format!(
            "SELECT COUNT(*) AS n FROM information_schema.columns \
             WHERE table_schema = DATABASE() AND table_name = '{INBOX_TABLE}' \
             AND column_name = 'consumer'"
        ),
        _ => format!(
            "SELECT COUNT(*) AS n FROM pragma_table_info('{INBOX_TABLE}') WHERE name = 'consumer'"
        ),
    };
    let row = db
        .query_one_raw(Statement::from_string(backend, sql))
        .await?
        .ok_or_else(|| DbErr::Custom("COUNT(*) returned no row".into()))?;
    Ok(row.try_get::<i64>("", "n")? > 0)
}

/// Migrates an inbox from before consumers (see [`migrate_inbox`]): old rows
/// get [`LEGACY_CONSUMER`], the primary key becomes `(webhook_id, consumer)`.
async fn migrate_legacy<C>(db: &C) -> Result<(), DbErr>
where
    C: ConnectionTrait + TransactionTrait,
{
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let txn = db.begin().await?;
            // Others wait here; the one that comes second finds the column.
            txn.execute_unprepared(&format!(
                "LOCK TABLE {INBOX_TABLE} IN ACCESS EXCLUSIVE MODE"
            ))
            .await?;
            if has_consumer_column(&txn).await? {
                return txn.commit().await;
            }
            let primary_key = txn
                .query_one_raw(Statement::from_string(
                    DbBackend::Postgres,
                    format!(
                        "SELECT conname::text AS name FROM pg_constraint \
                         WHERE conrelid = to_regclass('{INBOX_TABLE}') AND contype = 'p'"
                    ),
                ))
                .await?
                .map(|row| row.try_get::<String>("", "name"))
                .transpose()?;
            let drop_key = primary_key
                .map(|name| format!("DROP CONSTRAINT \"{}\", ", name.replace('"', "\"\"")))
                .unwrap_or_default();
            txn.execute_unprepared(&format!(
                "ALTER TABLE {INBOX_TABLE} \
                 ADD COLUMN consumer VARCHAR(255) NOT NULL DEFAULT '{LEGACY_CONSUMER}', \
                 {drop_key}ADD PRIMARY KEY (webhook_id, consumer)"
            ))
            .await?;
            txn.execute_unprepared(&format!(
                "ALTER TABLE {INBOX_TABLE} ALTER COLUMN consumer DROP DEFAULT"
            ))
            .await?;
            txn.commit().await
        }
        DbBackend::MySql => {
            // DDL is not transactional here: one statement, atomic on its own.
            db.execute_unprepared(&format!(
                "ALTER TABLE {INBOX_TABLE} \
                 ADD COLUMN consumer VARCHAR(255) NOT NULL DEFAULT '{LEGACY_CONSUMER}' AFTER webhook_id, \
                 DROP PRIMARY KEY, ADD PRIMARY KEY (webhook_id, consumer)"
            ))
            .await?;
            // The rows are filled; no default from now on, as in a new table
            // (left in place by a crash between the two, it changes nothing:
            // every insert names the consumer).
            db.execute_unprepared(&format!(
                "ALTER TABLE {INBOX_TABLE} ALTER COLUMN consumer DROP DEFAULT"
            ))
            .await?;
            Ok(())
        }
        _ => {
            // SQLite cannot change a primary key: rebuild the table, in one
            // write transaction (taken at BEGIN, so others wait, then skip).
            let txn = db
                .begin_with_options(TransactionOptions {
                    sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                    ..TransactionOptions::default()
                })
                .await?;
            if has_consumer_column(&txn).await? {
                return txn.commit().await;
            }
            let new = format!("{INBOX_TABLE}_migrating");
            for statement in [
                format!(
                    "CREATE TABLE {new} (\
                     webhook_id VARCHAR(255) NOT NULL, \
                     consumer VARCHAR(255) NOT NULL, \
                     event_name VARCHAR(255) NOT NULL, \
                     received_at BIGINT NOT NULL, \
                     PRIMARY KEY (webhook_id, consumer))"
                ),
                format!(
                    "INSERT INTO {new} (webhook_id, consumer, event_name, received_at) \
                     SELECT webhook_id, '{LEGACY_CONSUMER}', event_name, received_at FROM {INBOX_TABLE}"
                ),
                format!("DROP TABLE {INBOX_TABLE}"),
                format!("ALTER TABLE {new} RENAME TO {INBOX_TABLE}"),
            ] {
                txn.execute_unprepared(&statement).await?;
            }
            txn.commit().await
        }
    }
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
    let (insert, legacy) = match backend {
        DbBackend::Postgres => (
            format!(
                "INSERT INTO {INBOX_TABLE} (webhook_id, consumer, event_name, received_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (webhook_id, consumer) DO NOTHING"
            ),
            format!(
                "SELECT COUNT(*) AS n FROM {INBOX_TABLE} WHERE webhook_id = $1 AND consumer = $2"
            ),
        ),
        DbBackend::MySql => (
            format!(
                "INSERT IGNORE INTO {INBOX_TABLE} (webhook_id, consumer, event_name, received_at) \
                 VALUES (?, ?, ?, ?)"
            ),
            format!(
                "SELECT COUNT(*) AS n FROM {INBOX_TABLE} WHERE webhook_id = ? AND consumer = ?"
            ),
        ),
        _ => (
            format!(
                "INSERT OR IGNORE INTO {INBOX_TABLE} (webhook_id, consumer, event_name, received_at) \
                 VALUES (?, ?, ?, ?)"
            ),
            format!(
                "SELECT COUNT(*) AS n FROM {INBOX_TABLE} WHERE webhook_id = ? AND consumer = ?"
            ),
        ),
    };
    let inserted = txn
        .execute_raw(Statement::from_sql_and_values(
            backend,
            insert,
            [
                webhook_id.into(),
                consumer.into(),
                event_name.into(),
                unix_now().into(),
            ],
        ))
        .await?
        .rows_affected()
        == 1;
    if !inserted {
        return Ok(false);
    }
    // First for this consumer; a row from before consumers still makes it a
    // redelivery (applied by some handler). A primary-key lookup, after the
    // insert: the row it looks for is never written any more.
    let legacy = txn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            legacy,
            [webhook_id.into(), LEGACY_CONSUMER.into()],
        ))
        .await?
        .map(|row| row.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0);
    Ok(legacy == 0)
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
