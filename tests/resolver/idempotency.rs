//! Idempotency keys (DESIGN §7: an unknown COMMIT outcome is answered for
//! sure when the call carries a key): a repeated request returns the stored
//! outcome and applies nothing again, concurrent repeats run the body once,
//! a reused key is refused, and a COMMIT whose reply was lost resolves
//! itself (through a loopback proxy that cuts the connection after or
//! instead of forwarding COMMIT).

use crate::common;
use common::Backend;
use common::proxy::Proxy;
use common::sql::{bounded, count, exec, scalar, server};
use conflictkit::resolver::idempotency::{
    IdempotencyKey, IdempotencyKeyReused, InvalidIdempotencyKey, StoredOutcomeUnreadable,
    migrate_idempotency, purge_idempotency,
};
use conflictkit::resolver::{Backoff, CallOptions, Contention};
use conflictkit::{CannotResolveDatabaseConflict, ConflictResolver, Error, Txn};
use sea_orm::{DatabaseConnection, DbErr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::Barrier;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Receipt {
    token: i64,
    cents: i64,
}

/// A table `payment` and the idempotency table.
async fn setup(db: &DatabaseConnection) {
    migrate_idempotency(db).await.unwrap();
    exec(
        db,
        "CREATE TABLE payment (token BIGINT NOT NULL, cents BIGINT NOT NULL)",
    )
    .await
    .unwrap();
}

/// One idempotent payment of `cents` under `key`: the body counts its runs
/// in `runs`, writes a row with a random token and returns it.
async fn pay(
    r: &ConflictResolver,
    key: &str,
    cents: i64,
    runs: &AtomicU32,
) -> Result<Receipt, Error> {
    let key = IdempotencyKey::new(key)
        .unwrap()
        .fingerprint(&cents)
        .unwrap();
    r.run_idempotent(
        CallOptions::new("tests::pay").idempotency_key(key),
        |txn: &Txn| {
            Box::pin(async move {
                runs.fetch_add(1, Ordering::SeqCst);
                let token: i64 = rand::random::<i64>() >> 1;
                exec(
                    txn,
                    &format!("INSERT INTO payment VALUES ({token}, {cents})"),
                )
                .await?;
                Ok::<_, Error>(Receipt { token, cents })
            })
        },
    )
    .await
}

async fn the_token(db: &DatabaseConnection) -> i64 {
    scalar(db, "SELECT token FROM payment").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_after_commit_returns_the_stored_value_and_the_body_ran_once() {
    for backend in Backend::ALL {
        let tdb = server(backend, "idem_repeat", 4).await;
        setup(&tdb.db).await;
        let r = ConflictResolver::new(tdb.db.clone());
        let runs = AtomicU32::new(0);
        let first = pay(&r, "req-1", 250, &runs).await.unwrap();
        let again = pay(&r, "req-1", 250, &runs).await.unwrap();
        assert_eq!(first, again, "{backend:?}");
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{backend:?}");
        assert_eq!(count(&tdb.db, "payment").await, 1, "{backend:?}");
        assert_eq!(the_token(&tdb.db).await, first.token, "{backend:?}");
        // the repeat began no transaction: one managed call succeeded
        assert_eq!(r.stats().success, 1, "{backend:?}");
        // another key is another request
        pay(&r, "req-2", 250, &runs).await.unwrap();
        assert_eq!(count(&tdb.db, "payment").await, 2, "{backend:?}");
        // purge keeps recent keys, drops all with a zero retention
        assert_eq!(
            purge_idempotency(&tdb.db, Duration::from_secs(3600))
                .await
                .unwrap(),
            0
        );
        bounded("a millisecond passes", async {
            while purge_idempotency(&tdb.db, Duration::ZERO).await.unwrap() == 0 {
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert_eq!(
            count(&tdb.db, "conflictkit_idempotency").await,
            0,
            "{backend:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_repeats_run_the_body_once_and_get_one_value() {
    const CALLERS: usize = 16;
    for backend in Backend::ALL {
        let tdb = server(backend, "idem_concurrent", 20).await;
        setup(&tdb.db).await;
        let r = ConflictResolver::builder(tdb.db.clone()).retries(5).build();
        let runs = Arc::new(AtomicU32::new(0));
        let barrier = Arc::new(Barrier::new(CALLERS));
        let calls: Vec<_> = (0..CALLERS)
            .map(|_| {
                let (r, runs, barrier) = (r.clone(), runs.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    pay(&r, "same-key", 500, &runs).await
                })
            })
            .collect();
        let mut receipts = Vec::new();
        for c in calls {
            receipts.push(bounded("repeat", c).await.unwrap().unwrap());
        }
        assert!(
            receipts.iter().all(|x| *x == receipts[0]),
            "{backend:?}: {receipts:?}"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{backend:?}");
        assert_eq!(count(&tdb.db, "payment").await, 1, "{backend:?}");
        assert_eq!(the_token(&tdb.db).await, receipts[0].token, "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_key_with_another_fingerprint_is_refused() {
    for backend in Backend::ALL {
        let tdb = server(backend, "idem_reused", 4).await;
        setup(&tdb.db).await;
        let r = ConflictResolver::new(tdb.db.clone());
        let runs = AtomicU32::new(0);
        pay(&r, "req-1", 250, &runs).await.unwrap();
        let err = pay(&r, "req-1", 999, &runs).await.unwrap_err();
        let reused =
            IdempotencyKeyReused::find(&err).unwrap_or_else(|| panic!("{backend:?}: {err}"));
        assert_eq!((reused.label(), reused.key()), ("tests::pay", "req-1"));
        assert!(
            err.to_string().contains("already used for another request"),
            "{err}"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{backend:?}");
        assert_eq!(count(&tdb.db, "payment").await, 1, "{backend:?}");
    }
}

#[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
enum PayError {
    #[error("card refused")]
    Refused,
    #[error(transparent)]
    #[serde(skip)]
    Db(#[from] DbErr),
    #[error(transparent)]
    #[serde(skip)]
    Conflict(#[from] CannotResolveDatabaseConflict),
}

/// A body that writes a row, then refuses (while `refuse` holds).
async fn refusing_pay(
    r: &ConflictResolver,
    key: &str,
    refuse: bool,
    store_errors: bool,
    runs: &AtomicU32,
) -> Result<i64, PayError> {
    let key = IdempotencyKey::new(key).unwrap();
    let opts = CallOptions::new("tests::refusing_pay");
    // the same closure for both entry points (each infers its signature)
    macro_rules! body {
        () => {
            |txn: &Txn| {
                Box::pin(async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    exec(txn, "INSERT INTO payment VALUES (1, 100)").await?;
                    if refuse {
                        return Err(PayError::Refused);
                    }
                    Ok(100_i64)
                })
            }
        };
    }
    if store_errors {
        r.run_idempotent_storing_errors(opts.idempotency_key(key), body!())
            .await
    } else {
        r.run_idempotent(opts.idempotency_key(key), body!()).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_of_a_rolled_back_call_can_be_used_again() {
    for backend in Backend::ALL {
        let tdb = server(backend, "idem_rolled_back", 4).await;
        setup(&tdb.db).await;
        let r = ConflictResolver::new(tdb.db.clone());
        let runs = AtomicU32::new(0);
        let err = refusing_pay(&r, "k", true, false, &runs).await.unwrap_err();
        assert!(matches!(err, PayError::Refused), "{backend:?}: {err}");
        assert_eq!(
            count(&tdb.db, "conflictkit_idempotency").await,
            0,
            "{backend:?}"
        );
        assert_eq!(count(&tdb.db, "payment").await, 0, "{backend:?}");
        assert_eq!(
            refusing_pay(&r, "k", false, false, &runs).await.unwrap(),
            100
        );
        assert_eq!(
            refusing_pay(&r, "k", false, false, &runs).await.unwrap(),
            100
        );
        assert_eq!(runs.load(Ordering::SeqCst), 2, "{backend:?}");
        assert_eq!(count(&tdb.db, "payment").await, 1, "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_error_is_answered_again_and_its_writes_are_undone() {
    for backend in Backend::ALL {
        let tdb = server(backend, "idem_stored_err", 4).await;
        setup(&tdb.db).await;
        let r = ConflictResolver::new(tdb.db.clone());
        let runs = AtomicU32::new(0);
        for _ in 0..2 {
            let err = refusing_pay(&r, "k", true, true, &runs).await.unwrap_err();
            assert!(matches!(err, PayError::Refused), "{backend:?}: {err}");
        }
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "{backend:?}: the refusal was stored"
        );
        assert_eq!(
            count(&tdb.db, "payment").await,
            0,
            "{backend:?}: its write undone"
        );
        assert_eq!(
            count(&tdb.db, "conflictkit_idempotency").await,
            1,
            "{backend:?}"
        );
        // a call that reads no stored errors says so, and does not run
        let err = refusing_pay(&r, "k", false, false, &runs)
            .await
            .unwrap_err();
        assert!(
            StoredOutcomeUnreadable::find(&err).is_some(),
            "{backend:?}: {err}"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_and_unreadable_outcomes_are_typed_errors() {
    assert!(matches!(
        IdempotencyKey::new(""),
        Err(InvalidIdempotencyKey::Empty)
    ));
    let long = IdempotencyKey::new("k".repeat(256)).unwrap_err();
    assert!(matches!(
        long,
        InvalidIdempotencyKey::TooLong {
            chars: 256,
            max: 255,
            ..
        }
    ));
    assert!(
        IdempotencyKey::new("é".repeat(255)).is_ok(),
        "characters, not bytes"
    );
    for backend in Backend::ALL {
        let tdb = server(backend, "idem_bad_input", 4).await;
        setup(&tdb.db).await;
        let r = ConflictResolver::new(tdb.db.clone());
        let runs = AtomicU32::new(0);
        // what the macro expands to: a bad key is the call's error, nothing ran
        let err = conflictkit::__private::run_idempotent_call(
            &r,
            CallOptions::new("tests::pay"),
            conflictkit::__private::idempotency_key("", &(1,)),
            |_txn: &Txn| {
                runs.fetch_add(1, Ordering::SeqCst);
                Box::pin(async { Ok::<_, Error>(1) })
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(
            InvalidIdempotencyKey::find(&err),
            Some(InvalidIdempotencyKey::Empty)
        ));
        let read_only = r
            .run_idempotent(
                CallOptions::new("tests::read")
                    .read_only(true)
                    .idempotency_key(IdempotencyKey::new("k").unwrap()),
                |_txn: &Txn| Box::pin(async { Ok::<_, Error>(1) }),
            )
            .await
            .unwrap_err();
        assert!(matches!(
            InvalidIdempotencyKey::find(&read_only),
            Some(InvalidIdempotencyKey::ReadOnly { .. })
        ));
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        assert_eq!(
            r.stats().success + r.stats().errors,
            0,
            "no transaction began"
        );
        // the type changed between releases: the stored outcome is a
        // Receipt, the call now wants a String
        let first = pay(&r, "typed", 5, &runs).await.unwrap();
        let key = IdempotencyKey::new("typed")
            .unwrap()
            .fingerprint(&5)
            .unwrap();
        let err = r
            .run_idempotent(
                CallOptions::new("tests::pay").idempotency_key(key),
                |_txn: &Txn| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Box::pin(async { Ok::<_, Error>(String::from("new")) })
                },
            )
            .await
            .unwrap_err();
        let unreadable = StoredOutcomeUnreadable::find(&err).unwrap_or_else(|| panic!("{err}"));
        assert_eq!(unreadable.key(), "typed");
        assert!(err.to_string().contains("`typed`"), "{err}");
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{backend:?}: not run again");
        assert_eq!(the_token(&tdb.db).await, first.token);
    }
}

/// A resolver through a proxy: no contention control (on MariaDB its
/// first lock of a label sends a COMMIT of its own), no backoff.
pub(crate) async fn proxied_resolver(url: &str) -> ConflictResolver {
    ConflictResolver::builder(common::connect(url, 2).await)
        .backoff(Backoff::none())
        .contention(Contention::Off)
        .build()
}

/// COMMIT reaches the server and commits; its reply is lost. Without a key
/// that is an `AmbiguousCommit`; with one, the lookup finds the key with
/// this call's claim, and the call returns the stored value: the body ran
/// once, one row.
/// A key on `CallOptions` goes with `run_idempotent`: `run` and
/// `run_batched` cannot store an outcome and refuse it, and
/// `run_idempotent` without one refuses too; nothing runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_in_call_options_is_taken_by_run_idempotent_and_refused_elsewhere() {
    let tdb = server(Backend::Sqlite, "idem_options", 2).await;
    setup(&tdb.db).await;
    let r = ConflictResolver::new(tdb.db.clone());
    let runs = Arc::new(AtomicU32::new(0));
    let keyed =
        || CallOptions::new("tests::pay").idempotency_key(IdempotencyKey::new("o-1").unwrap());
    fn body(
        runs: Arc<AtomicU32>,
    ) -> impl for<'t> FnMut(&'t Txn) -> conflictkit::resolver::BodyFuture<'static, 't, i64, Error>
    + Send
    + 'static {
        move |_txn: &Txn| {
            runs.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok::<_, Error>(7_i64) })
        }
    }
    let err = r.run(keyed(), body(runs.clone())).await.unwrap_err();
    assert!(
        matches!(
            InvalidIdempotencyKey::find(&err),
            Some(InvalidIdempotencyKey::NotStorable { through: "run", .. })
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("run_idempotent"),
        "says what to do: {err}"
    );
    let err = r
        .run_batched(keyed().batch(8), body(runs.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            InvalidIdempotencyKey::find(&err),
            Some(InvalidIdempotencyKey::NotStorable {
                through: "run_batched",
                ..
            })
        ),
        "{err}"
    );
    let err = r
        .run_idempotent(CallOptions::new("tests::pay"), body(runs.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            InvalidIdempotencyKey::find(&err),
            Some(InvalidIdempotencyKey::Missing { .. })
        ),
        "{err}"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 0, "nothing ran");
    // the same options through run_idempotent: run once, then answered
    for _ in 0..2 {
        assert_eq!(
            r.run_idempotent(keyed(), body(runs.clone())).await.unwrap(),
            7
        );
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_commit_that_committed_returns_the_stored_value() {
    for backend in [Backend::Postgres, Backend::MySql] {
        let tdb = server(backend, "idem_ambiguous_committed", 2).await;
        setup(&tdb.db).await;
        let (proxy, url) = Proxy::for_url(&tdb.url).await;
        let r = proxied_resolver(&url).await;
        let runs = AtomicU32::new(0);
        proxy.cut_after(b"COMMIT");
        let receipt = bounded("idempotent call", pay(&r, "amb-1", 70, &runs))
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        proxy.cuts(1).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{backend:?}: not run again");
        assert_eq!(count(&tdb.db, "payment").await, 1, "{backend:?}");
        assert_eq!(the_token(&tdb.db).await, receipt.token, "{backend:?}");
        assert_eq!(receipt.cents, 70);
    }
}

/// COMMIT never reaches the server (the proxy swallows it and closes the
/// connection; the server rolls back): the lookup finds no key, the call
/// runs again and commits once: the body ran twice, one row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_commit_that_did_not_commit_runs_again() {
    for backend in [Backend::Postgres, Backend::MySql] {
        let tdb = server(backend, "idem_ambiguous_lost", 2).await;
        setup(&tdb.db).await;
        let (proxy, url) = Proxy::for_url(&tdb.url).await;
        let r = proxied_resolver(&url).await;
        let runs = AtomicU32::new(0);
        proxy.swallow(b"COMMIT", false);
        let receipt = bounded("idempotent call", pay(&r, "amb-2", 80, &runs))
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        bounded("the COMMIT was swallowed", proxy.swallowed(1)).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2,
            "{backend:?}: the lost run, then one"
        );
        assert_eq!(count(&tdb.db, "payment").await, 1, "{backend:?}");
        assert_eq!(the_token(&tdb.db).await, receipt.token, "{backend:?}");
        // without a key the same fault is an AmbiguousCommit
        proxy.swallow(b"COMMIT", false);
        let err = bounded(
            "call without a key",
            r.managed(|txn: &Txn| {
                Box::pin(async move {
                    exec(txn, "INSERT INTO payment VALUES (0, 0)")
                        .await
                        .map_err(Error::from)
                })
            }),
        )
        .await
        .unwrap_err();
        assert!(err.is_ambiguous_commit(), "{backend:?}: {err}");
    }
}

/// COMMIT never reaches the server, and the key cannot be looked up (the
/// proxy refuses new connections): the call keeps its `AmbiguousCommit`,
/// and is not run again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_commit_stays_ambiguous_when_the_key_cannot_be_looked_up() {
    for backend in [Backend::Postgres, Backend::MySql] {
        let tdb = server(backend, "idem_ambiguous_unknown", 2).await;
        setup(&tdb.db).await;
        let (proxy, url) = Proxy::for_url(&tdb.url).await;
        // one connection, which the swallowed COMMIT closes; a new one is
        // refused, and the pool says so within its acquire timeout
        let mut options = sea_orm::ConnectOptions::new(url);
        options
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(2))
            .sqlx_logging(false);
        let r = ConflictResolver::builder(sea_orm::Database::connect(options).await.unwrap())
            .backoff(Backoff::none())
            .contention(Contention::Off)
            .build();
        let runs = AtomicU32::new(0);
        proxy.swallow(b"COMMIT", true);
        let err = bounded("idempotent call", pay(&r, "amb-3", 90, &runs))
            .await
            .unwrap_err();
        assert!(err.is_ambiguous_commit(), "{backend:?}: {err}");
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{backend:?}: not run again");
        assert_eq!(count(&tdb.db, "payment").await, 0, "{backend:?}");
    }
}

const COMMIT_LOCK: i64 = 0x636b_0028;

async fn commits_waiting_on_lock(admin: &DatabaseConnection, database: &str) -> i64 {
    scalar(
        admin,
        &format!(
            "SELECT COUNT(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND NOT l.granted \
             AND ((l.classid::bigint << 32) | l.objid::bigint) = {COMMIT_LOCK} \
             AND a.datname = '{database}' AND upper(a.query) LIKE 'COMMIT%'"
        ),
    )
    .await
}

/// A caller dropped while its COMMIT is held on the server (a deferred
/// trigger waits for an advisory lock the test holds): the detached COMMIT
/// finishes, and the retry with the same key gets the stored outcome
/// without running the body. PostgreSQL: the other engines have no
/// deferred trigger to hold a COMMIT with.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_caller_dropped_during_a_slow_commit_gets_the_stored_outcome_on_retry() {
    let tdb = server(Backend::Postgres, "idem_dropped_commit", 4).await;
    let database = common::sql::database_name(&tdb.url);
    migrate_idempotency(&tdb.db).await.unwrap();
    exec(&tdb.db, "CREATE TABLE item (id BIGINT PRIMARY KEY)")
        .await
        .unwrap();
    let holder = common::hold_commits_of_item(&tdb.db, &tdb.url, COMMIT_LOCK).await;
    let r = ConflictResolver::builder(tdb.db.clone())
        .contention(Contention::Off)
        .build();
    let runs = Arc::new(AtomicU32::new(0));
    let call = |r: ConflictResolver, runs: Arc<AtomicU32>| async move {
        let key = IdempotencyKey::new("slow-1").unwrap();
        r.run_idempotent(
            CallOptions::new("tests::item").idempotency_key(key),
            |txn: &Txn| {
                let runs = runs.clone();
                Box::pin(async move {
                    let id = i64::from(runs.fetch_add(1, Ordering::SeqCst)) + 41;
                    exec(txn, &format!("INSERT INTO item VALUES ({id})")).await?;
                    Ok::<_, Error>(id)
                })
            },
        )
        .await
    };
    let first = tokio::spawn(call(r.clone(), runs.clone()));
    bounded("the COMMIT waits on the lock", async {
        while commits_waiting_on_lock(&tdb.db, &database).await < 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    exec(
        &holder,
        &format!("SELECT pg_advisory_unlock({COMMIT_LOCK})"),
    )
    .await
    .unwrap();
    let again = bounded("the retry", call(r.clone(), runs.clone()))
        .await
        .unwrap();
    assert_eq!(again, 41, "the first run's value");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(count(&tdb.db, "item").await, 1);
}
