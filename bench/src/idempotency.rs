//! Scenario **idempotency**: what an idempotency key costs per call. The
//! same increment through `resolver.run` (no key) and through
//! `resolver.run_idempotent` with a new key per call (the key claimed, the
//! outcome stored, in the call's transaction), plus the repeat of a stored
//! key (answered from the table, no transaction). Two settings: one task
//! (uncontended) and `--threads`' largest count on one hot row.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use conflictkit::resolver::idempotency::{IdempotencyKey, migrate_idempotency};
use conflictkit::resolver::{BodyFuture, CallOptions};
use conflictkit::{ConflictResolver, Txn};
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::Config;
use crate::db::{PoolOpts, reset_counter};
use crate::report::{JsonSink, Table, median, num};

/// Default calls per cell.
pub(crate) const DEFAULT_OPS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Way {
    Plain,
    Fresh,
    Repeat,
}

impl Way {
    const ALL: [Way; 3] = [Way::Plain, Way::Fresh, Way::Repeat];

    fn name(self) -> &'static str {
        match self {
            Way::Plain => "resolver.run, no key",
            Way::Fresh => "run_idempotent, a new key per call",
            Way::Repeat => "run_idempotent, a stored key (repeat)",
        }
    }
}

/// The body every way runs: one increment of the hot row.
fn bump(txn: &Txn) -> BodyFuture<'static, '_, i64, conflictkit::Error> {
    Box::pin(async move {
        txn.execute_unprepared("UPDATE ck_counter SET n = n + 1 WHERE id = 0")
            .await?;
        Ok(1)
    })
}

/// One call of `way`; `n` numbers the call (its key).
async fn call(
    r: &ConflictResolver,
    way: Way,
    cell: usize,
    n: usize,
) -> Result<i64, conflictkit::Error> {
    let body = bump;
    let opts = CallOptions::new("bench::idempotency");
    match way {
        Way::Plain => r.run(opts, body).await,
        Way::Fresh | Way::Repeat => {
            let key = match way {
                Way::Fresh => format!("cell-{cell}-call-{n}"),
                _ => "the-stored-key".to_owned(),
            };
            let key = IdempotencyKey::new(key).map_err(sea_orm::DbErr::from)?;
            r.run_idempotent(opts.idempotency_key(key), body).await
        }
    }
}

pub(crate) async fn run(
    target: &crate::db::Target,
    cfg: &Config,
    sink: &mut JsonSink,
) -> Result<(), Box<dyn std::error::Error>> {
    let label = target.label();
    let backend = label.as_str();
    let ops = cfg.ops.unwrap_or(DEFAULT_OPS);
    let hot = cfg.threads.iter().copied().max().unwrap_or(1).max(2);
    let db = target
        .pool(PoolOpts {
            ping: false,
            session_serializable: false,
            max_connections: (hot as u32) + 2,
        })
        .await?;
    migrate_idempotency(&db).await?;
    reset_counter(&db, 1).await?;
    let r = ConflictResolver::new(db.clone());
    call(&r, Way::Repeat, 0, 0).await?; // the stored key
    let cell = Arc::new(AtomicUsize::new(1));
    let mut results: BTreeMap<(usize, Way), Vec<f64>> = BTreeMap::new();
    for rep in 0..=cfg.repeat {
        for tasks in [1, hot] {
            for way in Way::ALL {
                let id = cell.fetch_add(1, Ordering::Relaxed);
                let next = Arc::new(AtomicUsize::new(0));
                let started = Instant::now();
                let workers: Vec<_> = (0..tasks)
                    .map(|_| {
                        let (r, next) = (r.clone(), next.clone());
                        tokio::spawn(async move {
                            loop {
                                let n = next.fetch_add(1, Ordering::Relaxed);
                                if n >= ops {
                                    return Ok::<_, conflictkit::Error>(());
                                }
                                call(&r, way, id, n).await?;
                            }
                        })
                    })
                    .collect();
                for w in workers {
                    w.await??;
                }
                let us = started.elapsed().as_secs_f64() * 1e6 / ops as f64;
                if rep == 0 {
                    continue; // warm-up
                }
                eprintln!(
                    "  idempotency {backend} {tasks:>3} task(s) {:<40} rep {rep}: {us:>8.1} µs/call",
                    way.name()
                );
                sink.write(json!({
                    "scenario": "idempotency", "kind": "run", "backend": backend, "way": way.name(),
                    "tasks": tasks, "rep": rep, "ops": ops, "us_per_call": us,
                }))?;
                results.entry((tasks, way)).or_default().push(us);
            }
        }
    }
    let mut table = Table::new(
        format!(
            "idempotency · {backend} · {ops} calls on one row · medians of {} runs",
            cfg.repeat
        ),
        vec!["tasks", "way", "µs/call", "calls/s", "÷ no key"],
    );
    for ((tasks, way), v) in &results {
        let us = median(v.clone());
        let base = median(results[&(*tasks, Way::Plain)].clone());
        table.row(vec![
            tasks.to_string(),
            way.name().to_owned(),
            num(us, 1),
            num(1e6 / us, 0),
            num(us / base, 2),
        ]);
        sink.write(json!({
            "scenario": "idempotency", "kind": "median", "backend": backend, "way": way.name(),
            "tasks": tasks, "us_per_call": us, "ratio_vs_no_key": us / base,
        }))?;
    }
    table.print();
    db.close().await?;
    Ok(())
}
