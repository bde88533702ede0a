//! One instance of a service that increments one hot row, run as a process
//! of its own by `tests/resolver_processes.rs` (several instances at once
//! show the contention control across processes).
//!
//! ```text
//! hot_row_instance <database-url> <tasks> <calls-per-task>
//! ```
//!
//! Connects, prints `ready`, waits for a line `go` on stdin (so that every
//! instance starts together), then runs `tasks` tasks, each making
//! `calls-per-task` managed read-modify-write increments of `accounts.balance`
//! where `id = 1`, at the resolver's defaults. Prints one line
//! `result committed=C gave_up=G conflicts=R` and exits.

use std::io::BufRead as _;

use conflictkit::resolver::CallOptions;
use conflictkit::{ConflictResolver, Error, Txn};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: hot_row_instance <database-url> <tasks> <calls-per-task>";
    let url = args.next().ok_or(usage)?;
    let tasks: usize = args.next().ok_or(usage)?.parse()?;
    let calls: usize = args.next().ok_or(usage)?.parse()?;
    let mut options = sea_orm::ConnectOptions::new(url);
    options.max_connections(8).sqlx_logging(false);
    let resolver = ConflictResolver::new(sea_orm::Database::connect(options).await?);
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
            let r = resolver.clone();
            tokio::spawn(async move {
                let (mut committed, mut gave_up) = (0_u64, 0_u64);
                for _ in 0..calls {
                    match increment(&r).await {
                        Ok(()) => committed += 1,
                        Err(Error::Unresolved(_)) => gave_up += 1,
                        Err(e) => return Err(e),
                    }
                }
                Ok((committed, gave_up))
            })
        })
        .collect();
    let (mut committed, mut gave_up) = (0, 0);
    for h in handles {
        let (c, g) = h.await??;
        committed += c;
        gave_up += g;
    }
    println!(
        "result committed={committed} gave_up={gave_up} conflicts={}",
        resolver.stats().retries
    );
    Ok(())
}

/// One managed read-modify-write increment of account 1.
async fn increment(r: &ConflictResolver) -> Result<(), Error> {
    r.run(
        CallOptions::new("hot_row_instance::increment"),
        |txn: &Txn| {
            Box::pin(async move {
                let backend = txn.get_database_backend();
                let read =
                    Statement::from_string(backend, "SELECT balance FROM accounts WHERE id = 1");
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
                Ok::<_, Error>(())
            })
        },
    )
    .await
}
