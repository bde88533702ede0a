//! The end-of-run report and the invariant check.

use std::sync::atomic::Ordering;
use std::time::Duration;

use conflictkit::resolver::Stats;
use conflictkit::{AutoNumber, ConflictResolver};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, TransactionTrait,
};

use crate::bank::FEE_ACCOUNT;
use crate::entities::{TxKind, TxState, account, ledger};
use crate::settings::{Settings, Wallet};
use crate::workload::{Committed, opening};
use crate::{BoxError, Deposits};

pub fn money(cents: i64) -> String {
    format!(
        "{}{}.{:02}",
        if cents < 0 { "-" } else { "" },
        cents.abs() / 100,
        cents.abs() % 100
    )
}

/// How the report names an account.
pub fn account_name(id: i32) -> String {
    match id {
        FEE_ACCOUNT => "fee account".to_owned(),
        _ => format!("account {id}"),
    }
}

/// One account's balance and what its ledger says it should be: its
/// opening balance plus the sum of its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Books {
    pub id: i32,
    pub balance: i64,
    pub ledger_says: i64,
}

/// Every account's [`Books`], and the whole ledger.
pub async fn books<C: ConnectionTrait>(
    db: &C,
    w: &Wallet,
) -> Result<(Vec<Books>, Vec<ledger::Model>), sea_orm::DbErr> {
    let accounts = account::Entity::find()
        .order_by_asc(account::Column::Id)
        .all(db)
        .await?;
    let entries = ledger::Entity::find().all(db).await?;
    let books = accounts
        .iter()
        .map(|a| Books {
            id: a.id,
            balance: a.balance,
            ledger_says: opening(w, a.id)
                + entries
                    .iter()
                    .filter(|e| e.account == a.id)
                    .map(|e| e.amount)
                    .sum::<i64>(),
        })
        .collect();
    Ok((books, entries))
}

/// One database the wallet ran on: the only one, or a node of a cluster.
pub struct Node {
    pub db: DatabaseConnection,
    pub location: String,
}

/// Prints the report; `Ok(false)` when an invariant does not hold on any
/// node. The balances shown are node 1's; every node is checked.
pub async fn print(
    nodes: &[Node],
    resolvers: &[ConflictResolver],
    settings: &Settings,
    committed: &Committed,
    deposits: &Deposits,
    elapsed: Duration,
) -> Result<bool, BoxError> {
    let mut problems = Vec::new();
    let mut first: Option<(Vec<Books>, usize)> = None;
    for (i, node) in nodes.iter().enumerate() {
        // one transaction per node: on a Galera node, causal reads first
        // (wait until it applied what the other nodes committed); other
        // MySQL servers have no such variable, and need no wait
        let txn = node.db.begin().await?;
        if node.db.get_database_backend() == DbBackend::MySql {
            let _ = txn
                .execute_unprepared("SET SESSION wsrep_sync_wait = 1")
                .await;
        }
        let (accounts, entries, mut found) = check(&txn, settings, committed, deposits).await?;
        txn.commit().await?;
        if let Some((accounts1, entries1)) = &first {
            if &accounts != accounts1 || entries.len() != *entries1 {
                found.push(format!(
                    "its balances or ledger differ from node 1's ({} ledger entries, node 1 has {entries1})",
                    entries.len()
                ));
            }
        } else {
            first = Some((accounts, entries.len()));
        }
        if nodes.len() > 1 {
            found = found
                .into_iter()
                .map(|p| format!("node {} ({}): {p}", i + 1, node.location))
                .collect();
        }
        problems.extend(found);
    }
    let w = &settings.wallet;
    let total: i64 = first
        .as_ref()
        .map(|(a, _)| a.iter().map(|a| a.balance).sum())
        .unwrap_or_default();
    let top_up_cents = committed.top_up_cents.load(Ordering::Relaxed);
    let top_ups = committed.top_ups.load(Ordering::Relaxed);
    let transfers = committed.transfers.load(Ordering::Relaxed);

    // the story first: what contention there was, and what resolved it
    crate::headline::print(resolvers, settings, committed, problems.is_empty());
    println!("balances:");
    for a in first.iter().flat_map(|(a, _)| a) {
        println!("  {}: {:>12}", account_name(a.id), money(a.balance));
    }
    if problems.is_empty() {
        println!(
            "invariant: OK - sum of balances {} = opening {} + top-ups {} + deposits {}; every balance matches its ledger; no lost update{}",
            money(total),
            money(i64::from(w.accounts) * w.initial_balance),
            money(top_up_cents),
            money(deposits.cents),
            match nodes.len() {
                1 => String::new(),
                n => format!("; the same on each of the {n} nodes"),
            }
        );
    } else {
        println!("invariant: FAILED");
        for p in &problems {
            println!("  - {p}");
        }
    }

    let stats: Stats = resolvers.iter().map(ConflictResolver::stats).sum();
    let ops = top_ups + transfers;
    println!(
        "resolver: success {}, retries {}, errors {}, unresolved {}",
        stats.success, stats.retries, stats.errors, stats.unresolved
    );
    crate::headline::reads(resolvers, committed);
    let mut by_label: std::collections::BTreeMap<String, Stats> = Default::default();
    for r in resolvers {
        for (label, s) in r.stats_by_label() {
            let sum = by_label.entry(label).or_default();
            *sum = *sum + s;
        }
    }
    let mut waits: std::collections::BTreeMap<String, Duration> = Default::default();
    for r in resolvers {
        for (label, w) in r.waits_by_label() {
            *waits.entry(label).or_default() += w.total();
        }
    }
    for (label, s) in &by_label {
        // every conflict was a run; so was the last run of a call that
        // committed or failed (a give-up's last run is its last conflict)
        let calls = s.success + s.errors + s.unresolved;
        let runs = s.retries + s.success + s.errors;
        let waited = waits.get(label).copied().unwrap_or_default();
        println!(
            "  {label}: {calls} calls, {:.2} runs per call, {:.1} ms waited per call before its runs (success {}, retries {}, errors {}, unresolved {})",
            runs as f64 / calls.max(1) as f64,
            waited.as_secs_f64() * 1000.0 / calls.max(1) as f64,
            s.success,
            s.retries,
            s.errors,
            s.unresolved
        );
    }
    // group commit of the transfers on the fee account (see `bank::transfer`)
    let mut batches = conflictkit::resolver::BatchStats::default();
    for r in resolvers {
        for s in r.batch_stats().values() {
            batches.batches += s.batches;
            batches.members += s.members;
            batches.largest = batches.largest.max(s.largest);
        }
    }
    println!(
        "  group commit (batch): {} top-ups and transfers in {} transactions ({:.1} per COMMIT, at most {})",
        batches.members,
        batches.batches,
        batches.mean_size(),
        batches.largest
    );
    if resolvers.len() > 1 {
        for (i, r) in resolvers.iter().enumerate() {
            let s = r.stats();
            println!(
                "  node {}: success {}, retries {}, errors {}, unresolved {}",
                i + 1,
                s.success,
                s.retries,
                s.errors,
                s.unresolved
            );
        }
    }
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
    // The replayed delivery repeats the first posted deposit: what it added
    // is what was handled and credited beyond one per posted deposit.
    let beyond_posted = |n: u32| i64::from(n) - deposits.posted as i64;
    println!(
        "events: listener on {}; {} txupdate events posted and credited; a replayed delivery sent {} times was handled {} time(s) and credited {} times",
        deposits.listener,
        deposits.posted,
        deposits.replays_sent,
        beyond_posted(deposits.handled),
        beyond_posted(deposits.credited),
    );
    println!(
        "outbox: {} deposit_credited notifications relayed, {} received",
        deposits.relayed, deposits.notified
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

/// The invariant on one database: its accounts, its ledger and what does
/// not hold.
async fn check<C: ConnectionTrait>(
    db: &C,
    settings: &Settings,
    committed: &Committed,
    deposits: &Deposits,
) -> Result<(Vec<Books>, Vec<ledger::Model>, Vec<String>), BoxError> {
    let w = &settings.wallet;
    let (accounts, entries) = books(db, w).await?;
    let mut problems = Vec::new();
    for a in &accounts {
        if a.balance != a.ledger_says {
            problems.push(format!(
                "{} holds {} but its ledger says {}",
                account_name(a.id),
                money(a.balance),
                money(a.ledger_says)
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
        ("transfer fees", count(TxKind::Fee), transfers),
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
    if deposits.relayed != deposits.credited as usize
        || deposits.notified as usize != deposits.relayed
    {
        problems.push(format!(
            "{} deposits credited, {} notifications relayed, {} received",
            deposits.credited, deposits.relayed, deposits.notified
        ));
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

    Ok((accounts, entries, problems))
}
