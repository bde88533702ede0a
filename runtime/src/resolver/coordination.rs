//! Contention control across processes, through the database that already
//! coordinates them: while a (label, key) is hot, an admitted run also takes
//! a database lock before its transaction's snapshot, and gives it back after
//! `COMMIT` or `ROLLBACK`.
//!
//! - PostgreSQL: a session-level `pg_advisory_lock` on a connection of a
//!   lock pool of the resolver's own (see [`LockPools`]), taken after `BEGIN` (which takes no
//!   snapshot) and before the first statement (which does). Never
//!   `pg_advisory_xact_lock` inside the transaction: a statement takes the
//!   snapshot before it waits, so a waiter would read stale data.
//! - MariaDB/MySQL: `GET_LOCK(name)` the same way (`START TRANSACTION`
//!   without `WITH CONSISTENT SNAPSHOT` reads nothing either).
//! - SQLite: nothing; its write lock is already one for every process.
//!
//! The lock id is a stable hash of (label, key) (see [`super::key`]): every
//! process of the same build agrees on it. Two pairs whose hashes collide
//! only serialise with each other while hot.
//!
//! A lock is never left held on a pooled connection: the lock connection
//! goes back to the pool only after the unlock succeeded, which runs in a
//! task of its own (so a caller dropped at any point, or an ambiguous
//! `COMMIT`, still unlocks); if the unlock fails, or no runtime is left to
//! run it, the connection is closed, which releases the lock on the server.

#[cfg(feature = "sqlx-mysql")]
use sea_orm::sqlx::MySql;
#[cfg(feature = "sqlx-postgres")]
use sea_orm::sqlx::Postgres;
#[cfg(any(feature = "sqlx-postgres", feature = "sqlx-mysql"))]
use sea_orm::sqlx::pool::PoolConnection;
use sea_orm::{DatabaseConnection, DbBackend, DbErr};

#[cfg(feature = "sqlx-postgres")]
use super::key::lock_id;
#[cfg(feature = "sqlx-mysql")]
use super::key::lock_name;

/// `GET_LOCK`'s timeout in seconds: a year stands for "wait as long as it
/// takes" (the holder always finishes its one transaction).
#[cfg(feature = "sqlx-mysql")]
const GET_LOCK_WAIT_SECONDS: i64 = 365 * 24 * 3600;

/// Whether runs on `db` can escalate to a database lock: PostgreSQL or
/// MySQL/MariaDB, with a pool of at least two connections (the lock takes a
/// second one beside the transaction's).
pub(crate) fn supported(db: &DatabaseConnection) -> bool {
    matches!(
        db.get_database_backend(),
        DbBackend::Postgres | DbBackend::MySql
    ) && super::conflict_resolver::pool_size(db).is_some_and(|n| n >= 2)
}

/// The connections locks are taken on: a pool beside the transactions' pool,
/// as large, opened lazily with the same connect options.
///
/// Never the transactions' pool: a run holds its transaction's connection
/// while it waits for the lock, so when every connection of one pool is in a
/// begun transaction waiting for a lock connection, nothing can move
/// (hold-and-wait). With two pools the lock holder needs nothing more, so the
/// waiters always move on.
#[derive(Default)]
pub(crate) struct LockPools {
    #[cfg(feature = "sqlx-postgres")]
    postgres: std::sync::OnceLock<sea_orm::sqlx::Pool<Postgres>>,
    #[cfg(feature = "sqlx-mysql")]
    mysql: std::sync::OnceLock<sea_orm::sqlx::Pool<MySql>>,
}

/// A pool like `main` (size, acquire timeout, connect options), opened lazily.
#[cfg(any(feature = "sqlx-postgres", feature = "sqlx-mysql"))]
fn pool_beside<DB: sea_orm::sqlx::Database>(
    main: &sea_orm::sqlx::Pool<DB>,
) -> sea_orm::sqlx::Pool<DB> {
    sea_orm::sqlx::pool::PoolOptions::<DB>::new()
        .max_connections(main.options().get_max_connections())
        .min_connections(0)
        .acquire_timeout(main.options().get_acquire_timeout())
        .connect_lazy_with((*main.connect_options()).clone())
}

/// A database lock held for one run; unlocked when dropped.
#[derive(Debug)]
pub(crate) struct HeldLock {
    held: Option<Held>,
}

#[derive(Debug)]
enum Held {
    #[cfg(feature = "sqlx-postgres")]
    Postgres(PoolConnection<Postgres>, i64),
    #[cfg(feature = "sqlx-mysql")]
    MySql(PoolConnection<MySql>, String),
}

/// Takes the database lock of (`label`, `key`) on a connection of `db`'s
/// pool, waiting for other sessions (other processes) that hold it. Runs in
/// a task of its own: a caller dropped while it waits leaves the task to
/// finish, and the lock it then gets is released at once.
#[cfg_attr(
    not(any(feature = "sqlx-postgres", feature = "sqlx-mysql")),
    allow(unreachable_code, unused_variables)
)]
pub(crate) async fn lock(
    db: &DatabaseConnection,
    pools: &LockPools,
    label: &str,
    key: Option<u64>,
) -> Result<HeldLock, DbErr> {
    let task: tokio::task::JoinHandle<Result<Held, DbErr>> = match db.get_database_backend() {
        #[cfg(feature = "sqlx-postgres")]
        DbBackend::Postgres => {
            let pool = pools
                .postgres
                .get_or_init(|| pool_beside(db.get_postgres_connection_pool()))
                .clone();
            let id = lock_id(label, key);
            tokio::spawn(async move {
                let mut conn = pool.acquire().await.map_err(sqlx_err)?;
                sea_orm::sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(id)
                    .execute(&mut *conn)
                    .await
                    .map_err(sqlx_err)?;
                Ok(Held::Postgres(conn, id))
            })
        }
        #[cfg(feature = "sqlx-mysql")]
        DbBackend::MySql => {
            let pool = pools
                .mysql
                .get_or_init(|| pool_beside(db.get_mysql_connection_pool()))
                .clone();
            let name = lock_name(label, key);
            tokio::spawn(async move {
                let mut conn = pool.acquire().await.map_err(sqlx_err)?;
                let got: Option<i64> = sea_orm::sqlx::query_scalar("SELECT GET_LOCK(?, ?)")
                    .bind(&name)
                    .bind(GET_LOCK_WAIT_SECONDS)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(sqlx_err)?;
                if got == Some(1) {
                    Ok(Held::MySql(conn, name))
                } else {
                    Err(DbErr::Custom(format!(
                        "GET_LOCK('{name}') answered {got:?} instead of 1: the contention lock \
                         of a hot function could not be taken; check the server's lock limits"
                    )))
                }
            })
        }
        other => {
            return Err(DbErr::Custom(format!(
                "no database lock across processes on {other:?}"
            )));
        }
    };
    match task.await {
        Ok(held) => held.map(|h| HeldLock { held: Some(h) }),
        Err(join) => Err(DbErr::Custom(format!(
            "the task taking the contention lock ended without an answer: {join}"
        ))),
    }
}

fn sqlx_err(e: sea_orm::sqlx::Error) -> DbErr {
    DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e.into()))
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        let Some(held) = self.held.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // no runtime to unlock with: closing the session unlocks
            close_now(held);
            return;
        };
        runtime.spawn(unlock(held));
    }
}

/// Unlocks, then returns the connection to the pool; closes it instead when
/// the unlock did not succeed.
async fn unlock(held: Held) {
    match held {
        #[cfg(feature = "sqlx-postgres")]
        Held::Postgres(mut conn, id) => {
            let unlocked: Result<bool, _> =
                sea_orm::sqlx::query_scalar("SELECT pg_advisory_unlock($1)")
                    .bind(id)
                    .fetch_one(&mut *conn)
                    .await;
            if !matches!(unlocked, Ok(true)) {
                tracing::warn!(
                    ?unlocked,
                    "could not release a contention lock; closing its connection"
                );
                conn.close_on_drop();
            }
        }
        #[cfg(feature = "sqlx-mysql")]
        Held::MySql(mut conn, name) => {
            let unlocked: Result<Option<i64>, _> =
                sea_orm::sqlx::query_scalar("SELECT RELEASE_LOCK(?)")
                    .bind(&name)
                    .fetch_one(&mut *conn)
                    .await;
            if !matches!(unlocked, Ok(Some(1))) {
                tracing::warn!(
                    ?unlocked,
                    "could not release a contention lock; closing its connection"
                );
                conn.close_on_drop();
            }
        }
    }
}

fn close_now(held: Held) {
    match held {
        #[cfg(feature = "sqlx-postgres")]
        Held::Postgres(mut conn, _) => conn.close_on_drop(),
        #[cfg(feature = "sqlx-mysql")]
        Held::MySql(mut conn, _) => conn.close_on_drop(),
    }
}
