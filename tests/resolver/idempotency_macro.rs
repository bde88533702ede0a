//! Idempotency keys through `#[managed_transaction(idempotency_key = …)]`:
//! a repeat returns the stored value without running the body, a reused key
//! with other arguments (the default fingerprint) is refused, a bad key is a
//! typed error before anything runs, and a nested call with a key is refused
//! with `NestedOption` (only the outermost call's COMMIT decides).

use crate::common;
use common::Backend;
use common::sql::{count, exec, scalar, server};
use conflictkit::resolver::NestedOption;
use conflictkit::resolver::idempotency::{
    IdempotencyKeyReused, InvalidIdempotencyKey, migrate_idempotency,
};
use conflictkit::{ConflictResolver, Error, Txn, managed_transaction};
use sea_orm::DatabaseConnection;
use std::sync::atomic::{AtomicU32, Ordering};

/// How many times the bodies below ran (this module's functions only).
static RUNS: AtomicU32 = AtomicU32::new(0);

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Receipt {
    token: i64,
    cents: i64,
}

async fn setup(db: &DatabaseConnection) {
    migrate_idempotency(db).await.unwrap();
    exec(
        db,
        "CREATE TABLE payment (token BIGINT NOT NULL, cents BIGINT NOT NULL)",
    )
    .await
    .unwrap();
}

/// One payment per `request_id` (an owned `String`, used by the key and
/// then replayed into the body); the fingerprint is the arguments.
#[managed_transaction(idempotency_key = request_id, label = "tests::macro_pay")]
async fn pay(txn: &Txn, request_id: String, account: i32, cents: i64) -> Result<Receipt, Error> {
    RUNS.fetch_add(1, Ordering::SeqCst);
    let _ = account; // part of the request: of its fingerprint
    let token: i64 = rand::random::<i64>() >> 1;
    exec(
        txn,
        &format!("INSERT INTO payment VALUES ({token}, {cents})"),
    )
    .await?;
    Ok(Receipt { token, cents })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_macro_a_repeat_returns_the_stored_value_and_a_reused_key_is_refused() {
    for backend in Backend::ALL {
        let tdb = server(backend, "idem_macro", 4).await;
        setup(&tdb.db).await;
        let r = ConflictResolver::new(tdb.db.clone());
        let before = RUNS.load(Ordering::SeqCst);
        let first = pay(&r, "m-1".into(), 7, 250).await.unwrap();
        let again = pay(&r, "m-1".into(), 7, 250).await.unwrap();
        assert_eq!(first, again, "{backend:?}");
        assert_eq!(
            RUNS.load(Ordering::SeqCst) - before,
            1,
            "{backend:?}: ran once"
        );
        assert_eq!(count(&tdb.db, "payment").await, 1, "{backend:?}");
        assert_eq!(
            scalar(&tdb.db, "SELECT token FROM payment").await,
            first.token,
            "{backend:?}"
        );
        // the same key with other arguments is another request: refused
        for (account, cents) in [(7, 999), (8, 250)] {
            let err = pay(&r, "m-1".into(), account, cents).await.unwrap_err();
            let reused =
                IdempotencyKeyReused::find(&err).unwrap_or_else(|| panic!("{backend:?}: {err}"));
            assert_eq!((reused.label(), reused.key()), ("tests::macro_pay", "m-1"));
        }
        assert_eq!(RUNS.load(Ordering::SeqCst) - before, 1, "{backend:?}");
        // another key is another request
        pay(&r, "m-2".into(), 7, 250).await.unwrap();
        assert_eq!(count(&tdb.db, "payment").await, 2, "{backend:?}");
        // a bad key is a typed error, and nothing ran
        let err = pay(&r, "".into(), 7, 250).await.unwrap_err();
        assert!(
            matches!(
                InvalidIdempotencyKey::find(&err),
                Some(InvalidIdempotencyKey::Empty)
            ),
            "{backend:?}: {err}"
        );
        assert_eq!(RUNS.load(Ordering::SeqCst) - before, 2, "{backend:?}");
    }
}

/// A function that calls `pay` with its own transaction.
#[managed_transaction]
async fn pay_inside(txn: &Txn, request_id: &str) -> Result<(), Error> {
    exec(txn, "INSERT INTO payment VALUES (1, 1)").await?;
    pay(txn, request_id.to_owned(), 1, 1).await?;
    Ok(())
}

/// A call with a key inside another managed call (given its `txn`, or the
/// resolver from inside the body) is refused with `NestedOption`: nothing
/// ran, and the outer call's error rolls its writes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_macro_a_nested_call_with_a_key_is_refused() {
    for backend in Backend::ALL {
        let tdb = server(backend, "idem_macro_nested", 4).await;
        setup(&tdb.db).await;
        let r = ConflictResolver::new(tdb.db.clone());
        let err = pay_inside(&r, "n-1").await.unwrap_err();
        let refusal = NestedOption::find(&err).unwrap_or_else(|| panic!("{backend:?}: {err}"));
        assert_eq!(refusal.label(), "tests::macro_pay");
        assert!(err.to_string().contains("idempotency key"), "{err}");
        // the resolver itself, from inside a managed body
        let inner = r.clone();
        let err = r
            .managed(|_txn: &Txn| {
                let inner = inner.clone();
                Box::pin(async move { pay(&inner, "n-2".into(), 1, 1).await })
            })
            .await
            .unwrap_err();
        assert!(NestedOption::find(&err).is_some(), "{backend:?}: {err}");
        assert_eq!(count(&tdb.db, "payment").await, 0, "{backend:?}");
        assert_eq!(count(&tdb.db, "conflictkit_idempotency").await, 0);
    }
}
