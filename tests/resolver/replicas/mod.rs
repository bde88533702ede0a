//! Read-only calls on a real PostgreSQL streaming replica (the primary and
//! replica of `scripts/replicas.sh`, `CONFLICTKIT_PG_PRIMARY_URL` and
//! `CONFLICTKIT_PG_REPLICA_URL`) and a real MariaDB replica (`mariadb`,
//! `CONFLICTKIT_MARIADB_PRIMARY_URL` and `CONFLICTKIT_MARIADB_REPLICA_URL`): they land on the replica, a write there is
//! a typed error, a lagging or stopped replica sends them to the primary,
//! read-your-writes waits for the replay, `deferrable` reports never
//! conflict, and a "replica" that is none is refused at build time.
//!
//! These tests pause the replica's replay and stop it: they run one at a
//! time (the nextest group `replicas`), and each one first resumes replay
//! and starts the replica if a failed test left it stopped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use conflictkit::resolver::{CallOptions, CommitPosition, ReplicaRefused, WriteOnReplica};
use conflictkit::{ConflictResolver, Txn, managed_transaction};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, Statement,
};

use crate::common::{self, Backend};
mod deferrable;
mod mariadb;
mod refusals;
mod routing;
mod staleness;

/// How long a test waits for a condition a signal stands for (the replica
/// replayed, a call is waiting) before it fails.
pub(super) const BOUND: Duration = Duration::from_secs(30);

/// The PostgreSQL primary and replica URLs, or `None` (with a printed
/// reason) when the test may skip; panics when servers are required and
/// they are missing.
pub(super) fn urls() -> Option<(String, String)> {
    urls_of("CONFLICTKIT_PG_PRIMARY_URL", "CONFLICTKIT_PG_REPLICA_URL")
}

/// The MariaDB primary and replica URLs, as [`urls`] gives them.
pub(super) fn mariadb_urls() -> Option<(String, String)> {
    urls_of(
        "CONFLICTKIT_MARIADB_PRIMARY_URL",
        "CONFLICTKIT_MARIADB_REPLICA_URL",
    )
}

/// The URLs in `primary` and `replica` (variables `scripts/replicas.sh`
/// exports), as [`urls`] gives them.
pub(super) fn urls_of(primary: &str, replica: &str) -> Option<(String, String)> {
    let get = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
    match (get(primary), get(replica), get("CONFLICTKIT_REPLICA_DIR")) {
        (Some(p), Some(r), Some(_)) => Some((p, r)),
        _ => {
            if common::servers_required() {
                panic!(
                    "{primary}, {replica} or CONFLICTKIT_REPLICA_DIR is not set but CONFLICTKIT_REQUIRE_SERVERS or CI is: the test command must start the replica pairs (scripts/replicas.sh)"
                );
            }
            eprintln!(
                "skipping: {replica} is not set (run ./scripts/test.sh to start the replica pairs)"
            );
            None
        }
    }
}

/// A pool on `url`; a replica's gives up on a connection after 2 s (what
/// the builder's docs advise), so calls routed to a stopped replica move on.
pub(super) async fn pool(url: &str, max: u32) -> DatabaseConnection {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(max)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(2))
        .test_before_acquire(false)
        .sqlx_logging(false);
    Database::connect(opts)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

/// `scripts/replica-server.sh start|stop`.
pub(super) async fn replica_server(cmd: &str) {
    let script = std::env::var("CONFLICTKIT_REPLICA_SERVER").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/replica-server.sh").to_owned()
    });
    let out = tokio::process::Command::new(&script)
        .arg(cmd)
        .output()
        .await
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(
        out.status.success(),
        "replica-server.sh {cmd}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(super) async fn sql(db: &impl ConnectionTrait, sql: &str) -> Result<(), DbErr> {
    db.execute_unprepared(sql).await.map(|_| ())
}

pub(super) async fn one_text(db: &impl ConnectionTrait, sql: &str) -> Result<String, DbErr> {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?
        .expect("one row");
    row.try_get("", "v")
}

/// A primary and its replica for one test (PostgreSQL, or MariaDB with
/// [`Pair::open_on`]), with a table of its own holding account 1 with
/// `balance`, replayed on the replica.
pub(super) struct Pair {
    pub(super) engine: Backend,
    pub(super) primary_url: String,
    pub(super) replica_url: String,
    /// A plain pool on the replica, to pause and resume replay.
    pub(super) replica_admin: DatabaseConnection,
    pub(super) table: String,
}

impl Pair {
    /// The PostgreSQL pair.
    pub(super) async fn open(test: &str, balance: i64) -> Option<Pair> {
        Self::open_on(Backend::Postgres, test, balance).await
    }

    /// The pair of `engine` (`Postgres` or `MySql`: the MariaDB pair).
    pub(super) async fn open_on(engine: Backend, test: &str, balance: i64) -> Option<Pair> {
        let (primary_url, replica_url) = match engine {
            Backend::Postgres => urls()?,
            _ => mariadb_urls()?,
        };
        // a previous test may have left the replica stopped or paused
        if engine == Backend::Postgres && Database::connect(&replica_url).await.is_err() {
            replica_server("start").await;
        }
        let replica_admin = pool(&replica_url, 2).await;
        let table = common::unique_name(test);
        let pair = Pair {
            engine,
            primary_url,
            replica_url,
            replica_admin,
            table,
        };
        pair.resume().await;
        let primary = pool(&pair.primary_url, 2).await;
        let t = &pair.table;
        sql(
            &primary,
            &format!("CREATE TABLE {t} (id INT PRIMARY KEY, balance BIGINT NOT NULL)"),
        )
        .await
        .expect("create the table");
        sql(&primary, &format!("INSERT INTO {t} VALUES (1, {balance})"))
            .await
            .expect("insert the account");
        pair.caught_up(&primary).await;
        Some(pair)
    }

    /// A resolver with the pair's replica (checked, its lag sampled every
    /// 20 ms), returned once its sampler has seen the replica fresh:
    /// replayed up to a position it read from the primary. (Its first
    /// sample may come while the replica still replays the test's setup; a
    /// test that pauses replay before the replica was ever seen fresh would
    /// find it lagging without bound.)
    pub(super) async fn resolver(&self, max_lag: Duration) -> ConflictResolver {
        let resolver = ConflictResolver::builder(pool(&self.primary_url, 16).await)
            .replica(pool(&self.replica_url, 16).await)
            .max_lag(max_lag)
            .lag_sample_interval(Duration::from_millis(20))
            .build_checked()
            .await
            .expect("the replica of scripts/replicas.sh is a replica of its primary");
        until_fresh(&resolver).await;
        resolver
    }

    /// Waits until the replica has replayed everything `primary` committed.
    async fn caught_up(&self, primary: &DatabaseConnection) {
        if self.engine != Backend::Postgres {
            // MariaDB waits in the server, bounded
            let at = one_text(primary, "SELECT @@gtid_binlog_pos AS v")
                .await
                .unwrap();
            let wait = format!(
                "SELECT CAST(MASTER_GTID_WAIT('{at}', {}) AS CHAR) AS v",
                BOUND.as_secs()
            );
            let reached = one_text(&self.replica_admin, &wait).await.unwrap();
            assert_eq!(reached, "0", "the replica did not apply {at} in {BOUND:?}");
            return;
        }
        let at: CommitPosition = one_text(primary, "SELECT pg_current_wal_insert_lsn()::text AS v")
            .await
            .expect("position")
            .parse()
            .expect("an LSN");
        let until = tokio::time::Instant::now() + BOUND;
        loop {
            let replayed: CommitPosition = one_text(
                &self.replica_admin,
                "SELECT pg_last_wal_replay_lsn()::text AS v",
            )
            .await
            .expect("replay position")
            .parse()
            .expect("an LSN");
            if replayed >= at {
                return;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "the replica did not replay up to {at} in {BOUND:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Pauses replay (MariaDB: stops the SQL thread), and waits until it is
    /// paused.
    pub(super) async fn pause(&self) {
        if self.engine != Backend::Postgres {
            // returns once the thread has stopped
            return sql(&self.replica_admin, "STOP SLAVE SQL_THREAD")
                .await
                .expect("stop the SQL thread");
        }
        sql(&self.replica_admin, "SELECT pg_wal_replay_pause()")
            .await
            .expect("pause replay");
        let until = tokio::time::Instant::now() + BOUND;
        while one_text(
            &self.replica_admin,
            "SELECT pg_get_wal_replay_pause_state() AS v",
        )
        .await
        .expect("pause state")
            != "paused"
        {
            assert!(tokio::time::Instant::now() < until, "replay did not pause");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Resumes replay (MariaDB: starts replication, both threads).
    pub(super) async fn resume(&self) {
        let resume = match self.engine {
            Backend::Postgres => "SELECT pg_wal_replay_resume()",
            _ => "START SLAVE",
        };
        sql(&self.replica_admin, resume)
            .await
            .expect("resume replay");
    }
}

/// Waits until `resolver`'s sampler has seen its first replica fresh
/// (replayed up to a position it read from the primary): until then its
/// reads go to the primary, as they should.
pub(super) async fn until_fresh(resolver: &ConflictResolver) {
    let until = tokio::time::Instant::now() + BOUND;
    while resolver.replica_status()[0].lag.is_none() {
        assert!(
            tokio::time::Instant::now() < until,
            "the sampler never saw the replica fresh: {:?}",
            resolver.replica_status()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Where a body ran (true: on the replica, PostgreSQL's
/// `pg_is_in_recovery()`, MariaDB's `@@read_only`) and the balance of
/// account 1 it read there.
pub(super) async fn where_and_balance(
    txn: &Txn,
    table: &str,
) -> Result<(bool, i64), conflictkit::Error> {
    let backend = txn.get_database_backend();
    let on_replica = match backend {
        DbBackend::Postgres => "pg_is_in_recovery()::text",
        _ => "IF(@@read_only, 'true', 'false')",
    };
    let row = txn
        .query_one_raw(Statement::from_string(
            backend,
            format!("SELECT {on_replica} AS r, (SELECT balance FROM {table} WHERE id = 1) AS b"),
        ))
        .await?
        .expect("one row");
    let on_replica: String = row.try_get("", "r")?;
    Ok((on_replica == "true", row.try_get("", "b")?))
}

pub(super) async fn read(
    resolver: &ConflictResolver,
    table: &str,
    opts: CallOptions,
) -> Result<(bool, i64), conflictkit::Error> {
    resolver
        .run(opts.read_only(true), |txn: &Txn| {
            Box::pin(where_and_balance(txn, table))
        })
        .await
}

pub(super) async fn set_balance(resolver: &ConflictResolver, table: &str, balance: i64) {
    resolver
        .managed(|txn: &Txn| {
            Box::pin(async move {
                sql(
                    txn,
                    &format!("UPDATE {table} SET balance = {balance} WHERE id = 1"),
                )
                .await?;
                Ok::<_, conflictkit::Error>(())
            })
        })
        .await
        .expect("the write commits on the primary");
}

#[managed_transaction(read_only)]
async fn in_recovery(txn: &Txn) -> Result<bool, conflictkit::Error> {
    Ok(one_text(txn, "SELECT pg_is_in_recovery()::text AS v").await? == "true")
}
