//! conflictkit benchmark harness.
//!
//! ```text
//! cargo run --release -p conflictkit-bench -- <scenario> [--pg URL] [--mysql URL] [--sqlite]
//!     [--sqlite-synchronous full,normal]
//!     [--threads 1,4,16,64] [--rows 1,10] [--procs 1,4] [--ops N] [--repeat R]
//!     [--json FILE] [--charts DIR] [--requests N] [--clients 1,32] [--sizes-mb 1,10,100]
//! ```
//!
//! It starts no database server: pass the URLs (`scripts/bench.sh` starts
//! throwaway servers and passes them). On each server the database scenarios
//! create a database of their own (`ck_bench_<pid>`) and drop it at the end.
//! `listener` (HTTP servers on loopback, started by the harness) and `merge`
//! (in memory) need no database and run once. Each scenario is one module;
//! add a variant to [`Scenario`] and a module to add one.
//!
//! Tables go to stdout as Markdown, progress to stderr, one JSON line per
//! run and per median to `--json` (appended), and the contention charts
//! (SVG) to `--charts`. With `--procs P` a contention cell runs in P
//! processes of this binary (see `procs.rs`).

mod batched;
mod charts;
mod contention;
mod db;
mod idempotency;
mod listener;
mod merge;
mod merge_docs;
mod metrics_cost;
mod overhead;
mod procs;
mod relay;
mod replicas;
mod report;
mod savepoint;
mod soak;
mod workload;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::db::{Kind, Synchronous, Target};
use crate::workload::Strategy;

/// The scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Uncontended increments from 1 task: `resolver.run` vs hand-written sea-orm.
    Overhead,
    /// K hot rows, T tasks in P processes: every retry / locking strategy side by side.
    Contention,
    /// Form posts to the event listener (standalone, mounted in warp and in axum) vs a bare warp route, 1 and 32 clients.
    Listener,
    /// `merge_dict` / `merge_with` vs `json_patch::merge` on 1, 10, 100 MB.
    Merge,
    /// What an idempotency key costs per call: `resolver.run` against
    /// `run_idempotent` (new key, stored key), 1 task and many on one row.
    Idempotency,
    /// 10^5 contended transfers through `#[managed_transaction]` with the
    /// defaults, read-only checks between them, the invariant at the end.
    Soak,
    /// The resolver's metrics on (a recorder installed) vs off, on the
    /// uncontended and one-hot-row cells.
    Metrics,
    /// The cost of a nested managed call (a savepoint) per call, uncontended.
    Savepoint,
    /// Transfers on the primary beside 16 balance checkers, the checks on
    /// the primary vs on the streaming replica `--replica` (PostgreSQL).
    Replicas,
    /// The outbox relay's throughput on PostgreSQL: batch claims (16) vs
    /// one event per claim, to a loopback receiver answering 200.
    Relay,
}

impl Scenario {
    /// Whether the scenario runs once per database server.
    fn needs_database(self) -> bool {
        matches!(
            self,
            Scenario::Overhead
                | Scenario::Contention
                | Scenario::Soak
                | Scenario::Idempotency
                | Scenario::Metrics
                | Scenario::Savepoint
                | Scenario::Replicas
                | Scenario::Relay
        )
    }
}

/// Benchmarks of conflictkit against what users would write instead.
#[derive(Debug, Parser)]
#[command(name = "bench")]
struct Args {
    /// Scenarios to run, in order.
    #[arg(required = true)]
    scenarios: Vec<Scenario>,
    /// PostgreSQL server URL (a database `ck_bench_<pid>` is created on it).
    #[arg(long)]
    pg: Option<String>,
    /// The server URL of a streaming replica of `--pg` (scenario replicas).
    #[arg(long)]
    replica: Option<String>,
    /// MySQL / MariaDB server URL.
    #[arg(long)]
    mysql: Option<String>,
    /// Also measure SQLite (a WAL file in a temp dir).
    #[arg(long)]
    sqlite: bool,
    /// SQLite's `PRAGMA synchronous` on every connection, comma-separated:
    /// each mode is a SQLite target of its own (labelled `sqlite-full`,
    /// `sqlite-normal`). Default: left as the SQLite library has it (FULL
    /// as built here; the value in effect is printed on stderr).
    #[arg(long, value_delimiter = ',')]
    sqlite_synchronous: Vec<Synchronous>,
    /// The node URLs of a Galera cluster (comma-separated): contention runs
    /// with its tasks spread over the first 1, 2, … of them (`--nodes`).
    #[arg(long, value_delimiter = ',')]
    galera: Vec<String>,
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 3])]
    nodes: Vec<usize>,
    /// Concurrent tasks per cell (contention).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 4, 16, 64])]
    threads: Vec<usize>,
    /// Hot rows K (contention).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 10])]
    rows: Vec<usize>,
    /// OS processes P a contention cell runs in (its T tasks and its
    /// increments split over them, each process with its own pool and
    /// resolver, a common start); cells with T < P are skipped.
    #[arg(long, value_delimiter = ',', default_values_t = [1])]
    procs: Vec<usize>,
    /// Increments per cell (default: 1000 for overhead, 400 for contention).
    #[arg(long)]
    ops: Option<usize>,
    /// Runs of every cell; medians are reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Append JSON lines (one per run and per median) to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the contention charts here: one SVG per engine and K, goodput
    /// and p99 against tasks for each strategy and P.
    #[arg(long)]
    charts: Option<PathBuf>,
    /// Contention strategies, comma-separated (default: all of
    /// ck-adaptive, ck-keyed, ck-batch, ck-off, immediate, jitter-hand,
    /// for-update, single-update; ck-keyed by default only where K > 1).
    #[arg(long, value_delimiter = ',')]
    strategies: Option<Vec<Strategy>>,
    /// Seconds a cell may run before it stops starting new increments.
    #[arg(long, default_value_t = contention::DEFAULT_CELL_TIMEOUT.as_secs_f64())]
    cell_timeout: f64,
    /// Contention pools ping each connection on checkout (sea-orm's default;
    /// off by default here, the overhead scenario measures both).
    #[arg(long)]
    ping: bool,
    /// Requests per listener cell (after a short warm-up).
    #[arg(long, default_value_t = listener::DEFAULT_REQUESTS)]
    requests: usize,
    /// Concurrent HTTP clients per listener cell.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 32])]
    clients: Vec<usize>,
    /// Target document sizes of the merge scenario, in MB (2^20 bytes).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 10, 100])]
    sizes_mb: Vec<usize>,
}

/// What every scenario reads from the command line.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) threads: Vec<usize>,
    pub(crate) rows: Vec<usize>,
    pub(crate) procs: Vec<usize>,
    pub(crate) ops: Option<usize>,
    pub(crate) repeat: usize,
    pub(crate) strategies: Vec<Strategy>,
    /// `--strategies` was given (it then runs exactly those everywhere).
    pub(crate) strategies_given: bool,
    pub(crate) charts: Option<PathBuf>,
    pub(crate) cell_timeout: Duration,
    pub(crate) ping: bool,
    pub(crate) requests: usize,
    pub(crate) clients: Vec<usize>,
    pub(crate) sizes_mb: Vec<usize>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut argv = std::env::args().skip(1);
    if argv.next().as_deref() == Some(procs::WORKER_ARG) {
        let spec = argv.next().ok_or("a worker needs its spec")?;
        return procs::worker_main(&spec)
            .await
            .map_err(|e| -> Box<dyn std::error::Error> { e });
    }
    let args = Args::parse();
    let mut servers: Vec<(Kind, Option<&str>, Option<Synchronous>)> = Vec::new();
    if let Some(u) = &args.pg {
        servers.push((Kind::Postgres, Some(u), None));
    }
    if let Some(u) = &args.mysql {
        servers.push((Kind::MySql, Some(u), None));
    }
    if !args.sqlite_synchronous.is_empty() && !args.sqlite {
        return Err("--sqlite-synchronous sets SQLite's connections: add --sqlite".into());
    }
    if args.sqlite && args.sqlite_synchronous.is_empty() {
        servers.push((Kind::Sqlite, None, None));
    }
    for &mode in &args.sqlite_synchronous {
        servers.push((Kind::Sqlite, None, Some(mode)));
    }
    if servers.is_empty()
        && args.galera.is_empty()
        && args.scenarios.iter().any(|s| s.needs_database())
    {
        return Err(
            "nothing to measure: overhead, contention and soak need --pg URL, --mysql URL and/or --sqlite"
                .into(),
        );
    }
    if args.repeat == 0
        || args.threads.contains(&0)
        || args.rows.contains(&0)
        || args.procs.contains(&0)
        || args.requests == 0
        || args.clients.contains(&0)
        || args.sizes_mb.contains(&0)
    {
        return Err(
            "--repeat, --threads, --rows, --procs, --requests, --clients and --sizes-mb must be at least 1"
                .into(),
        );
    }
    let cfg = Config {
        threads: args.threads.clone(),
        rows: args.rows.clone(),
        procs: args.procs.clone(),
        ops: args.ops,
        repeat: args.repeat,
        strategies: args
            .strategies
            .clone()
            .unwrap_or_else(|| Strategy::CONTENTION.to_vec()),
        strategies_given: args.strategies.is_some(),
        charts: args.charts.clone(),
        cell_timeout: Duration::from_secs_f64(args.cell_timeout),
        ping: args.ping,
        requests: args.requests,
        clients: args.clients.clone(),
        sizes_mb: args.sizes_mb.clone(),
    };
    let mut sink = report::JsonSink::open(args.json.as_deref())?;
    eprintln!(
        "conflictkit bench: {} cores available, scenarios {:?}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.scenarios
    );
    for scenario in &args.scenarios {
        if !scenario.needs_database() {
            let started = std::time::Instant::now();
            match scenario {
                Scenario::Listener => listener::run(&cfg, &mut sink).await?,
                Scenario::Merge => merge::run(&cfg, &mut sink)?,
                Scenario::Overhead
                | Scenario::Contention
                | Scenario::Soak
                | Scenario::Idempotency
                | Scenario::Metrics
                | Scenario::Savepoint
                | Scenario::Replicas
                | Scenario::Relay => {}
            }
            eprintln!("{scenario:?} took {:.0} s", started.elapsed().as_secs_f64());
            continue;
        }
        if *scenario == Scenario::Contention && !args.galera.is_empty() {
            for &n in &args.nodes {
                let urls = args
                    .galera
                    .get(..n)
                    .ok_or("--nodes asks for more nodes than --galera lists")?;
                let first = Target::create(Kind::MySql, Some(&urls[0])).await?;
                let others: Vec<Target> = urls[1..].iter().map(|u| first.on_node(u)).collect();
                let mut nodes = vec![&first];
                nodes.extend(others.iter());
                let started = std::time::Instant::now();
                let res = contention::run_on_nodes(
                    &nodes,
                    &format!("galera, tasks on {n} node(s)"),
                    &cfg,
                    &mut sink,
                )
                .await;
                eprintln!(
                    "Contention on galera ({n} nodes) took {:.0} s",
                    started.elapsed().as_secs_f64()
                );
                first.cleanup().await?;
                res?;
            }
        }
        for &(kind, url, sync) in &servers {
            let target = Target::create(kind, url)
                .await?
                .with_sqlite_synchronous(sync);
            let started = std::time::Instant::now();
            let res = match scenario {
                Scenario::Overhead => overhead::run(&target, &cfg, &mut sink).await,
                Scenario::Contention => contention::run(&target, &cfg, &mut sink).await,
                Scenario::Soak => soak::run(&target, &cfg, &mut sink).await,
                Scenario::Idempotency => idempotency::run(&target, &cfg, &mut sink).await,
                Scenario::Metrics => metrics_cost::run(&target, &cfg, &mut sink).await,
                Scenario::Savepoint => savepoint::run(&target, &cfg, &mut sink).await,
                Scenario::Replicas => match (kind, args.replica.as_deref()) {
                    (Kind::Postgres, Some(replica)) => {
                        replicas::run(&target, replica, &cfg, &mut sink).await
                    }
                    (Kind::Postgres, None) => Err(
                        "the replicas scenario needs --replica URL (a streaming replica of --pg)"
                            .into(),
                    ),
                    _ => Ok(()),
                },
                // PostgreSQL only: the relay's claims are the same SQL
                // everywhere; one engine shows what batching saves.
                Scenario::Relay if kind == Kind::Postgres => {
                    relay::run(&target, &cfg, &mut sink).await
                }
                Scenario::Relay | Scenario::Listener | Scenario::Merge => Ok(()),
            };
            eprintln!(
                "{scenario:?} on {} took {:.0} s",
                target.label(),
                started.elapsed().as_secs_f64()
            );
            target.cleanup().await?;
            res?;
        }
    }
    Ok(())
}
