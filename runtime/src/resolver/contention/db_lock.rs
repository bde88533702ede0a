//! The database lock across processes of one (label, key), through the
//! database that already coordinates the processes: taken before a run's
//! transaction takes its snapshot and given back after `COMMIT` or
//! `ROLLBACK`. Which runs take it is [the lock rule](super::hot#the-lock-rule).
//!
//! **How**: the lock is exclusive, and a process takes it for a run of its
//! transactions, not for each one (a *lease*, see [`super::lease`]): inside
//! the process the runs are spaced out by the gate alone; across processes
//! the lease goes round, each process holding it for at most `TENURE` runs
//! while others wait. A request that waits is granted before the requests
//! made after it, so a process that gives the lease back and asks again at
//! once queues behind the processes already waiting:
//! - PostgreSQL: `pg_advisory_xact_lock`, in a transaction of the lock
//!   session of its own (`BEGIN ISOLATION LEVEL READ COMMITTED`, touching no
//!   table), released by `ROLLBACK`, as the lock row on MariaDB. Not a
//!   session-level lock: behind a pooler that hands each transaction (or
//!   each statement outside one) to any server session (PgBouncer in
//!   `pool_mode=transaction`), a session lock and its unlock land on
//!   different server sessions, and the lock stays held by a pooled server
//!   session for good; an open transaction keeps its server session until
//!   it ends, under every pooler. The statements go by the simple query
//!   protocol (no parameters: the lock id is a literal number), so they
//!   leave no prepared statement behind on a server session. A new request that
//!   conflicts with a *waiting* one queues behind it (`LockAcquireExtended`
//!   in `src/backend/storage/lmgr/lock.c`: "If lock requested conflicts with
//!   locks requested by waiters, must join wait queue"), and a release wakes
//!   the waiters in queue order (`ProcLockWakeup` in `proc.c`).
//! - MariaDB/MySQL: the lock is a row of a small table (rather than
//!   `GET_LOCK`, whose order of grants we have not checked), `conflictkit_locks (id BIGINT PRIMARY KEY)`,
//!   created with `CREATE TABLE IF NOT EXISTS` by the first run that needs it
//!   (the row is inserted with `INSERT IGNORE` when a lock finds it missing),
//!   and locked with `SELECT … FOR UPDATE` in a transaction of the lock
//!   connection (autocommit off, READ COMMITTED, so an existing row takes a
//!   record lock and nothing else; a lock wait of years), released by
//!   `ROLLBACK`. InnoDB queues record-lock requests in order and grants them
//!   in that order (`lock_rec_other_has_conflicting` in
//!   `storage/innobase/lock/lock0lock.cc` walks every request on the record,
//!   waiting ones included). The lock session touches no other table, and
//!   holds one row lock at a time: it can wait, never deadlock. The user
//!   needs the right to create that table once (or create it beforehand);
//!   without it runs go on without the lock, with a warning.
//! - SQLite: nothing; its write lock is already one for every process
//!   (`Engine::db_lock` says which engine has which lock).
//!
//! Each lock is taken on a connection of a lock pool of the resolver's own
//! (see [`LockPools`]), after a run's `BEGIN` (which takes no snapshot) and
//! before its first statement (which does). Never inside the run's
//! transaction (a locking read there): a statement takes its snapshot
//! before it waits, so a waiter would read stale data.
//!
//! **Why a last replay cannot lose to a run that holds the lock, and what is
//! left.** A last replay runs alone in its process's gate, inside its
//! process's lease, from before its snapshot until its `COMMIT` answered. No
//! run of another process that holds the lock runs meanwhile (on MariaDB
//! under SERIALIZABLE one may still be committing, and the last replay's
//! locking reads wait for that commit inside the server). So a last replay
//! can only lose to a run that did not ask for the lock: a run of a process
//! whose gate for that (label, key) is cold. Such a run either loses (which
//! makes its process hot from that moment) or commits beside the last
//! replay and makes it give up. The warm start (see `hot::WARM_FOR`) makes
//! the first runs of a new gate take the lock on PostgreSQL (every gate) and
//! MariaDB (gates without a key), so the hole left is narrow: a process
//! that writes a key *with* a `key` on MariaDB, or after more than
//! `hot::HOT_FOR` commits without a conflict on it, while a call of another
//! process goes through all its runs on the same key. Conflicts with
//! *other* labels (another function writing the same rows) are not covered
//! either: they take another lock. On a Galera cluster row locks are per
//! node, so processes on different nodes are not held off by each other's
//! lock.
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
// Built with SQLite alone there is no server to take a lock on: the types
// stay (the contention code is one for every build) and have no variant.
#![cfg_attr(
    not(any(feature = "sqlx-postgres", feature = "sqlx-mysql")),
    allow(unused_imports, unused_variables, dead_code, clippy::drop_non_drop)
)]

#[cfg(feature = "sqlx-mysql")]
use sea_orm::sqlx::MySql;
#[cfg(feature = "sqlx-postgres")]
use sea_orm::sqlx::Postgres;
#[cfg(any(feature = "sqlx-postgres", feature = "sqlx-mysql"))]
use sea_orm::sqlx::pool::PoolConnection;
use sea_orm::{DatabaseConnection, DbBackend, DbErr};

/// The connections locks are taken on: a pool beside the transactions' pool,
/// as large, opened lazily with the same connect options.
///
/// Never the transactions' pool: a run holds its transaction's connection
/// while it waits for the lock, so when every connection of one pool is in a
/// begun transaction waiting for a lock connection, nothing can move
/// (hold-and-wait). With two pools the lock holder needs nothing more, so the
/// waiters always move on. As large: each run in flight holds one
/// connection of each.
#[derive(Default)]
pub(crate) struct LockPools {
    #[cfg(feature = "sqlx-postgres")]
    postgres: std::sync::OnceLock<sea_orm::sqlx::Pool<Postgres>>,
    #[cfg(feature = "sqlx-mysql")]
    mysql: std::sync::OnceLock<sea_orm::sqlx::Pool<MySql>>,
}

/// A pool like `main` (size, acquire timeout, connect options), opened lazily.
#[cfg(any(feature = "sqlx-postgres", feature = "sqlx-mysql"))]
fn options_beside<DB: sea_orm::sqlx::Database>(
    main: &sea_orm::sqlx::Pool<DB>,
) -> sea_orm::sqlx::pool::PoolOptions<DB> {
    sea_orm::sqlx::pool::PoolOptions::<DB>::new()
        .max_connections(main.options().get_max_connections())
        .min_connections(0)
        .acquire_timeout(main.options().get_acquire_timeout())
}

/// A database lock held by a session of the lock pool; unlocked when
/// dropped.
#[derive(Debug)]
pub(crate) struct HeldLock {
    held: Option<Held>,
}

/// A lock just taken, and whether another session held it when it was
/// asked for (another process wants the same key: contention that the lock
/// kept from turning into conflicts).
#[derive(Debug)]
pub(crate) struct Taken {
    pub(crate) lock: HeldLock,
    pub(crate) contended: bool,
}

#[derive(Debug)]
enum Held {
    #[cfg(feature = "sqlx-postgres")]
    Postgres(PoolConnection<Postgres>, i64),
    /// The lock row, locked by the connection's open transaction.
    #[cfg(feature = "sqlx-mysql")]
    MySql(PoolConnection<MySql>, i64),
}

/// A session of the lock pool that holds no lock.
enum Session {
    #[cfg(feature = "sqlx-postgres")]
    Postgres(PoolConnection<Postgres>),
    #[cfg(feature = "sqlx-mysql")]
    MySql(PoolConnection<MySql>),
}

/// Takes the database lock `id` (see [`super::key::lock_id`]), exclusive,
/// on a connection of `db`'s lock pool, waiting for other sessions (other
/// processes) that hold it. Runs in a task of its own: a caller dropped
/// while it waits leaves the task to finish, and the lock it then gets is
/// released at once.
#[cfg_attr(
    not(any(feature = "sqlx-postgres", feature = "sqlx-mysql")),
    allow(unreachable_code, unused_variables)
)]
pub(crate) async fn lock(
    db: &DatabaseConnection,
    pools: &LockPools,
    id: i64,
) -> Result<Taken, DbErr> {
    let task: tokio::task::JoinHandle<Result<Taken, DbErr>> = match db.get_database_backend() {
        #[cfg(feature = "sqlx-postgres")]
        DbBackend::Postgres => {
            let pool = pools
                .postgres
                .get_or_init(|| {
                    let main = db.get_postgres_connection_pool();
                    options_beside(main).connect_lazy_with((*main.connect_options()).clone())
                })
                .clone();
            tokio::spawn(async move {
                let conn = pool.acquire().await.map_err(sqlx_err)?;
                take(Session::Postgres(conn), id).await
            })
        }
        #[cfg(feature = "sqlx-mysql")]
        DbBackend::MySql => {
            let pool = pools.mysql.get_or_init(|| mysql_pool(db)).clone();
            tokio::spawn(async move {
                let conn = pool.acquire().await.map_err(sqlx_err)?;
                take(Session::MySql(conn), id).await
            })
        }
        other => {
            return Err(DbErr::Custom(format!(
                "no database lock across processes on {other:?}"
            )));
        }
    };
    joined(task.await)
}

/// Gives `held` back and asks for it again at once on the same session, in
/// a task of its own: it is granted after the sessions that were already
/// waiting for it (see the module's documentation).
pub(crate) async fn retake(mut held: HeldLock) -> Result<Taken, DbErr> {
    let Some(held) = held.held.take() else {
        return Err(DbErr::Custom(
            "no contention lock to give back and take again".into(),
        ));
    };
    let task = tokio::spawn(async move {
        let id = held.id();
        let held = match held {
            // ROLLBACK and the next BEGIN and request in one round trip
            #[cfg(feature = "sqlx-postgres")]
            Held::Postgres(conn, _) => return postgres_take(conn, id, true).await,
            #[allow(unreachable_patterns)]
            other => other,
        };
        let Some(session) = unlock(held).await else {
            return Err(DbErr::Custom(
                "could not give back the contention lock to take it again; its session was closed"
                    .into(),
            ));
        };
        take(session, id).await
    });
    joined(task.await)
}

fn joined(task: Result<Result<Taken, DbErr>, tokio::task::JoinError>) -> Result<Taken, DbErr> {
    task.unwrap_or_else(|join| {
        Err(DbErr::Custom(format!(
            "the task taking the contention lock ended without an answer: {join}"
        )))
    })
}

/// Takes lock `id` on `session`: without waiting if it is free, else
/// waiting for it (then it was contended). A session that failed midway is
/// closed, never pooled.
async fn take(session: Session, id: i64) -> Result<Taken, DbErr> {
    match session {
        #[cfg(feature = "sqlx-postgres")]
        Session::Postgres(conn) => postgres_take(conn, id, false).await,
        #[cfg(feature = "sqlx-mysql")]
        Session::MySql(mut conn) => match mysql_lock_row(&mut conn, id).await {
            Ok(contended) => Ok(Taken {
                lock: HeldLock {
                    held: Some(Held::MySql(conn, id)),
                },
                contended,
            }),
            Err(e) => {
                // the session may be left in a transaction: never back to
                // the pool
                conn.close_on_drop();
                Err(e)
            }
        },
    }
}

/// The statements that begin the lock session's transaction and ask for
/// lock `id` without waiting (ending the transaction of a lock held on the
/// session first if `retake`), in one round trip. The lock session's
/// transaction reads nothing (READ COMMITTED: it holds no snapshot between
/// statements) and must last as long as the lock is held: the server's
/// timeouts for idle transactions, statements and lock waits are off in it
/// (the waits are bounded by the callers, see `lease`).
#[cfg(feature = "sqlx-postgres")]
fn postgres_try_lock_sql(id: i64, retake: bool) -> String {
    format!(
        "{}BEGIN ISOLATION LEVEL READ COMMITTED; \
         SET LOCAL idle_in_transaction_session_timeout = 0; \
         SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0; \
         SELECT pg_try_advisory_xact_lock({id})",
        if retake { "ROLLBACK; " } else { "" }
    )
}

/// Takes lock `id` in a transaction of `conn` (see the module's
/// documentation): without waiting if it is free, else waiting for it (then
/// it was contended). With `retake`, `conn` holds it now: its transaction
/// ends first, in the same round trip. A session that failed midway is
/// closed, never pooled.
#[cfg(feature = "sqlx-postgres")]
async fn postgres_take(
    mut conn: PoolConnection<Postgres>,
    id: i64,
    retake: bool,
) -> Result<Taken, DbErr> {
    use sea_orm::sqlx::{AssertSqlSafe, Row as _, raw_sql};
    let taken = async {
        let rows = raw_sql(AssertSqlSafe(postgres_try_lock_sql(id, retake)))
            .fetch_all(&mut *conn)
            .await?;
        let free: bool = match rows.first() {
            Some(row) => row.try_get(0)?,
            None => {
                return Err(sea_orm::sqlx::Error::Protocol(
                    "pg_try_advisory_xact_lock returned no row".into(),
                ));
            }
        };
        if !free {
            raw_sql(AssertSqlSafe(format!("SELECT pg_advisory_xact_lock({id})")))
                .execute(&mut *conn)
                .await?;
        }
        Ok::<_, sea_orm::sqlx::Error>(!free)
    }
    .await;
    match taken {
        Ok(contended) => Ok(Taken {
            lock: HeldLock {
                held: Some(Held::Postgres(conn, id)),
            },
            contended,
        }),
        Err(e) => {
            // the session may be left in a transaction: never back to the
            // pool
            conn.close_on_drop();
            Err(sqlx_err(e))
        }
    }
}

impl Held {
    fn id(&self) -> i64 {
        // `*self`: with neither server driver compiled in, `Held` has no
        // variant, and only a match on the place itself is exhaustive then
        match *self {
            #[cfg(feature = "sqlx-postgres")]
            Held::Postgres(_, id) => id,
            #[cfg(feature = "sqlx-mysql")]
            Held::MySql(_, id) => id,
        }
    }
}

pub(super) fn sqlx_err(e: sea_orm::sqlx::Error) -> DbErr {
    DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e.into()))
}

#[cfg(test)]
impl HeldLock {
    /// A lock that holds nothing (for tests of its holders).
    pub(crate) fn none() -> Self {
        Self { held: None }
    }
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
        runtime.spawn(async move { drop(unlock(held).await) });
    }
}

/// Unlocks, and returns the session (back to the pool when dropped);
/// closes it instead when the unlock did not succeed.
async fn unlock(held: Held) -> Option<Session> {
    match held {
        #[cfg(feature = "sqlx-postgres")]
        Held::Postgres(mut conn, _) => {
            // simple query protocol, as the lock (see `postgres_take`)
            match sea_orm::sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await {
                Ok(_) => Some(Session::Postgres(conn)),
                Err(e) => {
                    tracing::warn!(error = %e, "could not release a contention lock; closing its connection");
                    conn.close_on_drop();
                    None
                }
            }
        }
        #[cfg(feature = "sqlx-mysql")]
        Held::MySql(mut conn, _) => {
            use sea_orm::sqlx::Executor as _;
            match (&mut *conn).execute("ROLLBACK").await {
                Ok(_) => Some(Session::MySql(conn)),
                Err(e) => {
                    tracing::warn!(error = %e, "could not release a contention lock; closing its connection");
                    conn.close_on_drop();
                    None
                }
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

#[cfg(feature = "sqlx-mysql")]
mod lock_row;
#[cfg(feature = "sqlx-mysql")]
use lock_row::{mysql_lock_row, mysql_pool};

#[cfg(test)]
pub(crate) mod tests;
