//! The lock across processes behind a transaction-mode pooler: PgBouncer in
//! `pool_mode=transaction` (started by `scripts/test.sh`, see
//! `scripts/pgbouncer.sh`, which exports `CONFLICTKIT_PGBOUNCER_URL`) hands
//! each transaction, and each statement outside one, to any server session.
//! A session-level advisory lock and its unlock then land on different
//! server sessions, and the lock stays held by a pooled server session; the
//! lock held in a transaction of the lock session keeps its server session
//! until `ROLLBACK`. In one process, more hot keys than pooled connections
//! take their leases without a stall.

use crate::common;
use common::sql::{bounded, server};
use common::{Backend, create_accounts, read_balance, write_balance};
use conflictkit::resolver::CallOptions;
use conflictkit::{ConflictResolver, Error, Txn};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// The PgBouncer URL; `None` (skip) outside the test command, a panic under
/// it, as for the servers.
fn pgbouncer_url() -> Option<String> {
    match std::env::var("CONFLICTKIT_PGBOUNCER_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if common::servers_required() => panic!(
            "CONFLICTKIT_PGBOUNCER_URL is not set but CONFLICTKIT_REQUIRE_SERVERS or CI is: \
             the test command must start PgBouncer (./scripts/test.sh)"
        ),
        _ => {
            eprintln!("skipping: CONFLICTKIT_PGBOUNCER_URL is not set (run ./scripts/test.sh)");
            None
        }
    }
}

/// Advisory locks in the database of `direct` (a connection straight to
/// PostgreSQL, not through the pooler), `granted` or waiting.
async fn advisory_locks(direct: &DatabaseConnection, granted: bool) -> i64 {
    let row = direct
        .query_one_raw(Statement::from_string(
            direct.get_database_backend(),
            format!(
                "SELECT COUNT(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted = {granted} \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
        ))
        .await
        .expect("count the advisory locks")
        .expect("a count");
    row.try_get("", "n").expect("the count")
}

const TASKS_PER_PROCESS: usize = 4;
const CALLS_PER_TASK: usize = 10;

/// Two resolvers (two processes' worth of pools and leases) through
/// PgBouncer in transaction mode, on one hot (label, key): a call inside its
/// body holds the lock (seen in `pg_locks`, straight on the server); then
/// every call commits, no increment is lost, and no advisory lock is left on
/// any server session afterwards. With the session-level lock of before, the
/// unlock ran on another server session than the lock, failed, and the lock
/// stayed held by a pooled server session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_advisory_lock_is_left_behind_a_transaction_mode_pooler() {
    let Some(pooler) = pgbouncer_url() else {
        return;
    };
    let Some(tdb) = common::open(Backend::Postgres, "lease_pooler", 2).await else {
        return;
    };
    create_accounts(&tdb.db, &[(1, 0)]).await;
    let name = tdb
        .url
        .rsplit_once('/')
        .map(|(_, db)| db.split('?').next().unwrap_or(db).to_owned())
        .expect("a database in the URL");
    let (base, _) = pooler.rsplit_once('/').expect("a database in the URL");
    // sqlx names its prepared statements per client connection: no cache,
    // so none is used in a later transaction, on another server session
    let through = format!("{base}/{name}?statement-cache-capacity=0");
    let label = "tests::lease_pooler::hot";
    let processes: Vec<ConflictResolver> = futures::future::join_all(
        (0..2).map(|_| async { ConflictResolver::new(common::connect(&through, 4).await) }),
    )
    .await;

    // A call holds the lock while it is inside its body (a new gate on
    // PostgreSQL is hot from the start, so its runs take the lock).
    let (entered_tx, entered) = tokio::sync::oneshot::channel::<()>();
    let (release_tx, release) = tokio::sync::oneshot::channel::<()>();
    let held = {
        let r = processes[0].clone();
        let mut signals = Some((entered_tx, release));
        tokio::spawn(async move {
            r.run(CallOptions::new(label).key(&1_i32), |txn: &Txn| {
                let signals = signals.take();
                Box::pin(async move {
                    txn.execute_unprepared(
                        "UPDATE accounts SET balance = balance + 1 WHERE id = 1",
                    )
                    .await?;
                    if let Some((entered, release)) = signals {
                        let _ = entered.send(());
                        let _ = release.await;
                    }
                    Ok::<_, Error>(())
                })
            })
            .await
        })
    };
    entered.await.expect("the held call entered its body");
    assert_eq!(
        advisory_locks(&tdb.db, true).await,
        1,
        "the call inside its body holds the lock of its (label, key), through the pooler"
    );
    release_tx.send(()).expect("the held call waits");
    held.await
        .expect("the task")
        .unwrap_or_else(|e| panic!("the held call: {e}"));

    let tasks: Vec<_> = processes
        .iter()
        .flat_map(|r| (0..TASKS_PER_PROCESS).map(move |_| r.clone()))
        .map(|r| {
            tokio::spawn(async move {
                for _ in 0..CALLS_PER_TASK {
                    r.run(CallOptions::new(label).key(&1_i32), |txn: &Txn| {
                        Box::pin(async move {
                            txn.execute_unprepared(
                                "UPDATE accounts SET balance = balance + 1 WHERE id = 1",
                            )
                            .await?;
                            Ok::<_, Error>(())
                        })
                    })
                    .await
                    .unwrap_or_else(|e| panic!("a call through the pooler: {e}"));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("a task");
    }
    let calls = 1 + 2 * TASKS_PER_PROCESS * CALLS_PER_TASK;
    assert_eq!(
        read_balance(&tdb.db, 1).await.unwrap(),
        i64::try_from(calls).unwrap(),
        "every call committed once"
    );
    // The locks are given back in tasks of their own after the calls
    // return (polled: a state of the server). A lock held in a transaction
    // of its lock session goes with that transaction; one held by a server
    // session outside any transaction is a session-level lock, which this
    // pooler lets any client's statements reach, and whose unlock may land
    // on another server session: it fails the test at once.
    loop {
        let outside = direct_count(
            &tdb.db,
            "SELECT COUNT(*) AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND a.state = 'idle' \
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .await;
        assert_eq!(
            outside, 0,
            "advisory locks held by pooled server sessions outside any transaction"
        );
        let granted = advisory_locks(&tdb.db, true).await;
        let waiting = advisory_locks(&tdb.db, false).await;
        if granted == 0 && waiting == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn direct_count(direct: &DatabaseConnection, sql: &str) -> i64 {
    direct
        .query_one_raw(Statement::from_string(
            direct.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .expect("count")
        .expect("a count")
        .try_get("", "n")
        .expect("the count")
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountWarnings {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if *event.metadata().level() == tracing::Level::WARN {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Counts the WARN events of the process (the resolver warns when it cannot
/// take its lock across processes, and when it gives up).
struct CountWarnings(Arc<AtomicU32>);

/// More keys than pooled connections, each key new (on PostgreSQL a new
/// gate takes its lease of the lock across processes from its first run):
/// every call commits, and none had to give up waiting for the lock. A run
/// takes its pooled connection before it enters its lease, never both at
/// once; a run that held a lease (a lock-pool connection) while it waited
/// for a pooled connection, beside runs that held pooled connections while
/// they waited for lock connections, stalled until the 5 s lock-wait bound
/// ran out and then ran without the lock, with a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn more_hot_keys_than_connections_take_their_leases_without_a_stall() {
    use tracing_subscriber::layer::SubscriberExt;
    let warnings = Arc::new(AtomicU32::new(0));
    let subscriber = tracing_subscriber::registry().with(CountWarnings(warnings.clone()));
    tracing::subscriber::set_global_default(subscriber).expect("one subscriber per test process");
    const KEYS: i32 = 12;
    let tdb = server(Backend::Postgres, "lease_order", 2).await;
    let rows: Vec<(i32, i64)> = (1..=KEYS).map(|id| (id, 0)).collect();
    create_accounts(&tdb.db, &rows).await;
    let r = ConflictResolver::new(tdb.db.clone());
    for round in 0..3 {
        let start = Arc::new(tokio::sync::Barrier::new(KEYS as usize));
        let calls: Vec<_> = (1..=KEYS)
            .map(|id| {
                let (r, start) = (r.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    r.run(
                        CallOptions::new("tests::keyed").key(&(round * 100 + id)),
                        |txn: &Txn| {
                            Box::pin(async move {
                                let b = read_balance(txn, id).await?;
                                Ok::<_, Error>(write_balance(txn, id, b + 1).await?)
                            })
                        },
                    )
                    .await
                })
            })
            .collect();
        for c in calls {
            bounded("keyed call", c).await.unwrap().unwrap();
        }
    }
    for id in 1..=KEYS {
        assert_eq!(read_balance(&tdb.db, id).await.unwrap(), 3, "account {id}");
    }
    assert_eq!(r.stats().unresolved, 0);
    assert_eq!(
        warnings.load(Ordering::SeqCst),
        0,
        "no run gave up waiting for its lock"
    );
}
