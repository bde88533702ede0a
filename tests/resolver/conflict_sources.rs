//! Where conflicts come from, each one replayed: a serialization failure at
//! COMMIT, a deadlock on PostgreSQL, a stale SQLite snapshot, an opt-in
//! unique violation; a non-retryable call gives up at its first conflict.

use crate::common;
use common::{Backend, create_accounts, read_balance, write_balance};
use conflictkit::resolver::{Backoff, CallOptions, ConflictCode, Phase, SqliteMode, Stats};
use conflictkit::{ConflictResolver, Error, Txn};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Barrier, Notify, oneshot};

/// Conflicts seen by `on_retry`, with the phase each was met in.
type Seen = Arc<Mutex<Vec<(ConflictCode, Phase)>>>;

fn insert_dup(txn: &Txn) -> conflictkit::resolver::BodyFuture<'static, '_, u32, Error> {
    Box::pin(async move {
        if txn.attempt() == 1 {
            txn.execute_unprepared("INSERT INTO accounts (id, balance) VALUES (1, 0)")
                .await?;
        }
        Ok(txn.attempt())
    })
}

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
