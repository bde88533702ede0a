//! Nested calls (DESIGN §7): a managed call inside another joins the outer
//! transaction as a savepoint (the outer call replays both); a call through
//! another resolver on the same database, or a second transaction on it from
//! one task, is refused at once instead of waiting on its own locks. What a
//! savepoint takes back when a nested call fails (writes, hooks, a statement
//! error) is pinned through `#[managed_transaction]` functions, in
//! `managed_transaction.rs` ("nested calls as savepoints").

use crate::common;
use common::sql::{bounded, server};
use common::{Backend, create_accounts, read_balance, write_balance};
use conflictkit::resolver::{CallOptions, NestedTransaction, Stats};
use conflictkit::{ConflictResolver, Error, Txn};
use std::sync::{Arc, Mutex};

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
        inner_attempts[0].0.contains("nesting.rs"),
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
