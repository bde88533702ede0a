//! A connection lost before COMMIT is replayed on another pooled connection
//! (DESIGN §7): sessions the server ended while idle in the pool, and
//! sessions killed under the pool, are begun again instead of failing the
//! call.

use crate::common;
use common::sql::{admin_db, bounded, database_name, exec, scalar, server};
use common::{Backend, create_accounts, read_balance, write_balance};
use conflictkit::resolver::{CallOptions, Contention};
use conflictkit::{ConflictResolver, Error, Txn};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Barrier;

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

/// How many times the resolver said it began again on another connection
/// because a pooled one was lost (its warning), in this process.
static REBEGINS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

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

/// PostgreSQL ends idle sessions after `idle_session_timeout` (FATAL
/// 57P05). A resolver whose pool does not ping before use
/// (`ConflictResolver::connect`) begins on such a dead connection, and
/// begins again on another: every call succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_the_server_ended_for_idling_are_begun_again() {
    let tdb = server(Backend::Postgres, "idle_session_timeout", 1).await;
    create_accounts(&tdb.db, &[(1, 0)]).await;
    let name = database_name(&tdb.url);
    exec(
        &tdb.db,
        &format!("ALTER DATABASE \"{name}\" SET idle_session_timeout = '300ms'"),
    )
    .await
    .unwrap();
    tdb.db.clone().close().await.unwrap();
    let admin = common::connect(&common::server_url(Backend::Postgres).unwrap(), 1).await;
    let count_sessions = format!("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = '{name}'");
    let sessions = || scalar(&admin, &count_sessions);
    let mut options = sea_orm::ConnectOptions::new(tdb.url.clone());
    options
        .max_connections(4)
        .min_connections(0)
        .idle_timeout(Duration::from_secs(600))
        .sqlx_logging(false);
    let r = ConflictResolver::connect(options).await.unwrap();
    for round in 0..2 {
        // open four pooled connections at once
        let barrier = Arc::new(tokio::sync::Barrier::new(4));
        let calls: Vec<_> = (0..4)
            .map(|_| {
                let (r, barrier) = (r.clone(), barrier.clone());
                tokio::spawn(async move {
                    let entered = AtomicU32::new(0);
                    r.run(
                        CallOptions::new("tests::idle").contention(Contention::Off),
                        |txn: &Txn| {
                            let first = entered.fetch_add(1, Ordering::SeqCst) == 0;
                            let barrier = barrier.clone();
                            Box::pin(async move {
                                if first {
                                    barrier.wait().await;
                                }
                                exec(
                                    txn,
                                    "UPDATE accounts SET balance = balance + 1 WHERE id = 1",
                                )
                                .await?;
                                Ok::<_, Error>(())
                            })
                        },
                    )
                    .await
                })
            })
            .collect();
        for c in calls {
            bounded("call", c)
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
        // the server ends every idle session of the pool
        bounded("the server ends the idle sessions", async {
            while sessions().await > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
    }
    assert_eq!(read_balance(&admin_db(&tdb.url).await, 1).await.unwrap(), 8);
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
