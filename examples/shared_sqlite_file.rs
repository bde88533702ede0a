//! Several processes writing one SQLite file through managed transactions.
//!
//! Inside one process the resolver queues write transactions for the
//! database's one write slot; writers of *other* processes are met by
//! SQLite's busy handler (`busy_timeout`, 5 s by default), and a busy
//! error that outlasts it is replayed like any conflict. Run it twice at
//! once against the same file and the counter still ends exact:
//!
//! ```sh
//! cargo run --example shared_sqlite_file -- /tmp/shared.db 8 200 &
//! cargo run --example shared_sqlite_file -- /tmp/shared.db 8 200; wait
//! ```
//!
//! Arguments: the database file, the number of tasks, the increments per
//! task. It prints one line, `success S retries R errors E unresolved U`,
//! and exits non-zero if any increment failed.

#![allow(missing_docs)] // an example program, not library API

use std::process::ExitCode;

use conflictkit::{ConflictResolver, Txn, managed_transaction};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DbBackend, Statement};

/// One increment of the shared counter: a read, then a write of the value read.
#[managed_transaction]
async fn increment(txn: &Txn) -> Result<i64, conflictkit::Error> {
    let row = txn
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT n FROM counter WHERE id = 1",
        ))
        .await?
        .ok_or_else(|| sea_orm::DbErr::RecordNotFound("counter 1".into()))?;
    let n = row.try_get::<i64>("", "n")? + 1;
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Sqlite,
        "UPDATE counter SET n = ? WHERE id = 1",
        [n.into()],
    ))
    .await?;
    Ok(n)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match args.as_slice() {
        [file, tasks, per_task] => tasks
            .parse::<usize>()
            .ok()
            .zip(per_task.parse::<usize>().ok())
            .map(|(t, n)| (file.clone(), t, n)),
        _ => None,
    };
    let Some((file, tasks, per_task)) = parsed else {
        eprintln!("usage: shared_sqlite_file FILE TASKS INCREMENTS_PER_TASK");
        return ExitCode::from(64);
    };
    match run(&file, tasks, per_task).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("shared_sqlite_file: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(file: &str, tasks: usize, per_task: usize) -> Result<bool, sea_orm::DbErr> {
    let mut options = ConnectOptions::new(format!("sqlite://{file}?mode=rwc"));
    options
        .max_connections(4)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal));
    let db = Database::connect(options).await?;
    db.execute_unprepared(
        "CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
    )
    .await?;
    db.execute_unprepared("INSERT OR IGNORE INTO counter VALUES (1, 0)")
        .await?;
    let resolver = ConflictResolver::new(db);
    let workers: Vec<_> = (0..tasks)
        .map(|_| {
            let resolver = resolver.clone();
            tokio::spawn(async move {
                let mut failed = 0;
                for _ in 0..per_task {
                    if let Err(e) = increment(&resolver).await {
                        eprintln!("increment failed: {e}");
                        failed += 1;
                    }
                }
                failed
            })
        })
        .collect();
    let mut failed = 0;
    for w in workers {
        failed += w.await.unwrap_or(per_task);
    }
    let s = resolver.stats();
    println!(
        "success {} retries {} errors {} unresolved {}",
        s.success, s.retries, s.errors, s.unresolved
    );
    Ok(failed == 0)
}
