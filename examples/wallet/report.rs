//! The end-of-run report and the invariant check.

use std::sync::atomic::Ordering;
use std::time::Duration;

use conflictkit::{AutoNumber, ConflictResolver};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use crate::entities::{TxKind, TxState, account, ledger};
use crate::settings::Settings;
use crate::{BoxError, Committed, Deposits};

fn money(cents: i64) -> String {
    format!(
        "{}{}.{:02}",
        if cents < 0 { "-" } else { "" },
        cents.abs() / 100,
        cents.abs() % 100
    )
}

/// Prints the report; `Ok(false)` when an invariant does not hold.
pub async fn print(
    db: &DatabaseConnection,
    resolver: &ConflictResolver,
    settings: &Settings,
    committed: &Committed,
    deposits: &Deposits,
    elapsed: Duration,
) -> Result<bool, BoxError> {
    let w = &settings.wallet;
    let accounts = account::Entity::find().all(db).await?;
    let entries = ledger::Entity::find().all(db).await?;
    let mut problems = Vec::new();

    println!("balances:");
    for a in &accounts {
        let ledger_sum: i64 = entries
            .iter()
            .filter(|e| e.account == a.id)
            .map(|e| e.amount)
            .sum();
        println!("  account {}: {:>12}", a.id, money(a.balance));
        if a.balance != w.initial_balance + ledger_sum {
            problems.push(format!(
                "account {} holds {} but its ledger says {}",
                a.id,
                money(a.balance),
                money(w.initial_balance + ledger_sum)
            ));
        }
    }
    let total: i64 = accounts.iter().map(|a| a.balance).sum();
    let top_up_cents = committed.top_up_cents.load(Ordering::Relaxed);
    let expected = i64::from(w.accounts) * w.initial_balance + top_up_cents + deposits.cents;
    if total != expected {
        problems.push(format!(
            "sum of balances {} != expected {}",
            money(total),
            money(expected)
        ));
    }
    let count = |kind: TxKind| entries.iter().filter(|e| e.kind == kind).count() as u64;
    let top_ups = committed.top_ups.load(Ordering::Relaxed);
    let transfers = committed.transfers.load(Ordering::Relaxed);
    for (what, in_ledger, reported) in [
        ("top-ups", count(TxKind::TopUp), top_ups),
        ("transfers", count(TxKind::TransferOut), transfers),
        ("transfer credits", count(TxKind::TransferIn), transfers),
        (
            "deposits",
            count(TxKind::Deposit),
            u64::from(deposits.credited),
        ),
    ] {
        if in_ledger != reported {
            problems.push(format!(
                "{in_ledger} {what} in the ledger, {reported} committed"
            ));
        }
    }
    if deposits.credited as usize != deposits.posted {
        problems.push(format!(
            "{} deposits posted, {} credited",
            deposits.posted, deposits.credited
        ));
    }
    // the AutoNumber state column: every entry was stored as Credited (3)
    let credited_rows = ledger::Entity::find()
        .filter(ledger::Column::State.eq(TxState::Credited))
        .all(db)
        .await?
        .len();
    if credited_rows != entries.len() {
        problems.push(format!(
            "{credited_rows} of {} entries read back as {}",
            entries.len(),
            TxState::Credited
        ));
    }

    if problems.is_empty() {
        println!(
            "invariant: OK - sum of balances {} = opening {} + top-ups {} + deposits {}; every balance matches its ledger; no lost update",
            money(total),
            money(i64::from(w.accounts) * w.initial_balance),
            money(top_up_cents),
            money(deposits.cents),
        );
    } else {
        println!("invariant: FAILED");
        for p in &problems {
            println!("  - {p}");
        }
    }

    let stats = resolver.stats();
    let ops = top_ups + transfers;
    println!(
        "resolver: success {}, retries {}, errors {}, unresolved {}",
        stats.success, stats.retries, stats.errors, stats.unresolved
    );
    println!(
        "operations: {top_ups} top-ups, {transfers} transfers committed, {} refused (insufficient funds), {} gave up",
        committed.refused.load(Ordering::Relaxed),
        committed.unresolved.load(Ordering::Relaxed),
    );
    println!(
        "throughput: {ops} committed operations in {:.2} s ({:.0} ops/s)",
        elapsed.as_secs_f64(),
        ops as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    println!(
        "events: listener on {}; {} txupdate events posted and credited; a replayed delivery sent {} times was handled {} time(s) and credited 0 times",
        deposits.listener,
        deposits.posted,
        deposits.replays_sent,
        deposits.handled as usize - deposits.posted,
    );
    println!(
        "ledger states (AutoNumber, stored as integers): {}",
        TxState::all()
            .map(|s| format!("{s}={}", s.value()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(problems.is_empty())
}
