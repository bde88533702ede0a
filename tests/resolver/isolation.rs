//! The isolation levels a call asks for are really in effect, as the server
//! reports them (PostgreSQL, MariaDB).

use crate::common;
use common::{Backend, create_accounts, read_balance, write_balance};
use conflictkit::resolver::{CallOptions, Isolation};
use conflictkit::{ConflictResolver, Error, Txn};
use sea_orm::{ConnectionTrait, Statement};

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
