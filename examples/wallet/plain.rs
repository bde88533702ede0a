//! `wallet --without-conflictkit`: the same workload (the same tasks and
//! operations, drawn from the same seed, see `workload`) done the way a
//! SeaORM service typically writes it without this library. Each operation
//! is one `db.transaction(…)` at the engine's default isolation (READ
//! COMMITTED on PostgreSQL, REPEATABLE READ on MariaDB/MySQL, a deferred
//! `BEGIN` on SQLite) running the very bodies the managed functions run
//! (`bank::*_on`: find the row, then an `ActiveModel` update with the value
//! read). No resolver: no replays, no admission control, no batching. An
//! error the database returns fails the operation, counted by its message,
//! and nobody retries it.
//!
//! Then the books: each balance against its ledger. Every operation writes
//! its ledger rows (inserts, which never overwrite each other) in the same
//! transaction as its balance updates, so a committed operation's rows are
//! all there; a balance that is not its opening plus the sum of its ledger
//! entries lost an update (a write of a committed transaction that another
//! transaction overwrote with a value it had read before). Lost updates are
//! counted per account, in accounts and in cents: `|opening + ledger -
//! balance|`, summed; the sum of balances is checked against the opening
//! balances plus the committed top-ups too.
//!
//! The exit status is 2 when an update was lost, 3 when none was but
//! operations failed with database errors, 0 when neither happened.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use sea_orm::{DatabaseConnection, DbBackend, TransactionError, TransactionTrait};

use crate::BoxError;
use crate::bank::{self, TRANSFER_FEE, WalletError};
use crate::entities::TxKind;
use crate::report::{self, Node, money};
use crate::settings::Settings;
use crate::workload::{self, Committed, Op, Outcome};

/// The exit status of a run that lost updates.
pub const EXIT_LOST_UPDATES: u8 = 2;
/// The exit status of a run that lost none but had operations fail.
pub const EXIT_FAILED: u8 = 3;

/// What `db.transaction(…)` begins on this engine when nothing is asked.
pub fn default_isolation(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "READ COMMITTED",
        DbBackend::MySql => "REPEATABLE READ",
        _ => "a deferred BEGIN (WAL)",
    }
}

/// Runs the workload without conflictkit and prints the books and the
/// verdict; returns the exit status.
pub async fn run(nodes: &[Node], settings: &Settings) -> Result<u8, BoxError> {
    let w = &settings.wallet;
    let backend = nodes[0].db.get_database_backend();
    println!(
        "  WITHOUT conflictkit: plain SeaORM db.transaction(...) at the engine's default isolation ({}), read-modify-write through the entities, database errors counted and not retried",
        default_isolation(backend)
    );
    let committed = Arc::new(Committed::default());
    let pools: Vec<DatabaseConnection> = nodes.iter().map(|n| n.db.clone()).collect();
    let elapsed = workload::run(w, &committed, move |task, op| {
        let db = pools[task % pools.len()].clone();
        async move { operation(&db, op).await }
    })
    .await?;

    let (books, entries) = report::books(&nodes[0].db, w).await?;
    println!("balances (each against its ledger: opening + the sum of its entries):");
    let mut lost_accounts = 0;
    let mut lost_cents = 0;
    for b in &books {
        let lost = b.ledger_says - b.balance;
        if lost != 0 {
            lost_accounts += 1;
            lost_cents += lost.abs();
        }
        println!(
            "  {:<12} {:>12}   ledger says {:>12}{}",
            format!("{}:", report::account_name(b.id)),
            money(b.balance),
            money(b.ledger_says),
            match lost {
                0 => String::new(),
                _ => format!("   LOST {}", money(lost.abs())),
            }
        );
    }

    let count = |kind: TxKind| entries.iter().filter(|e| e.kind == kind).count() as u64;
    let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let (top_ups, transfers) = (get(&committed.top_ups), get(&committed.transfers));
    let failed = get(&committed.failed);
    let total = (w.tasks * w.operations_per_task) as u64;
    println!(
        "operations: {top_ups} top-ups, {transfers} transfers committed, {} refused (insufficient funds), {failed} failed (database errors, not retried) of {total}",
        get(&committed.refused),
    );
    for (message, n) in committed.failures.lock().unwrap().iter() {
        println!("  failed {n} x: {message}");
    }
    let ledger_ok = count(TxKind::TopUp) == top_ups
        && count(TxKind::TransferOut) == transfers
        && count(TxKind::TransferIn) == transfers
        && count(TxKind::Fee) == transfers;
    println!(
        "ledger: {} top-up, {} transfer and {} fee entries ({})",
        count(TxKind::TopUp),
        count(TxKind::TransferOut),
        count(TxKind::Fee),
        match ledger_ok {
            true => "every committed operation's entries are there",
            false => "NOT what the operations committed",
        }
    );
    let sum: i64 = books.iter().map(|b| b.balance).sum();
    let expected =
        i64::from(w.accounts) * w.initial_balance + committed.top_up_cents.load(Ordering::Relaxed);
    println!(
        "lost updates: {lost_accounts} of {} balances miss committed writes, {} in all (sum over accounts of |opening + ledger - balance|); sum of balances {} vs opening + committed top-ups {}{}",
        books.len(),
        money(lost_cents),
        money(sum),
        money(expected),
        match sum - expected {
            0 => String::new(),
            d => format!(
                " ({} {})",
                money(d.abs()),
                if d < 0 { "vanished" } else { "created" }
            ),
        }
    );
    println!(
        "balance checks: {} read-only, {} saw a balance that disagrees with its ledger, {} failed",
        get(&committed.checks),
        get(&committed.inconsistent_checks),
        get(&committed.failed_checks),
    );
    println!(
        "throughput: {} committed operations in {:.2} s",
        committed.operations(),
        elapsed.as_secs_f64(),
    );
    let broken = lost_accounts > 0 || sum != expected || !ledger_ok;
    let status = if broken {
        println!(
            "verdict: INVARIANT BROKEN - without conflictkit {lost_accounts} balances lost updates (off their ledgers by {} in all){}; exit status {EXIT_LOST_UPDATES}",
            money(lost_cents),
            match failed {
                0 => String::new(),
                n => format!(", and {n} operations failed"),
            }
        );
        EXIT_LOST_UPDATES
    } else if failed > 0 || get(&committed.failed_checks) > 0 {
        println!(
            "verdict: no lost update, but {failed} of {total} operations FAILED with database errors that the service would have to retry itself; exit status {EXIT_FAILED}"
        );
        EXIT_FAILED
    } else {
        println!(
            "verdict: no lost update and no failure this time (too little contention to show it: raise wallet.tasks); exit status 0"
        );
        0
    };
    println!("  compare: cargo run --example wallet (the same workload through conflictkit)");
    Ok(status)
}

/// One operation in a plain `db.transaction`, at the default isolation.
async fn operation(db: &DatabaseConnection, op: Op) -> Result<Outcome, BoxError> {
    let done = match op {
        Op::TopUp { account, amount } => db
            .transaction::<_, _, WalletError>(|t| {
                Box::pin(async move { bank::top_up_on(t, account, amount).await.map(drop) })
            })
            .await
            .map(|()| Outcome::Committed),
        Op::Transfer { from, to, amount } => db
            .transaction::<_, _, WalletError>(|t| {
                Box::pin(async move {
                    bank::debit_on(t, from, amount + TRANSFER_FEE, TxKind::TransferOut).await?;
                    bank::credit_on(t, to, amount).await
                })
            })
            .await
            .map(|()| Outcome::Committed),
        Op::Check { account, opening } => db
            .transaction::<_, _, WalletError>(|t| {
                Box::pin(async move { bank::balance_check_on(t, account).await })
            })
            .await
            .map(|(balance, ledger)| Outcome::Checked {
                consistent: balance == opening + ledger,
            }),
    };
    match done {
        Ok(outcome) => Ok(outcome),
        Err(TransactionError::Transaction(WalletError::InsufficientFunds { .. })) => {
            Ok(Outcome::Refused)
        }
        Err(
            TransactionError::Transaction(WalletError::Db(e)) | TransactionError::Connection(e),
        ) => Ok(Outcome::Failed(root_message(&e))),
        Err(TransactionError::Transaction(e)) => Err(e.into()),
    }
}

/// The innermost message of an error: what the database said.
fn root_message(e: &(dyn std::error::Error + 'static)) -> String {
    let mut e = e;
    while let Some(s) = e.source() {
        e = s;
    }
    e.to_string()
}
