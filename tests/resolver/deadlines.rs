//! Every wait is bounded by the call's deadline (DESIGN §7): a budget that
//! runs out before COMMIT rolls back and returns `DeadlineExceeded` (nothing
//! committed); one that runs out while COMMIT is under way reports the
//! outcome as unknown, and the hooks follow the data. The budget is pushed
//! to the server, which stops waiting too, and nothing of it stays on a
//! pooled connection.

use crate::common;
use common::sql::{bounded, count, exec, scalar, server};
use common::{Backend, create_accounts};
use conflictkit::resolver::{
    AmbiguousCommit, Backoff, CallOptions, Contention, DeadlineExceeded, InjectConflicts, Phase,
    SqliteMode,
};
use conflictkit::{ConflictResolver, Error, Txn};
use sea_orm::DatabaseConnection;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// The `DeadlineExceeded` of a failed call, or a panic saying what it was.
fn exceeded<T: std::fmt::Debug>(result: &Result<T, Error>) -> &DeadlineExceeded {
    match result {
        Err(e) => DeadlineExceeded::find(e)
            .unwrap_or_else(|| panic!("expected DeadlineExceeded, got {e:?}")),
        Ok(v) => panic!("expected DeadlineExceeded, got Ok({v:?})"),
    }
}

/// The lock-wait settings of `db`'s session (its pool's one connection):
/// what a budget pushed to the server would leak to.
async fn session_settings(db: &DatabaseConnection, backend: Backend) -> Vec<i64> {
    let sql: &[&str] = match backend {
        Backend::Postgres => {
            &["SELECT setting::bigint FROM pg_settings WHERE name = 'lock_timeout'"]
        }
        _ => &[
            "SELECT CAST(@@SESSION.innodb_lock_wait_timeout AS SIGNED)",
            "SELECT CAST(@@SESSION.max_statement_time * 1000 AS SIGNED)",
        ],
    };
    let mut values = Vec::new();
    for q in sql {
        values.push(scalar(db, q).await);
    }
    values
}

/// Sessions of the server waiting for a row lock, in the test's database.
async fn lock_waiters(admin: &DatabaseConnection, backend: Backend, database: &str) -> i64 {
    let sql = match backend {
        Backend::Postgres => format!(
            "SELECT COUNT(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE NOT l.granted AND a.datname = '{database}'"
        ),
        _ => "SELECT COUNT(*) FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT'"
            .to_owned(),
    };
    scalar(admin, &sql).await
}

/// A call queued behind four runs of its label (the gate's first limit)
/// runs out of time in the queue: it fails with `DeadlineExceeded` in
/// admission, and its body never ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deadline_in_the_queue_ends_the_call_before_its_body_runs() {
    let tdb = server(Backend::Postgres, "deadline_queue", 8).await;
    let r = ConflictResolver::new(tdb.db.clone());
    let release = Arc::new(Notify::new());
    let (running_tx, mut running_rx) = mpsc::unbounded_channel();
    let holders: Vec<_> = (0..4)
        .map(|_| {
            let (r, release, running_tx) = (r.clone(), release.clone(), running_tx.clone());
            tokio::spawn(async move {
                r.run(CallOptions::new("deadline::queue"), |_txn: &Txn| {
                    let (release, running_tx) = (release.clone(), running_tx.clone());
                    Box::pin(async move {
                        let released = release.notified();
                        running_tx.send(()).unwrap();
                        released.await;
                        Ok::<_, Error>(())
                    })
                })
                .await
            })
        })
        .collect();
    for _ in 0..4 {
        bounded("four runs in flight", running_rx.recv()).await;
    }
    let ran = AtomicU32::new(0);
    let opts = CallOptions::new("deadline::queue")
        .timeout(Duration::from_millis(300))
        .unwrap();
    let late = r
        .run(opts, |_txn: &Txn| {
            ran.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok::<_, Error>(()) })
        })
        .await;
    let e = exceeded(&late);
    assert_eq!(e.phase(), Phase::Admission, "{e}");
    assert_eq!(e.attempts(), 0);
    assert_eq!(ran.load(Ordering::SeqCst), 0, "the body never ran");
    assert!(e.to_string().contains("nothing committed"), "{e}");
    release.notify_waiters();
    for h in holders {
        h.await.unwrap().unwrap();
    }
}

/// Another process (a resolver with pools and leases of its own) holds the
/// lock across processes of a hot (label, key) inside its body (a new
/// PostgreSQL gate is hot from its first run): this process's call, with a
/// budget shorter than the lease's own longest wait (5 s), is seen waiting
/// for the lock on the server and runs out of time there (`Admission`, no
/// run). Its request, in flight on the lock session, cannot be withdrawn:
/// once the holder commits, it is granted and given back (nobody wants the
/// lease any more), a later call of this process takes the lease and
/// commits, and no advisory lock is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deadline_in_the_lease_wait_ends_the_call_before_its_body_runs() {
    let tdb = server(Backend::Postgres, "deadline_lease", 2).await;
    let holder = ConflictResolver::new(common::connect(&tdb.url, 4).await);
    let waiter = ConflictResolver::new(common::connect(&tdb.url, 4).await);
    let label = "deadline::lease";
    let (entered_tx, entered) = tokio::sync::oneshot::channel::<()>();
    let release = Arc::new(Notify::new());
    let held = {
        let (release, mut entered_tx) = (release.clone(), Some(entered_tx));
        tokio::spawn(async move {
            holder
                .run(CallOptions::new(label).key(&1_i32), |_txn: &Txn| {
                    let (release, entered_tx) = (release.clone(), entered_tx.take());
                    Box::pin(async move {
                        let released = release.notified();
                        if let Some(entered) = entered_tx {
                            let _ = entered.send(());
                        }
                        released.await;
                        Ok::<_, Error>(())
                    })
                })
                .await
        })
    };
    bounded("the holder inside its body", entered)
        .await
        .unwrap();
    let ran = Arc::new(AtomicU32::new(0));
    let late = {
        let (waiter, ran) = (waiter.clone(), ran.clone());
        tokio::spawn(async move {
            let opts = CallOptions::new(label)
                .key(&1_i32)
                .timeout(Duration::from_secs(3))
                .unwrap();
            waiter
                .run(opts, |_txn: &Txn| {
                    ran.fetch_add(1, Ordering::SeqCst);
                    Box::pin(async { Ok::<_, Error>(()) })
                })
                .await
        })
    };
    let waiting = "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
                   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";
    bounded("the call waiting for the lock on the server", async {
        while scalar(&tdb.db, waiting).await == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let late = bounded("the waiting call", late).await.unwrap();
    let e = exceeded(&late);
    assert_eq!(e.phase(), Phase::Admission, "{e}");
    assert_eq!(e.attempts(), 0);
    assert_eq!(ran.load(Ordering::SeqCst), 0, "the body never ran");
    release.notify_waiters();
    bounded("the holder", held).await.unwrap().unwrap();
    bounded(
        "a later call of the waiting process",
        waiter.run(CallOptions::new(label).key(&1_i32), |_txn: &Txn| {
            Box::pin(async { Ok::<_, Error>(()) })
        }),
    )
    .await
    .unwrap();
    // the request the late call left on the lock session was granted once
    // the holder left, and given back as nobody wanted it any more
    let any = "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' \
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";
    bounded("no advisory lock left", async {
        while scalar(&tdb.db, any).await != 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// A row lock held by another transaction: the budget pushed to the server
/// ends the lock wait there (PostgreSQL `lock_timeout`, MariaDB
/// `max_statement_time`; their defaults wait forever and 50 s), the call
/// fails with `DeadlineExceeded`, and the session settings the call pushed
/// are gone from the pooled connection afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lock_wait_ends_on_the_server_and_leaves_no_setting_behind() {
    for backend in [Backend::Postgres, Backend::MySql] {
        let tdb = server(backend, "deadline_lock_wait", 1).await;
        let database = common::sql::database_name(&tdb.url);
        create_accounts(&tdb.db, &[(1, 100)]).await;
        // the pool's one connection: what a setting would leak to
        let before = session_settings(&tdb.db, backend).await;
        // the lock holder: a transaction of its own on another session
        let holder = common::connect(&tdb.url, 1).await;
        let admin = common::connect(&tdb.url, 1).await;
        let held = sea_orm::TransactionTrait::begin(&holder).await.unwrap();
        exec(&held, "UPDATE accounts SET balance = 0 WHERE id = 1")
            .await
            .unwrap();
        let r = ConflictResolver::builder(tdb.db.clone())
            .contention(Contention::Off)
            .timeout(Duration::from_millis(1500))
            .unwrap()
            .build();
        let result = r
            .managed(|txn: &Txn| {
                Box::pin(async move {
                    exec(
                        txn,
                        "UPDATE accounts SET balance = balance + 1 WHERE id = 1",
                    )
                    .await?;
                    Ok::<_, Error>(())
                })
            })
            .await;
        let e = exceeded(&result);
        assert_eq!(e.phase(), Phase::Body, "{backend:?}: {e}");
        assert_eq!(
            e.attempts(),
            1,
            "{backend:?}: a lock wait timeout is not replayed"
        );
        // the server stopped waiting, while the holder still holds the lock
        bounded("the server ends the lock wait", async {
            while lock_waiters(&admin, backend, &database).await > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        let after = session_settings(&tdb.db, backend).await;
        assert_eq!(
            after, before,
            "{backend:?}: the pooled connection keeps its own settings"
        );
        if backend == Backend::MySql {
            assert_eq!(
                scalar(
                    &tdb.db,
                    "SELECT COUNT(*) FROM (SELECT @conflictkit_lwt AS v) s WHERE v IS NOT NULL"
                )
                .await,
                0,
                "no user variable is left behind"
            );
        }
        held.rollback().await.unwrap();
        assert_eq!(
            scalar(&tdb.db, "SELECT balance FROM accounts WHERE id = 1").await,
            100,
            "{backend:?}: nothing committed"
        );
    }
}

/// SQLite: a deferred transaction's first write waits in the busy handler
/// for another connection's write lock. The budget pushed to the connection
/// (`PRAGMA busy_timeout`) ends that wait, not sqlx's 5 s default: the call
/// fails with `DeadlineExceeded` raised by the server (`SQLITE_BUSY`), and
/// the connection's busy timeout is put back afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sqlite_busy_wait_ends_at_the_budget_and_the_busy_timeout_is_put_back() {
    let tdb = server(Backend::Sqlite, "deadline_busy", 1).await;
    create_accounts(&tdb.db, &[(1, 100)]).await;
    let before = scalar(&tdb.db, "PRAGMA busy_timeout").await;
    assert!(
        before >= 2000,
        "the connection waits longer than the budget: {before}"
    );
    // another connection (outside the resolver's writer queue) holds the
    // write lock
    let holder = common::connect(&tdb.url, 1).await;
    let held = sea_orm::TransactionTrait::begin(&holder).await.unwrap();
    exec(&held, "UPDATE accounts SET balance = 0 WHERE id = 1")
        .await
        .unwrap();
    let r = ConflictResolver::builder(tdb.db.clone())
        .contention(Contention::Off)
        .build();
    let options = CallOptions::new("tests::deadline_busy")
        .sqlite_mode(SqliteMode::Deferred)
        .timeout(Duration::from_millis(600))
        .unwrap();
    let result = r
        .run(options, |txn: &Txn| {
            Box::pin(async move {
                exec(
                    txn,
                    "UPDATE accounts SET balance = balance + 1 WHERE id = 1",
                )
                .await?;
                Ok::<_, Error>(())
            })
        })
        .await;
    let e = exceeded(&result);
    assert_eq!(e.phase(), Phase::Body, "{e}");
    assert!(e.by_server(), "SQLite's busy handler ended the wait: {e}");
    assert_eq!(
        scalar(&tdb.db, "PRAGMA busy_timeout").await,
        before,
        "the connection keeps its own busy timeout"
    );
    held.rollback().await.unwrap();
    assert_eq!(
        scalar(&tdb.db, "SELECT balance FROM accounts WHERE id = 1").await,
        100
    );
}

/// A body slower than the budget: rolled back at the deadline, nothing it
/// wrote commits, its hook never runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_body_is_rolled_back_at_the_deadline() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let tdb = server(backend, "deadline_slow_body", 2).await;
        exec(&tdb.db, "CREATE TABLE item (id INTEGER PRIMARY KEY)")
            .await
            .unwrap();
        let r = ConflictResolver::new(tdb.db.clone());
        let never = Notify::new();
        let hooked = Arc::new(AtomicU32::new(0));
        let opts = CallOptions::new("deadline::slow_body")
            .timeout(Duration::from_millis(400))
            .unwrap();
        let result = r
            .run(opts, |txn: &Txn| {
                let (never, hooked) = (&never, hooked.clone());
                Box::pin(async move {
                    exec(txn, "INSERT INTO item VALUES (1)").await?;
                    txn.after_commit(move || {
                        hooked.fetch_add(1, Ordering::SeqCst);
                    });
                    never.notified().await;
                    Ok::<_, Error>(())
                })
            })
            .await;
        let e = exceeded(&result);
        assert_eq!(e.phase(), Phase::Body, "{backend:?}: {e}");
        assert!(Error::is_deadline_exceeded(result.as_ref().unwrap_err()));
        // the rollback runs in a task of its own; the next write waits for it
        r.managed(|txn: &Txn| {
            Box::pin(async move {
                exec(txn, "INSERT INTO item VALUES (2)").await?;
                Ok::<_, Error>(())
            })
        })
        .await
        .unwrap();
        assert_eq!(
            count(&tdb.db, "item").await,
            1,
            "{backend:?}: only the second write"
        );
        assert_eq!(hooked.load(Ordering::SeqCst), 0, "{backend:?}: no hook ran");
    }
}

/// A COMMIT that gives no answer by the deadline and its grace (a deferred
/// trigger waits for a lock the test holds, and outlasts the server-side
/// timeout by catching it): the outcome is reported as unknown, and once
/// the COMMIT goes through, the row is there and the hook runs, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_commit_is_reported_unknown_and_its_hook_follows_the_data() {
    const KEY: i64 = 0x636b_0030;
    let tdb = server(Backend::Postgres, "deadline_slow_commit", 4).await;
    exec(&tdb.db, "CREATE TABLE item (id INTEGER PRIMARY KEY)")
        .await
        .unwrap();
    exec(
        &tdb.db,
        &format!(
            "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               BEGIN PERFORM pg_advisory_xact_lock({KEY}); \
               EXCEPTION WHEN lock_not_available OR query_canceled THEN \
                 PERFORM set_config('lock_timeout', '0', true); \
                 PERFORM pg_advisory_xact_lock({KEY}); \
               END; RETURN NULL; END $$"
        ),
    )
    .await
    .unwrap();
    exec(
        &tdb.db,
        "CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON item \
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()",
    )
    .await
    .unwrap();
    let holder = common::connect(&tdb.url, 1).await;
    exec(&holder, &format!("SELECT pg_advisory_lock({KEY})"))
        .await
        .unwrap();
    let r = ConflictResolver::builder(tdb.db.clone())
        .contention(Contention::Off)
        .build();
    let (hook_tx, mut hook_rx) = mpsc::unbounded_channel();
    let opts = CallOptions::new("deadline::slow_commit")
        .timeout(Duration::from_millis(800))
        .unwrap();
    let result = r
        .run(opts, |txn: &Txn| {
            let hook_tx = hook_tx.clone();
            Box::pin(async move {
                exec(txn, "INSERT INTO item VALUES (1)").await?;
                txn.after_commit(move || hook_tx.send(1).unwrap());
                Ok::<_, Error>(())
            })
        })
        .await;
    drop(hook_tx);
    let err = result.expect_err("COMMIT cannot answer while the lock is held");
    assert!(err.is_ambiguous_commit(), "unknown outcome: {err:?}");
    assert!(
        !err.is_deadline_exceeded(),
        "not a definite 'nothing committed': {err}"
    );
    assert!(AmbiguousCommit::find(&err).is_some());
    assert_eq!(count(&tdb.db, "item").await, 0, "not committed yet");
    assert!(hook_rx.try_recv().is_err(), "no hook before the commit");
    exec(&holder, &format!("SELECT pg_advisory_unlock({KEY})"))
        .await
        .unwrap();
    assert_eq!(bounded("the hook runs", hook_rx.recv()).await, Some(1));
    assert_eq!(bounded("once", hook_rx.recv()).await, None);
    assert_eq!(count(&tdb.db, "item").await, 1, "the data committed");
}

/// A run that took most of the budget and conflicted is not replayed: the
/// replay could not finish in time. The body ran once.
#[tokio::test]
async fn no_replay_starts_that_cannot_finish_in_time() {
    let tdb = server(Backend::Sqlite, "deadline_no_replay", 2).await;
    let r = ConflictResolver::builder(tdb.db.clone())
        .inject_conflicts(InjectConflicts::rate(1.0))
        .backoff(Backoff::none())
        .retries(5)
        .build();
    let runs = AtomicU32::new(0);
    let opts = CallOptions::new("deadline::no_replay")
        .timeout(Duration::from_millis(900))
        .unwrap();
    let result = r
        .run(opts, |_txn: &Txn| {
            runs.fetch_add(1, Ordering::SeqCst);
            Box::pin(async {
                // a run of 500 ms: a replay cannot fit in the 400 ms left
                tokio::time::sleep(Duration::from_millis(500)).await;
                Ok::<_, Error>(())
            })
        })
        .await;
    let e = exceeded(&result);
    assert_eq!(e.phase(), Phase::Backoff, "{e}");
    assert_eq!(e.attempts(), 1);
    assert_eq!(runs.load(Ordering::SeqCst), 1, "no replay started");
    assert!(
        std::error::Error::source(e).is_some(),
        "the conflict that was not replayed is kept"
    );
    assert!(
        !ConflictResolver::is_retryable(result.as_ref().unwrap_err()),
        "a deadline is never a conflict"
    );
}

/// Budgets a call or a resolver cannot take are typed errors that say what
/// to do.
#[tokio::test]
async fn zero_and_huge_budgets_are_refused() {
    let err = CallOptions::new("x").timeout(Duration::ZERO).unwrap_err();
    assert!(err.to_string().contains("positive"), "{err}");
    let err = CallOptions::new("x")
        .timeout(Duration::from_secs(24 * 3600))
        .unwrap_err();
    assert!(err.to_string().contains("maximum"), "{err}");
    let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
    assert!(
        ConflictResolver::builder(db)
            .timeout(Duration::ZERO)
            .is_err()
    );
}

/// `#[managed_transaction(timeout = "...")]` gives the call that budget: a
/// body that waits for a signal that never comes ends at the deadline with
/// `DeadlineExceeded` naming the budget, its write rolled back.
#[conflictkit::managed_transaction(timeout = "300ms", label = "deadline::macro")]
async fn wait_forever_after_a_write(txn: &Txn, never: &Notify) -> Result<(), Error> {
    exec(txn, "INSERT INTO item VALUES (1)").await?;
    never.notified().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_macro_timeout_bounds_the_call() {
    let tdb = server(Backend::Sqlite, "deadline_macro", 2).await;
    exec(&tdb.db, "CREATE TABLE item (id INTEGER PRIMARY KEY)")
        .await
        .unwrap();
    let r = ConflictResolver::new(tdb.db.clone());
    let never = Notify::new();
    let result = bounded("macro timeout", wait_forever_after_a_write(&r, &never)).await;
    let e = exceeded(&result);
    assert_eq!(e.label(), "deadline::macro");
    assert_eq!(e.budget(), Duration::from_millis(300), "{e}");
    assert_eq!(e.phase(), Phase::Body, "{e}");
    // the rollback runs in a task of its own; a managed read waits for the slot
    let rows = r
        .managed(|txn: &Txn| Box::pin(async move { Ok::<_, Error>(count(txn, "item").await) }))
        .await
        .unwrap();
    assert_eq!(rows, 0, "the write was rolled back");
}
