//! After-commit hooks run exactly once if and only if the data committed,
//! even when the caller is dropped after COMMIT was sent (managed calls and
//! the manual guard); a run that does not commit (a panic, a dropped future,
//! a cancelled BEGIN) rolls back, and no pooled connection is left inside an
//! open transaction (DESIGN §7).

use crate::common;
use common::proxy::Proxy;
use common::sql::{bounded, count, exec, scalar, server};
use common::{Backend, create_accounts, read_balance, write_balance};
use conflictkit::resolver::Contention;
use conflictkit::{ConflictResolver, Error, Txn};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

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

/// The advisory lock the deferred trigger of the dropped-COMMIT test waits on.
const COMMIT_LOCK: i64 = 0x636b_0003;

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

/// Hooks: once, after the final commit; a panicking hook does not make the
/// commit an error and the other hooks still run; hooks of a failed call never run.
#[tokio::test]
async fn after_commit_hooks() {
    let Some(tdb) = common::open(Backend::Sqlite, "hooks", 2).await else {
        return;
    };
    create_accounts(&tdb.db, &[(1, 10)]).await;
    let r = ConflictResolver::new(tdb.db.clone());
    let ran = Arc::new(AtomicU32::new(0));
    let ran2 = ran.clone();
    let v = r
        .managed(move |txn: &Txn| {
            let ran = ran2.clone();
            Box::pin(async move {
                write_balance(txn, 1, 11).await?;
                txn.after_commit(|| panic!("hook failure"));
                let hook_ran = ran.clone();
                txn.after_commit(move || {
                    hook_ran.fetch_add(1, Ordering::SeqCst);
                });
                assert_eq!(ran.load(Ordering::SeqCst), 0, "hooks wait for the commit");
                Ok::<_, Error>(7)
            })
        })
        .await
        .unwrap();
    assert_eq!(v, 7);
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    assert_eq!(read_balance(&tdb.db, 1).await.unwrap(), 11);

    let ran3 = ran.clone();
    let err = r
        .managed(move |txn: &Txn| {
            let ran = ran3.clone();
            Box::pin(async move {
                txn.after_commit(move || {
                    ran.fetch_add(1, Ordering::SeqCst);
                });
                Err::<(), _>(Error::Db(sea_orm::DbErr::Custom("nope".into())))
            })
        })
        .await;
    assert!(err.is_err());
    assert_eq!(
        ran.load(Ordering::SeqCst),
        1,
        "the failed call's hook was discarded"
    );
}

/// A panic in the body rolls back, is not replayed, reaches the caller as
/// it was, and the (single-connection) pool stays usable.
#[tokio::test]
async fn panic_in_body_rolls_back() {
    for backend in Backend::ALL {
        let Some(tdb) = common::open(backend, "panic", 1).await else {
            continue;
        };
        create_accounts(&tdb.db, &[(1, 10)]).await;
        let r = ConflictResolver::new(tdb.db.clone());
        let r2 = r.clone();
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        let joined = tokio::spawn(async move {
            r2.managed(|txn: &Txn| {
                let counted = counted.clone();
                Box::pin(async move {
                    write_balance(txn, 1, 999).await?;
                    if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                        panic!("boom in the body");
                    }
                    Ok::<_, Error>(())
                })
            })
            .await
        })
        .await;
        let panic = joined.unwrap_err().into_panic();
        assert_eq!(
            panic.downcast_ref::<&str>(),
            Some(&"boom in the body"),
            "{backend:?}: the body's own panic reaches the caller"
        );
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "{backend:?}: a panic is not replayed"
        );
        // the only connection is clean: the write is gone and the row is not locked
        let v = r
            .managed(|txn: &Txn| {
                Box::pin(async move {
                    let b = read_balance(txn, 1).await?;
                    write_balance(txn, 1, b + 1).await?;
                    Ok::<_, Error>(b + 1)
                })
            })
            .await
            .unwrap();
        assert_eq!(v, 11, "{backend:?}");
    }
}

/// Dropping a managed call mid-transaction rolls it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_future_rolls_back() {
    for backend in Backend::ALL {
        let Some(tdb) = common::open(backend, "dropped", 1).await else {
            continue;
        };
        create_accounts(&tdb.db, &[(1, 10)]).await;
        let r = ConflictResolver::new(tdb.db.clone());
        let wrote = Arc::new(Notify::new());
        let wrote2 = wrote.clone();
        let r2 = r.clone();
        let task = tokio::spawn(async move {
            r2.managed(move |txn: &Txn| {
                let wrote = wrote2.clone();
                Box::pin(async move {
                    write_balance(txn, 1, 999).await?;
                    wrote.notify_one();
                    std::future::pending::<()>().await;
                    Ok::<_, Error>(())
                })
            })
            .await
        });
        wrote.notified().await;
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        let v = r
            .managed(|txn: &Txn| {
                Box::pin(async move {
                    let b = read_balance(txn, 1).await?;
                    write_balance(txn, 1, b + 1).await?;
                    Ok::<_, Error>(b + 1)
                })
            })
            .await
            .unwrap();
        assert_eq!(
            v, 11,
            "{backend:?}: the dropped call's write was rolled back"
        );
    }
}
