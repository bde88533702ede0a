//! One instance of a service that increments one hot row, run as a process
//! of its own by `tests/resolver/contention_processes.rs` (several instances at once
//! show the contention control across processes).
//!
//! ```text
//! hot_row_instance <database-url> <tasks> <calls-per-task> [<instances> [batch]]
//! ```
//!
//! With `batch`, the increments are group-committed
//! (`CallOptions::batch(64)`), and the result line also says
//! `batches=B largest=M`: how many transactions ran them, and the most
//! calls one of them ran.
//!
//! Connects, prints `ready`, waits for a line `go` on stdin (so that every
//! instance starts together), then runs `tasks` tasks, each making
//! `calls-per-task` managed read-modify-write increments of `accounts.balance`
//! where `id = 1`, at the resolver's defaults. Prints one line
//! `result committed=C gave_up=G conflicts=R first=F last=L` and exits, where
//! `F` and `L` are the lowest and the highest balance this instance
//! committed (0 when it committed none): the row's values are the order of
//! the commits of every instance, so the spans of two instances show whether
//! they ran at the same time.
//!
//! With `instances`, the instances are made to overlap: after its first
//! committed increment an instance inserts its process id into the table
//! `hot_row_started (pid BIGINT PRIMARY KEY)`, which the caller created, and
//! no task starts its last call before that table has `instances` rows. So
//! every instance's first commit comes before every instance's last one
//! (`calls-per-task` must then be at least 2).

use std::io::BufRead as _;
use std::sync::Arc;
use std::time::Duration;

use conflictkit::resolver::CallOptions;
use conflictkit::{ConflictResolver, Error, Txn};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use tokio::sync::OnceCell;

/// The longest an instance waits for the others' first commits before it
/// gives up with an error (they are running at once, so only a broken run
/// gets anywhere near it).
const LONGEST_RENDEZVOUS: Duration = Duration::from_secs(120);

/// The meeting of the instances in the middle of their runs.
struct Together {
    db: DatabaseConnection,
    instances: i64,
    /// Set once this instance recorded its first commit.
    marked: OnceCell<()>,
    /// Set once every instance recorded its first commit.
    all: OnceCell<()>,
}

impl Together {
    async fn committed(&self) -> Result<(), DbErr> {
        self.marked
            .get_or_try_init(|| async {
                self.db
                    .execute_unprepared(&format!(
                        "INSERT INTO hot_row_started (pid) VALUES ({})",
                        std::process::id()
                    ))
                    .await
                    .map(|_| ())
            })
            .await
            .map(|_| ())
    }

    async fn all_committed(&self) -> Result<(), DbErr> {
        self.all
            .get_or_try_init(|| async {
                let count = Statement::from_string(
                    self.db.get_database_backend(),
                    "SELECT COUNT(*) AS n FROM hot_row_started",
                );
                let waiting = async {
                    loop {
                        let n: i64 = self
                            .db
                            .query_one_raw(count.clone())
                            .await?
                            .ok_or_else(|| DbErr::RecordNotFound("a count".into()))?
                            .try_get("", "n")?;
                        if n >= self.instances {
                            return Ok::<_, DbErr>(());
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                };
                tokio::time::timeout(LONGEST_RENDEZVOUS, waiting)
                    .await
                    .map_err(|_| {
                        DbErr::Custom(format!(
                            "the {} instances never all committed one increment",
                            self.instances
                        ))
                    })?
            })
            .await
            .map(|_| ())
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: hot_row_instance <database-url> <tasks> <calls-per-task> [<instances>]";
    let url = args.next().ok_or(usage)?;
    let tasks: usize = args.next().ok_or(usage)?.parse()?;
    let calls: usize = args.next().ok_or(usage)?.parse()?;
    let instances: Option<i64> = args.next().map(|n| n.parse()).transpose()?;
    let batch = match args.next().as_deref() {
        None => false,
        Some("batch") => true,
        Some(other) => return Err(format!("expected `batch`, read {other:?}; {usage}").into()),
    };
    if instances.is_some() && calls < 2 {
        return Err("instances are made to overlap only with 2 calls per task or more".into());
    }
    let mut options = sea_orm::ConnectOptions::new(url);
    options.max_connections(8).sqlx_logging(false);
    let db = sea_orm::Database::connect(options).await?;
    let together = instances.map(|instances| {
        Arc::new(Together {
            db: db.clone(),
            instances,
            marked: OnceCell::new(),
            all: OnceCell::new(),
        })
    });
    let resolver = ConflictResolver::new(db);
    println!("ready");
    let mut go = String::new();
    tokio::task::spawn_blocking(move || std::io::stdin().lock().read_line(&mut go).map(|_| go))
        .await?
        .map_err(|e| format!("reading the start signal: {e}"))
        .and_then(|go| match go.trim() {
            "go" => Ok(()),
            other => Err(format!("expected `go` on stdin, read {other:?}")),
        })?;
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let (r, together) = (resolver.clone(), together.clone());
            tokio::spawn(async move {
                let (mut committed, mut gave_up) = (0_u64, 0_u64);
                let (mut first, mut last) = (i64::MAX, 0_i64);
                for call in 0..calls {
                    if call + 1 == calls
                        && let Some(together) = &together
                    {
                        together.all_committed().await?;
                    }
                    match increment(&r, batch).await {
                        Ok(balance) => {
                            committed += 1;
                            first = first.min(balance);
                            last = last.max(balance);
                            if let Some(together) = &together {
                                together.committed().await?;
                            }
                        }
                        Err(Error::Unresolved(_)) => gave_up += 1,
                        Err(e) => return Err(e),
                    }
                }
                Ok::<_, Error>((committed, gave_up, first, last))
            })
        })
        .collect();
    let (mut committed, mut gave_up) = (0, 0);
    let (mut first, mut last) = (i64::MAX, 0);
    for h in handles {
        let (c, g, f, l) = h.await??;
        committed += c;
        gave_up += g;
        first = first.min(f);
        last = last.max(l);
    }
    if committed == 0 {
        first = 0;
    }
    let batched = resolver
        .batch_stats()
        .remove(LABEL)
        .map(|b| format!(" batches={} largest={}", b.batches, b.largest))
        .unwrap_or_default();
    println!(
        "result committed={committed} gave_up={gave_up} conflicts={} first={first} last={last}{batched}",
        resolver.stats().retries
    );
    Ok(())
}

const LABEL: &str = "hot_row_instance::increment";

/// One managed read-modify-write increment of account 1, group-committed
/// with `batch`; returns the balance it wrote.
async fn increment(r: &ConflictResolver, batch: bool) -> Result<i64, Error> {
    let options = CallOptions::new(LABEL);
    if batch {
        r.run_batched(options.batch(64), read_modify_write).await
    } else {
        r.run(options, read_modify_write).await
    }
}

/// The increment's body.
fn read_modify_write(txn: &Txn) -> conflictkit::resolver::BodyFuture<'static, '_, i64, Error> {
    Box::pin(async move {
        let backend = txn.get_database_backend();
        let read = Statement::from_string(backend, "SELECT balance FROM accounts WHERE id = 1");
        let balance: i64 = txn
            .query_one_raw(read)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound("account 1".into()))?
            .try_get("", "balance")?;
        let sql = match backend {
            DbBackend::Postgres => "UPDATE accounts SET balance = $1 WHERE id = 1",
            _ => "UPDATE accounts SET balance = ? WHERE id = 1",
        };
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [(balance + 1).into()],
        ))
        .await?;
        Ok::<_, Error>(balance + 1)
    })
}
