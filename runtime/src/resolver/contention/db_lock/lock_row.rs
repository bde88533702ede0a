//! The lock row on MariaDB/MySQL: a row of `conflictkit_locks` locked
//! `FOR UPDATE` by a session of the lock pool (see the parent module for
//! why a row, and in what order InnoDB grants it).

use sea_orm::sqlx::MySql;
use sea_orm::sqlx::pool::PoolConnection;
use sea_orm::{DatabaseConnection, DbErr};

use super::{options_beside, sqlx_err};

/// The lock table on MariaDB/MySQL: one row per (label, key) ever locked.
const CREATE_LOCK_TABLE: &str = "CREATE TABLE IF NOT EXISTS conflictkit_locks \
     (id BIGINT NOT NULL PRIMARY KEY) ENGINE=InnoDB \
     COMMENT='conflictkit: locks across processes of hot managed transactions'";

/// The lock pool on MariaDB/MySQL: sessions with autocommit off (a locking
/// read opens the transaction that holds the lock, `ROLLBACK` ends it: one
/// round trip each), READ COMMITTED (no gap locks) and a lock wait of
/// years (the holders each finish one transaction; the server's default of
/// 50 s would fail a last replay queued behind many).
pub(super) fn mysql_pool(db: &DatabaseConnection) -> sea_orm::sqlx::Pool<MySql> {
    let main = db.get_mysql_connection_pool();
    options_beside(main)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                use sea_orm::sqlx::Executor as _;
                (&mut *conn)
                    .execute(
                        "SET SESSION autocommit = 0, SESSION innodb_lock_wait_timeout = 100000000",
                    )
                    .await?;
                (&mut *conn)
                    .execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                    .await?;
                Ok(())
            })
        })
        .connect_lazy_with((*main.connect_options()).clone())
}

/// Locks row `id` of `conflictkit_locks` in the open transaction of
/// `conn`, making the table and the row where they are missing; returns
/// whether another session held it (`NOWAIT` failed, so it waited).
pub(super) async fn mysql_lock_row(
    conn: &mut PoolConnection<MySql>,
    id: i64,
) -> Result<bool, DbErr> {
    use sea_orm::sqlx::Executor as _;
    let mut contended = false;
    // at most: the table is missing, then the row, then it is held, then
    // it is locked
    for _ in 0..4 {
        let sql = if contended {
            "SELECT id FROM conflictkit_locks WHERE id = ? FOR UPDATE"
        } else {
            "SELECT id FROM conflictkit_locks WHERE id = ? FOR UPDATE NOWAIT"
        };
        let found: Result<Option<i64>, _> = sea_orm::sqlx::query_scalar(sql)
            .bind(id)
            .fetch_optional(&mut **conn)
            .await;
        match found {
            Ok(Some(_)) => return Ok(contended),
            Ok(None) => {
                // a missing row locks nothing: make it, then lock it
                (&mut **conn).execute("ROLLBACK").await.map_err(sqlx_err)?;
                sea_orm::sqlx::query("INSERT IGNORE INTO conflictkit_locks (id) VALUES (?)")
                    .bind(id)
                    .execute(&mut **conn)
                    .await
                    .map_err(|e| lock_table_err("insert a row into", e))?;
                (&mut **conn).execute("COMMIT").await.map_err(sqlx_err)?;
            }
            Err(e) if is_missing_table(&e) => {
                (&mut **conn).execute("ROLLBACK").await.map_err(sqlx_err)?;
                (&mut **conn)
                    .execute(CREATE_LOCK_TABLE)
                    .await
                    .map_err(|e| lock_table_err("create", e))?;
            }
            // held by another session (or a server without NOWAIT): wait
            Err(e) if !contended && is_busy_or_unsupported(&e) => contended = true,
            Err(e) => return Err(sqlx_err(e)),
        }
    }
    Err(DbErr::Custom(format!(
        "the row {id} of conflictkit_locks is missing again after it was inserted: \
         something deletes rows of that table while it is in use; leave it to conflictkit"
    )))
}

/// `NOWAIT` found the row locked (`ER_LOCK_WAIT_TIMEOUT` 1205 on MariaDB,
/// `ER_LOCK_NOWAIT` 3572 on MySQL), or the server does not know `NOWAIT`
/// (`ER_PARSE_ERROR` 1064, MySQL before 8.0).
fn is_busy_or_unsupported(e: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::mysql::MySqlDatabaseError;
    e.as_database_error()
        .and_then(|d| d.try_downcast_ref::<MySqlDatabaseError>())
        .is_some_and(|m| matches!(m.number(), 1205 | 3572 | 1064))
}

/// `ER_NO_SUCH_TABLE` (SQLSTATE 42S02).
fn is_missing_table(e: &sea_orm::sqlx::Error) -> bool {
    matches!(e, sea_orm::sqlx::Error::Database(d) if d.code().as_deref() == Some("42S02"))
}

fn lock_table_err(what: &str, e: sea_orm::sqlx::Error) -> DbErr {
    DbErr::Custom(format!(
        "could not {what} the table conflictkit_locks, which holds the locks across \
         processes of hot managed transactions on MariaDB/MySQL: {e}; grant the user \
         CREATE, INSERT and SELECT on it, or create it beforehand with `{CREATE_LOCK_TABLE}`"
    ))
}
