//! Resolver semantics against real databases: where conflicts come from
//! (COMMIT, deadlocks, stale SQLite snapshots), isolation really in effect,
//! after-commit hooks, panics, cancellation, nesting and non-retryable calls.

use crate::common;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use common::{Backend, create_accounts, read_balance, write_balance};
use conflictkit::resolver::{
    Backoff, CallOptions, ConflictCode, Isolation, Phase, SqliteMode, Stats,
};
use conflictkit::{ConflictResolver, Error, Txn};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tokio::sync::{Barrier, Notify, oneshot};

fn codes_seen() -> (
    Arc<Mutex<Vec<ConflictCode>>>,
    impl Fn(&conflictkit::resolver::RetryEvent<'_>) + Send + Sync,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    (seen, move |e: &conflictkit::resolver::RetryEvent<'_>| {
        s.lock().unwrap().push(e.conflict.code.clone())
    })
}

/// Conflicts seen by `on_retry`, with the phase each was met in.
type Seen = Arc<Mutex<Vec<(ConflictCode, Phase)>>>;

/// Like [`codes_seen`], with the phase each conflict was met in.
fn conflicts_seen() -> (
    Seen,
    impl Fn(&conflictkit::resolver::RetryEvent<'_>) + Send + Sync,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    (seen, move |e: &conflictkit::resolver::RetryEvent<'_>| {
        s.lock().unwrap().push((e.conflict.code.clone(), e.phase))
    })
}

async fn scalar_string(txn: &Txn, sql: &str) -> String {
    let row = txn
        .query_one_raw(Statement::from_string(txn.get_database_backend(), sql))
        .await
        .expect("query")
        .expect("one row");
    row.try_get_by_index::<String>(0).expect("string column")
}

/// SERIALIZABLE is really in effect on PostgreSQL (and the other levels
/// when asked for), as the server reports it.
#[tokio::test]
async fn postgres_isolation_is_in_effect() {
    let Some(tdb) = common::open(Backend::Postgres, "isolation", 2).await else {
        return;
    };
    create_accounts(&tdb.db, &[(1, 10)]).await;
    let r = ConflictResolver::new(tdb.db.clone());
    for (opts, expected) in [
        (CallOptions::new("default"), "serializable"),
        (
            CallOptions::new("rr").isolation(Isolation::RepeatableRead),
            "repeatable read",
        ),
        (
            CallOptions::new("rc").isolation(Isolation::ReadCommitted),
            "read committed",
        ),
    ] {
        let level = r
            .run(opts, |txn: &Txn| {
                Box::pin(async move {
                    Ok::<_, Error>(scalar_string(txn, "SHOW transaction_isolation").await)
                })
            })
            .await
            .unwrap();
        assert_eq!(level, expected);
    }
    // read_only really is READ ONLY: a write fails, and is not a conflict
    let err = r
        .run(CallOptions::new("ro").read_only(true), |txn: &Txn| {
            Box::pin(async move { write_balance(txn, 1, 0).await.map_err(Error::from) })
        })
        .await
        .unwrap_err();
    assert!(!ConflictResolver::is_retryable(&err), "{err}");
    assert!(err.to_string().contains("read-only"), "{err}");
    assert_eq!(r.stats().errors, 1);
    assert_eq!(read_balance(&tdb.db, 1).await.unwrap(), 10);
}

/// MariaDB does not report the level of a running transaction reliably, so
/// check its behaviour: under SERIALIZABLE a plain read share-locks the row
/// and another connection's UPDATE times out (1205); under READ COMMITTED it
/// goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_serializable_is_in_effect() {
    let Some(tdb) = common::open(Backend::MySql, "isolation", 2).await else {
        return;
    };
    create_accounts(&tdb.db, &[(1, 10)]).await;
    let other = common::connect(&tdb.url, 1).await;
    other
        .execute_unprepared("SET SESSION innodb_lock_wait_timeout = 1")
        .await
        .unwrap();
    let r = ConflictResolver::builder(tdb.db.clone()).retries(0).build();
    for (opts, blocks) in [
        (CallOptions::new("default"), true),
        (
            CallOptions::new("rc").isolation(Isolation::ReadCommitted),
            false,
        ),
    ] {
        let other = other.clone();
        let outcome = r
            .run(opts, move |txn: &Txn| {
                let other = other.clone();
                Box::pin(async move {
                    read_balance(txn, 1).await?;
                    Ok::<_, Error>(write_balance(&other, 1, 10).await)
                })
            })
            .await
            .unwrap();
        match (blocks, outcome) {
            (true, Err(e)) => assert!(
                e.to_string().contains("1205") || ConflictResolver::is_retryable(&e),
                "{e}"
            ),
            (false, Ok(())) => {}
            (blocks, outcome) => {
                panic!("expected the other writer to block: {blocks}, got {outcome:?}")
            }
        }
    }
}

/// PostgreSQL SSI write skew: both bodies succeed, the second COMMIT fails
/// with 40001 and the call is replayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conflict_at_commit_is_retried() {
    let Some(tdb) = common::open(Backend::Postgres, "commit_conflict", 4).await else {
        return;
    };
    create_accounts(&tdb.db, &[(1, 10), (2, 10)]).await;
    let (seen, on_retry) = conflicts_seen();
    let r = ConflictResolver::builder(tdb.db.clone())
        .retries(3)
        .backoff(Backoff::none())
        .on_retry(on_retry)
        .build();
    let both_wrote = Arc::new(Barrier::new(2));
    let first_committed = Arc::new(Notify::new());
    let bodies_ok_before_retry = Arc::new(AtomicU32::new(0));

    let skew = |me: i32, other: i32, wait_for_other: bool| {
        let r = r.clone();
        let both_wrote = both_wrote.clone();
        let first_committed = first_committed.clone();
        let oks = bodies_ok_before_retry.clone();
        async move {
            r.managed(move |txn: &Txn| {
                let both_wrote = both_wrote.clone();
                let first_committed = first_committed.clone();
                let oks = oks.clone();
                Box::pin(async move {
                    // each reads both rows, writes only its own: no row lock conflict
                    let sum = read_balance(txn, me).await? + read_balance(txn, other).await?;
                    write_balance(txn, me, sum - 25).await?;
                    if txn.attempt() == 1 {
                        both_wrote.wait().await;
                        if wait_for_other {
                            first_committed.notified().await;
                        } else {
                            let n = first_committed.clone();
                            txn.after_commit(move || n.notify_one());
                        }
                        oks.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok::<_, Error>(())
                })
            })
            .await
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(skew(1, 2, false)),
        tokio::spawn(skew(2, 1, true))
    );
    a.unwrap().unwrap();
    b.unwrap().unwrap();
    assert_eq!(
        bodies_ok_before_retry.load(Ordering::SeqCst),
        2,
        "both bodies returned Ok in attempt 1"
    );
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(ConflictCode::Sqlstate("40001".into()), Phase::Commit)]
    );
    assert_eq!(
        r.stats(),
        Stats {
            success: 2,
            retries: 1,
            errors: 0,
            unresolved: 0
        }
    );
    // serial outcome: first 10+10-25 = -5 on row 1, then -5+10-25 = -20 on row 2
    assert_eq!(read_balance(&tdb.db, 1).await.unwrap(), -5);
    assert_eq!(read_balance(&tdb.db, 2).await.unwrap(), -20);
}

/// A PostgreSQL deadlock (40P01) is classified and the victim replayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_deadlock_is_retried() {
    let Some(tdb) = common::open(Backend::Postgres, "deadlock", 4).await else {
        return;
    };
    create_accounts(&tdb.db, &[(1, 0), (2, 0)]).await;
    let (seen, on_retry) = codes_seen();
    let r = ConflictResolver::builder(tdb.db.clone())
        .isolation(conflictkit::resolver::Isolation::ReadCommitted)
        .backoff(Backoff::none())
        .on_retry(on_retry)
        .build();
    let barrier = Arc::new(Barrier::new(2));
    let cross = |first: i32, second: i32| {
        let r = r.clone();
        let barrier = barrier.clone();
        async move {
            r.managed(move |txn: &Txn| {
                let barrier = barrier.clone();
                Box::pin(async move {
                    let sql = |id: i32| {
                        Statement::from_string(
                            DbBackend::Postgres,
                            format!("UPDATE accounts SET balance = balance + 1 WHERE id = {id}"),
                        )
                    };
                    txn.execute_raw(sql(first)).await?;
                    if txn.attempt() == 1 {
                        barrier.wait().await;
                    }
                    txn.execute_raw(sql(second)).await?;
                    Ok::<_, Error>(())
                })
            })
            .await
        }
    };
    let (a, b) = tokio::join!(tokio::spawn(cross(1, 2)), tokio::spawn(cross(2, 1)));
    a.unwrap().unwrap();
    b.unwrap().unwrap();
    let seen = seen.lock().unwrap().clone();
    assert!(!seen.is_empty(), "no deadlock was replayed");
    assert!(
        seen.iter()
            .all(|c| *c == ConflictCode::Sqlstate("40P01".into())),
        "{seen:?}"
    );
    assert_eq!(read_balance(&tdb.db, 1).await.unwrap(), 2);
    assert_eq!(read_balance(&tdb.db, 2).await.unwrap(), 2);
}

/// SQLite, deferred: a write after another connection committed gets
/// SQLITE_BUSY_SNAPSHOT (517), which is replayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_busy_snapshot_is_retried() {
    let Some(tdb) = common::open(Backend::Sqlite, "busy_snapshot", 4).await else {
        return;
    };
    create_accounts(&tdb.db, &[(1, 10)]).await;
    let (seen, on_retry) = conflicts_seen();
    let r = ConflictResolver::builder(tdb.db.clone())
        .sqlite_mode(SqliteMode::Deferred)
        .backoff(Backoff::none())
        .on_retry(on_retry)
        .build();
    let (read_tx, read_rx) = oneshot::channel::<()>();
    let (other_committed_tx, other_committed_rx) = oneshot::channel::<()>();
    let read_tx = Mutex::new(Some(read_tx));
    let other_committed_rx = tokio::sync::Mutex::new(Some(other_committed_rx));
    let db = tdb.db.clone();
    let other = tokio::spawn(async move {
        read_rx.await.unwrap();
        write_balance(&db, 1, 100).await.unwrap(); // autocommit write by another connection
        other_committed_tx.send(()).unwrap();
    });
    let result = r
        .managed(|txn: &Txn| {
            let read_tx = read_tx.lock().unwrap().take();
            let rx = &other_committed_rx;
            Box::pin(async move {
                let b = read_balance(txn, 1).await?; // snapshot taken
                if let Some(tx) = read_tx {
                    tx.send(()).unwrap();
                    rx.lock().await.take().unwrap().await.unwrap();
                }
                write_balance(txn, 1, b + 1).await?;
                Ok::<_, Error>(b + 1)
            })
        })
        .await
        .unwrap();
    other.await.unwrap();
    assert_eq!(result, 101);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(ConflictCode::Sqlite(517), Phase::Body)]
    );
    assert_eq!(read_balance(&tdb.db, 1).await.unwrap(), 101);
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

/// A managed call inside another joins it: one transaction, replayed as a whole.
#[tokio::test]
async fn nested_call_joins_the_outer_transaction() {
    let Some(tdb) = common::open(Backend::Postgres, "nested", 2).await else {
        return;
    };
    create_accounts(&tdb.db, &[(1, 10), (2, 0)]).await;
    let r = ConflictResolver::new(tdb.db.clone());
    let inner_attempts = Arc::new(Mutex::new(Vec::new()));
    let outcome = r
        .managed(|txn: &Txn| {
            let r = r.clone();
            let inner_attempts = inner_attempts.clone();
            Box::pin(async move {
                write_balance(txn, 1, 5).await?;
                r.managed(|inner: &Txn| {
                    inner_attempts
                        .lock()
                        .unwrap()
                        .push((inner.label().to_owned(), inner.attempt()));
                    Box::pin(async move {
                        // the outer's uncommitted write is visible: same transaction
                        let seen = read_balance(inner, 1).await?;
                        write_balance(inner, 2, seen).await?;
                        Ok::<_, Error>(())
                    })
                })
                .await?;
                Err::<(), _>(Error::Db(sea_orm::DbErr::Custom(
                    "outer fails after the inner call".into(),
                )))
            })
        })
        .await;
    assert!(outcome.is_err());
    let inner_attempts = inner_attempts.lock().unwrap().clone();
    assert_eq!(inner_attempts.len(), 1, "the inner body ran once");
    assert_eq!(inner_attempts[0].1, 1);
    // it received the outer transaction, labelled with the outer call site
    assert!(
        inner_attempts[0].0.contains("resolver_semantics.rs"),
        "{inner_attempts:?}"
    );
    assert_eq!(read_balance(&tdb.db, 1).await.unwrap(), 10);
    assert_eq!(
        read_balance(&tdb.db, 2).await.unwrap(),
        0,
        "the inner write rolled back with the outer"
    );
    assert_eq!(
        r.stats(),
        Stats {
            success: 0,
            retries: 0,
            errors: 1,
            unresolved: 0
        }
    );
}

/// Non-retryable: a conflict becomes CannotResolveDatabaseConflict at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn non_retryable_gives_up_at_first_conflict() {
    let Some(tdb) = common::open(Backend::Postgres, "non_retryable", 4).await else {
        return;
    };
    create_accounts(&tdb.db, &[(1, 10)]).await;
    let barrier = Arc::new(Barrier::new(2));
    let resolvers: Vec<_> = (0..2)
        .map(|_| ConflictResolver::new(tdb.db.clone()))
        .collect();
    let handles: Vec<_> = resolvers
        .iter()
        .cloned()
        .map(|r| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                r.run(
                    CallOptions::new("tests::once").non_retryable(),
                    move |txn: &Txn| {
                        let barrier = barrier.clone();
                        Box::pin(async move {
                            let b = read_balance(txn, 1).await?;
                            barrier.wait().await;
                            write_balance(txn, 1, b + 1).await?;
                            Ok::<_, Error>(())
                        })
                    },
                )
                .await
            })
        })
        .collect();
    let mut unresolved = 0;
    for h in handles {
        match h.await.unwrap() {
            Ok(()) => {}
            Err(Error::Unresolved(e)) => {
                unresolved += 1;
                assert_eq!(e.attempts(), 1);
                assert!(
                    e.to_string().contains("tests::once")
                        && e.to_string().contains("not retryable"),
                    "{e}"
                );
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(unresolved, 1);
    let stats: Stats = resolvers.iter().map(ConflictResolver::stats).sum();
    assert_eq!(
        stats,
        Stats {
            success: 1,
            retries: 0,
            errors: 0,
            unresolved: 1
        }
    );
    assert_eq!(read_balance(&tdb.db, 1).await.unwrap(), 11);
}

fn insert_dup(txn: &Txn) -> conflictkit::resolver::BodyFuture<'static, '_, u32, Error> {
    Box::pin(async move {
        if txn.attempt() == 1 {
            txn.execute_unprepared("INSERT INTO accounts (id, balance) VALUES (1, 0)")
                .await?;
        }
        Ok(txn.attempt())
    })
}

/// Opt-in codes and user predicates make more errors retryable.
#[tokio::test]
async fn opt_in_unique_violation_is_retried() {
    let Some(tdb) = common::open(Backend::Postgres, "unique", 2).await else {
        return;
    };
    create_accounts(&tdb.db, &[(1, 10)]).await;
    let plain = ConflictResolver::builder(tdb.db.clone())
        .backoff(Backoff::none())
        .build();
    let err = plain.managed(insert_dup).await.unwrap_err();
    assert!(matches!(err, Error::Db(_)), "{err}");
    let opted = ConflictResolver::builder(tdb.db.clone())
        .backoff(Backoff::none())
        .retry_on_sqlstate("23505")
        .build();
    assert_eq!(opted.managed(insert_dup).await.unwrap(), 2);
    assert_eq!(opted.stats().retries, 1);
}

/// Kills the sessions `ids` from a separate connection, as a server restart
/// or an idle timeout would; returns how many the server ended.
async fn kill_sessions(backend: Backend, admin_url: &str, ids: &[i64]) -> u64 {
    let admin = common::connect(admin_url, 1).await;
    let mut killed = 0;
    for id in ids {
        killed += match backend {
            Backend::Postgres => {
                let row = admin
                    .query_one_raw(Statement::from_string(
                        DbBackend::Postgres,
                        format!("SELECT pg_terminate_backend({id}, 30000)"),
                    ))
                    .await
                    .expect("terminate session")
                    .expect("a row");
                u64::from(row.try_get_by_index::<bool>(0).expect("terminated"))
            }
            Backend::MySql => {
                admin
                    .execute_unprepared(&format!("KILL {id}"))
                    .await
                    .expect("kill session");
                // KILL marks the thread and returns; the session is ended
                // once it left the process list
                bounded_poll(&format!("session {id} leaves the process list"), || {
                    let admin = admin.clone();
                    async move {
                        let row = admin
                            .query_one_raw(Statement::from_string(
                                DbBackend::MySql,
                                format!(
                                    "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID = {id}"
                                ),
                            ))
                            .await
                            .expect("process list")
                            .expect("a row");
                        row.try_get::<i64>("", "n").expect("a count") == 0
                    }
                })
                .await;
                1
            }
            Backend::Sqlite => 0,
        };
    }
    admin.close().await.ok();
    killed
}

/// Polls `done` every 5 ms until it says yes; fails the test after 60 s.
async fn bounded_poll<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let polling = async {
        while !done().await {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), polling)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within 60 s"));
}

/// How many times the resolver said it began again on another connection
/// because a pooled one was lost (its warning), in this process.
static REBEGINS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts the resolver's "beginning on another" warnings into `REBEGINS`.
/// Global: `BEGIN` runs in a task of its own, on any worker thread.
fn count_rebegins() {
    use tracing_subscriber::layer::SubscriberExt as _;

    struct Rebegins;
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Rebegins {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            struct Message(bool);
            impl tracing::field::Visit for Message {
                fn record_debug(
                    &mut self,
                    field: &tracing::field::Field,
                    value: &dyn std::fmt::Debug,
                ) {
                    if field.name() == "message" {
                        self.0 |= format!("{value:?}").contains("beginning on another");
                    }
                }
            }
            let mut message = Message(false);
            event.record(&mut message);
            if *event.metadata().level() == tracing::Level::WARN && message.0 {
                REBEGINS.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Rebegins))
            .expect("no other global subscriber in this test binary");
    });
}

/// `ConflictResolver::connect` turns sea-orm's checkout ping off; when a
/// pooled connection died on the server side, the resolver begins again on
/// another one instead of failing the call: its BEGIN on a dead connection
/// fails, and it says so (its warning is counted, so the test fails if the
/// pool dropped the dead connections by itself and BEGIN never met one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_pooled_connections_are_replaced_at_begin() {
    const WARM: usize = 4;
    count_rebegins();
    for backend in [Backend::Postgres, Backend::MySql] {
        let Some(tdb) = common::open(backend, "stale", 1).await else {
            continue;
        };
        create_accounts(&tdb.db, &[(1, 10)]).await;
        let r = ConflictResolver::connect(tdb.url.as_str()).await.unwrap();
        // WARM calls held open at once: WARM pooled connections of the
        // resolver's own, whose sessions are recorded (and only those are killed)
        let sessions = Arc::new(Mutex::new(Vec::new()));
        let all_open = Arc::new(Barrier::new(WARM));
        let warm = futures::future::join_all((0..WARM).map(|_| {
            let (r, sessions, all_open) = (r.clone(), sessions.clone(), all_open.clone());
            async move {
                let waited = Arc::new(std::sync::atomic::AtomicBool::new(false));
                r.managed(|txn: &Txn| {
                    let (sessions, all_open, waited) =
                        (sessions.clone(), all_open.clone(), waited.clone());
                    Box::pin(async move {
                        let sql = match backend {
                            Backend::Postgres => "SELECT pg_backend_pid()::bigint",
                            _ => "SELECT CAST(CONNECTION_ID() AS SIGNED)",
                        };
                        let row = txn
                            .query_one_raw(Statement::from_string(txn.get_database_backend(), sql))
                            .await?
                            .expect("a row");
                        let id: i64 = row.try_get_by_index(0)?;
                        if !waited.swap(true, Ordering::SeqCst) {
                            sessions.lock().unwrap().push(id);
                            all_open.wait().await;
                        }
                        Ok::<_, Error>(())
                    })
                })
                .await
            }
        }))
        .await;
        assert!(warm.iter().all(|w| w.is_ok()), "{backend:?}: {warm:?}");
        let mut ids = sessions.lock().unwrap().clone();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), WARM, "{backend:?}: distinct pooled sessions");
        let admin_url = common::server_url(backend).unwrap();
        let killed = kill_sessions(backend, &admin_url, &ids).await;
        assert_eq!(
            killed, WARM as u64,
            "{backend:?}: the pool's sessions killed"
        );
        // every connection in the pool is dead now
        let rebegins_before = REBEGINS.load(Ordering::SeqCst);
        for n in 11..11 + WARM as i64 {
            let v = r
                .managed(|txn: &Txn| {
                    Box::pin(async move {
                        let b = read_balance(txn, 1).await?;
                        write_balance(txn, 1, b + 1).await?;
                        Ok::<_, Error>(b + 1)
                    })
                })
                .await;
            assert_eq!(
                v.unwrap(),
                n,
                "{backend:?}: the call went through on a fresh connection"
            );
        }
        let rebegins = REBEGINS.load(Ordering::SeqCst) - rebegins_before;
        eprintln!("{backend:?}: {rebegins} BEGINs met a dead pooled connection");
        assert_eq!(
            rebegins, WARM as u64,
            "{backend:?}: each killed pooled connection is met by one BEGIN and replaced (0: the calls never took the path this test is about)"
        );
        assert_eq!(
            r.stats().retries,
            0,
            "{backend:?}: a dead connection is replaced at BEGIN, no body ran on one"
        );
    }
}
