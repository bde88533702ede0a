//! Read-only calls on a real PostgreSQL streaming replica (the primary and
//! replica of `scripts/replicas.sh`, `CONFLICTKIT_PG_PRIMARY_URL` and
//! `CONFLICTKIT_PG_REPLICA_URL`): they land on the replica, a write there is
//! a typed error, a lagging or stopped replica sends them to the primary,
//! read-your-writes waits for the replay, `deferrable` reports never
//! conflict, and a "replica" that is none is refused at build time.
//!
//! These tests pause the replica's replay and stop it: they run one at a
//! time (the nextest group `replicas`), and each one first resumes replay
//! and starts the replica if a failed test left it stopped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use conflictkit::resolver::{CallOptions, CommitPosition, ReplicaRefused, WriteOnReplica};
use conflictkit::{ConflictResolver, Txn, managed_transaction};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, Statement};

use crate::common::{self, Backend};

/// How long a test waits for a condition a signal stands for (the replica
/// replayed, a call is waiting) before it fails.
const BOUND: Duration = Duration::from_secs(30);

/// The primary and replica URLs, or `None` (with a printed reason) when the
/// test may skip; panics when servers are required and they are missing.
fn urls() -> Option<(String, String)> {
    let get = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
    match (
        get("CONFLICTKIT_PG_PRIMARY_URL"),
        get("CONFLICTKIT_PG_REPLICA_URL"),
        get("CONFLICTKIT_REPLICA_DIR"),
    ) {
        (Some(p), Some(r), Some(_)) => Some((p, r)),
        _ => {
            if common::servers_required() {
                panic!(
                    "CONFLICTKIT_PG_PRIMARY_URL, CONFLICTKIT_PG_REPLICA_URL or CONFLICTKIT_REPLICA_DIR is not set but CONFLICTKIT_REQUIRE_SERVERS or CI is: the test command must start the replica pair (scripts/replicas.sh)"
                );
            }
            eprintln!(
                "skipping: CONFLICTKIT_PG_REPLICA_URL is not set (run ./scripts/test.sh to start the replica pair)"
            );
            None
        }
    }
}

/// A pool on `url`; a replica's gives up on a connection after 2 s (what
/// the builder's docs advise), so calls routed to a stopped replica move on.
async fn pool(url: &str, max: u32) -> DatabaseConnection {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(max)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(2))
        .test_before_acquire(false)
        .sqlx_logging(false);
    Database::connect(opts)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

/// `scripts/replica-server.sh start|stop`.
async fn replica_server(cmd: &str) {
    let script = std::env::var("CONFLICTKIT_REPLICA_SERVER").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/replica-server.sh").to_owned()
    });
    let out = tokio::process::Command::new(&script)
        .arg(cmd)
        .output()
        .await
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(
        out.status.success(),
        "replica-server.sh {cmd}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn sql(db: &impl ConnectionTrait, sql: &str) -> Result<(), DbErr> {
    db.execute_unprepared(sql).await.map(|_| ())
}

async fn one_text(db: &impl ConnectionTrait, sql: &str) -> Result<String, DbErr> {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?
        .expect("one row");
    row.try_get("", "v")
}

/// A primary and its replica for one test, with a table `accounts` of its
/// own holding account 1 with `balance`, replayed on the replica.
struct Pair {
    primary_url: String,
    replica_url: String,
    /// A plain pool on the replica, to pause and resume replay.
    replica_admin: DatabaseConnection,
    table: String,
}

impl Pair {
    async fn open(test: &str, balance: i64) -> Option<Pair> {
        let (primary_url, replica_url) = urls()?;
        // a previous test may have left the replica stopped or paused
        if Database::connect(&replica_url).await.is_err() {
            replica_server("start").await;
        }
        let replica_admin = pool(&replica_url, 2).await;
        sql(&replica_admin, "SELECT pg_wal_replay_resume()")
            .await
            .expect("resume replay");
        let table = common::unique_name(test);
        let primary = pool(&primary_url, 2).await;
        sql(
            &primary,
            &format!(
                "CREATE TABLE {table} (id INT PRIMARY KEY, balance BIGINT NOT NULL);
                 INSERT INTO {table} VALUES (1, {balance})"
            ),
        )
        .await
        .expect("create the table");
        let pair = Pair {
            primary_url,
            replica_url,
            replica_admin,
            table,
        };
        let at = pair.position(&primary).await;
        pair.replayed(at).await;
        Some(pair)
    }

    /// A resolver on the primary with the replica, checked, its lag
    /// sampled every 20 ms.
    async fn resolver(&self, max_lag: Duration) -> ConflictResolver {
        ConflictResolver::builder(pool(&self.primary_url, 16).await)
            .replica(pool(&self.replica_url, 16).await)
            .max_lag(max_lag)
            .lag_sample_interval(Duration::from_millis(20))
            .build_checked()
            .await
            .expect("the replica of scripts/replicas.sh is a replica of its primary")
    }

    async fn position(&self, primary: &DatabaseConnection) -> CommitPosition {
        one_text(primary, "SELECT pg_current_wal_insert_lsn()::text AS v")
            .await
            .expect("position")
            .parse()
            .expect("an LSN")
    }

    /// Waits until the replica has replayed up to `at`.
    async fn replayed(&self, at: CommitPosition) {
        let until = tokio::time::Instant::now() + BOUND;
        loop {
            let replayed: CommitPosition = one_text(
                &self.replica_admin,
                "SELECT pg_last_wal_replay_lsn()::text AS v",
            )
            .await
            .expect("replay position")
            .parse()
            .expect("an LSN");
            if replayed >= at {
                return;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "the replica did not replay up to {at} in {BOUND:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Pauses replay, and waits until it is paused.
    async fn pause(&self) {
        sql(&self.replica_admin, "SELECT pg_wal_replay_pause()")
            .await
            .expect("pause replay");
        let until = tokio::time::Instant::now() + BOUND;
        while one_text(
            &self.replica_admin,
            "SELECT pg_get_wal_replay_pause_state() AS v",
        )
        .await
        .expect("pause state")
            != "paused"
        {
            assert!(tokio::time::Instant::now() < until, "replay did not pause");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn resume(&self) {
        sql(&self.replica_admin, "SELECT pg_wal_replay_resume()")
            .await
            .expect("resume replay");
    }
}

/// Where a body ran (`pg_is_in_recovery()`: true on the replica) and the
/// balance of account 1 it read there.
async fn where_and_balance(txn: &Txn, table: &str) -> Result<(bool, i64), conflictkit::Error> {
    let row = txn
        .query_one_raw(Statement::from_string(
            txn.get_database_backend(),
            format!(
                "SELECT pg_is_in_recovery() AS r, (SELECT balance FROM {table} WHERE id = 1) AS b"
            ),
        ))
        .await?
        .expect("one row");
    Ok((row.try_get("", "r")?, row.try_get("", "b")?))
}

async fn read(
    resolver: &ConflictResolver,
    table: &str,
    opts: CallOptions,
) -> Result<(bool, i64), conflictkit::Error> {
    resolver
        .run(opts.read_only(true), |txn: &Txn| {
            Box::pin(where_and_balance(txn, table))
        })
        .await
}

async fn set_balance(resolver: &ConflictResolver, table: &str, balance: i64) {
    resolver
        .managed(|txn: &Txn| {
            Box::pin(async move {
                sql(
                    txn,
                    &format!("UPDATE {table} SET balance = {balance} WHERE id = 1"),
                )
                .await?;
                Ok::<_, conflictkit::Error>(())
            })
        })
        .await
        .expect("the write commits on the primary");
}

#[managed_transaction(read_only)]
async fn in_recovery(txn: &Txn) -> Result<bool, conflictkit::Error> {
    Ok(one_text(txn, "SELECT pg_is_in_recovery()::text AS v").await? == "true")
}

#[tokio::test]
async fn read_only_calls_run_on_the_replica_and_the_others_on_the_primary() {
    let Some(pair) = Pair::open("ro_on_replica", 100).await else {
        return;
    };
    let resolver = pair.resolver(Duration::from_secs(5)).await;
    let t = pair.table.as_str();
    assert_eq!(
        read(&resolver, t, CallOptions::new("read")).await.unwrap(),
        (true, 100)
    );
    assert!(
        in_recovery(&resolver).await.unwrap(),
        "#[managed_transaction(read_only)] runs on the replica"
    );
    let wrote = resolver
        .managed(|txn: &Txn| Box::pin(where_and_balance(txn, t)))
        .await
        .unwrap();
    assert_eq!(wrote, (false, 100), "a read-write call runs on the primary");
    // the resolver's default read_only makes every call a replica read
    let reader = ConflictResolver::builder(pool(&pair.primary_url, 4).await)
        .replica(pool(&pair.replica_url, 4).await)
        .read_only(true)
        .build_checked()
        .await
        .unwrap();
    let (on_replica, _) = reader
        .managed(|txn: &Txn| Box::pin(where_and_balance(txn, t)))
        .await
        .unwrap();
    assert!(on_replica);
    let stats = resolver.replica_stats();
    assert_eq!(
        (stats.on_replica, stats.primary_lagging, stats.primary_down),
        (2, 0, 0)
    );
    assert_eq!(reader.replica_stats().on_replica, 1);
}

#[tokio::test]
async fn a_write_in_a_call_routed_to_the_replica_is_a_typed_error_and_never_runs_on_the_primary() {
    let Some(pair) = Pair::open("ro_write", 100).await else {
        return;
    };
    let resolver = pair.resolver(Duration::from_secs(5)).await;
    let t = pair.table.as_str();
    let err = resolver
        .run(CallOptions::new("sneaky").read_only(true), |txn: &Txn| {
            Box::pin(async move {
                sql(txn, &format!("UPDATE {t} SET balance = 0 WHERE id = 1")).await?;
                Ok::<_, conflictkit::Error>(())
            })
        })
        .await
        .unwrap_err();
    let found = WriteOnReplica::find(&err).expect("a WriteOnReplica");
    assert_eq!(found.label(), "sneaky");
    let message = err.to_string();
    assert!(message.contains("Drop `read_only`"), "{message}");
    assert!(
        message.contains("read-only transaction"),
        "the server's refusal is kept: {message}"
    );
    assert!(std::error::Error::source(found).is_some());
    let stats = resolver.replica_stats();
    assert_eq!(stats.on_replica, 1);
    assert_eq!(
        stats.primary_fell_back + stats.primary_down + stats.primary_lagging,
        0
    );
    let (_, balance) = resolver
        .managed(|txn: &Txn| Box::pin(where_and_balance(txn, t)))
        .await
        .unwrap();
    assert_eq!(balance, 100, "nothing was written on the primary");
}

#[tokio::test]
async fn reads_go_to_the_primary_while_the_replica_lags_past_the_bound() {
    let Some(pair) = Pair::open("ro_lag", 100).await else {
        return;
    };
    let max_lag = Duration::from_millis(300);
    let resolver = pair.resolver(max_lag).await;
    let t = pair.table.as_str();
    assert_eq!(
        read(&resolver, t, CallOptions::new("fresh")).await.unwrap(),
        (true, 100)
    );
    pair.pause().await;
    set_balance(&resolver, t, 200).await;
    // the sampler sees the lag grow (a signal, bounded, not a sleep)
    let until = tokio::time::Instant::now() + BOUND;
    while resolver.replica_status()[0]
        .lag
        .is_none_or(|lag| lag <= max_lag)
    {
        assert!(
            tokio::time::Instant::now() < until,
            "the lag never passed {max_lag:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        read(&resolver, t, CallOptions::new("bounded"))
            .await
            .unwrap(),
        (false, 200),
        "over the bound: the primary, and the new balance"
    );
    assert_eq!(resolver.replica_stats().primary_lagging, 1);
    // a call that accepts an hour of lag reads the paused replica's old data:
    // the bound decided, not the pause
    let lenient = CallOptions::new("lenient").max_lag(Duration::from_secs(3600));
    assert_eq!(read(&resolver, t, lenient).await.unwrap(), (true, 100));
    pair.resume().await;
    let until = tokio::time::Instant::now() + BOUND;
    loop {
        let (on_replica, balance) = read(&resolver, t, CallOptions::new("again")).await.unwrap();
        if on_replica {
            assert_eq!(
                balance, 200,
                "back on the replica within the bound: it has the write"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "reads never went back to the replica"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = resolver.replica_stats();
    assert!(
        stats.primary_lagging >= 1 && stats.on_replica >= 3,
        "{stats:?}"
    );
}

#[tokio::test]
async fn read_your_writes_waits_for_the_replay_and_reads_the_primary_when_the_wait_runs_out() {
    let Some(pair) = Pair::open("ro_ryw", 100).await else {
        return;
    };
    let resolver = pair.resolver(Duration::from_secs(3600)).await;
    let t = pair.table.clone();
    pair.pause().await;
    set_balance(&resolver, &t, 300).await;
    let token = resolver.commit_position().await.unwrap();
    // the token travels as text (a cookie) and comes back
    let token: CommitPosition = token.to_string().parse().unwrap();
    let reader = {
        let (resolver, t) = (resolver.clone(), t.clone());
        tokio::spawn(async move {
            let opts = CallOptions::new("mine").after(token).replica_wait(BOUND);
            read(&resolver, &t, opts).await
        })
    };
    let until = tokio::time::Instant::now() + BOUND;
    while resolver.replica_stats().waiting == 0 {
        assert!(
            tokio::time::Instant::now() < until,
            "the call never waited for the replica"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        !reader.is_finished(),
        "the call waits while replay is paused"
    );
    pair.resume().await;
    assert_eq!(
        reader.await.unwrap().unwrap(),
        (true, 300),
        "on the replica, once it replayed the write"
    );
    let stats = resolver.replica_stats();
    assert_eq!(
        (stats.waited, stats.on_replica, stats.primary_wait_expired),
        (1, 1, 0)
    );

    // replay stays paused: the wait runs out and the primary answers
    pair.pause().await;
    set_balance(&resolver, &t, 400).await;
    let token = resolver.commit_position().await.unwrap();
    let opts = CallOptions::new("mine")
        .after(token)
        .replica_wait(Duration::from_millis(300));
    assert_eq!(read(&resolver, &t, opts).await.unwrap(), (false, 400));
    let stats = resolver.replica_stats();
    assert_eq!((stats.waited, stats.primary_wait_expired), (2, 1));
    // without the token, the same call reads the replica's old balance
    assert_eq!(
        read(&resolver, &t, CallOptions::new("anyone"))
            .await
            .unwrap(),
        (true, 300)
    );
    pair.resume().await;
}

#[tokio::test]
async fn reads_go_on_on_the_primary_when_the_replica_is_stopped_midway() {
    let Some(pair) = Pair::open("ro_kill", 100).await else {
        return;
    };
    let resolver = pair.resolver(Duration::from_secs(5)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let (resolver, t, stop) = (resolver.clone(), pair.table.clone(), stop.clone());
            tokio::spawn(async move {
                let mut calls = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let (_, balance) = read(&resolver, &t, CallOptions::new("reader")).await?;
                    assert_eq!(balance, 100);
                    calls += 1;
                }
                Ok::<_, conflictkit::Error>(calls)
            })
        })
        .collect();
    let until = tokio::time::Instant::now() + BOUND;
    while resolver.replica_stats().on_replica < 50 {
        assert!(
            tokio::time::Instant::now() < until,
            "the readers never reached the replica"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    replica_server("stop").await;
    let on_primary = |s: conflictkit::resolver::ReplicaStats| s.primary_down + s.primary_fell_back;
    let until = tokio::time::Instant::now() + BOUND;
    while on_primary(resolver.replica_stats()) < 50 {
        assert!(
            tokio::time::Instant::now() < until,
            "reads did not go on on the primary: {:?}",
            resolver.replica_stats()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        let calls = reader.await.unwrap().expect("no read failed");
        assert!(calls > 0);
    }
    assert!(
        !resolver.replica_status()[0].up,
        "the replica is known down"
    );
    assert_eq!(resolver.stats().errors, 0, "{:?}", resolver.stats());
    // back up: reads return to it
    replica_server("start").await;
    let until = tokio::time::Instant::now() + BOUND;
    loop {
        let (on_replica, _) = read(&resolver, &pair.table, CallOptions::new("back"))
            .await
            .unwrap();
        if on_replica {
            break;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "reads never returned to the restarted replica"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn deferrable_reports_beside_transfers_never_conflict() {
    let Some(pair) = Pair::open("ro_deferrable", 1000).await else {
        return;
    };
    let t = pair.table.clone();
    let primary = pool(&pair.primary_url, 16).await;
    sql(
        &primary,
        &format!("INSERT INTO {t} SELECT g, 1000 FROM generate_series(2, 8) g"),
    )
    .await
    .unwrap();
    let transfers = ConflictResolver::builder(primary.clone())
        .retries(1000)
        .build();
    // the reports' resolver has the replica: deferrable still runs on the primary
    let reports = pair.resolver(Duration::from_secs(5)).await;
    let done = Arc::new(AtomicBool::new(false));
    let movers: Vec<_> = (0..4)
        .map(|w: i64| {
            let (transfers, t) = (transfers.clone(), t.clone());
            tokio::spawn(async move {
                for n in 0..40i64 {
                    let (from, to) = ((w + n) % 8 + 1, (w * 3 + n + 1) % 8 + 1);
                    if from == to {
                        continue;
                    }
                    let t = t.as_str();
                    transfers
                        .managed(|txn: &Txn| {
                            Box::pin(async move {
                                let b = one_text(txn, &format!("SELECT balance::text AS v FROM {t} WHERE id = {from}")).await?;
                                let amount = b.parse::<i64>().unwrap().min(7);
                                sql(txn, &format!("UPDATE {t} SET balance = balance - {amount} WHERE id = {from}")).await?;
                                sql(txn, &format!("UPDATE {t} SET balance = balance + {amount} WHERE id = {to}")).await?;
                                Ok::<_, conflictkit::Error>(())
                            })
                        })
                        .await?;
                }
                Ok::<_, conflictkit::Error>(())
            })
        })
        .collect();
    let reporters: Vec<_> = (0..2)
        .map(|_| {
            let (reports, t, done) = (reports.clone(), t.clone(), done.clone());
            tokio::spawn(async move {
                let mut runs = 0u32;
                while !done.load(Ordering::Relaxed) || runs == 0 {
                    let t = t.as_str();
                    let opts = CallOptions::new("report").deferrable(true).retries(0);
                    let (total, mode, replica) = reports
                        .run(opts, |txn: &Txn| {
                            Box::pin(async move {
                                let total = one_text(txn, &format!("SELECT sum(balance)::text AS v FROM {t}")).await?;
                                let mode = one_text(txn, "SELECT current_setting('transaction_isolation') || ' ' || current_setting('transaction_read_only') || ' ' || current_setting('transaction_deferrable') AS v").await?;
                                let replica = one_text(txn, "SELECT pg_is_in_recovery()::text AS v").await?;
                                Ok::<_, conflictkit::Error>((total, mode, replica))
                            })
                        })
                        .await?;
                    assert_eq!(total, "8000", "a report sees a consistent snapshot");
                    assert_eq!(mode, "serializable on on");
                    assert_eq!(replica, "false", "deferrable reports run on the primary");
                    runs += 1;
                }
                Ok::<_, conflictkit::Error>(runs)
            })
        })
        .collect();
    for mover in movers {
        mover.await.unwrap().expect("transfers commit");
    }
    done.store(true, Ordering::Relaxed);
    let mut runs = 0;
    for reporter in reporters {
        runs += reporter
            .await
            .unwrap()
            .expect("no report failed (retries = 0: no conflict)");
    }
    let report = reports.stats_by_label()["report"];
    assert_eq!(report.retries, 0, "{report:?}");
    assert_eq!(report.success, u64::from(runs));
    assert_eq!(reports.replica_stats().on_replica, 0);
}

#[tokio::test]
async fn a_primary_given_as_a_replica_is_refused() {
    let Some((primary_url, _)) = urls() else {
        return;
    };
    let refused = ConflictResolver::builder(pool(&primary_url, 2).await)
        .replica(pool(&primary_url, 2).await)
        .build_checked()
        .await
        .unwrap_err();
    assert!(
        matches!(refused, ReplicaRefused::NotAReplica { replica: 0 }),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains("pg_is_in_recovery() is false"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_replica_of_another_cluster_is_refused() {
    let (Some((_, replica_url)), Some(other_primary)) =
        (urls(), common::server_url(Backend::Postgres))
    else {
        return;
    };
    let refused = ConflictResolver::builder(pool(&other_primary, 2).await)
        .replica(pool(&replica_url, 2).await)
        .build_checked()
        .await
        .unwrap_err();
    let ReplicaRefused::OtherCluster {
        replica,
        primary_system_id,
        replica_system_id,
    } = &refused
    else {
        panic!("{refused:?}");
    };
    assert_eq!(*replica, 0);
    assert_ne!(primary_system_id, replica_system_id);
    assert!(
        refused.to_string().contains("another database cluster"),
        "{refused}"
    );
}

/// The `conflictkit.reads` counter, by route (metrics-util's debugging
/// recorder, installed for this test's thread only).
#[test]
fn where_reads_ran_is_counted_in_the_reads_metric() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ran = metrics::with_local_recorder(&recorder, || {
        rt.block_on(async {
            let pair = Pair::open("ro_metrics", 100).await?;
            let resolver = pair.resolver(Duration::from_secs(5)).await;
            let t = pair.table.as_str();
            let on_replica = read(&resolver, t, CallOptions::new("m")).await.unwrap();
            // a zero bound: no sampled replica is ever fresh enough
            let zero = CallOptions::new("m").max_lag(Duration::ZERO);
            let on_primary = read(&resolver, t, zero).await.unwrap();
            Some((on_replica.0, on_primary.0))
        })
    });
    let Some(ran) = ran else {
        return;
    };
    assert_eq!(ran, (true, false));
    // one snapshot: taking one drains the counters
    let snapshot = snapshotter.snapshot().into_vec();
    let counted = |route: &str| {
        snapshot
            .iter()
            .filter(|(ck, _, _, _)| {
                let key = ck.key();
                key.name() == "conflictkit.reads"
                    && key
                        .labels()
                        .any(|l| l.key() == "route" && l.value() == route)
                    && key
                        .labels()
                        .any(|l| l.key() == "conflictkit.label" && l.value() == "m")
            })
            .map(|(_, _, _, v)| match v {
                DebugValue::Counter(n) => *n,
                other => panic!("a counter, not {other:?}"),
            })
            .sum::<u64>()
    };
    assert_eq!(counted("replica"), 1);
    assert_eq!(counted("primary_lagging"), 1);
    assert_eq!(counted("primary_down"), 0);
}
