//! Bringing an inbox table of an earlier build up to date (see
//! [`migrate_inbox`](crate::events::migrate_inbox)): the shape from before
//! consumers (keyed by `webhook_id` alone), and `received_at` in seconds
//! (now milliseconds, as in the outbox).

use sea_orm::sea_query::{Expr, ExprTrait as _, Query};
use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionSession as _, TransactionTrait,
};

use super::inbox::{INBOX_TABLE, LEGACY_CONSUMER};

/// The smallest `received_at` that is milliseconds: 10^11 ms is March 1973,
/// while 10^11 s is the year 5138, so a smaller value (of a real clock) can
/// only be seconds.
pub(crate) const FIRST_MILLIS: i64 = 100_000_000_000;

/// The smallest seconds value converted: 10^8 s is March 1973 too, and its
/// milliseconds are [`FIRST_MILLIS`], so a converted value is never
/// converted again (the conversion is idempotent). Smaller values (no real
/// clock's) are left alone; [`purge_inbox`](crate::events::purge_inbox)
/// removes them.
const FIRST_SECONDS: i64 = FIRST_MILLIS / 1000;

/// Converts `received_at` values recorded in seconds (by an earlier build) to
/// milliseconds; returns how many rows changed.
///
/// A non-locking look first, so that an inbox already in milliseconds (every
/// start after the first) costs one read and takes no row lock. Then one
/// `UPDATE` in a transaction (`BEGIN IMMEDIATE` on SQLite): a second process
/// doing the same at once waits for the first's row locks (the write lock on
/// SQLite), then finds the rows no longer match its condition (PostgreSQL and
/// InnoDB re-check it on the latest row version), so every row is multiplied
/// once.
pub(super) async fn seconds_to_millis<C>(db: &C) -> Result<u64, DbErr>
where
    C: ConnectionTrait + TransactionTrait,
{
    let in_seconds = Expr::col("received_at")
        .gte(FIRST_SECONDS)
        .and(Expr::col("received_at").lt(FIRST_MILLIS));
    let backend = db.get_database_backend();
    let probe = Query::select()
        .expr(Expr::val(1))
        .from(INBOX_TABLE)
        .and_where(in_seconds.clone())
        .limit(1)
        .to_owned();
    if db.query_one(&probe).await?.is_none() {
        return Ok(0);
    }
    let update = Query::update()
        .table(INBOX_TABLE)
        .value("received_at", Expr::col("received_at").mul(1000))
        .and_where(in_seconds)
        .to_owned();
    let txn = match backend {
        DbBackend::Sqlite => {
            db.begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            })
            .await?
        }
        _ => db.begin().await?,
    };
    let changed = txn.execute(&update).await?.rows_affected();
    txn.commit().await?;
    if changed > 0 {
        tracing::info!(
            table = INBOX_TABLE,
            rows = changed,
            "converted inbox times recorded in seconds by an earlier build to milliseconds"
        );
    }
    Ok(changed)
}

/// Whether the inbox table has the `consumer` column (this shape), as
/// opposed to the shape from before consumers. SQL text: each engine's
/// catalog is its own (`pg_attribute`, `information_schema`,
/// `pragma_table_info`), with no values to bind.
pub(super) async fn has_consumer_column<C: ConnectionTrait>(db: &C) -> Result<bool, DbErr> {
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
/// DDL as SQL text: sea-query's `ALTER TABLE` cannot drop or add a primary
/// key, and each engine needs its own way (see `migrate_inbox`).
pub(super) async fn migrate_legacy<C>(db: &C) -> Result<(), DbErr>
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
