//! Contention cells across OS processes (`--procs P`): the harness runs its
//! own binary P times as workers (`bench worker <spec>`, not listed in
//! `--help`), each with a pool and a resolver of its own, as P instances of a
//! service would run.
//!
//! The protocol, one line at a time on the worker's stdin and stdout:
//! the worker connects (every pool connection opened), builds its runner and
//! prints `ready`; once every worker is ready the parent writes `go` to each
//! and starts its clock; a worker runs its share of the tasks and increments
//! and prints `result <json>` (its counts and every latency sample). The
//! parent stops the clock at the last result, merges the samples (percentiles
//! over all of them, never averages of per-process percentiles) and checks
//! the counters' sum against the commits of all workers.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::batched::BatchCounts;
use crate::db::{Kind, PoolOpts, Synchronous, Target};
use crate::workload::{CellRun, Runner, Strategy, run_tasks, share};

/// The first argument that makes the binary a worker.
pub(crate) const WORKER_ARG: &str = "worker";

/// What one worker runs: its share of a cell.
#[derive(Debug, Serialize, Deserialize)]
struct WorkerSpec {
    kind: String,
    url: String,
    /// SQLite's `synchronous` (`Synchronous::name`), `None`: the default.
    sqlite_synchronous: Option<String>,
    strategy: String,
    ping: bool,
    tasks: usize,
    rows: usize,
    ops: usize,
    deadline_s: f64,
}

/// What one worker did, as it reports it.
#[derive(Debug, Serialize, Deserialize)]
struct WorkerReport {
    committed: u64,
    give_ups: u64,
    errors: u64,
    attempts: u64,
    /// Latencies of committed ops, in nanoseconds.
    latencies_ns: Vec<u64>,
    cut: bool,
    final_limit: Option<u32>,
    /// `ck-batch`: this worker's resolver's batch counts.
    batches: Option<BatchCounts>,
    first_error: Option<String>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One contention cell run by `procs` worker processes: `t` tasks and `ops`
/// increments in total, split over them. `db` (the parent's pool on the
/// same database) resets the counters before and checks the sum after.
#[allow(clippy::too_many_arguments)] // one cell's coordinates, as `run_cell` takes them
pub(crate) async fn run_cell_procs(
    target: &Target,
    db: &DatabaseConnection,
    strategy: Strategy,
    t: usize,
    k: usize,
    procs: usize,
    ops: usize,
    deadline: Duration,
    ping: bool,
) -> Result<CellRun, BoxError> {
    if t < procs {
        return Err(format!("{t} tasks cannot be split over {procs} processes").into());
    }
    crate::db::reset_counter(db, k).await?;
    let exe = std::env::current_exe()?;
    let mut workers = Vec::with_capacity(procs);
    for i in 0..procs {
        let spec = WorkerSpec {
            kind: target.kind.name().to_owned(),
            url: target.url().to_owned(),
            sqlite_synchronous: target.sqlite_synchronous().map(|s| s.name().to_owned()),
            strategy: strategy.name().to_owned(),
            ping,
            tasks: share(t, procs, i),
            rows: k,
            ops: share(ops, procs, i),
            deadline_s: deadline.as_secs_f64(),
        };
        workers.push(Worker::spawn(&exe, &spec)?);
    }
    for (i, w) in workers.iter_mut().enumerate() {
        w.expect_ready()
            .await
            .map_err(|e| format!("worker {i}: {e}"))?;
    }
    let start = Instant::now();
    for w in &mut workers {
        w.stdin.write_all(b"go\n").await?;
        w.stdin.flush().await?;
    }
    let mut reports = Vec::with_capacity(procs);
    for (i, w) in workers.iter_mut().enumerate() {
        reports.push(w.result().await.map_err(|e| format!("worker {i}: {e}"))?);
    }
    let elapsed = start.elapsed();
    for (i, mut w) in workers.into_iter().enumerate() {
        let status = w.child.wait().await?;
        if !status.success() {
            return Err(format!("worker {i} exited with {status}").into());
        }
    }
    let mut run = CellRun::empty(ops);
    for r in reports {
        run.absorb(r.into_run());
    }
    run.elapsed = elapsed;
    run.check_sum(db).await?;
    Ok(run)
}

/// A running worker process and its pipes.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Worker {
    fn spawn(exe: &std::path::Path, spec: &WorkerSpec) -> Result<Self, BoxError> {
        let mut child = Command::new(exe)
            .arg(WORKER_ARG)
            .arg(serde_json::to_string(spec)?)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().ok_or("worker has no stdin")?;
        let stdout = child.stdout.take().ok_or("worker has no stdout")?;
        Ok(Self {
            child,
            stdin,
            stdout: BufReader::new(stdout).lines(),
        })
    }

    /// The next line, an error when the worker closed its stdout.
    async fn line(&mut self) -> Result<String, BoxError> {
        self.stdout
            .next_line()
            .await?
            .ok_or_else(|| "exited before reporting (its error is on stderr above)".into())
    }

    async fn expect_ready(&mut self) -> Result<(), BoxError> {
        match self.line().await?.as_str() {
            "ready" => Ok(()),
            other => Err(format!("expected `ready`, read {other:?}").into()),
        }
    }

    async fn result(&mut self) -> Result<WorkerReport, BoxError> {
        let line = self.line().await?;
        let json = line
            .strip_prefix("result ")
            .ok_or_else(|| format!("expected `result <json>`, read {line:?}"))?;
        Ok(serde_json::from_str(json)?)
    }
}

impl WorkerReport {
    fn from_run(run: &CellRun) -> Self {
        Self {
            committed: run.committed,
            give_ups: run.give_ups,
            errors: run.errors,
            attempts: run.attempts,
            latencies_ns: run
                .latencies
                .iter()
                .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
                .collect(),
            cut: run.cut,
            final_limit: run.final_limit,
            batches: run.batches,
            first_error: run.first_error.clone(),
        }
    }

    fn into_run(self) -> CellRun {
        let mut run = CellRun::empty(0);
        run.committed = self.committed;
        run.give_ups = self.give_ups;
        run.errors = self.errors;
        run.attempts = self.attempts;
        run.latencies = self
            .latencies_ns
            .into_iter()
            .map(Duration::from_nanos)
            .collect();
        run.cut = self.cut;
        run.final_limit = self.final_limit;
        run.batches = self.batches;
        run.first_error = self.first_error;
        run
    }
}

/// The worker's side: `spec` is the JSON the parent passed.
pub(crate) async fn worker_main(spec: &str) -> Result<(), BoxError> {
    let spec: WorkerSpec = serde_json::from_str(spec)?;
    let kind = Kind::from_name(&spec.kind).ok_or_else(|| format!("unknown kind {}", spec.kind))?;
    let strategy: Strategy = spec.strategy.parse()?;
    let sync = match spec.sqlite_synchronous.as_deref() {
        None => None,
        Some(name) => Some(
            Synchronous::from_name(name).ok_or_else(|| format!("unknown synchronous {name}"))?,
        ),
    };
    let target = Target::existing(kind, spec.url).with_sqlite_synchronous(sync);
    let db = target
        .pool(PoolOpts {
            ping: spec.ping,
            session_serializable: false,
            max_connections: u32::try_from(spec.tasks)? + 2,
        })
        .await?;
    let runner = Arc::new(Runner::new(strategy, &db));
    println!("ready");
    // std's stdin on a blocking thread: tokio's needs a feature nothing else
    // of the workspace enables (a different tokio build for the bench alone)
    let go = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    })
    .await??;
    if go.trim() != "go" {
        return Err(format!("expected `go` on stdin, read {go:?}").into());
    }
    let run = run_tasks(
        &[runner],
        spec.tasks,
        spec.rows,
        spec.ops,
        Duration::from_secs_f64(spec.deadline_s),
    )
    .await?;
    println!(
        "result {}",
        serde_json::to_string(&WorkerReport::from_run(&run))?
    );
    db.close().await?;
    Ok(())
}
