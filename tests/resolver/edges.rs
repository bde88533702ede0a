//! The resolver's promise at the edges, on real servers: `Ok` means the
//! writes committed, even when a body ignores a database error; hooks run
//! exactly when the data committed, even when the caller is gone during
//! COMMIT; a cancelled BEGIN leaves no open transaction in the pool; a
//! COMMIT with an unknown outcome is never replayed; a give-up is not a
//! conflict; nesting through another resolver fails fast.

use crate::common;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::proxy::Proxy;
use common::{Backend, TestDb, create_accounts, read_balance, write_balance};
use conflictkit::resolver::{
    AbortedTransaction, AmbiguousCommit, Backoff, CallOptions, Contention, SqliteMode, Stats,
};
use conflictkit::{CannotResolveDatabaseConflict, ConflictResolver, Error, Txn};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement};
use tokio::sync::{Barrier, mpsc};

/// Fails the test instead of hanging.
async fn bounded<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within 60 s"))
}

async fn exec(db: &impl ConnectionTrait, sql: &str) -> Result<(), DbErr> {
    db.execute_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .map(|_| ())
}

async fn count(db: &DatabaseConnection, table: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

async fn server(backend: Backend, test: &str, pool: u32) -> TestDb {
    common::open(backend, test, pool)
        .await
        .expect("the test command starts the servers")
}

/// A body inserts row 2, then row 1 again (a duplicate key) and ignores
/// that error. PostgreSQL aborted the transaction at the failed statement:
/// the call fails with `AbortedTransaction`, nothing committed, no hook ran.
/// MariaDB and SQLite failed only the statement: the rest commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swallowed_statement_error_never_reports_lost_writes_as_success() {
    for backend in Backend::ALL {
        let tdb = server(backend, "swallowed_dup", 2).await;
        exec(&tdb.db, "CREATE TABLE item (id INTEGER PRIMARY KEY)")
            .await
            .unwrap();
        exec(&tdb.db, "INSERT INTO item VALUES (1)").await.unwrap();
        let r = ConflictResolver::new(tdb.db.clone());
        let hooks = Arc::new(AtomicU32::new(0));
        let h = hooks.clone();
        let result = r
            .managed(move |txn: &Txn| {
                let h = h.clone();
                Box::pin(async move {
                    exec(txn, "INSERT INTO item VALUES (2)").await?;
                    let ignored = exec(txn, "INSERT INTO item VALUES (1)").await;
                    assert!(ignored.is_err(), "the duplicate key fails");
                    txn.after_commit(move || {
                        h.fetch_add(1, Ordering::SeqCst);
                    });
                    Ok::<_, Error>(())
                })
            })
            .await;
        let rows = count(&tdb.db, "item").await;
        if backend == Backend::Postgres {
            let err = result.expect_err("PostgreSQL aborted the transaction");
            let aborted = AbortedTransaction::find(&err).unwrap_or_else(|| panic!("{err:?}"));
            assert!(err.is_aborted_transaction());
            assert!(
                aborted.label().contains("resolver_edges.rs"),
                "{}",
                aborted.label()
            );
            assert!(err.to_string().contains("ignoring them"), "{err}");
            assert_eq!(rows, 1, "row 2 was not committed");
            assert_eq!(hooks.load(Ordering::SeqCst), 0);
            assert_eq!(
                r.stats(),
                Stats {
                    success: 0,
                    retries: 0,
                    errors: 1,
                    unresolved: 0
                }
            );
        } else {
            result.unwrap_or_else(|e| panic!("{backend:?}: {e}"));
            assert_eq!(rows, 2, "{backend:?}: row 2 committed");
            assert_eq!(hooks.load(Ordering::SeqCst), 1, "{backend:?}");
        }
    }
}

/// Two calls read the same row, meet, then write it, each ignoring the error
/// of its write. The loser's ignored error is a conflict (40001, 1213,
/// SQLITE_BUSY_SNAPSHOT): its attempt is replayed anyway, also when a later
/// statement then fails because of it and the body returns that error
/// instead (PostgreSQL's 25P02), and no increment is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_swallowed_conflict_is_replayed() {
    for backend in Backend::ALL {
        let tdb = server(backend, "swallowed_conflict", 4).await;
        create_accounts(&tdb.db, &[(1, 10)]).await;
        let r = ConflictResolver::builder(tdb.db.clone())
            .retries(1)
            .backoff(Backoff::none())
            .contention(Contention::Off)
            .sqlite_mode(SqliteMode::Deferred)
            .build();
        let barrier = Arc::new(Barrier::new(2));
        let bodies = Arc::new(AtomicU32::new(0));
        let calls: Vec<_> = (0..2)
            .map(|_| {
                let (r, barrier, bodies) = (r.clone(), barrier.clone(), bodies.clone());
                tokio::spawn(async move {
                    r.managed(move |txn: &Txn| {
                        let (barrier, bodies) = (barrier.clone(), bodies.clone());
                        Box::pin(async move {
                            bodies.fetch_add(1, Ordering::SeqCst);
                            let b = read_balance(txn, 1).await?;
                            if txn.attempt() == 1 {
                                barrier.wait().await;
                            }
                            let _ignored = write_balance(txn, 1, b + 1).await;
                            // on PostgreSQL this read then fails with 25P02
                            // (transaction aborted), which the body returns
                            read_balance(txn, 1).await?;
                            Ok::<_, Error>(())
                        })
                    })
                    .await
                })
            })
            .collect();
        for c in calls {
            bounded("increment", c).await.unwrap().unwrap();
        }
        assert_eq!(read_balance(&tdb.db, 1).await.unwrap(), 12, "{backend:?}");
        assert_eq!(r.stats().retries, 1, "{backend:?}: {:?}", r.stats());
        assert_eq!(bodies.load(Ordering::SeqCst), 3, "{backend:?}");
    }
}

/// The advisory lock the deferred trigger of the dropped-COMMIT test waits on.
const COMMIT_LOCK: i64 = 0x636b_0003;

/// Sessions of the test database whose statement is `COMMIT` and which wait
/// for the advisory lock `COMMIT_LOCK` (taken by a deferred trigger, so at
/// COMMIT).
async fn commits_waiting_on_lock(admin: &DatabaseConnection, database: &str) -> i64 {
    let row = admin
        .query_one_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!(
                "SELECT COUNT(*) AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                 WHERE l.locktype = 'advisory' AND NOT l.granted \
                 AND ((l.classid::bigint << 32) | l.objid::bigint) = {COMMIT_LOCK} \
                 AND a.datname = '{database}' AND upper(a.query) LIKE 'COMMIT%'"
            ),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// A deferred constraint trigger makes each COMMIT wait for an advisory lock
/// the test holds; once the server shows all five COMMITs waiting on it,
/// every caller is dropped, then the lock is released. Every row commits and
/// every hook runs, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_caller_dropped_during_commit_still_gets_its_hooks_run() {
    const CALLERS: i32 = 5;
    let tdb = server(Backend::Postgres, "dropped_commit", 8).await;
    let database = tdb.url.rsplit('/').next().unwrap().to_owned();
    exec(&tdb.db, "CREATE TABLE item (id INTEGER PRIMARY KEY)")
        .await
        .unwrap();
    // the lock holder: one session of its own, holding the lock until told
    let holder = common::hold_commits_of_item(&tdb.db, &tdb.url, COMMIT_LOCK).await;
    let r = ConflictResolver::builder(tdb.db.clone())
        .contention(Contention::Off)
        .build();
    let (hook_tx, mut hook_rx) = mpsc::unbounded_channel();
    let callers: Vec<_> = (1..=CALLERS)
        .map(|id: i32| {
            let (r, hook_tx) = (r.clone(), hook_tx.clone());
            tokio::spawn(async move {
                r.managed(|txn: &Txn| {
                    let hook_tx = hook_tx.clone();
                    Box::pin(async move {
                        exec(txn, &format!("INSERT INTO item VALUES ({id})")).await?;
                        txn.after_commit(move || hook_tx.send(id).unwrap());
                        Ok::<_, Error>(())
                    })
                })
                .await
            })
        })
        .collect();
    drop(hook_tx);
    // every COMMIT is on the server, waiting in its trigger
    bounded("every COMMIT waits on the lock", async {
        while commits_waiting_on_lock(&tdb.db, &database).await < i64::from(CALLERS) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    // drop every caller while its COMMIT runs
    for c in &callers {
        c.abort();
    }
    for c in callers {
        let ended = c.await;
        assert!(
            ended.as_ref().is_err_and(|e| e.is_cancelled()),
            "a caller returned while its COMMIT was held: {ended:?}"
        );
    }
    assert_eq!(count(&tdb.db, "item").await, 0, "nothing committed yet");
    exec(
        &holder,
        &format!("SELECT pg_advisory_unlock({COMMIT_LOCK})"),
    )
    .await
    .unwrap();
    let mut ran = Vec::new();
    while let Some(id) = bounded("hooks", hook_rx.recv()).await {
        ran.push(id);
    }
    ran.sort();
    assert_eq!(ran, (1..=CALLERS).collect::<Vec<_>>(), "each hook ran once");
    assert_eq!(count(&tdb.db, "item").await, i64::from(CALLERS));
}

/// Sessions of the test database that sit inside an open transaction.
async fn idle_in_transaction(admin: &DatabaseConnection, database: &str) -> i64 {
    let row = admin
        .query_one_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!(
                "SELECT COUNT(*) AS n FROM pg_stat_activity \
                 WHERE datname = '{database}' AND state LIKE 'idle in transaction%'"
            ),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// A caller dropped while its BEGIN waits for the server's answer leaves no
/// connection in an open transaction: the pool's one connection then runs a
/// managed call and an autocommit write that really commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_caller_dropped_during_begin_leaves_no_open_transaction() {
    let tdb = server(Backend::Postgres, "dropped_begin", 1).await;
    create_accounts(&tdb.db, &[(1, 10)]).await;
    let (proxy, url) = Proxy::for_url(&tdb.url).await;
    // no ping on checkout: the held reply is BEGIN's
    let mut options = sea_orm::ConnectOptions::new(url);
    options
        .max_connections(1)
        .test_before_acquire(false)
        .sqlx_logging(false);
    let db = sea_orm::Database::connect(options).await.unwrap();
    let r = ConflictResolver::builder(db.clone())
        .contention(Contention::Off)
        .build();
    read_balance(&db, 1).await.unwrap(); // the one connection is open
    proxy.hold_replies(true);
    let call = tokio::spawn({
        let r = r.clone();
        async move {
            r.managed(|txn: &Txn| {
                Box::pin(async move { Ok::<_, Error>(write_balance(txn, 1, 99).await?) })
            })
            .await
        }
    });
    // BEGIN reached the server and its answer is held: the call is inside
    // BEGIN, and cannot get out of it while the reply is held
    bounded("BEGIN answered and held", proxy.replies_held(1)).await;
    call.abort();
    let ended = call.await;
    assert!(
        ended.as_ref().is_err_and(|e| e.is_cancelled()),
        "the call was dropped inside BEGIN: {ended:?}"
    );
    proxy.hold_replies(false);

    let database = tdb.url.rsplit('/').next().unwrap().to_owned();
    bounded("autocommit write", write_balance(&db, 1, 30))
        .await
        .unwrap();
    assert_eq!(
        read_balance(&tdb.db, 1).await.unwrap(),
        30,
        "the autocommit write on the pooled connection committed"
    );
    assert_eq!(idle_in_transaction(&tdb.db, &database).await, 0);
    bounded(
        "managed call after the cancelled BEGIN",
        r.managed(|txn: &Txn| {
            Box::pin(async move { Ok::<_, Error>(write_balance(txn, 1, 20).await?) })
        }),
    )
    .await
    .unwrap();
    assert_eq!(read_balance(&tdb.db, 1).await.unwrap(), 20);
    assert_eq!(idle_in_transaction(&tdb.db, &database).await, 0);
}

/// COMMIT reaches the server, the reply is lost: the call fails with
/// `AmbiguousCommit` and is not replayed, although the resolver was told to
/// retry on every error (connection codes and a catch-all predicate).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ambiguous_commit_is_typed_and_never_replayed() {
    for backend in [Backend::Postgres, Backend::MySql] {
        let tdb = server(backend, "ambiguous_commit", 2).await;
        create_accounts(&tdb.db, &[(1, 10)]).await;
        let (proxy, url) = Proxy::for_url(&tdb.url).await;
        let db = common::connect(&url, 2).await;
        // No lock across processes: on MariaDB the first lock of a label
        // inserts its row of the lock table and sends a COMMIT of its own,
        // which the proxy would cut instead of the transaction's.
        let r = ConflictResolver::builder(db)
            .retry_on_sqlstate("08006")
            .retry_on_mysql_error(2013)
            .retry_if(|_| true)
            .backoff(Backoff::none())
            .contention(Contention::Off)
            .build();
        let bodies = Arc::new(AtomicU32::new(0));
        let hooks = Arc::new(AtomicU32::new(0));
        proxy.cut_after(b"COMMIT");
        let (b, h) = (bodies.clone(), hooks.clone());
        let result = bounded(
            "ambiguous call",
            r.run(CallOptions::new("tests::ambiguous"), move |txn: &Txn| {
                let (b, h) = (b.clone(), h.clone());
                Box::pin(async move {
                    b.fetch_add(1, Ordering::SeqCst);
                    write_balance(txn, 1, 11).await?;
                    txn.after_commit(move || {
                        h.fetch_add(1, Ordering::SeqCst);
                    });
                    Ok::<_, Error>(())
                })
            }),
        )
        .await;
        proxy.cuts(1).await;
        let err = result.expect_err("the COMMIT reply was lost");
        let ambiguous =
            AmbiguousCommit::find(&err).unwrap_or_else(|| panic!("{backend:?}: {err:?}"));
        assert_eq!(ambiguous.label(), "tests::ambiguous");
        assert!(err.is_ambiguous_commit());
        assert!(!ConflictResolver::is_retryable(&err), "{backend:?}");
        assert_eq!(
            bodies.load(Ordering::SeqCst),
            1,
            "{backend:?}: not replayed"
        );
        assert_eq!(hooks.load(Ordering::SeqCst), 0, "{backend:?}");
        assert_eq!(
            r.stats(),
            Stats {
                success: 0,
                retries: 0,
                errors: 1,
                unresolved: 0
            },
            "{backend:?}"
        );
    }
}

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Unresolved(#[from] CannotResolveDatabaseConflict),
}

/// A give-up carries the last conflict as its source, yet is not itself
/// retryable, however it is wrapped: an outer loop must not multiply the
/// replays.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_give_up_is_not_a_conflict() {
    let tdb = server(Backend::Postgres, "give_up_kind", 4).await;
    create_accounts(&tdb.db, &[(1, 10)]).await;
    let r = ConflictResolver::builder(tdb.db.clone())
        .retries(0)
        .contention(Contention::Off)
        .build();
    let barrier = Arc::new(Barrier::new(2));
    let calls: Vec<_> = (0..2)
        .map(|_| {
            let (r, barrier) = (r.clone(), barrier.clone());
            tokio::spawn(async move {
                r.managed(move |txn: &Txn| {
                    let barrier = barrier.clone();
                    Box::pin(async move {
                        let b = read_balance(txn, 1).await?;
                        barrier.wait().await;
                        write_balance(txn, 1, b + 1).await?;
                        Ok::<_, AppError>(())
                    })
                })
                .await
            })
        })
        .collect();
    let mut gave_up = None;
    for c in calls {
        if let Err(e) = bounded("call", c).await.unwrap() {
            gave_up = Some(e);
        }
    }
    let err = gave_up.expect("one of the two gave up");
    let AppError::Unresolved(c) = &err else {
        panic!("{err:?}")
    };
    assert!(
        ConflictResolver::is_retryable(c.last_error()),
        "the last conflict is kept"
    );
    assert!(!ConflictResolver::is_retryable(c), "{c}");
    assert!(
        !ConflictResolver::is_retryable(&err),
        "through a transparent user enum"
    );
    assert!(r.classify(&err).is_none());
}

/// A managed call through another resolver on the same database, inside a
/// managed call, fails at once (its second transaction would wait for the
/// first one's lock forever); on another database it runs on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nesting_through_another_resolver_on_the_same_database_fails_fast() {
    let tdb = server(Backend::Postgres, "nested_other", 4).await;
    create_accounts(&tdb.db, &[(1, 10)]).await;
    let outer = ConflictResolver::new(tdb.db.clone());
    let same = ConflictResolver::new(common::connect(&tdb.url, 2).await);
    let elsewhere = common::open(Backend::Sqlite, "nested_elsewhere", 2)
        .await
        .unwrap();
    create_accounts(&elsewhere.db, &[(1, 0)]).await;
    let other_db = ConflictResolver::new(elsewhere.db.clone());

    let result = bounded(
        "nested call",
        outer.run(CallOptions::new("tests::outer"), |txn: &Txn| {
            let (same, other_db) = (same.clone(), other_db.clone());
            Box::pin(async move {
                write_balance(txn, 1, 11).await?;
                other_db
                    .run(CallOptions::new("tests::elsewhere"), |t: &Txn| {
                        Box::pin(async move { Ok::<_, Error>(write_balance(t, 1, 5).await?) })
                    })
                    .await?;
                same.run(CallOptions::new("tests::inner"), |t: &Txn| {
                    Box::pin(async move { Ok::<_, Error>(write_balance(t, 1, 12).await?) })
                })
                .await
            })
        }),
    )
    .await;
    let err = result
        .expect_err("nested through another resolver")
        .to_string();
    assert!(
        err.contains("`tests::inner`")
            && err.contains("`tests::outer`")
            && err.contains("same database"),
        "{err}"
    );
    assert_eq!(
        read_balance(&tdb.db, 1).await.unwrap(),
        10,
        "the outer call rolled back"
    );
    assert_eq!(
        read_balance(&elsewhere.db, 1).await.unwrap(),
        5,
        "the other database's call committed"
    );
    assert_eq!(same.stats().errors, 1);
}
