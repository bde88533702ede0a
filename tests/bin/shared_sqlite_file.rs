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
//! task, and optionally the number of processes run at once. It prints two
//! lines, `span first F last L` (the lowest and the highest counter value
//! this process committed: the counter orders the commits of every
//! process) and `success S retries R errors E unresolved U`, and exits
//! non-zero if any increment failed.
//!
//! With the number of processes, they are made to overlap: after its first
//! committed increment a process records its id in the table
//! `instance_started`, and no task starts its last increment before every
//! process has (so at least 2 increments per task are needed).

#![allow(missing_docs)] // an example program, not library API

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use conflictkit::{ConflictResolver, Txn, managed_transaction};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};
use tokio::sync::OnceCell;

/// The longest a process waits for the others' first commits (they run at
/// once, so only a broken run gets anywhere near it).
const LONGEST_RENDEZVOUS: Duration = Duration::from_secs(120);

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

/// Records that this process committed its first increment.
#[managed_transaction]
async fn record_start(txn: &Txn) -> Result<(), conflictkit::Error> {
    txn.execute_raw(Statement::from_string(
        DbBackend::Sqlite,
        format!(
            "INSERT INTO instance_started (pid) VALUES ({})",
            std::process::id()
        ),
    ))
    .await?;
    Ok(())
}

/// The meeting of the processes in the middle of their runs.
struct Together {
    /// A resolver of its own, so the increments' stats stay theirs.
    resolver: ConflictResolver,
    processes: i64,
    /// Set once this process recorded its first commit.
    marked: OnceCell<()>,
    /// Set once every process recorded its first commit.
    all: OnceCell<()>,
}

impl Together {
    async fn committed(&self) -> Result<(), String> {
        self.marked
            .get_or_try_init(|| async { record_start(&self.resolver).await })
            .await
            .map(|_| ())
            .map_err(|e| format!("recording the start: {e}"))
    }

    async fn all_committed(&self, db: &DatabaseConnection) -> Result<(), String> {
        self.all
            .get_or_try_init(|| async {
                let waiting = async {
                    loop {
                        let row = db
                            .query_one_raw(Statement::from_string(
                                DbBackend::Sqlite,
                                "SELECT COUNT(*) AS n FROM instance_started",
                            ))
                            .await
                            .map_err(|e| e.to_string())?
                            .ok_or("no count")?;
                        let n: i64 = row.try_get("", "n").map_err(|e| e.to_string())?;
                        if n >= self.processes {
                            return Ok::<_, String>(());
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                };
                tokio::time::timeout(LONGEST_RENDEZVOUS, waiting)
                    .await
                    .map_err(|_| {
                        format!(
                            "the {} processes never all committed one increment",
                            self.processes
                        )
                    })?
            })
            .await
            .map(|_| ())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match args.as_slice() {
        [file, tasks, per_task, rest @ ..] if rest.len() <= 1 => tasks
            .parse::<usize>()
            .ok()
            .zip(per_task.parse::<usize>().ok())
            .and_then(|(t, n)| match rest {
                [] => Some((file.clone(), t, n, None)),
                [p] => p.parse::<i64>().ok().map(|p| (file.clone(), t, n, Some(p))),
                _ => None,
            })
            .filter(|(_, _, n, p)| p.is_none() || *n >= 2),
        _ => None,
    };
    let Some((file, tasks, per_task, processes)) = parsed else {
        eprintln!("usage: shared_sqlite_file FILE TASKS INCREMENTS_PER_TASK [PROCESSES]");
        eprintln!("(with PROCESSES, INCREMENTS_PER_TASK is at least 2)");
        return ExitCode::from(64);
    };
    match run(&file, tasks, per_task, processes).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("shared_sqlite_file: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    file: &str,
    tasks: usize,
    per_task: usize,
    processes: Option<i64>,
) -> Result<bool, sea_orm::DbErr> {
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
    db.execute_unprepared("CREATE TABLE IF NOT EXISTS instance_started (pid INTEGER PRIMARY KEY)")
        .await?;
    let together = processes.map(|processes| {
        Arc::new(Together {
            resolver: ConflictResolver::new(db.clone()),
            processes,
            marked: OnceCell::new(),
            all: OnceCell::new(),
        })
    });
    let resolver = ConflictResolver::new(db.clone());
    let workers: Vec<_> = (0..tasks)
        .map(|_| {
            let (resolver, db, together) = (resolver.clone(), db.clone(), together.clone());
            tokio::spawn(async move {
                let mut failed = 0;
                let (mut first, mut last) = (i64::MAX, 0);
                for i in 0..per_task {
                    if i + 1 == per_task
                        && let Some(together) = &together
                        && let Err(e) = together.all_committed(&db).await
                    {
                        eprintln!("{e}");
                        failed += 1;
                        break;
                    }
                    match increment(&resolver).await {
                        Ok(n) => {
                            first = first.min(n);
                            last = last.max(n);
                            if let Some(together) = &together
                                && let Err(e) = together.committed().await
                            {
                                eprintln!("{e}");
                                failed += 1;
                            }
                        }
                        Err(e) => {
                            eprintln!("increment failed: {e}");
                            failed += 1;
                        }
                    }
                }
                (failed, first, last)
            })
        })
        .collect();
    let mut failed = 0;
    let (mut first, mut last) = (i64::MAX, 0);
    for w in workers {
        let (f, lo, hi) = w.await.unwrap_or((per_task, i64::MAX, 0));
        failed += f;
        first = first.min(lo);
        last = last.max(hi);
    }
    if last == 0 {
        first = 0;
    }
    let s = resolver.stats();
    println!("span first {first} last {last}");
    println!(
        "success {} retries {} errors {} unresolved {}",
        s.success, s.retries, s.errors, s.unresolved
    );
    Ok(failed == 0)
}
