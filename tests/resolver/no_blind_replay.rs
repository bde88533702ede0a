//! Nothing is replayed blindly (DESIGN §7): a COMMIT whose outcome is
//! unknown is a typed ambiguous-commit error, never replayed (managed calls
//! and the manual guard); a give-up is not a conflict; errors that are no
//! conflict (a protocol error, a wrong bind count on MySQL) fail the call
//! instead of being replayed or hanging it.

use crate::common;
use common::proxy::Proxy;
use common::sql::{bounded, exec, scalar, server};
use common::{Backend, create_accounts, read_balance, write_balance};
use conflictkit::resolver::{AmbiguousCommit, Backoff, CallOptions, Contention, Stats};
use conflictkit::{CannotResolveDatabaseConflict, ConflictResolver, Error, Txn};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::Barrier;

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Unresolved(#[from] CannotResolveDatabaseConflict),
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
