//! The first lines of the report: how much contention the workload met and
//! what resolved it (replays, waits in the queue, group commits), with the
//! command that runs the same workload without conflictkit; and where the
//! read-only balance checks went (the replica of `--replica`, or the
//! primary).

use std::sync::atomic::Ordering;
use std::time::Duration;

use conflictkit::ConflictResolver;
use conflictkit::resolver::{ReplicaStats, Stats};

use crate::settings::Settings;
use crate::workload::Committed;

/// The label of the top-ups and transfers (see `bank`).
const ACCOUNTS: &str = "wallet::accounts";

/// Prints the headline: committed, lost (`invariant_ok`), and how the
/// contention on the hot rows was resolved.
pub fn print(
    resolvers: &[ConflictResolver],
    settings: &Settings,
    committed: &Committed,
    invariant_ok: bool,
) {
    let w = &settings.wallet;
    let mut stats = Stats::default();
    let mut waited = Duration::ZERO;
    let (mut batches, mut members) = (0, 0);
    for r in resolvers {
        if let Some(s) = r.stats_by_label().get(ACCOUNTS) {
            stats = stats + *s;
        }
        if let Some(waits) = r.waits_by_label().get(ACCOUNTS) {
            waited += waits.total();
        }
        for b in r.batch_stats().values() {
            batches += b.batches;
            members += b.members;
        }
    }
    let calls = stats.success + stats.errors + stats.unresolved;
    let total = w.tasks * w.operations_per_task;
    println!(
        "conflictkit: {} of {total} top-ups and transfers from {} tasks at once on {} hot rows committed ({} refused, {} gave up), {}",
        committed.operations(),
        w.tasks,
        w.accounts + 1,
        committed.refused.load(Ordering::Relaxed),
        committed.unresolved.load(Ordering::Relaxed),
        match invariant_ok {
            true => "no update lost",
            false => "INVARIANT FAILED (see below)",
        }
    );
    let group_commit = match batches {
        0 => "no group commit".to_owned(),
        b => format!(
            "{members} calls in {b} group commits ({:.1} per COMMIT)",
            members as f64 / b as f64
        ),
    };
    println!(
        "  contention resolved: {} replays of conflicting transactions, {:.1} ms queued per call, {group_commit}",
        stats.retries,
        waited.as_secs_f64() * 1000.0 / calls.max(1) as f64,
    );
    println!(
        "  compare: cargo run --example wallet -- --without-conflictkit (the same operations in plain SeaORM transactions)"
    );
}

/// Prints where the balance checks (read-only calls) ran and whether each
/// saw its balance agree with its ledger.
pub fn reads(resolvers: &[ConflictResolver], committed: &Committed) {
    let checks = committed.checks.load(Ordering::Relaxed);
    let consistent = checks - committed.inconsistent_checks.load(Ordering::Relaxed);
    let replicas: usize = resolvers.iter().map(|r| r.replica_status().len()).sum();
    let routed = match replicas {
        0 => "all on the primary (no --replica)".to_owned(),
        _ => {
            let mut s = ReplicaStats::default();
            for r in resolvers {
                let one = r.replica_stats();
                s.on_replica += one.on_replica;
                s.primary_lagging += one.primary_lagging;
                s.primary_down += one.primary_down;
                s.primary_wait_expired += one.primary_wait_expired;
                s.primary_fell_back += one.primary_fell_back;
            }
            let primary =
                s.primary_lagging + s.primary_down + s.primary_wait_expired + s.primary_fell_back;
            format!(
                "replica {}, primary {primary} (replica lagging {}, down {}, fell back {})",
                s.on_replica, s.primary_lagging, s.primary_down, s.primary_fell_back
            )
        }
    };
    let failed = match committed.failed_checks.load(Ordering::Relaxed) {
        0 => String::new(),
        n => format!(", {n} gave up"),
    };
    println!(
        "  balance checks (read-only): {checks}, {consistent} saw balance = opening + ledger{failed}; reads: {routed}"
    );
}
