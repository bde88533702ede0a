//! Scenario 2, **contention**: increments of K hot rows from T concurrent
//! tasks in P processes, every strategy side by side. Strategies are
//! interleaved (the order rotates from cell to cell), each cell is repeated,
//! medians are reported, and with `--charts DIR` drawn (one SVG per engine
//! and K).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use crate::Config;
use crate::charts::{self, Median};
use crate::db::{PoolOpts, Target};
use crate::procs::run_cell_procs;
use crate::report::{JsonSink, Table, median, num};
use crate::workload::{CellRun, Strategy, run_cell_on_nodes};

/// Default increments per cell (split across the tasks).
pub(crate) const DEFAULT_OPS: usize = 400;

pub(crate) async fn run(
    target: &Target,
    cfg: &Config,
    sink: &mut JsonSink,
) -> Result<(), Box<dyn std::error::Error>> {
    let label = target.label();
    let medians = run_cells(&[target], &label, cfg, sink).await?;
    if let Some(dir) = &cfg.charts {
        for path in charts::contention(dir, &label, cfg.ops.unwrap_or(DEFAULT_OPS), &medians)? {
            eprintln!("  chart: {}", path.display());
        }
    }
    Ok(())
}

/// The scenario with the tasks spread over the nodes of a cluster (one pool
/// per node), reported as `backend`; one process (`--procs 1`).
pub(crate) async fn run_on_nodes(
    nodes: &[&Target],
    backend: &str,
    cfg: &Config,
    sink: &mut JsonSink,
) -> Result<(), Box<dyn std::error::Error>> {
    if cfg.procs.iter().any(|&p| p != 1) {
        return Err(
            "--procs runs on one server (--pg, --mysql, --sqlite), not with --galera".into(),
        );
    }
    run_cells(nodes, backend, cfg, sink).await?;
    Ok(())
}

/// Every cell (K × T × P, strategies interleaved) on `nodes` (one pool each;
/// processes are started only on one node), the table, and the medians.
async fn run_cells(
    nodes: &[&Target],
    backend: &str,
    cfg: &Config,
    sink: &mut JsonSink,
) -> Result<Vec<Median>, Box<dyn std::error::Error>> {
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
    if let Some(settings) = nodes[0].sqlite_settings(&dbs[0]).await? {
        // read back from a pool connection: what the cells really run with
        eprintln!("  contention {backend}: {settings}");
    }
    let ops = cfg.ops.unwrap_or(DEFAULT_OPS);
    let mut runs: BTreeMap<Cell, Vec<CellRun>> = BTreeMap::new();
    let mut cell_no = 0usize;
    for rep in 0..cfg.repeat {
        for &k in &cfg.rows {
            for &t in &cfg.threads {
                for &p in &cfg.procs {
                    if t < p {
                        if rep == 0 {
                            eprintln!(
                                "  contention {backend} K={k} T={t} P={p}: skipped (fewer tasks than processes)"
                            );
                        }
                        continue;
                    }
                    let mut order = strategies_for(cfg, k);
                    let shift = (rep + cell_no) % order.len().max(1);
                    order.rotate_left(shift);
                    cell_no += 1;
                    for s in order {
                        let r = if p == 1 {
                            run_cell_on_nodes(&dbs, s, t, k, ops, cfg.cell_timeout).await?
                        } else {
                            run_cell_procs(
                                nodes[0],
                                &dbs[0],
                                s,
                                t,
                                k,
                                p,
                                ops,
                                cfg.cell_timeout,
                                cfg.ping,
                            )
                            .await
                            .map_err(|e| e.to_string())?
                        };
                        eprintln!(
                            "  contention {backend} K={k} T={t} P={p} {:<13} rep {}: {:>7.0} ops/s, {:.2} att/commit, p99 {:.1} ms, {} give-ups{}{}{}",
                            s.name(),
                            rep + 1,
                            r.goodput(),
                            r.attempts_per_commit(),
                            r.pct_ms(99.0),
                            r.give_ups,
                            r.batches
                                .map(|b| format!(
                                    ", {:.1} calls/batch (largest {}, {} batches)",
                                    b.mean_size(),
                                    b.largest,
                                    b.batches
                                ))
                                .unwrap_or_default(),
                            if r.cut { " (cut by the deadline)" } else { "" },
                            r.first_error
                                .as_deref()
                                .map(|e| format!(" ERROR: {e}"))
                                .unwrap_or_default()
                        );
                        sink.write(json!({
                            "scenario": "contention", "kind": "run", "backend": backend,
                            "pool": pool_opts.label(), "k": k, "t": t, "procs": p, "strategy": s.name(),
                            "rep": rep, "ops": ops, "committed": r.committed,
                            "elapsed_s": r.elapsed.as_secs_f64(), "goodput": r.goodput(),
                            "attempts_per_commit": r.attempts_per_commit(),
                            "p50_ms": r.pct_ms(50.0), "p99_ms": r.pct_ms(99.0), "max_ms": r.max_ms(),
                            "give_ups": r.give_ups, "errors": r.errors, "sum_delta": r.sum_delta,
                            "cut": r.cut, "final_limit": r.final_limit,
                            "batches": r.batches.map(|b| b.batches),
                            "batch_members": r.batches.map(|b| b.members),
                            "batch_largest": r.batches.map(|b| b.largest),
                            "mean_batch": r.batches.map(|b| b.mean_size()),
                        }))?;
                        runs.entry(Cell {
                            k,
                            t,
                            p,
                            strategy: s,
                        })
                        .or_default()
                        .push(r);
                    }
                }
            }
        }
    }
    for db in dbs {
        db.close().await?;
    }
    Ok(report(backend, pool_opts, ops, cfg, &runs, sink)?)
}

/// The strategies of a cell with `k` rows: `ck-keyed` only where there are
/// rows to tell apart (with one row it is `ck-adaptive` with a constant key),
/// unless `--strategies` names it.
fn strategies_for(cfg: &Config, k: usize) -> Vec<Strategy> {
    cfg.strategies
        .iter()
        .copied()
        .filter(|&s| s != Strategy::CkKeyed || k > 1 || cfg.strategies_given)
        .collect()
}

/// The coordinates of a cell: K rows, T tasks in total over P processes, one strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Cell {
    k: usize,
    t: usize,
    p: usize,
    strategy: Strategy,
}

fn report(
    backend: &str,
    pool: PoolOpts,
    ops: usize,
    cfg: &Config,
    runs: &BTreeMap<Cell, Vec<CellRun>>,
    sink: &mut JsonSink,
) -> std::io::Result<Vec<Median>> {
    let mut table = Table::new(
        format!(
            "contention · {backend} · {ops} increments per cell · T tasks in total over P processes · pool {} per process · medians of {} runs (give-ups, errors, lost: totals; p50/p99/max: latency of committed calls only, give-ups counted in their column; – when a run committed none)",
            pool.label(),
            cfg.repeat
        ),
        vec![
            "K",
            "T",
            "P",
            "strategy",
            "ops/s",
            "× FOR UPDATE",
            "att/commit",
            "p50 ms",
            "p99 ms",
            "max ms",
            "give-ups",
            "calls/batch",
            "errors",
            "lost",
            "cut",
        ],
    );
    let med = |v: &[CellRun], f: &dyn Fn(&CellRun) -> f64| median(v.iter().map(f).collect());
    let mut medians = Vec::new();
    for (cell, v) in runs {
        let Cell {
            k,
            t,
            p,
            strategy: s,
        } = *cell;
        let fu = runs
            .get(&Cell {
                strategy: Strategy::ForUpdate,
                ..*cell
            })
            .map_or(f64::NAN, |v| med(v, &|r| r.goodput()));
        let goodput = med(v, &|r| r.goodput());
        let apc = med(v, &|r| r.attempts_per_commit());
        let p50 = med(v, &|r| r.pct_ms(50.0));
        let p99 = med(v, &|r| r.pct_ms(99.0));
        let max = med(v, &|r| r.max_ms());
        // ck-batch: calls per batch from the resolver's batch_stats (NaN, "–", elsewhere)
        let mean_batch = med(v, &|r| r.mean_batch());
        let give_ups: u64 = v.iter().map(|r| r.give_ups).sum();
        let errors: u64 = v.iter().map(|r| r.errors).sum();
        // negative delta = lost updates; positive = a commit reported as failed
        let lost: i64 = v.iter().map(|r| (-r.sum_delta).max(0)).sum();
        let mismatched = v.iter().filter(|r| r.sum_delta != 0).count();
        let cut = v.iter().filter(|r| r.cut).count();
        table.row(vec![
            k.to_string(),
            t.to_string(),
            p.to_string(),
            s.name().to_owned(),
            num(goodput, 0),
            num(goodput / fu, 2),
            num(apc, 2),
            num(p50, 1),
            num(p99, 1),
            num(max, 0),
            give_ups.to_string(),
            num(mean_batch, 1),
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
            "pool": pool.label(), "k": k, "t": t, "procs": p, "strategy": s.name(), "ops": ops,
            "repeat": v.len(), "goodput": goodput, "x_for_update": goodput / fu,
            "attempts_per_commit": apc, "p50_ms": p50, "p99_ms": p99, "max_ms": max,
            "give_ups": give_ups, "errors": errors, "lost_updates": lost,
            "mean_batch": if mean_batch.is_nan() { None } else { Some(mean_batch) },
            "sum_mismatches": mismatched, "cut_runs": cut,
        }))?;
        medians.push(Median {
            k,
            t,
            procs: p,
            strategy: s,
            goodput,
            p99_ms: p99,
        });
    }
    table.print();
    Ok(medians)
}

/// Default wall-clock budget of one cell before it stops starting new ops.
pub(crate) const DEFAULT_CELL_TIMEOUT: Duration = Duration::from_secs(5);
