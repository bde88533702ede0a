//! Scenario 2, **contention**: increments of K hot rows from T concurrent
//! tasks, every strategy side by side. Strategies are interleaved (the order
//! rotates from cell to cell), each cell is repeated, medians are reported.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use crate::Config;
use crate::db::{PoolOpts, Target};
use crate::report::{JsonSink, Table, median, num};
use crate::workload::{CellRun, Strategy, run_cell_on_nodes};

/// Default increments per cell (split across the tasks).
pub(crate) const DEFAULT_OPS: usize = 400;

pub(crate) async fn run(
    target: &Target,
    cfg: &Config,
    sink: &mut JsonSink,
) -> Result<(), Box<dyn std::error::Error>> {
    run_on_nodes(&[target], target.kind.name(), cfg, sink).await
}

/// The scenario with the tasks spread over the nodes of a cluster (one pool
/// per node), reported as `backend`.
pub(crate) async fn run_on_nodes(
    nodes: &[&Target],
    backend: &str,
    cfg: &Config,
    sink: &mut JsonSink,
) -> Result<(), Box<dyn std::error::Error>> {
    let max_t = cfg.threads.iter().copied().max().unwrap_or(1);
    let pool_opts = PoolOpts {
        ping: cfg.ping,
        session_serializable: false,
        max_connections: u32::try_from(max_t)? + 2,
    };
    let mut dbs = Vec::new();
    for node in nodes {
        dbs.push(node.pool(pool_opts).await?);
    }
    let ops = cfg.ops.unwrap_or(DEFAULT_OPS);
    let strategies = cfg.strategies.clone();
    let mut runs: BTreeMap<(usize, usize, Strategy), Vec<CellRun>> = BTreeMap::new();
    let mut cell_no = 0usize;
    for rep in 0..cfg.repeat {
        for &k in &cfg.rows {
            for &t in &cfg.threads {
                let mut order = strategies.clone();
                let shift = (rep + cell_no) % order.len().max(1);
                order.rotate_left(shift);
                cell_no += 1;
                for s in order {
                    let r = run_cell_on_nodes(&dbs, s, t, k, ops, cfg.cell_timeout).await?;
                    eprintln!(
                        "  contention {backend} K={k} T={t} {:<13} rep {}: {:>7.0} ops/s, {:.2} att/commit, p99 {:.1} ms{}{}",
                        s.name(),
                        rep + 1,
                        r.goodput(),
                        r.attempts_per_commit(),
                        r.pct_ms(99.0),
                        if r.cut { " (cut by the deadline)" } else { "" },
                        r.first_error
                            .as_deref()
                            .map(|e| format!(" ERROR: {e}"))
                            .unwrap_or_default()
                    );
                    sink.write(json!({
                        "scenario": "contention", "kind": "run", "backend": backend,
                        "pool": pool_opts.label(), "k": k, "t": t, "strategy": s.name(),
                        "rep": rep, "ops": ops, "committed": r.committed,
                        "elapsed_s": r.elapsed.as_secs_f64(), "goodput": r.goodput(),
                        "attempts_per_commit": r.attempts_per_commit(),
                        "p50_ms": r.pct_ms(50.0), "p99_ms": r.pct_ms(99.0), "max_ms": r.max_ms(),
                        "give_ups": r.give_ups, "errors": r.errors, "sum_delta": r.sum_delta,
                        "cut": r.cut, "final_limit": r.final_limit,
                    }))?;
                    runs.entry((k, t, s)).or_default().push(r);
                }
            }
        }
    }
    for db in dbs {
        db.close().await?;
    }
    report(backend, pool_opts, ops, cfg, &runs, sink)?;
    Ok(())
}

fn report(
    backend: &str,
    pool: PoolOpts,
    ops: usize,
    cfg: &Config,
    runs: &BTreeMap<(usize, usize, Strategy), Vec<CellRun>>,
    sink: &mut JsonSink,
) -> std::io::Result<()> {
    let mut table = Table::new(
        format!(
            "contention · {backend} · {ops} increments per cell · pool {} · medians of {} runs (give-ups, errors, lost: totals; p50/p99/max: committed calls only, – when a run committed none)",
            pool.label(),
            cfg.repeat
        ),
        vec![
            "K",
            "T",
            "strategy",
            "ops/s",
            "× FOR UPDATE",
            "att/commit",
            "p50 ms",
            "p99 ms",
            "max ms",
            "give-ups",
            "errors",
            "lost",
            "cut",
        ],
    );
    let med = |v: &[CellRun], f: &dyn Fn(&CellRun) -> f64| median(v.iter().map(f).collect());
    for &k in &cfg.rows {
        for &t in &cfg.threads {
            let fu = runs
                .get(&(k, t, Strategy::ForUpdate))
                .map_or(f64::NAN, |v| med(v, &|r| r.goodput()));
            for &s in &cfg.strategies {
                let Some(v) = runs.get(&(k, t, s)) else {
                    continue;
                };
                let goodput = med(v, &|r| r.goodput());
                let apc = med(v, &|r| r.attempts_per_commit());
                let p50 = med(v, &|r| r.pct_ms(50.0));
                let p99 = med(v, &|r| r.pct_ms(99.0));
                let max = med(v, &|r| r.max_ms());
                let give_ups: u64 = v.iter().map(|r| r.give_ups).sum();
                let errors: u64 = v.iter().map(|r| r.errors).sum();
                // negative delta = lost updates; positive = a commit reported as failed
                let lost: i64 = v.iter().map(|r| (-r.sum_delta).max(0)).sum();
                let mismatched = v.iter().filter(|r| r.sum_delta != 0).count();
                let cut = v.iter().filter(|r| r.cut).count();
                table.row(vec![
                    k.to_string(),
                    t.to_string(),
                    s.name().to_owned(),
                    num(goodput, 0),
                    num(goodput / fu, 2),
                    num(apc, 2),
                    num(p50, 1),
                    num(p99, 1),
                    num(max, 0),
                    give_ups.to_string(),
                    errors.to_string(),
                    if mismatched > 0 && lost == 0 {
                        format!("0 (sum off in {mismatched})")
                    } else {
                        lost.to_string()
                    },
                    format!("{cut}/{}", v.len()),
                ]);
                sink.write(json!({
                    "scenario": "contention", "kind": "median", "backend": backend,
                    "pool": pool.label(), "k": k, "t": t, "strategy": s.name(), "ops": ops,
                    "repeat": v.len(), "goodput": goodput, "x_for_update": goodput / fu,
                    "attempts_per_commit": apc, "p50_ms": p50, "p99_ms": p99, "max_ms": max,
                    "give_ups": give_ups, "errors": errors, "lost_updates": lost,
                    "sum_mismatches": mismatched, "cut_runs": cut,
                }))?;
            }
        }
    }
    table.print();
    Ok(())
}

/// Default wall-clock budget of one cell before it stops starting new ops.
pub(crate) const DEFAULT_CELL_TIMEOUT: Duration = Duration::from_secs(5);
