//! Scenario 1, **overhead**: uncontended increments from one task,
//! `resolver.run` against the same transaction written by hand with sea-orm,
//! on pools with and without the per-checkout ping, plus the hand-written
//! floor with the isolation level set once per connection.
//!
//! Both sides do the same work: on SQLite the resolver begins with
//! `BEGIN IMMEDIATE` (its default for read-write calls), so the hand-written
//! transaction does too (a deferred `BEGIN` would skip taking the write lock
//! up front).

use std::collections::BTreeMap;

use serde_json::json;

use crate::Config;
use crate::db::{Kind, PoolOpts, Target};
use crate::report::{JsonSink, Table, median, num};
use crate::workload::{CellRun, Strategy, run_cell};

/// Default increments per cell.
pub(crate) const DEFAULT_OPS: usize = 1000;

/// One measured way: what runs, on which pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Variant {
    strategy: Strategy,
    ping: bool,
    session_iso: bool,
}

impl Variant {
    fn name(self) -> &'static str {
        match self.strategy {
            Strategy::CkAdaptive => "resolver.run",
            Strategy::HandSessionIso => "hand, isolation once per connection",
            Strategy::ForUpdate => "hand-written begin immediate/commit",
            _ => "hand-written begin/commit",
        }
    }
}

pub(crate) async fn run(
    target: &Target,
    cfg: &Config,
    sink: &mut JsonSink,
) -> Result<(), Box<dyn std::error::Error>> {
    let label = target.label();
    let backend = label.as_str();
    let ops = cfg.ops.unwrap_or(DEFAULT_OPS);
    let hand = hand_strategy(target.kind);
    let mut variants = Vec::new();
    for ping in [true, false] {
        variants.push(Variant {
            strategy: hand,
            ping,
            session_iso: false,
        });
        variants.push(Variant {
            strategy: Strategy::CkAdaptive,
            ping,
            session_iso: false,
        });
    }
    if target.kind != Kind::Sqlite {
        variants.push(Variant {
            strategy: Strategy::HandSessionIso,
            ping: false,
            session_iso: true,
        });
    }
    let mut pools = BTreeMap::new();
    for v in &variants {
        if let std::collections::btree_map::Entry::Vacant(e) = pools.entry((v.ping, v.session_iso))
        {
            e.insert(
                target
                    .pool(PoolOpts {
                        ping: v.ping,
                        session_serializable: v.session_iso,
                        max_connections: 2,
                    })
                    .await?,
            );
        }
    }
    // warm-up: one short unmeasured cell per variant
    for v in &variants {
        run_cell(
            &pools[&(v.ping, v.session_iso)],
            v.strategy,
            1,
            1,
            ops / 10 + 1,
            cfg.cell_timeout,
        )
        .await?;
    }
    let mut runs: BTreeMap<Variant, Vec<CellRun>> = BTreeMap::new();
    for rep in 0..cfg.repeat {
        let mut order = variants.clone();
        let shift = rep % order.len();
        order.rotate_left(shift);
        for v in order {
            let pool = PoolOpts {
                ping: v.ping,
                session_serializable: v.session_iso,
                max_connections: 2,
            };
            let r = run_cell(
                &pools[&(v.ping, v.session_iso)],
                v.strategy,
                1,
                1,
                ops,
                cfg.cell_timeout,
            )
            .await?;
            let us = us_per_op(&r);
            eprintln!(
                "  overhead {backend} {:<36} {:<20} rep {}: {us:>8.1} µs/op{}",
                v.name(),
                pool.label(),
                rep + 1,
                r.first_error
                    .as_deref()
                    .map(|e| format!(" ERROR: {e}"))
                    .unwrap_or_default()
            );
            sink.write(json!({
                "scenario": "overhead", "kind": "run", "backend": backend, "variant": v.name(),
                "pool": pool.label(), "rep": rep, "ops": ops, "committed": r.committed,
                "elapsed_s": r.elapsed.as_secs_f64(), "us_per_op": us,
                "p50_ms": r.pct_ms(50.0), "p99_ms": r.pct_ms(99.0), "attempts_per_commit": r.attempts_per_commit(),
                "errors": r.errors, "sum_delta": r.sum_delta,
            }))?;
            runs.entry(v).or_default().push(r);
        }
    }
    for pool in pools.into_values() {
        pool.close().await?;
    }

    let mut table = Table::new(
        format!(
            "overhead · {backend} · 1 task, {ops} uncontended increments · medians of {} runs (p50/p99: committed calls)",
            cfg.repeat
        ),
        vec![
            "way",
            "pool",
            "µs/op",
            "ops/s",
            "p50 ms",
            "p99 ms",
            "÷ hand, same pool",
        ],
    );
    for v in &variants {
        let rs = &runs[v];
        let us = median(rs.iter().map(us_per_op).collect());
        let hand_variant = Variant {
            strategy: hand,
            ..*v
        };
        // paired ratio: each run against the hand-written run of the same repeat
        let ratio = match (v.strategy, runs.get(&hand_variant)) {
            (Strategy::CkAdaptive, Some(hs)) => median(
                rs.iter()
                    .zip(hs)
                    .map(|(a, b)| us_per_op(a) / us_per_op(b))
                    .collect(),
            ),
            _ => f64::NAN,
        };
        let label = PoolOpts {
            ping: v.ping,
            session_serializable: v.session_iso,
            max_connections: 2,
        }
        .label();
        table.row(vec![
            v.name().to_owned(),
            label.to_owned(),
            num(us, 1),
            num(1e6 / us, 0),
            num(median(rs.iter().map(|r| r.pct_ms(50.0)).collect()), 3),
            num(median(rs.iter().map(|r| r.pct_ms(99.0)).collect()), 3),
            num(ratio, 3),
        ]);
        sink.write(json!({
            "scenario": "overhead", "kind": "median", "backend": backend, "variant": v.name(),
            "pool": label, "ops": ops, "repeat": rs.len(), "us_per_op": us,
            "ratio_vs_hand_same_pool": ratio,
            "errors": rs.iter().map(|r| r.errors).sum::<u64>(),
            "sum_mismatches": rs.iter().filter(|r| r.sum_delta != 0).count(),
        }))?;
    }
    table.print();
    Ok(())
}

/// The hand-written transaction the resolver is compared with: SERIALIZABLE
/// begin/commit, and on SQLite `BEGIN IMMEDIATE`/commit, as the resolver
/// begins there (`Strategy::ForUpdate` is that form on SQLite).
fn hand_strategy(kind: Kind) -> Strategy {
    if kind == Kind::Sqlite {
        Strategy::ForUpdate
    } else {
        Strategy::JitterHand
    }
}

fn us_per_op(r: &CellRun) -> f64 {
    r.elapsed.as_secs_f64() * 1e6 / r.committed.max(1) as f64
}
