//! The workload both runs share, with conflictkit and without
//! (`--without-conflictkit`): which operations each task does (seeded, so
//! both runs do the same ones), the driver that runs the tasks at once, and
//! the tally of what happened. How one operation runs is the caller's.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng};

use crate::BoxError;
use crate::settings::Wallet;

/// One step of a task.
#[derive(Debug, Clone, Copy)]
pub enum Op {
    /// Add `amount` cents to `account`.
    TopUp { account: i32, amount: i64 },
    /// Move `amount` cents (and the fee) from `from` to `to`.
    Transfer { from: i32, to: i32, amount: i64 },
    /// Read `account`'s balance and ledger: is the balance `opening` plus
    /// the ledger? Read-only.
    Check { account: i32, opening: i64 },
}

/// What one operation came to.
#[derive(Debug)]
pub enum Outcome {
    Committed,
    /// Refused by the business rule (insufficient funds): nothing written.
    Refused,
    /// conflictkit gave up after its replays (`CannotResolveDatabaseConflict`).
    GaveUp(String),
    /// The database returned an error and nobody retried.
    Failed(String),
    /// A balance check: whether the balance equalled opening + ledger.
    Checked {
        consistent: bool,
    },
}

/// The operations of task `task`: `operations_per_task` top-ups and
/// transfers, and a balance check after every `check_every`-th of them,
/// drawn from a generator seeded with `seed` and the task's number.
pub fn plan(w: &Wallet, task: usize) -> Vec<Op> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(w.seed.wrapping_add(task as u64));
    let mut ops = Vec::new();
    for i in 0..w.operations_per_task {
        let a = rng.random_range(1..=w.accounts);
        let b = (a % w.accounts) + 1;
        let amount = rng.random_range(1..=2_000);
        ops.push(match rng.random_bool(0.5) {
            true => Op::TopUp { account: a, amount },
            false => Op::Transfer {
                from: a,
                to: b,
                amount,
            },
        });
        if w.check_every > 0 && (i + 1) % w.check_every == 0 {
            // the fee account (0) too
            let account = rng.random_range(0..=w.accounts);
            ops.push(Op::Check {
                account,
                opening: opening(w, account),
            });
        }
    }
    ops
}

/// What `account` held before the workload: the fee account opens empty.
pub fn opening(w: &Wallet, account: i32) -> i64 {
    match account {
        crate::bank::FEE_ACCOUNT => 0,
        _ => w.initial_balance,
    }
}

/// What the workload did, counted by the application itself.
#[derive(Default)]
pub struct Committed {
    pub top_ups: AtomicU64,
    pub top_up_cents: AtomicI64,
    pub transfers: AtomicU64,
    pub refused: AtomicU64,
    pub unresolved: AtomicU64,
    pub failed: AtomicU64,
    /// Balance checks that failed with a database error or gave up.
    pub failed_checks: AtomicU64,
    pub checks: AtomicU64,
    pub inconsistent_checks: AtomicU64,
    /// The failures by the database's message, and how many of each.
    pub failures: Mutex<BTreeMap<String, u64>>,
}

impl Committed {
    fn count(&self, op: Op, outcome: Outcome) {
        let add = |c: &AtomicU64| c.fetch_add(1, Ordering::Relaxed);
        match (outcome, op) {
            (Outcome::Committed, Op::TopUp { amount, .. }) => {
                add(&self.top_ups);
                self.top_up_cents.fetch_add(amount, Ordering::Relaxed);
            }
            (Outcome::Committed, _) => {
                add(&self.transfers);
            }
            (Outcome::Refused, _) => {
                add(&self.refused);
            }
            (Outcome::GaveUp(e), Op::Check { .. }) => {
                tracing::warn!("{e}");
                add(&self.failed_checks);
            }
            (Outcome::GaveUp(e), _) => {
                tracing::warn!("{e}");
                add(&self.unresolved);
            }
            (Outcome::Failed(e), Op::Check { .. }) => {
                add(&self.failed_checks);
                *self.failures.lock().unwrap().entry(e).or_default() += 1;
            }
            (Outcome::Failed(e), _) => {
                add(&self.failed);
                *self.failures.lock().unwrap().entry(e).or_default() += 1;
            }
            (Outcome::Checked { consistent }, _) => {
                add(&self.checks);
                if !consistent {
                    add(&self.inconsistent_checks);
                }
            }
        }
    }

    /// Top-ups and transfers that committed.
    pub fn operations(&self) -> u64 {
        self.top_ups.load(Ordering::Relaxed) + self.transfers.load(Ordering::Relaxed)
    }
}

/// Runs `w.tasks` tasks at once, each doing its [`plan`] through `exec`
/// (given the task's number and the operation), with a progress bar; counts
/// the outcomes in `committed`. Returns how long the tasks took. An `Err`
/// from `exec` (an error neither run expects) stops the run.
pub async fn run<E, F>(
    w: &Wallet,
    committed: &std::sync::Arc<Committed>,
    exec: E,
) -> Result<Duration, BoxError>
where
    E: Fn(usize, Op) -> F + Clone + Send + 'static,
    F: Future<Output = Result<Outcome, BoxError>> + Send,
{
    let total = (w.tasks * w.operations_per_task) as u64;
    let bar = ProgressBar::new(total).with_style(ProgressStyle::with_template(
        "  {bar:40} {pos}/{len} operations {msg}",
    )?);
    let started = Instant::now();
    let mut handles = Vec::new();
    for task in 0..w.tasks {
        let (exec, committed, bar) = (exec.clone(), committed.clone(), bar.clone());
        let ops = plan(w, task);
        handles.push(tokio::spawn(async move {
            for op in ops {
                let outcome = exec(task, op).await?;
                committed.count(op, outcome);
                if !matches!(op, Op::Check { .. }) {
                    bar.inc(1);
                }
            }
            Ok::<(), BoxError>(())
        }));
    }
    for h in handles {
        h.await??;
    }
    bar.finish_and_clear();
    Ok(started.elapsed())
}
