//! Scenario **metrics**: what recording the resolver's metrics costs, on
//! the uncontended cell (1 task, 1 row) and the one-hot-row cell (16
//! tasks, 1 row), `resolver.run` with the defaults.
//!
//! The harness is built with conflictkit's `metrics` feature; "off" runs
//! with no recorder taking the values (what an application that installs
//! none pays: the labels are still built), "on" with metrics-util's
//! debugging recorder taking every value (a registry lookup and an atomic
//! update per metric, as an exporter's recorder does). A recorder is global
//! and cannot be removed, so one is installed behind a switch, and the two
//! alternate within every repetition. Without the feature (conflictkit's
//! default) the recording functions are empty and cost nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_util::debugging::DebuggingRecorder;
use serde_json::json;

use crate::Config;
use crate::db::{PoolOpts, Target};
use crate::report::{JsonSink, Table, median, num};
use crate::workload::{Strategy, run_cell};

/// Increments per cell unless `--ops` says otherwise.
const DEFAULT_OPS: usize = 1000;

/// A recorder that takes values only while switched on.
struct Switch {
    on: AtomicBool,
    inner: DebuggingRecorder,
}

impl Recorder for Switch {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_counter(key, unit, description)
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_gauge(key, unit, description)
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_histogram(key, unit, description)
    }
    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        if self.on.load(Ordering::Relaxed) {
            self.inner.register_counter(key, metadata)
        } else {
            Counter::noop()
        }
    }
    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        if self.on.load(Ordering::Relaxed) {
            self.inner.register_gauge(key, metadata)
        } else {
            Gauge::noop()
        }
    }
    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        if self.on.load(Ordering::Relaxed) {
            self.inner.register_histogram(key, metadata)
        } else {
            Histogram::noop()
        }
    }
}

/// The process's recorder switch, installed on first use.
fn switch() -> Result<Arc<Switch>, Box<dyn std::error::Error>> {
    static SWITCH: OnceLock<Arc<Switch>> = OnceLock::new();
    if let Some(s) = SWITCH.get() {
        return Ok(s.clone());
    }
    let s = Arc::new(Switch {
        on: AtomicBool::new(false),
        inner: DebuggingRecorder::new(),
    });
    metrics::set_global_recorder(SharedSwitch(s.clone()))
        .map_err(|e| format!("install the recorder: {e}"))?;
    Ok(SWITCH.get_or_init(|| s).clone())
}

/// The global recorder: the switch, shared with the scenario.
struct SharedSwitch(Arc<Switch>);

impl Recorder for SharedSwitch {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_counter(key, unit, description)
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_gauge(key, unit, description)
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_histogram(key, unit, description)
    }
    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.0.register_counter(key, metadata)
    }
    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.0.register_gauge(key, metadata)
    }
    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        self.0.register_histogram(key, metadata)
    }
}

pub(crate) async fn run(
    target: &Target,
    cfg: &Config,
    sink: &mut JsonSink,
) -> Result<(), Box<dyn std::error::Error>> {
    let switch = switch()?;
    let label = target.label();
    let backend = label.as_str();
    let ops = cfg.ops.unwrap_or(DEFAULT_OPS);
    let pool = target
        .pool(PoolOpts {
            ping: false,
            session_serializable: false,
            max_connections: 16,
        })
        .await?;
    let mut table = Table::new(
        format!(
            "metrics on vs off, {backend}, {ops} increments per cell, median of {} runs",
            cfg.repeat
        ),
        vec![
            "cell",
            "metrics",
            "ops/s",
            "p50 ms",
            "p99 ms",
            "attempts/commit",
        ],
    );
    for (cell, tasks) in [("uncontended", 1), ("one hot row", 16)] {
        // warm-up, unmeasured
        run_cell(
            &pool,
            Strategy::CkAdaptive,
            tasks,
            1,
            ops / 10 + 1,
            cfg.cell_timeout,
        )
        .await?;
        let mut runs: [Vec<crate::workload::CellRun>; 2] = [Vec::new(), Vec::new()];
        for rep in 0..cfg.repeat {
            let order = if rep % 2 == 0 {
                [false, true]
            } else {
                [true, false]
            };
            for on in order {
                switch.on.store(on, Ordering::Relaxed);
                let r =
                    run_cell(&pool, Strategy::CkAdaptive, tasks, 1, ops, cfg.cell_timeout).await?;
                let ops_s = r.committed as f64 / r.elapsed.as_secs_f64();
                let state = if on { "on" } else { "off" };
                eprintln!(
                    "  metrics {backend} {cell:<12} {state:<3} rep {}: {ops_s:>8.0} ops/s",
                    rep + 1
                );
                sink.write(json!({
                    "scenario": "metrics", "kind": "run", "backend": backend, "cell": cell,
                    "metrics": state, "rep": rep, "ops": ops, "committed": r.committed,
                    "elapsed_s": r.elapsed.as_secs_f64(), "ops_per_s": ops_s,
                    "p50_ms": r.pct_ms(50.0), "p99_ms": r.pct_ms(99.0),
                    "attempts_per_commit": r.attempts_per_commit(), "errors": r.errors,
                }))?;
                runs[usize::from(on)].push(r);
            }
        }
        switch.on.store(false, Ordering::Relaxed);
        for (on, rs) in runs.iter().enumerate() {
            let ops_s = median(
                rs.iter()
                    .map(|r| r.committed as f64 / r.elapsed.as_secs_f64())
                    .collect(),
            );
            table.row(vec![
                cell.to_owned(),
                if on == 1 { "on" } else { "off" }.to_owned(),
                num(ops_s, 0),
                num(median(rs.iter().map(|r| r.pct_ms(50.0)).collect()), 2),
                num(median(rs.iter().map(|r| r.pct_ms(99.0)).collect()), 2),
                num(
                    median(rs.iter().map(|r| r.attempts_per_commit()).collect()),
                    2,
                ),
            ]);
        }
    }
    table.print();
    pool.close().await?;
    Ok(())
}
