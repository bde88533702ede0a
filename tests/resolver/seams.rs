//! The seams around the managed path, on real servers: the manual guard
//! (`resolver.transaction()`) keeps a managed call's promises (an ignored
//! error still counts, a detached COMMIT with its hooks, an unknown COMMIT
//! outcome is typed); a second transaction on the same database from one
//! task is refused instead of hanging; errors that are no conflict are not
//! replayed, and sessions the server ends are.

use crate::common;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::proxy::Proxy;
use common::{Backend, TestDb, create_accounts, read_balance, write_balance};
use conflictkit::resolver::{
    AbortedTransaction, AmbiguousCommit, Backoff, CallOptions, Contention, NestedTransaction,
    SqliteMode,
};
use conflictkit::{ConflictResolver, Error, Txn};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, Value};
use tokio::sync::mpsc;

/// Fails the test instead of hanging (a hang guard, not a time bound on
/// the feature: every wait here ends in well under a second when it works).
async fn bounded<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(120), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within 120 s"))
}

async fn exec(db: &impl ConnectionTrait, sql: &str) -> Result<(), DbErr> {
    db.execute_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .map(|_| ())
}

async fn scalar(db: &impl ConnectionTrait, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .expect("one row");
    row.try_get_by_index::<i64>(0).expect("an integer")
}

async fn server(backend: Backend, test: &str, pool: u32) -> TestDb {
    common::open(backend, test, pool)
        .await
        .expect("the test command starts the servers")
}

/// The name of a test database, from its URL.
fn database_name(url: &str) -> String {
    let path = url.rsplit('/').next().unwrap_or_default();
    path.split('?').next().unwrap_or_default().to_owned()
}

/// A guard inserts row 2, then row 1 again (a duplicate key), ignores that
/// error, registers a hook and commits. PostgreSQL aborted the transaction
/// at the failed statement and would answer COMMIT with ROLLBACK: `commit()`
/// returns `AbortedTransaction`, no hook runs, row 2 is absent. MariaDB and
/// SQLite failed the statement alone: the rest commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_never_reports_lost_writes_as_success() {
    for backend in Backend::ALL {
        let tdb = server(backend, "guard_swallowed_dup", 2).await;
        exec(&tdb.db, "CREATE TABLE item (id INTEGER PRIMARY KEY)")
            .await
            .unwrap();
        exec(&tdb.db, "INSERT INTO item VALUES (1)").await.unwrap();
        let r = ConflictResolver::new(tdb.db.clone());
        let hooks = Arc::new(AtomicU32::new(0));
        let txn = r.transaction().await.unwrap();
        exec(&txn, "INSERT INTO item VALUES (2)").await.unwrap();
        let ignored = exec(&txn, "INSERT INTO item VALUES (1)").await;
        assert!(ignored.is_err(), "{backend:?}: the duplicate key fails");
        let h = hooks.clone();
        txn.after_commit(move || {
            h.fetch_add(1, Ordering::SeqCst);
        });
        let committed = txn.commit().await;
        let rows = scalar(&tdb.db, "SELECT COUNT(*) FROM item").await;
        if backend == Backend::Postgres {
            let err = committed.expect_err("PostgreSQL aborted the transaction");
            let aborted = AbortedTransaction::find(&err).unwrap_or_else(|| panic!("{err:?}"));
            assert_eq!(aborted.label(), "ConflictResolver::transaction");
            assert!(err.to_string().contains("nothing was committed"), "{err}");
            assert_eq!(rows, 1, "row 2 was not committed");
            assert_eq!(hooks.load(Ordering::SeqCst), 0, "no hook for a rollback");
        } else {
            committed.unwrap_or_else(|e| panic!("{backend:?}: {e}"));
            assert_eq!(rows, 2, "{backend:?}: row 2 committed");
            assert_eq!(hooks.load(Ordering::SeqCst), 1, "{backend:?}");
        }
    }
}

/// Two guards read the same row; the first writes it and commits; the
/// second's write is a serialization conflict (40001; SQLite's stale
/// snapshot, 517), which it ignores before committing. `commit()` rolls
/// back and returns the conflict, which `is_retryable` recognises: the
/// caller knows to run the transaction again. The first write stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_returns_an_ignored_conflict_instead_of_committing() {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let tdb = server(backend, "guard_swallowed_conflict", 4).await;
        create_accounts(&tdb.db, &[(1, 10), (2, 0)]).await;
        let r = ConflictResolver::builder(tdb.db.clone())
            .sqlite_mode(SqliteMode::Deferred)
            .build();
        let first = r.transaction().await.unwrap();
        let second = r.transaction().await.unwrap();
        let seen_first = read_balance(&first, 1).await.unwrap();
        let seen_second = read_balance(&second, 1).await.unwrap();
        write_balance(&first, 1, seen_first + 1).await.unwrap();
        first.commit().await.unwrap();
        let ignored = write_balance(&second, 1, seen_second + 5).await;
        let ignored = ignored.expect_err("a write on a stale snapshot conflicts");
        assert!(
            ConflictResolver::is_retryable(&ignored),
            "{backend:?}: {ignored}"
        );
        // a later write of the same transaction
        let _also_ignored = write_balance(&second, 2, 99).await;
        let hooks = Arc::new(AtomicU32::new(0));
        let h = hooks.clone();
        second.after_commit(move || {
            h.fetch_add(1, Ordering::SeqCst);
        });
        let err = second
            .commit()
            .await
            .expect_err("a transaction that conflicted does not commit");
        assert!(
            ConflictResolver::is_retryable(&err),
            "{backend:?}: the caller is told to retry: {err}"
        );
        assert_eq!(hooks.load(Ordering::SeqCst), 0, "{backend:?}");
        assert_eq!(read_balance(&tdb.db, 1).await.unwrap(), 11, "{backend:?}");
        assert_eq!(
            read_balance(&tdb.db, 2).await.unwrap(),
            0,
            "{backend:?}: the later write of the conflicted transaction did not commit"
        );
    }
}

/// Whether a session waits for the advisory lock `key` (seen on the server).
async fn sessions_waiting_for_advisory_lock(admin: &DatabaseConnection, key: i64) -> i64 {
    scalar(
        admin,
        &format!(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
             AND objid = {key}"
        ),
    )
    .await
}

/// A guard's COMMIT is held on the server (a deferred constraint trigger
/// waits for an advisory lock the test holds); the caller awaiting
/// `commit()` is aborted while the server shows the COMMIT waiting. The
/// COMMIT still completes when the lock is released, and its hook runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_dropped_during_commit_still_commits_and_runs_its_hook() {
    const KEY: i64 = 424_242;
    let tdb = server(Backend::Postgres, "guard_dropped_commit", 2).await;
    exec(&tdb.db, "CREATE TABLE item (id INTEGER PRIMARY KEY)")
        .await
        .unwrap();
    let holder = common::hold_commits_of_item(&tdb.db, &tdb.url, KEY).await;
    let r = ConflictResolver::new(tdb.db.clone());
    let (hook_tx, mut hook_rx) = mpsc::unbounded_channel();
    let caller = tokio::spawn(async move {
        let txn = r.transaction().await.unwrap();
        exec(&txn, "INSERT INTO item VALUES (1)").await.unwrap();
        txn.after_commit(move || hook_tx.send(1).unwrap());
        txn.commit().await
    });
    bounded("the COMMIT waits on the server", async {
        while sessions_waiting_for_advisory_lock(&holder, KEY).await == 0 {
            assert!(
                !caller.is_finished(),
                "the guard ended before its COMMIT was held"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    caller.abort();
    assert!(
        caller.await.unwrap_err().is_cancelled(),
        "the caller was dropped"
    );
    exec(&holder, &format!("SELECT pg_advisory_unlock({KEY})"))
        .await
        .unwrap();
    let ran = bounded("the hook", hook_rx.recv()).await;
    assert_eq!(ran, Some(1), "the hook ran after the COMMIT");
    assert_eq!(
        bounded("no second hook", hook_rx.recv()).await,
        None,
        "once"
    );
    assert_eq!(scalar(&tdb.db, "SELECT COUNT(*) FROM item").await, 1);
}

/// COMMIT of a guard reaches the server and its reply is lost: `commit()`
/// returns `AmbiguousCommit` (not a plain I/O error), and no hook ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_commit_with_an_unknown_outcome_is_ambiguous() {
    for backend in [Backend::Postgres, Backend::MySql] {
        let tdb = server(backend, "guard_ambiguous", 2).await;
        create_accounts(&tdb.db, &[(1, 10)]).await;
        let (proxy, url) = Proxy::for_url(&tdb.url).await;
        let r = ConflictResolver::builder(common::connect(&url, 2).await)
            .contention(Contention::Off)
            .build();
        let txn = r.transaction().await.unwrap();
        write_balance(&txn, 1, 11).await.unwrap();
        let hooks = Arc::new(AtomicU32::new(0));
        let h = hooks.clone();
        txn.after_commit(move || {
            h.fetch_add(1, Ordering::SeqCst);
        });
        proxy.cut_after(b"COMMIT");
        let err = bounded("commit", txn.commit())
            .await
            .expect_err("the COMMIT reply was lost");
        proxy.cuts(1).await;
        let ambiguous =
            AmbiguousCommit::find(&err).unwrap_or_else(|| panic!("{backend:?}: {err:?}"));
        assert_eq!(ambiguous.label(), "ConflictResolver::transaction");
        assert!(!ConflictResolver::is_retryable(&err), "{backend:?}");
        assert_eq!(hooks.load(Ordering::SeqCst), 0, "{backend:?}");
        // whether the server ran the COMMIT before it saw the connection
        // cut is unknown: that is what "ambiguous" says
    }
}

/// A managed call while a guard on the same database is open in the same
/// task, and a guard opened inside a managed body, are refused with
/// `NestedTransaction` (the second transaction would wait for the first's
/// row lock forever: PostgreSQL reports no deadlock while the first's
/// session idles). The refusal also holds when the outer transaction holds
/// its pool's only connection. On another database, and once the guard is
/// gone, calls run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_transaction_on_the_same_database_in_one_task_is_refused() {
    let tdb = server(Backend::Postgres, "guard_nested", 1).await;
    create_accounts(&tdb.db, &[(1, 10)]).await;
    let r = ConflictResolver::new(tdb.db.clone());
    let other = ConflictResolver::new(common::connect(&tdb.url, 2).await);

    // a managed call inside an open guard, through the same resolver and
    // through another one on the same database
    let guard = r.transaction().await.unwrap();
    write_balance(&guard, 1, 11).await.unwrap();
    for (resolver, name) in [(&r, "same"), (&other, "other")] {
        let err = bounded(
            "a managed call inside a guard",
            resolver.run(CallOptions::new("tests::inside_guard"), |txn: &Txn| {
                Box::pin(async move { Ok::<_, Error>(write_balance(txn, 1, 12).await?) })
            }),
        )
        .await
        .expect_err("refused");
        let nested = NestedTransaction::find(&err).unwrap_or_else(|| panic!("{name}: {err:?}"));
        assert_eq!(nested.label(), "tests::inside_guard");
        assert_eq!(nested.outer_label(), "ConflictResolver::transaction");
        assert!(err.to_string().contains("guard"), "{err}");
    }
    guard.commit().await.unwrap();
    assert_eq!(read_balance(&tdb.db, 1).await.unwrap(), 11);

    // the guard is gone: the same call runs
    r.run(CallOptions::new("tests::after_guard"), |txn: &Txn| {
        Box::pin(async move { Ok::<_, Error>(write_balance(txn, 1, 12).await?) })
    })
    .await
    .unwrap();

    // a guard inside a managed body whose transaction holds the pool's only
    // connection, through the same resolver and through another one; the
    // outer resolver is new, so which database it is must be learnt
    // without a second connection
    let fresh = ConflictResolver::new(common::connect(&tdb.url, 1).await);
    for (resolver, name) in [(&fresh, "same"), (&other, "other")] {
        let result = bounded(
            "a guard inside a managed body",
            fresh.run(CallOptions::new("tests::outer"), |txn: &Txn| {
                Box::pin(async move {
                    write_balance(txn, 1, 13).await?;
                    let inner = resolver.transaction().await?;
                    write_balance(&inner, 1, 14).await?;
                    inner.commit().await?;
                    Ok::<_, Error>(())
                })
            }),
        )
        .await;
        let err = result.expect_err("refused");
        let nested = NestedTransaction::find(&err).unwrap_or_else(|| panic!("{name}: {err:?}"));
        assert_eq!(nested.outer_label(), "tests::outer", "{name}");
        assert_eq!(read_balance(&tdb.db, 1).await.unwrap(), 12, "{name}");
    }

    // on another database a guard inside a managed body is fine
    let elsewhere = server(Backend::Sqlite, "guard_nested_elsewhere", 2).await;
    create_accounts(&elsewhere.db, &[(1, 0)]).await;
    let sqlite = ConflictResolver::new(elsewhere.db.clone());
    r.run(CallOptions::new("tests::outer_elsewhere"), |txn: &Txn| {
        let sqlite = sqlite.clone();
        Box::pin(async move {
            write_balance(txn, 1, 15).await?;
            let inner = sqlite.transaction().await?;
            write_balance(&inner, 1, 5).await?;
            inner.commit().await?;
            Ok::<_, Error>(())
        })
    })
    .await
    .unwrap();
    assert_eq!(read_balance(&tdb.db, 1).await.unwrap(), 15);
    assert_eq!(read_balance(&elsewhere.db, 1).await.unwrap(), 5);
}

/// A client-side protocol error is no lost connection: an INSERT with more
/// bind values than PostgreSQL's wire protocol carries (65535) fails once,
/// is not replayed, and says what it is. A body that handles it (falls back
/// to smaller statements) commits: the transaction was never touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protocol_error_is_not_replayed_as_a_lost_connection() {
    let tdb = server(Backend::Postgres, "protocol_error", 2).await;
    exec(&tdb.db, "CREATE TABLE item (id BIGINT PRIMARY KEY)")
        .await
        .unwrap();
    let r = ConflictResolver::builder(tdb.db.clone())
        .backoff(Backoff::none())
        .build();
    const ROWS: usize = 70_000;
    let too_many = || {
        let placeholders: Vec<String> = (1..=ROWS).map(|i| format!("(${i})")).collect();
        let values: Vec<Value> = (0..ROWS as i64).map(Value::from).collect();
        Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!("INSERT INTO item VALUES {}", placeholders.join(", ")),
            values,
        )
    };
    let runs = AtomicU32::new(0);
    let err = r
        .run(CallOptions::new("tests::too_many_binds"), |txn: &Txn| {
            runs.fetch_add(1, Ordering::SeqCst);
            let stmt = too_many();
            Box::pin(async move {
                txn.execute_raw(stmt).await?;
                Ok::<_, Error>(())
            })
        })
        .await
        .expect_err("too many bind values");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "not replayed: {err}");
    assert!(!ConflictResolver::is_retryable(&err), "{err}");
    assert!(
        !err.to_string().contains("lost its database connection"),
        "{err}"
    );
    assert_eq!(r.stats().retries, 0);

    // handled in the body: the transaction is intact and commits
    let runs = AtomicU32::new(0);
    r.run(CallOptions::new("tests::chunked"), |txn: &Txn| {
        runs.fetch_add(1, Ordering::SeqCst);
        let stmt = too_many();
        Box::pin(async move {
            if txn.execute_raw(stmt).await.is_err() {
                for chunk in (0..ROWS as i64).collect::<Vec<_>>().chunks(10_000) {
                    let ids: Vec<String> = chunk.iter().map(|i| format!("({i})")).collect();
                    exec(txn, &format!("INSERT INTO item VALUES {}", ids.join(", "))).await?;
                }
            }
            Ok::<_, Error>(())
        })
    })
    .await
    .unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(
        scalar(&tdb.db, "SELECT COUNT(*) FROM item").await,
        ROWS as i64
    );
}

/// PostgreSQL ends idle sessions after `idle_session_timeout` (FATAL
/// 57P05). A resolver whose pool does not ping before use
/// (`ConflictResolver::connect`) begins on such a dead connection, and
/// begins again on another: every call succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_the_server_ended_for_idling_are_begun_again() {
    let tdb = server(Backend::Postgres, "idle_session_timeout", 1).await;
    create_accounts(&tdb.db, &[(1, 0)]).await;
    let name = database_name(&tdb.url);
    exec(
        &tdb.db,
        &format!("ALTER DATABASE \"{name}\" SET idle_session_timeout = '300ms'"),
    )
    .await
    .unwrap();
    tdb.db.clone().close().await.unwrap();
    let admin = common::connect(&common::server_url(Backend::Postgres).unwrap(), 1).await;
    let count_sessions = format!("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = '{name}'");
    let sessions = || scalar(&admin, &count_sessions);
    let mut options = sea_orm::ConnectOptions::new(tdb.url.clone());
    options
        .max_connections(4)
        .min_connections(0)
        .idle_timeout(Duration::from_secs(600))
        .sqlx_logging(false);
    let r = ConflictResolver::connect(options).await.unwrap();
    for round in 0..2 {
        // open four pooled connections at once
        let barrier = Arc::new(tokio::sync::Barrier::new(4));
        let calls: Vec<_> = (0..4)
            .map(|_| {
                let (r, barrier) = (r.clone(), barrier.clone());
                tokio::spawn(async move {
                    let entered = AtomicU32::new(0);
                    r.run(
                        CallOptions::new("tests::idle").contention(Contention::Off),
                        |txn: &Txn| {
                            let first = entered.fetch_add(1, Ordering::SeqCst) == 0;
                            let barrier = barrier.clone();
                            Box::pin(async move {
                                if first {
                                    barrier.wait().await;
                                }
                                exec(
                                    txn,
                                    "UPDATE accounts SET balance = balance + 1 WHERE id = 1",
                                )
                                .await?;
                                Ok::<_, Error>(())
                            })
                        },
                    )
                    .await
                })
            })
            .collect();
        for c in calls {
            bounded("call", c)
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
        // the server ends every idle session of the pool
        bounded("the server ends the idle sessions", async {
            while sessions().await > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
    }
    assert_eq!(read_balance(&admin_db(&tdb.url).await, 1).await.unwrap(), 8);
}

/// A connection to the test database without the idle timeout.
async fn admin_db(url: &str) -> DatabaseConnection {
    let db = common::connect(url, 1).await;
    exec(&db, "SET idle_session_timeout = 0").await.unwrap();
    db
}

/// SQLite may roll the whole transaction back by itself after
/// `SQLITE_FULL`; a body that ignores that error and goes on would then
/// write outside any transaction. The call fails with `AbortedTransaction`
/// and nothing the body wrote is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_full_ignored_by_the_body_fails_the_call() {
    let tdb = server(Backend::Sqlite, "sqlite_full", 1).await;
    exec(
        &tdb.db,
        "CREATE TABLE item (id INTEGER PRIMARY KEY, data BLOB)",
    )
    .await
    .unwrap();
    let pages = scalar(&tdb.db, "PRAGMA page_count").await;
    // the pool's only connection may grow the file by a few pages only
    exec(&tdb.db, &format!("PRAGMA max_page_count = {}", pages + 4))
        .await
        .unwrap();
    let r = ConflictResolver::new(tdb.db.clone());
    let result = r
        .run(CallOptions::new("tests::full"), |txn: &Txn| {
            Box::pin(async move {
                exec(txn, "INSERT INTO item VALUES (1, x'00')").await?;
                let full = exec(txn, "INSERT INTO item VALUES (2, zeroblob(1000000))").await;
                let full = full.expect_err("the database is full");
                assert!(full.to_string().contains("full"), "{full}");
                let _ = exec(txn, "INSERT INTO item VALUES (3, x'00')").await;
                Ok::<_, Error>(())
            })
        })
        .await;
    let err = result.expect_err("the transaction was aborted");
    assert!(AbortedTransaction::find(&err).is_some(), "{err:?}");
    // row 3's statement was refused: after SQLite's own rollback it would
    // have committed on its own
    exec(&tdb.db, "PRAGMA max_page_count = 1073741823")
        .await
        .unwrap();
    assert_eq!(scalar(&tdb.db, "SELECT COUNT(*) FROM item").await, 0);
}

/// On MySQL/MariaDB a statement with the wrong number of bind values fails
/// in sqlx before it is sent, and leaves the connection waiting for a
/// reply that never comes (sqlx-mysql 0.9). The call returns that error
/// instead of hanging in its ROLLBACK (bounded by `rollback_timeout`), runs
/// once, and the resolver goes on serving calls on its other connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_bind_count_on_mysql_fails_the_call_instead_of_hanging_it() {
    let tdb = server(Backend::MySql, "wrong_bind_count", 4).await;
    create_accounts(&tdb.db, &[(1, 10)]).await;
    let r = ConflictResolver::builder(tdb.db.clone())
        .rollback_timeout(Duration::from_millis(500))
        .contention(Contention::Off)
        .build();
    let runs = AtomicU32::new(0);
    let err = bounded(
        "the call",
        r.run(CallOptions::new("tests::binds"), |txn: &Txn| {
            runs.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                write_balance(txn, 1, 11).await?;
                let stmt = Statement::from_sql_and_values(
                    DbBackend::MySql,
                    "UPDATE accounts SET balance = ? WHERE id = ?",
                    [Value::from(12_i64)],
                );
                txn.execute_raw(stmt).await?;
                Ok::<_, Error>(())
            })
        }),
    )
    .await
    .expect_err("a wrong bind count");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "not replayed: {err}");
    assert!(!ConflictResolver::is_retryable(&err), "{err}");
    assert!(err.to_string().contains("parameters"), "{err}");
    // nothing committed, and the resolver still works
    assert_eq!(read_balance(&tdb.db, 1).await.unwrap(), 10);
    r.run(CallOptions::new("tests::after"), |txn: &Txn| {
        Box::pin(async move { Ok::<_, Error>(write_balance(txn, 1, 13).await?) })
    })
    .await
    .unwrap();
    assert_eq!(read_balance(&tdb.db, 1).await.unwrap(), 13);
}

/// Counts the WARN events of the process (the resolver warns when it cannot
/// take its lock across processes, and when it gives up).
struct CountWarnings(Arc<AtomicU32>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountWarnings {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if *event.metadata().level() == tracing::Level::WARN {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// More keys than pooled connections, each key new (on PostgreSQL a new
/// gate takes its lease of the lock across processes from its first run):
/// every call commits, and none had to give up waiting for the lock. A run
/// takes its pooled connection before it enters its lease, never both at
/// once; a run that held a lease (a lock-pool connection) while it waited
/// for a pooled connection, beside runs that held pooled connections while
/// they waited for lock connections, stalled until the 5 s lock-wait bound
/// ran out and then ran without the lock, with a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn more_hot_keys_than_connections_take_their_leases_without_a_stall() {
    use tracing_subscriber::layer::SubscriberExt;
    let warnings = Arc::new(AtomicU32::new(0));
    let subscriber = tracing_subscriber::registry().with(CountWarnings(warnings.clone()));
    tracing::subscriber::set_global_default(subscriber).expect("one subscriber per test process");
    const KEYS: i32 = 12;
    let tdb = server(Backend::Postgres, "lease_order", 2).await;
    let rows: Vec<(i32, i64)> = (1..=KEYS).map(|id| (id, 0)).collect();
    create_accounts(&tdb.db, &rows).await;
    let r = ConflictResolver::new(tdb.db.clone());
    for round in 0..3 {
        let start = Arc::new(tokio::sync::Barrier::new(KEYS as usize));
        let calls: Vec<_> = (1..=KEYS)
            .map(|id| {
                let (r, start) = (r.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    r.run(
                        CallOptions::new("tests::keyed").key(&(round * 100 + id)),
                        |txn: &Txn| {
                            Box::pin(async move {
                                let b = read_balance(txn, id).await?;
                                Ok::<_, Error>(write_balance(txn, id, b + 1).await?)
                            })
                        },
                    )
                    .await
                })
            })
            .collect();
        for c in calls {
            bounded("keyed call", c).await.unwrap().unwrap();
        }
    }
    for id in 1..=KEYS {
        assert_eq!(read_balance(&tdb.db, id).await.unwrap(), 3, "account {id}");
    }
    assert_eq!(r.stats().unresolved, 0);
    assert_eq!(
        warnings.load(Ordering::SeqCst),
        0,
        "no run gave up waiting for its lock"
    );
}

/// Two calls lock one row each, then each other's: InnoDB rolls the victim
/// back for a deadlock (1213). The victim's body ignores that error and goes
/// on writing a marker row, through its `Txn` and straight through the
/// sea-orm transaction. The server ran the latter outside any transaction:
/// it committed on its own and survives the replay (this pins MariaDB's
/// behaviour, the same as MySQL 8's). Through the `Txn` it is refused, so
/// the replayed call leaves exactly one marker per committed run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_after_an_ignored_deadlock_on_mariadb_are_never_kept() {
    let tdb = server(Backend::MySql, "writes_after_deadlock", 4).await;
    create_accounts(&tdb.db, &[(1, 0), (2, 0)]).await;
    exec(
        &tdb.db,
        "CREATE TABLE marker (call_id INTEGER, attempt INTEGER, via VARCHAR(8))",
    )
    .await
    .unwrap();
    let r = ConflictResolver::builder(tdb.db.clone())
        .retries(2)
        .backoff(Backoff::none())
        .contention(Contention::Off)
        .build();
    let met = Arc::new(tokio::sync::Barrier::new(2));
    let refused = Arc::new(AtomicU32::new(0));
    let calls: Vec<_> = [(1, 2), (2, 1)]
        .into_iter()
        .map(|(first, second)| {
            let (r, met, refused) = (r.clone(), met.clone(), refused.clone());
            tokio::spawn(async move {
                r.run(CallOptions::new("tests::deadlock"), |txn: &Txn| {
                    let (met, refused) = (met.clone(), refused.clone());
                    Box::pin(async move {
                        let attempt = txn.attempt();
                        write_balance(txn, first, 1).await?;
                        if attempt == 1 {
                            met.wait().await;
                        }
                        let ignored = write_balance(txn, second, 1).await;
                        if let Err(e) = &ignored {
                            assert!(ConflictResolver::is_retryable(e), "{e}");
                            let through_txn = exec(
                                txn,
                                &format!("INSERT INTO marker VALUES ({first}, {attempt}, 'txn')"),
                            )
                            .await;
                            if through_txn.is_err() {
                                refused.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        exec(
                            txn.as_database_transaction(),
                            &format!("INSERT INTO marker VALUES ({first}, {attempt}, 'raw')"),
                        )
                        .await?;
                        Ok::<_, Error>(attempt)
                    })
                })
                .await
            })
        })
        .collect();
    let mut attempts = Vec::new();
    for c in calls {
        attempts.push(bounded("call", c).await.unwrap().unwrap());
    }
    attempts.sort();
    assert_eq!(attempts, vec![1, 2], "one victim, replayed once");
    assert_eq!(
        refused.load(Ordering::SeqCst),
        1,
        "the victim's Txn refused"
    );
    assert_eq!(
        scalar(&tdb.db, "SELECT COUNT(*) FROM marker WHERE via = 'txn'").await,
        0
    );
    assert_eq!(
        scalar(
            &tdb.db,
            "SELECT COUNT(*) FROM marker WHERE via = 'raw' AND attempt = 1"
        )
        .await,
        2,
        "the victim's statement sent around its Txn after the deadlock committed on its own"
    );
    assert_eq!(
        scalar(&tdb.db, "SELECT COUNT(*) FROM marker WHERE via = 'raw'").await,
        3,
        "and the two committed runs' markers"
    );
    assert_eq!(r.stats().retries, 1);
}
