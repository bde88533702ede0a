//! `Ok` means the writes committed (DESIGN §7): a body that swallows a
//! database error cannot turn an aborted transaction into `Ok`. A swallowed
//! conflict is replayed; any other error on an engine that aborted the
//! transaction (PostgreSQL, SQLite after `SQLITE_FULL`, MariaDB after a
//! deadlock) fails the call with a typed error and leaves nothing the body
//! wrote; for managed calls and for the manual guard (`resolver.transaction()`).

use crate::common;
use common::sql::{bounded, count, exec, scalar, server};
use common::{Backend, create_accounts, read_balance, write_balance};
use conflictkit::resolver::{
    AbortedTransaction, Backoff, CallOptions, Contention, SqliteMode, Stats,
};
use conflictkit::{ConflictResolver, Error, Txn};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::sync::Barrier;

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
                aborted.label().contains("ok_means_committed.rs"),
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
