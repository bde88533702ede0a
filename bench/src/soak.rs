//! Scenario **soak**: a long run of contended transfers between a few hot
//! accounts through `#[managed_transaction]` functions with the default
//! settings (3 retries, adaptive contention control), one operation in ten a
//! read-only check that the money in the bank adds up, and at the end the
//! invariant: no lost update (balances sum to the opening total), no
//! double-applied one (every balance equals its opening plus its ledger
//! rows), no give-up, no error.
//!
//! `cargo run --release -p conflictkit-bench -- soak --pg URL --mysql URL --sqlite`
//! runs 10^5 operations per engine with 32 tasks (`--ops`, `--threads`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use conflictkit::{ConflictResolver, Txn, managed_transaction};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};
use serde_json::json;

use crate::Config;
use crate::db::{PoolOpts, Target};
use crate::report::{JsonSink, Table, num};

/// Default operations per engine.
pub(crate) const DEFAULT_OPS: usize = 100_000;
/// Default concurrent tasks.
pub(crate) const DEFAULT_TASKS: usize = 32;
const ACCOUNTS: i32 = 4;
const OPENING: i64 = 1_000_000_000;

fn stmt(b: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = if b == DbBackend::Postgres {
        let mut n = 0;
        sql.chars()
            .map(|c| {
                if c == '?' {
                    n += 1;
                    format!("${n}")
                } else {
                    c.to_string()
                }
            })
            .collect()
    } else {
        sql.to_owned()
    };
    Statement::from_sql_and_values(b, sql, values)
}

async fn balance(txn: &Txn, id: i32) -> Result<i64, DbErr> {
    let b = txn.get_database_backend();
    let row = txn
        .query_one_raw(stmt(
            b,
            "SELECT balance FROM soak_accounts WHERE id = ?",
            vec![id.into()],
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("account {id}")))?;
    row.try_get("", "balance")
}

async fn add(txn: &Txn, id: i32, amount: i64) -> Result<(), DbErr> {
    let b = txn.get_database_backend();
    let now = balance(txn, id).await?;
    txn.execute_raw(stmt(
        b,
        "UPDATE soak_accounts SET balance = ? WHERE id = ?",
        vec![(now + amount).into(), id.into()],
    ))
    .await?;
    txn.execute_raw(stmt(
        b,
        "INSERT INTO soak_ledger (account, amount) VALUES (?, ?)",
        vec![id.into(), amount.into()],
    ))
    .await?;
    Ok(())
}

/// Moves `amount` from `from` to `to` (read-modify-write of both rows).
#[managed_transaction(label = "soak::accounts")]
async fn transfer(txn: &Txn, from: i32, to: i32, amount: i64) -> Result<(), conflictkit::Error> {
    add(txn, from, -amount).await?;
    add(txn, to, amount).await?;
    Ok(())
}

/// The money in the bank, read in one snapshot. REPEATABLE READ: a
/// consistent snapshot without locks. (On MariaDB, SERIALIZABLE reads are
/// locking reads: a check holding shared locks on all four hot rows
/// deadlocks with the transfers and, at the default 3 retries, can give up.)
#[managed_transaction(read_only, isolation = "repeatable_read")]
async fn total(txn: &Txn) -> Result<i64, conflictkit::Error> {
    let mut sum = 0;
    for id in 1..=ACCOUNTS {
        sum += balance(txn, id).await?;
    }
    Ok(sum)
}

async fn setup(db: &sea_orm::DatabaseConnection) -> Result<(), DbErr> {
    let b = db.get_database_backend();
    let id = match b {
        DbBackend::Postgres => "BIGSERIAL PRIMARY KEY",
        DbBackend::MySql => "BIGINT AUTO_INCREMENT PRIMARY KEY",
        _ => "INTEGER PRIMARY KEY AUTOINCREMENT",
    };
    db.execute_unprepared(
        "CREATE TABLE soak_accounts (id INTEGER PRIMARY KEY, balance BIGINT NOT NULL)",
    )
    .await?;
    db.execute_unprepared(&format!(
        "CREATE TABLE soak_ledger (id {id}, account INTEGER NOT NULL, amount BIGINT NOT NULL)"
    ))
    .await?;
    for id in 1..=ACCOUNTS {
        db.execute_raw(stmt(
            b,
            "INSERT INTO soak_accounts (id, balance) VALUES (?, ?)",
            vec![id.into(), OPENING.into()],
        ))
        .await?;
    }
    Ok(())
}

/// What the workload saw.
#[derive(Default)]
struct Counts {
    transfers: AtomicU64,
    checks: AtomicU64,
    bad_checks: AtomicU64,
    failed: AtomicU64,
}

pub(crate) async fn run(
    target: &Target,
    cfg: &Config,
    sink: &mut JsonSink,
) -> Result<(), Box<dyn std::error::Error>> {
    let ops = cfg.ops.unwrap_or(DEFAULT_OPS);
    let tasks = if cfg.threads == [1, 4, 16, 64] {
        DEFAULT_TASKS
    } else {
        cfg.threads.iter().copied().max().unwrap_or(DEFAULT_TASKS)
    };
    let db = target
        .pool(PoolOpts {
            ping: false,
            session_serializable: false,
            max_connections: u32::try_from(tasks)?.min(32) + 2,
        })
        .await?;
    setup(&db).await?;
    let resolver = ConflictResolver::new(db.clone());
    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (r, counts) = (resolver.clone(), counts.clone());
            let share = ops / tasks + usize::from(t < ops % tasks);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(share);
                for _ in 0..share {
                    let (check, from, to, amount) = {
                        use rand::Rng;
                        let mut rng = rand::rng();
                        let from = rng.random_range(1..=ACCOUNTS);
                        let to = (from % ACCOUNTS) + 1;
                        (
                            rng.random_ratio(1, 10),
                            from,
                            to,
                            rng.random_range(1..=1000i64),
                        )
                    };
                    if check {
                        match total(&r).await {
                            Ok(sum) if sum == i64::from(ACCOUNTS) * OPENING => {}
                            Ok(_) => {
                                counts.bad_checks.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                eprintln!("  soak: a balance check failed: {e}");
                                counts.failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        counts.checks.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let t0 = Instant::now();
                    match transfer(&r, from, to, amount).await {
                        Ok(()) => {
                            counts.transfers.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            eprintln!("  soak: a transfer failed: {e}");
                            counts.failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    latencies.push(t0.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = Vec::with_capacity(ops);
    for h in handles {
        latencies.extend(h.await?);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let i = (((p / 100.0) * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
        latencies[i - 1].as_secs_f64() * 1000.0
    };

    // the invariant, read after the run
    let b = db.get_database_backend();
    let mut mismatched = 0;
    let mut sum = 0;
    for id in 1..=ACCOUNTS {
        let bal: i64 = db
            .query_one_raw(stmt(
                b,
                "SELECT balance FROM soak_accounts WHERE id = ?",
                vec![id.into()],
            ))
            .await?
            .ok_or("account missing")?
            .try_get("", "balance")?;
        let int = if b == DbBackend::MySql {
            "SIGNED"
        } else {
            "BIGINT"
        };
        let ledger: i64 = db
            .query_one_raw(stmt(
                b,
                &format!(
                    "SELECT CAST(COALESCE(SUM(amount), 0) AS {int}) AS s FROM soak_ledger WHERE account = ?"
                ),
                vec![id.into()],
            ))
            .await?
            .ok_or("no sum")?
            .try_get("", "s")?;
        sum += bal;
        if bal != OPENING + ledger {
            mismatched += 1;
        }
    }
    let lost = (i64::from(ACCOUNTS) * OPENING - sum).abs();
    let transfers = counts.transfers.load(Ordering::Relaxed);
    let rows: i64 = db
        .query_one_raw(stmt(b, "SELECT COUNT(*) AS n FROM soak_ledger", vec![]))
        .await?
        .ok_or("no count")?
        .try_get("", "n")?;
    let double_applied = rows - 2 * i64::try_from(transfers)?;
    let stats = resolver.stats();
    let attempts_per_commit =
        (stats.success + stats.retries) as f64 / (stats.success.max(1)) as f64;
    let label = target.label();
    let backend = label.as_str();
    let mut table = Table::new(
        format!(
            "soak · {backend} · {ops} operations, {tasks} tasks, {ACCOUNTS} hot accounts, 1 in 10 a read-only check · defaults (p50/p99/max: every transfer, failed ones too)"
        ),
        vec![
            "transfers",
            "checks",
            "seconds",
            "ops/s",
            "att/commit",
            "p50 ms",
            "p99 ms",
            "max ms",
            "give-ups",
            "errors",
            "bad checks",
            "lost",
            "ledger mismatches",
            "double-applied",
        ],
    );
    let checks = counts.checks.load(Ordering::Relaxed);
    table.row(vec![
        transfers.to_string(),
        checks.to_string(),
        num(elapsed.as_secs_f64(), 1),
        num((transfers + checks) as f64 / elapsed.as_secs_f64(), 0),
        num(attempts_per_commit, 2),
        num(pct(50.0), 1),
        num(pct(99.0), 1),
        num(pct(100.0), 0),
        stats.unresolved.to_string(),
        counts.failed.load(Ordering::Relaxed).to_string(),
        counts.bad_checks.load(Ordering::Relaxed).to_string(),
        lost.to_string(),
        mismatched.to_string(),
        double_applied.to_string(),
    ]);
    table.print();
    sink.write(json!({
        "scenario": "soak", "backend": backend, "ops": ops, "tasks": tasks,
        "transfers": transfers, "checks": checks, "seconds": elapsed.as_secs_f64(),
        "attempts_per_commit": attempts_per_commit, "p50_ms": pct(50.0), "p99_ms": pct(99.0),
        "give_ups": stats.unresolved, "errors": counts.failed.load(Ordering::Relaxed),
        "bad_checks": counts.bad_checks.load(Ordering::Relaxed), "lost": lost,
        "ledger_mismatches": mismatched, "double_applied": double_applied,
    }))?;
    let failed = stats.unresolved > 0
        || counts.failed.load(Ordering::Relaxed) > 0
        || counts.bad_checks.load(Ordering::Relaxed) > 0
        || lost != 0
        || mismatched != 0
        || double_applied != 0;
    if failed {
        return Err(
            format!("soak on {backend}: the invariant or the run failed (see the table)").into(),
        );
    }
    println!("soak on {backend}: OK");
    Ok(())
}
