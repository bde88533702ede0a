//! Scenario **replicas**: what routing read-only work to a streaming replica
//! buys the writes on the primary. For `--ops` seconds per run (default 10),
//! 8 tasks transfer between 100 accounts on the primary (managed
//! SERIALIZABLE calls) while 16 readers run balance checks (a read-only call
//! summing every balance), two ways:
//!
//! - `primary`: a resolver without replicas, so the checks run on the primary;
//! - `replica`: the same resolver with `--replica` added (`build_checked`),
//!   so the checks run on the replica (within the default 1 s staleness bound).
//!
//! It reports transfers and checks committed per second, and the transfer
//! goodput ratio replica / primary. Needs `--pg` (the primary) and
//! `--replica` (its streaming replica's server URL, e.g. the pair of
//! `scripts/replicas.sh`). Both servers share the machine's cores here: a
//! replica on its own machine takes the checks' CPU off the primary's.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use conflictkit::resolver::CallOptions;
use conflictkit::{ConflictResolver, Txn};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};
use serde_json::json;

use crate::Config;
use crate::db::{PoolOpts, Target, stmt};
use crate::report::{JsonSink, Table, median, num};

const ACCOUNTS: i64 = 100;
const WRITERS: usize = 8;
const READERS: usize = 16;
const DEFAULT_SECS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Primary,
    Replica,
}

impl Route {
    fn name(self) -> &'static str {
        match self {
            Route::Primary => "primary",
            Route::Replica => "replica",
        }
    }
}

async fn setup(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared("DROP TABLE IF EXISTS ck_rep").await?;
    db.execute_unprepared("CREATE TABLE ck_rep (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)")
        .await?;
    db.execute_unprepared(&format!(
        "INSERT INTO ck_rep SELECT g, 1000 FROM generate_series(1, {ACCOUNTS}) g"
    ))
    .await?;
    Ok(())
}

/// The replica's pool on the benchmark database, once the replica has it.
async fn replica_pool(server: &str, db_name: &str) -> Result<DatabaseConnection, DbErr> {
    let url = match server.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{db_name}"),
        None => return Err(DbErr::Custom(format!("no database in {server}"))),
    };
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let mut opts = ConnectOptions::new(url.clone());
        opts.max_connections(24)
            .acquire_timeout(Duration::from_secs(2))
            .test_before_acquire(false)
            .sqlx_logging(false);
        let tried = async {
            let db = Database::connect(opts).await?;
            db.execute_unprepared("SELECT 1 FROM ck_rep LIMIT 1")
                .await?;
            Ok::<_, DbErr>(db)
        };
        match tried.await {
            Ok(db) => return Ok(db),
            Err(e) if Instant::now() > until => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// One run: transfers and checks per second, and replays per transfer.
async fn one_run(resolver: &ConflictResolver, secs: u64) -> Result<(f64, f64, f64), DbErr> {
    let stop = Arc::new(AtomicBool::new(false));
    let (transfers, checks) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let before = resolver.stats();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (resolver, stop, transfers) = (resolver.clone(), stop.clone(), transfers.clone());
        tasks.push(tokio::spawn(async move {
            let mut x = 0x9E37_79B9_7F4A_7C15_u64 ^ (w as u64 + 1);
            while !stop.load(Ordering::Relaxed) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let from = (x % ACCOUNTS as u64) as i64 + 1;
                let to = ((x >> 20) % ACCOUNTS as u64) as i64 + 1;
                if from == to {
                    continue;
                }
                resolver
                    .run(
                        CallOptions::new("bench::transfer").retries(50),
                        |txn: &Txn| {
                            Box::pin(async move {
                                let b = txn.get_database_backend();
                                txn.execute_raw(stmt(
                                    b,
                                    "UPDATE ck_rep SET balance = balance - 1 WHERE id = $1",
                                    vec![from.into()],
                                ))
                                .await?;
                                txn.execute_raw(stmt(
                                    b,
                                    "UPDATE ck_rep SET balance = balance + 1 WHERE id = $1",
                                    vec![to.into()],
                                ))
                                .await?;
                                Ok::<_, conflictkit::Error>(())
                            })
                        },
                    )
                    .await
                    .map_err(|e| DbErr::Custom(e.to_string()))?;
                transfers.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, DbErr>(())
        }));
    }
    for _ in 0..READERS {
        let (resolver, stop, checks) = (resolver.clone(), stop.clone(), checks.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let total = resolver
                    .run(
                        CallOptions::new("bench::check").read_only(true),
                        |txn: &Txn| {
                            Box::pin(async move {
                                let row = txn
                                    .query_one_raw(stmt(
                                        txn.get_database_backend(),
                                        "SELECT sum(balance)::bigint AS s FROM ck_rep",
                                        vec![],
                                    ))
                                    .await?
                                    .expect("one row");
                                Ok::<_, conflictkit::Error>(row.try_get::<i64>("", "s")?)
                            })
                        },
                    )
                    .await
                    .map_err(|e| DbErr::Custom(e.to_string()))?;
                assert_eq!(total, ACCOUNTS * 1000, "a check sees a consistent snapshot");
                checks.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, DbErr>(())
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.map_err(|e| DbErr::Custom(e.to_string()))??;
    }
    let took = started.elapsed().as_secs_f64();
    let t = transfers.load(Ordering::Relaxed) as f64;
    let replays = (resolver.stats().retries - before.retries) as f64;
    Ok((
        t / took,
        checks.load(Ordering::Relaxed) as f64 / took,
        replays / t.max(1.0),
    ))
}

pub(crate) async fn run(
    target: &Target,
    replica_server: &str,
    cfg: &Config,
    sink: &mut JsonSink,
) -> Result<(), Box<dyn std::error::Error>> {
    let secs = cfg.ops.unwrap_or(DEFAULT_SECS) as u64;
    let primary = target
        .pool(PoolOpts {
            ping: false,
            session_serializable: false,
            max_connections: 32,
        })
        .await?;
    setup(&primary).await?;
    let db_name = target
        .url()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let replica = replica_pool(replica_server, &db_name).await?;
    let on_primary = ConflictResolver::builder(primary.clone()).build();
    let on_replica = ConflictResolver::builder(primary.clone())
        .replica(replica.clone())
        .build_checked()
        .await?;
    let mut results: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(), Vec::new()];
    for rep in 0..cfg.repeat {
        let mut order = [Route::Primary, Route::Replica];
        if rep % 2 == 1 {
            order.reverse();
        }
        for route in order {
            let resolver = match route {
                Route::Primary => &on_primary,
                Route::Replica => &on_replica,
            };
            let (tps, cps, rpt) = one_run(resolver, secs).await?;
            eprintln!(
                "  replicas checks on {:<8} rep {}: {tps:>8.1} transfers/s, {cps:>8.1} checks/s, {rpt:.3} replays/transfer",
                route.name(),
                rep + 1
            );
            sink.write(json!({
                "scenario": "replicas", "kind": "run", "route": route.name(), "rep": rep,
                "secs": secs, "writers": WRITERS, "readers": READERS,
                "transfers_per_s": tps, "checks_per_s": cps, "replays_per_transfer": rpt,
            }))?;
            results[route as usize].push((tps, cps, rpt));
        }
    }
    let stats = on_replica.replica_stats();
    let med =
        |r: &[(f64, f64, f64)], f: fn(&(f64, f64, f64)) -> f64| median(r.iter().map(f).collect());
    let mut table = Table::new(
        format!(
            "replicas on postgres: {WRITERS} transfer tasks + {READERS} balance checkers, {secs} s x {} runs (medians)",
            cfg.repeat
        ),
        vec![
            "checks run on",
            "transfers/s",
            "checks/s",
            "replays/transfer",
        ],
    );
    for route in [Route::Primary, Route::Replica] {
        let r = &results[route as usize];
        table.row(vec![
            route.name().to_owned(),
            num(med(r, |x| x.0), 1),
            num(med(r, |x| x.1), 1),
            num(med(r, |x| x.2), 3),
        ]);
    }
    table.print();
    let ratio = med(&results[1], |x| x.0) / med(&results[0], |x| x.0);
    println!(
        "transfer goodput ratio, checks on the replica / on the primary: {}",
        num(ratio, 2)
    );
    println!("replica-routed checks: {stats:?}");
    sink.write(json!({
        "scenario": "replicas", "kind": "median", "transfer_goodput_ratio": ratio,
        "on_replica": stats.on_replica, "primary_lagging": stats.primary_lagging,
        "primary_down": stats.primary_down,
    }))?;
    primary.close().await?;
    replica.close().await?;
    Ok(())
}
