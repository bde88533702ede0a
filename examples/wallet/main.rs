//! `cargo run --example wallet`: a small wallet service built from every part
//! of conflictkit. Run with `--help` for the flags.
//!
//! - Concurrent top-ups and transfers between a few hot accounts go through
//!   `#[managed_transaction]` functions; conflicts happen and are replayed.
//!   At the end: balances, an invariant check (no lost update: balances equal
//!   the ledger and the sum of committed operations), resolver stats, throughput.
//! - Ledger entries carry `#[derive(AutoNumber)]` states stored as integers.
//! - The event listener, mounted under `/events` of the wallet's HTTP API
//!   (`api`), receives `txupdate` deposits posted by an
//!   `EventPoster`; `#[event_listener("txupdate")]` credits them through a
//!   managed transaction; a replayed notification is not credited twice.
//! - Configuration: built-in defaults < `--config FILE` < `--set key=value`,
//!   merged by `conflictkit::config`.
//!
//! By default the database is an embedded SQLite file (WAL) in a temporary
//! directory; `DATABASE_URL=postgres://…` or `mysql://…` runs the same
//! demonstration on that server. Several comma-separated URLs (the nodes of a
//! multi-primary cluster such as MariaDB Galera) spread the tasks over the
//! nodes, one pool and one resolver per node, and the invariant is checked on
//! every node.
//!
//! The report opens with the story: how many operations met on the hot rows
//! and what resolved their contention (replays, queueing, group commits).
//! `--without-conflictkit` runs the same workload (same tasks, same seeded
//! operations) in plain SeaORM transactions at the engine's default
//! isolation, without retries (see `plain`), and counts the lost updates
//! and the failed operations.
//!
//! `--replica URL` sends the read-only balance checks (`bank::balance_check`,
//! a `#[managed_transaction(read_only)]`) to a streaming replica of the
//! primary (`ConflictResolver::builder(primary).replica(pool)
//! .build_checked()`); the report says where they ran
//! (`replica_stats()`). A URL that is no replica of the primary is refused
//! with the builder's error.
//!
//! Exit status: 0 when the invariant holds (and, without conflictkit, no
//! operation failed); 1 on an error (bad input, a refused replica, a
//! database that cannot be reached); 2 when the invariant is broken (an
//! update was lost); 3 without conflictkit when no update was lost but
//! operations failed with database errors.

#![allow(missing_docs, unreachable_pub)] // an example program, not library API

mod api;
mod bank;
mod connect;
mod entities;
mod events;
mod headline;
mod plain;
mod prometheus;
mod report;
mod settings;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use clap::Parser;
use conflictkit::ConflictResolver;
use conflictkit::events::{EventPoster, ListenerConfig, OutboxRelay, WebhookSecret};
use sea_orm::ConnectionTrait;

use bank::WalletError;
use workload::{Committed, Op, Outcome};

/// A wallet service on conflictkit: concurrent money movement without locks.
#[derive(Debug, Parser)]
#[command(
    name = "wallet",
    version,
    about,
    after_help = "Exit status: 0 the invariant holds (and, with --without-conflictkit, no operation \
                  failed); 1 an error (bad input, a refused --replica, no database); 2 the \
                  invariant is broken (an update was lost); 3 with --without-conflictkit, no \
                  update lost but operations failed with database errors."
)]
struct Cli {
    /// Database URL (postgres://…, mysql://…, sqlite://…); default: an
    /// embedded SQLite file in a temporary directory. Several comma-separated
    /// URLs: the nodes of one cluster, tasks spread over them.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// A configuration file (YAML, JSON or TOML) merged over the defaults.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Override one setting, e.g. `--set wallet.tasks=64` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Print the built-in default configuration and exit.
    #[arg(long)]
    print_defaults: bool,
    /// Overwrite one balance outside any transaction after the workload, to
    /// see the invariant check fail (exit code 2).
    #[arg(long, hide = true)]
    simulate_lost_update: bool,
    /// Serve the wallet's HTTP API on this loopback address instead of
    /// running the demonstration: `POST /transfer` with an
    /// `Idempotency-Key` header (a retried request gets the stored answer),
    /// and signed deposit events at `POST /events`.
    #[arg(long, value_name = "ADDR")]
    serve: Option<std::net::SocketAddr>,
    /// Serve the resolver's and the listener's metrics as Prometheus text
    /// at `http://ADDR/metrics` (a loopback address) while the wallet runs.
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Run the same workload the way plain SeaORM code does, without
    /// conflictkit: `db.transaction(...)` at the engine's default isolation,
    /// read-modify-write through the entities, database errors not retried.
    /// The report counts the lost updates and the failed operations; the
    /// exit status is 2 if an update was lost, 3 if operations failed.
    #[arg(long, conflicts_with_all = ["serve", "replica"])]
    without_conflictkit: bool,
    /// A streaming replica of the database (as the resolver's
    /// `build_checked` accepts them: PostgreSQL today): the read-only
    /// balance checks run there (within the resolver's staleness bound),
    /// and the report counts where they ran. A URL that is no replica of
    /// the primary is refused with the resolver's error (exit status 1).
    #[arg(long, value_name = "URL", conflicts_with = "serve")]
    replica: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            // sqlx's slow-acquire warnings would bury the report of a run
            // without conflictkit, whose pool waits on deadlocked peers
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,sqlx::pool::acquire=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if cli.print_defaults {
        print!("{}", settings::DEFAULTS);
        return ExitCode::SUCCESS;
    }
    match run(cli).await {
        Ok(status) => ExitCode::from(status),
        Err(e) => {
            eprintln!("wallet: {e}");
            let mut source = e.source();
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs the wallet; returns the exit status (see the module doc).
async fn run(cli: Cli) -> Result<u8, BoxError> {
    let settings = settings::load(cli.config.clone(), &cli.sets)?;
    if let Some(addr) = cli.metrics_addr {
        prometheus::serve(addr).await?;
    }
    let url = cli.database_url.clone().or(settings.database.url.clone());
    // one pool per node of a cluster (URLs separated by commas)
    let urls: Vec<Option<String>> = match url {
        Some(list) => list
            .split(',')
            .map(|u| Some(u.trim().to_owned()))
            .filter(|u| u.as_ref().is_some_and(|u| !u.is_empty()))
            .collect(),
        None => vec![None],
    };
    let mut nodes = Vec::new();
    let mut _dirs = Vec::new();
    for url in urls {
        let (db, location, dir) = connect::connect(url, settings.database.max_connections).await?;
        nodes.push(report::Node { db, location });
        _dirs.push(dir);
    }
    let db = nodes.first().ok_or("DATABASE_URL lists no URL")?.db.clone();
    let w = &settings.wallet;
    println!(
        "conflictkit wallet demo{}",
        match cli.without_conflictkit {
            true => ", run WITHOUT conflictkit for comparison",
            false => "",
        }
    );
    for (i, node) in nodes.iter().enumerate() {
        match nodes.len() {
            1 => println!("  database: {}", node.location),
            _ => println!("  database node {}: {}", i + 1, node.location),
        }
    }
    println!(
        "  {} tasks x {} operations (top-ups and transfers) over {} hot accounts, {}",
        w.tasks,
        w.operations_per_task,
        w.accounts,
        match w.check_every {
            0 => "no balance checks".to_owned(),
            n => format!("a read-only balance check every {n} operations"),
        }
    );
    entities::migrate(&db, w.accounts, w.initial_balance).await?;
    if let Some(addr) = cli.serve {
        api::serve(ConflictResolver::new(db), addr, &settings).await?;
        return Ok(0);
    }
    if cli.without_conflictkit {
        return plain::run(&nodes, &settings).await;
    }
    for node in &nodes[1..] {
        entities::wait_for_accounts(&node.db, w.accounts).await?;
    }

    let retries = match (settings.database.retries, nodes.len()) {
        (Some(n), _) => Some(n),
        (None, 1) => None,
        (None, _) => Some(settings::CLUSTER_RETRIES),
    };
    let replica = match (&cli.replica, nodes.len()) {
        (None, _) => None,
        (Some(url), 1) => {
            Some(connect::connect_replica(url, settings.database.max_connections).await?)
        }
        (Some(_), _) => {
            return Err("--replica takes one primary: DATABASE_URL lists several nodes".into());
        }
    };
    let mut resolvers: Vec<ConflictResolver> = Vec::new();
    for node in &nodes {
        let mut b = ConflictResolver::builder(node.db.clone());
        if let Some(r) = retries {
            b = b.retries(r);
        }
        if let Some((pool, location)) = &replica {
            println!("  replica: {location} (read-only balance checks)");
            b = b.replica(pool.clone());
        }
        // the checked build refuses a replica that is no replica of this primary
        resolvers.push(b.build_checked().await?);
    }
    if let Some((pool, _)) = &replica {
        // the replica replays the tables a moment after they were made
        entities::wait_for_accounts(pool, w.accounts).await?;
    }
    let resolver = resolvers[0].clone();

    // 1. Concurrent money movement.
    let committed = Arc::new(Committed::default());
    let pool = resolvers.clone();
    let elapsed = workload::run(w, &committed, move |task, op| {
        // spread over the nodes of a cluster
        let resolver = pool[task % pool.len()].clone();
        async move { operation(&resolver, op).await }
    })
    .await?;
    if cli.simulate_lost_update {
        db.execute_unprepared("UPDATE wallet_accounts SET balance = balance - 1 WHERE id = 1")
            .await?;
    }

    // 2. Deposits through the event listener.
    let deposits = deposits(&settings, events::DepositState::new(resolver.clone())).await?;

    // 3. The report.
    let ok = report::print(
        &nodes, &resolvers, &settings, &committed, &deposits, elapsed,
    )
    .await?;
    Ok(if ok { 0 } else { plain::EXIT_LOST_UPDATES })
}

/// One operation of the workload through the managed functions.
async fn operation(resolver: &ConflictResolver, op: Op) -> Result<Outcome, BoxError> {
    let done = match op {
        Op::TopUp { account, amount } => bank::top_up(resolver, account, amount)
            .await
            .map(|_| Outcome::Committed),
        Op::Transfer { from, to, amount } => bank::transfer(resolver, from, to, amount)
            .await
            .map(|()| Outcome::Committed),
        Op::Check { account, opening } => {
            bank::balance_check(resolver, account)
                .await
                .map(|(balance, ledger)| Outcome::Checked {
                    consistent: balance == opening + ledger,
                })
        }
    };
    match done {
        Ok(outcome) => Ok(outcome),
        Err(WalletError::InsufficientFunds { .. }) => Ok(Outcome::Refused),
        Err(WalletError::Unresolved(e)) => Ok(Outcome::GaveUp(e.to_string())),
        Err(e) => Err(e.into()),
    }
}

/// What happened to the deposits posted to the listener.
pub struct Deposits {
    /// Where the listener was served: `http://ADDR/events` of the API.
    pub listener: String,
    pub posted: usize,
    pub replays_sent: usize,
    pub handled: u32,
    pub credited: u32,
    /// `deposit_credited` notifications the outbox relay delivered, and how
    /// many the listener received.
    pub relayed: usize,
    pub notified: u32,
    pub cents: i64,
}

async fn deposits(
    settings: &settings::Settings,
    state: events::DepositState,
) -> Result<Deposits, BoxError> {
    // The listener's configuration gives the secrets; the API serves it
    // under `/events` (its `bind` address is not used there).
    let config = ListenerConfig::from_config(&settings.raw)?;
    // The listener accepts every configured secret; the demo signs with the
    // current one, the first.
    let secret: WebhookSecret = config
        .secrets
        .first()
        .cloned()
        .ok_or("events.http.secrets is missing: the demo signs its events")?;
    // The wallet's HTTP API, as `--serve` runs it, on an ephemeral loopback
    // port: the handler takes `State<DepositState>`, given to it here.
    let api = api::start(state.resolver.clone(), state.clone(), settings).await?;
    let url = format!("http://{}/events", api.addr);
    let poster = EventPoster::new(&url)?.secret(secret.clone());
    let accounts = settings.wallet.accounts;
    let mut cents = 0;
    let updates: Vec<events::TxUpdate> = (0..settings.demo.txupdates)
        .map(|i| events::TxUpdate {
            transaction: i as i64 + 1,
            network_transaction: 1000 + i as i64,
            txid: format!("demo-{:064x}", i),
            account: (i as i32 % accounts) + 1,
            address: format!("tb1qdemo{i:04}"),
            amount: rust_decimal::Decimal::new(1234 + i as i64, 2),
            confirmations: 3,
        })
        .collect();
    for u in &updates {
        poster.post("txupdate", u).await?;
        cents += 1234 + u.transaction - 1;
    }
    // A notifier that replays: the same signed delivery (same webhook-id) twice.
    let mut replays_sent = 0;
    if let Some(first) = updates.first() {
        let body = EventPoster::encode("txupdate", first)?;
        let client = reqwest::Client::new();
        for _ in 0..2 {
            let ts = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs() as i64;
            let status = client
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("webhook-id", "msg_wallet_demo_replay")
                .header("webhook-timestamp", ts.to_string())
                .header(
                    "webhook-signature",
                    secret.sign("msg_wallet_demo_replay", ts, body.as_bytes()),
                )
                .body(body.clone())
                .send()
                .await?
                .status();
            if status != reqwest::StatusCode::OK {
                return Err(format!("replayed delivery answered {status}").into());
            }
            replays_sent += 1;
        }
    }
    // The notifications the credits wrote to the outbox, delivered.
    let relay = OutboxRelay::new(state.resolver.connection().clone(), poster.clone());
    let relayed = relay.deliver_pending().await?;
    api.shutdown().await;
    Ok(Deposits {
        listener: url,
        posted: updates.len(),
        replays_sent,
        handled: state.handled.load(Ordering::SeqCst),
        credited: state.credited.load(Ordering::SeqCst),
        relayed,
        notified: state.notified.load(Ordering::SeqCst),
        cents,
    })
}
