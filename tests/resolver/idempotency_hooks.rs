//! The after-commit hooks of an idempotent run whose `COMMIT` outcome was
//! unknown: they run once when the key's lookup shows that this run
//! committed, and never when it did not (the run again registers and runs
//! its own). Faults through loopback proxies on the servers with a network
//! connection (PostgreSQL, MariaDB).

use super::idempotency::proxied_resolver;
use crate::common;
use common::Backend;
use common::proxy::Proxy;
use common::sql::{bounded, count, exec, server};
use conflictkit::resolver::CallOptions;
use conflictkit::resolver::idempotency::{IdempotencyKey, migrate_idempotency};
use conflictkit::{ConflictResolver, Error, Txn};
use sea_orm::DatabaseConnection;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

async fn setup(db: &DatabaseConnection) {
    migrate_idempotency(db).await.unwrap();
    exec(db, "CREATE TABLE payment (run BIGINT NOT NULL)")
        .await
        .unwrap();
}

/// An idempotent call whose body counts its runs and registers a hook that
/// records the run it belongs to.
async fn pay(
    r: &ConflictResolver,
    key: &str,
    runs: &Arc<AtomicU32>,
    hooks: &Arc<std::sync::Mutex<Vec<u32>>>,
) -> Result<u32, Error> {
    let key = IdempotencyKey::new(key).unwrap();
    r.run_idempotent(
        CallOptions::new("tests::hooked_pay").idempotency_key(key),
        |txn: &Txn| {
            let (runs, hooks) = (runs.clone(), hooks.clone());
            Box::pin(async move {
                let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
                exec(txn, &format!("INSERT INTO payment VALUES ({run})")).await?;
                txn.after_commit(move || hooks.lock().unwrap().push(run));
                Ok::<_, Error>(run)
            })
        },
    )
    .await
}

/// COMMIT reaches the server and commits, its reply is lost: the lookup
/// finds this run's claim, and its hook runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_of_an_ambiguous_commit_found_committed_run_once() {
    for backend in [Backend::Postgres, Backend::MySql] {
        let tdb = server(backend, "idem_hooks_committed", 2).await;
        setup(&tdb.db).await;
        let (proxy, url) = Proxy::for_url(&tdb.url).await;
        let r = proxied_resolver(&url).await;
        let (runs, hooks) = (Arc::default(), Arc::default());
        proxy.cut_after(b"COMMIT");
        let run = bounded("idempotent call", pay(&r, "h-1", &runs, &hooks))
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        proxy.cuts(1).await;
        assert_eq!(run, 1, "{backend:?}");
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{backend:?}: not run again");
        assert_eq!(
            *hooks.lock().unwrap(),
            [1],
            "{backend:?}: the hook ran once"
        );
        // a repeat is answered from the stored value: no hook again
        assert_eq!(pay(&r, "h-1", &runs, &hooks).await.unwrap(), 1);
        assert_eq!(*hooks.lock().unwrap(), [1], "{backend:?}");
        assert_eq!(count(&tdb.db, "payment").await, 1, "{backend:?}");
    }
}

/// COMMIT never reaches the server: the lookup finds no key, the lost
/// run's hook never runs, and the run again's hook runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_of_an_ambiguous_commit_found_not_committed_never_run() {
    for backend in [Backend::Postgres, Backend::MySql] {
        let tdb = server(backend, "idem_hooks_lost", 2).await;
        setup(&tdb.db).await;
        let (proxy, url) = Proxy::for_url(&tdb.url).await;
        let r = proxied_resolver(&url).await;
        let (runs, hooks) = (Arc::default(), Arc::default());
        proxy.swallow(b"COMMIT", false);
        let run = bounded("idempotent call", pay(&r, "h-2", &runs, &hooks))
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        bounded("the COMMIT was swallowed", proxy.swallowed(1)).await;
        assert_eq!(run, 2, "{backend:?}: the lost run, then one");
        assert_eq!(
            *hooks.lock().unwrap(),
            [2],
            "{backend:?}: only the committed run's hook"
        );
        assert_eq!(count(&tdb.db, "payment").await, 1, "{backend:?}");
    }
}
