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
        match self {
            #[cfg(feature = "sqlx-postgres")]
            Held::Postgres(_, id) => *id,
            #[cfg(feature = "sqlx-mysql")]
            Held::MySql(_, id) => *id,
        }
    }
}

/// The lock table on MariaDB/MySQL: one row per (label, key) ever locked.
#[cfg(feature = "sqlx-mysql")]
const CREATE_LOCK_TABLE: &str = "CREATE TABLE IF NOT EXISTS conflictkit_locks \
     (id BIGINT NOT NULL PRIMARY KEY) ENGINE=InnoDB \
     COMMENT='conflictkit: locks across processes of hot managed transactions'";

/// The lock pool on MariaDB/MySQL: sessions with autocommit off (a locking
/// read opens the transaction that holds the lock, `ROLLBACK` ends it: one
/// round trip each), READ COMMITTED (no gap locks) and a lock wait of
/// years (the holders each finish one transaction; the server's default of
/// 50 s would fail a last replay queued behind many).
#[cfg(feature = "sqlx-mysql")]
fn mysql_pool(db: &DatabaseConnection) -> sea_orm::sqlx::Pool<MySql> {
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
#[cfg(feature = "sqlx-mysql")]
async fn mysql_lock_row(conn: &mut PoolConnection<MySql>, id: i64) -> Result<bool, DbErr> {
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
#[cfg(feature = "sqlx-mysql")]
fn is_busy_or_unsupported(e: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::mysql::MySqlDatabaseError;
    e.as_database_error()
        .and_then(|d| d.try_downcast_ref::<MySqlDatabaseError>())
        .is_some_and(|m| matches!(m.number(), 1205 | 3572 | 1064))
}

/// `ER_NO_SUCH_TABLE` (SQLSTATE 42S02).
#[cfg(feature = "sqlx-mysql")]
fn is_missing_table(e: &sea_orm::sqlx::Error) -> bool {
    matches!(e, sea_orm::sqlx::Error::Database(d) if d.code().as_deref() == Some("42S02"))
}

#[cfg(feature = "sqlx-mysql")]
fn lock_table_err(what: &str, e: sea_orm::sqlx::Error) -> DbErr {
    DbErr::Custom(format!(
        "could not {what} the table conflictkit_locks, which holds the locks across \
         processes of hot managed transactions on MariaDB/MySQL: {e}; grant the user \
         CREATE, INSERT and SELECT on it, or create it beforehand with `{CREATE_LOCK_TABLE}`"
    ))
}

fn sqlx_err(e: sea_orm::sqlx::Error) -> DbErr {
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The URL in `var`; `None` (skip) outside the test command, a panic
    /// under it (`CONFLICTKIT_REQUIRE_SERVERS`), as in the integration tests.
    pub(crate) fn server_url(var: &str) -> Option<String> {
        match std::env::var(var) {
            Ok(url) if !url.is_empty() => Some(url),
            _ if std::env::var_os("CONFLICTKIT_REQUIRE_SERVERS").is_some() => {
                panic!("{var} is not set but CONFLICTKIT_REQUIRE_SERVERS is")
            }
            _ => {
                eprintln!(
                    "skipping: {var} is not set (run ./scripts/test.sh to start the servers)"
                );
                None
            }
        }
    }

    /// The sessions whose lock requests on `id` wait, as the server sees
    /// them (PostgreSQL backend pids, MariaDB thread ids), in order.
    pub(crate) async fn waiting_sessions(db: &DatabaseConnection, id: i64) -> Vec<i64> {
        use sea_orm::{ConnectionTrait, Statement};
        let backend = db.get_database_backend();
        let stmt = match backend {
            DbBackend::Postgres => Statement::from_sql_and_values(
                backend,
                "SELECT pid::bigint AS s FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                 AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1 ORDER BY pid",
                [((id >> 32) & 0xffff_ffff).into(), (id & 0xffff_ffff).into()],
            ),
            _ => Statement::from_sql_and_values(
                backend,
                "SELECT DISTINCT CAST(t.trx_mysql_thread_id AS SIGNED) AS s \
                 FROM information_schema.INNODB_TRX t \
                 JOIN information_schema.INNODB_LOCKS l ON l.lock_id = t.trx_requested_lock_id \
                 WHERE t.trx_state = 'LOCK WAIT' \
                 AND l.lock_table = CONCAT('`', DATABASE(), '`.`conflictkit_locks`') \
                 AND l.lock_data = ? ORDER BY s",
                [id.to_string().into()],
            ),
        };
        db.query_all_raw(stmt)
            .await
            .expect("list the waiting lock requests")
            .iter()
            .map(|row| row.try_get("", "s").expect("a session id"))
            .collect()
    }

    /// Polls the server until `n` requests on `id` wait, or more, and
    /// returns the sessions that wait: the wait is a state of the server,
    /// with no signal to await.
    pub(crate) async fn until_waiting(db: &DatabaseConnection, id: i64, n: usize) -> Vec<i64> {
        loop {
            let sessions = waiting_sessions(db, id).await;
            if sessions.len() >= n {
                return sessions;
            }
            tokio::time::sleep(poll_every(db)).await;
        }
    }

    /// InnoDB refills its lock views only when they were not read for 0.1 s
    /// (`trx_i_s_cache`): polled faster, they never change. Polled slower,
    /// they may still show what was true up to one poll ago: a helper that
    /// must not see a request that no longer waits names the sessions it
    /// has seen (see [`until_only_others_wait`]).
    fn poll_every(db: &DatabaseConnection) -> std::time::Duration {
        match db.get_database_backend() {
            DbBackend::MySql => std::time::Duration::from_millis(250),
            _ => std::time::Duration::from_millis(5),
        }
    }

    /// Polls the server until exactly `n` requests on `id` wait, none of
    /// them from the sessions in `seen` (which waited before and may still
    /// show as waiting in InnoDB's lagging lock views after they were
    /// granted); returns the sessions that wait.
    pub(crate) async fn until_only_others_wait(
        db: &DatabaseConnection,
        id: i64,
        n: usize,
        seen: &[i64],
    ) -> Vec<i64> {
        loop {
            let sessions = waiting_sessions(db, id).await;
            if sessions.len() == n && sessions.iter().all(|s| !seen.contains(s)) {
                return sessions;
            }
            tokio::time::sleep(poll_every(db)).await;
        }
    }

    /// A holder; a request waits for it; a second request made after that
    /// waits too; when the holder lets go, the first request is granted and
    /// the second goes on waiting until the first lets go: a lease given
    /// back and asked for again queues behind the processes already waiting.
    async fn waiting_requests_are_granted_in_order(db: DatabaseConnection) {
        let backend = db.get_database_backend();
        let pools = std::sync::Arc::new(LockPools::default());
        let id = super::super::key::lock_id(
            &format!("coordination::tests::queue::{}", std::process::id()),
            None,
        );
        let take = || {
            let (db, pools) = (db.clone(), pools.clone());
            tokio::spawn(async move { lock(&db, &pools, id).await })
        };
        let holder = take()
            .await
            .expect("the task")
            .unwrap_or_else(|e| panic!("{backend:?}: the first lock: {e}"));
        assert!(!holder.contended, "{backend:?}: nobody held it");
        let first = take();
        let first_session = until_waiting(&db, id, 1).await;
        let mut second = take();
        tokio::select! {
            got = &mut second => panic!("{backend:?}: granted beside a holder: {got:?}"),
            _ = until_waiting(&db, id, 2) => {}
        }
        drop(holder);
        let first = first
            .await
            .expect("the task")
            .unwrap_or_else(|e| panic!("{backend:?}: the first request: {e}"));
        assert!(first.contended, "{backend:?}: it waited for the holder");
        // the first request no longer waits; the second one still does
        // (InnoDB's lock views lag behind: polled, not asserted once)
        tokio::select! {
            got = &mut second => panic!(
                "{backend:?}: the later request was granted first, or beside the earlier: {got:?}"
            ),
            _ = until_only_others_wait(&db, id, 1, &first_session) => {}
        }
        drop(first);
        let second = second
            .await
            .expect("the task")
            .unwrap_or_else(|e| panic!("{backend:?}: the second request: {e}"));
        drop(second);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_grants_lock_requests_in_order() {
        let Some(url) = server_url("CONFLICTKIT_PG_URL") else {
            return;
        };
        let db = sea_orm::Database::connect(url).await.expect("connect");
        waiting_requests_are_granted_in_order(db).await;
    }

    /// Also: the lock table and the row are made on first use, in a fresh
    /// database.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mariadb_grants_lock_requests_in_order() {
        use sea_orm::ConnectionTrait;
        let Some(url) = server_url("CONFLICTKIT_MYSQL_URL") else {
            return;
        };
        let name = format!("ck_coordination_{}", std::process::id());
        let admin = sea_orm::Database::connect(&url).await.expect("connect");
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS `{name}`"))
            .await
            .expect("drop the test database");
        admin
            .execute_unprepared(&format!("CREATE DATABASE `{name}`"))
            .await
            .expect("create the test database");
        let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
        let base = path.rsplit_once('/').expect("a database in the URL").0;
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        let db = sea_orm::Database::connect(format!("{base}/{name}{query}"))
            .await
            .expect("connect to the test database");
        waiting_requests_are_granted_in_order(db).await;
        admin
            .execute_unprepared(&format!("DROP DATABASE `{name}`"))
            .await
            .expect("drop the test database");
    }
}
