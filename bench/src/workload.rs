//! The increment workload and the ways of running it: conflictkit's resolver
//! and what a user would write by hand with sea-orm instead.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use conflictkit::resolver::{Backoff, CallOptions, Contention};
use conflictkit::{ConflictResolver, Txn};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, IsolationLevel, TransactionOptions,
    TransactionTrait,
};

use crate::batched::BatchCounts;
use crate::db::stmt;

/// How one increment is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Strategy {
    /// `resolver.run` with the defaults (3 retries, adaptive contention control).
    CkAdaptive,
    /// `resolver.run` with the defaults and the counter's id as the
    /// contention key (`CallOptions::key`): one gate per row.
    CkKeyed,
    /// `resolver.run_batched` with the defaults, the counter's id as the key
    /// and batches of up to [`BATCH_MAX`](crate::batched::BATCH_MAX) calls: group commit (issue 29).
    CkBatch,
    /// `resolver.run`, contention control off (full-jitter backoff only).
    CkOff,
    /// `resolver.run`, `Backoff::none()`, contention off, 10 000 retries.
    Immediate,
    /// Hand-written sea-orm SERIALIZABLE begin/commit loop with full-jitter backoff.
    JitterHand,
    /// Hand-written `SELECT … FOR UPDATE` in READ COMMITTED (SQLite: `BEGIN IMMEDIATE`).
    ForUpdate,
    /// One autocommitted `UPDATE … SET n = n + 1` (the guide's third option).
    SingleUpdate,
    /// Hand-written SERIALIZABLE begin/commit with the isolation taken from the
    /// session default (no `SET TRANSACTION`), for the overhead scenario.
    HandSessionIso,
}

impl Strategy {
    /// The contention scenario's default (`ck-keyed` runs only where K > 1).
    pub(crate) const CONTENTION: [Strategy; 8] = [
        Strategy::CkAdaptive,
        Strategy::CkKeyed,
        Strategy::CkBatch,
        Strategy::CkOff,
        Strategy::Immediate,
        Strategy::JitterHand,
        Strategy::ForUpdate,
        Strategy::SingleUpdate,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Strategy::CkAdaptive => "ck-adaptive",
            Strategy::CkKeyed => "ck-keyed",
            Strategy::CkBatch => "ck-batch",
            Strategy::CkOff => "ck-off",
            Strategy::Immediate => "immediate",
            Strategy::JitterHand => "jitter-hand",
            Strategy::ForUpdate => "for-update",
            Strategy::SingleUpdate => "single-update",
            Strategy::HandSessionIso => "hand-session-iso",
        }
    }
}

impl FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Strategy::CkAdaptive,
            Strategy::CkKeyed,
            Strategy::CkBatch,
            Strategy::CkOff,
            Strategy::Immediate,
            Strategy::JitterHand,
            Strategy::ForUpdate,
            Strategy::SingleUpdate,
            Strategy::HandSessionIso,
        ]
        .into_iter()
        .find(|x| x.name() == s)
        .ok_or_else(|| format!("unknown strategy `{s}`"))
    }
}

/// Attempts a hand-written loop makes before it gives up.
const HAND_MAX_ATTEMPTS: u32 = 10_000;

/// The label every managed increment runs under (one hot function).
pub(crate) const LABEL: &str = "bench::increment";

/// What one increment did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpOutcome {
    pub(crate) committed: bool,
    /// Ran out of retries on conflicts.
    pub(crate) gave_up: bool,
    pub(crate) attempts: u32,
    pub(crate) latency: Duration,
}

/// Read-modify-write of counter `id`: the lost-update shape (a plain
/// `n = n + 1` would hide lost updates inside the database).
pub(crate) async fn read_modify_write<C: ConnectionTrait>(
    c: &C,
    id: i32,
    lock: bool,
) -> Result<(), DbErr> {
    let b = c.get_database_backend();
    let select = if lock && b != DbBackend::Sqlite {
        "SELECT n FROM ck_counter WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT n FROM ck_counter WHERE id = $1"
    };
    let row = c
        .query_one_raw(stmt(b, select, vec![id.into()]))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("counter {id}")))?;
    let n: i64 = row.try_get("", "n")?;
    c.execute_raw(stmt(
        b,
        "UPDATE ck_counter SET n = $1 WHERE id = $2",
        vec![(n + 1).into(), id.into()],
    ))
    .await?;
    Ok(())
}

/// Full jitter, 10 ms · 2^(attempt-1), capped at 1 s: the backoff of the
/// hand-written loops.
fn full_jitter(attempt: u32) -> Duration {
    let ceiling_ms = 10u64
        .saturating_mul(1u64 << attempt.saturating_sub(1).min(20))
        .min(1000);
    Duration::from_micros(rand::random_range(0..=ceiling_ms * 1000))
}

/// Runs increments one way on one pool.
#[derive(Clone)]
pub(crate) struct Runner {
    strategy: Strategy,
    db: DatabaseConnection,
    resolver: Option<ConflictResolver>,
}

impl Runner {
    /// A runner; resolver strategies get a fresh resolver (fresh gates and stats).
    pub(crate) fn new(strategy: Strategy, db: &DatabaseConnection) -> Self {
        let resolver = match strategy {
            Strategy::CkAdaptive | Strategy::CkKeyed | Strategy::CkBatch => {
                Some(ConflictResolver::builder(db.clone()).build())
            }
            Strategy::CkOff => Some(
                ConflictResolver::builder(db.clone())
                    .contention(Contention::Off)
                    .build(),
            ),
            Strategy::Immediate => Some(
                ConflictResolver::builder(db.clone())
                    .contention(Contention::Off)
                    .backoff(Backoff::none())
                    .retries(10_000)
                    .build(),
            ),
            _ => None,
        };
        Self {
            strategy,
            db: db.clone(),
            resolver,
        }
    }

    /// The resolver's admission limit after a cell (adaptive only; keyed:
    /// the limit of row 0).
    pub(crate) fn contention_limit(&self) -> Option<u32> {
        let r = self.resolver.as_ref()?;
        match self.strategy {
            Strategy::CkKeyed | Strategy::CkBatch => r.contention_limit_of_key(LABEL, &0_i32),
            _ => r.contention_limit(LABEL),
        }
    }

    /// How the resolver batched the increments so far (`ck-batch` only):
    /// batches run, calls run in them, the largest.
    pub(crate) fn batch_counts(&self) -> Option<BatchCounts> {
        if self.strategy != Strategy::CkBatch {
            return None;
        }
        Some(BatchCounts::of(self.resolver.as_ref()?))
    }

    /// One increment of counter `id`, with its retries.
    pub(crate) async fn op(&self, id: i32) -> Result<OpOutcome, DbErr> {
        let start = Instant::now();
        let (committed, gave_up, attempts) = match &self.resolver {
            Some(r) if self.strategy == Strategy::CkBatch => {
                crate::batched::increment(r, id).await?
            }
            Some(r) => managed(r, id, self.strategy == Strategy::CkKeyed).await?,
            None => self.by_hand(id).await?,
        };
        Ok(OpOutcome {
            committed,
            gave_up,
            attempts,
            latency: start.elapsed(),
        })
    }

    async fn by_hand(&self, id: i32) -> Result<(bool, bool, u32), DbErr> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let res = match self.strategy {
                Strategy::ForUpdate => self.for_update_once(id).await,
                Strategy::SingleUpdate => self
                    .db
                    .execute_raw(stmt(
                        self.db.get_database_backend(),
                        "UPDATE ck_counter SET n = n + 1 WHERE id = $1",
                        vec![id.into()],
                    ))
                    .await
                    .map(|_| ()),
                Strategy::HandSessionIso => self.serializable_once(id, None).await,
                _ => {
                    self.serializable_once(id, Some(IsolationLevel::Serializable))
                        .await
                }
            };
            match res {
                Ok(()) => return Ok((true, false, attempt)),
                Err(e) if ConflictResolver::is_retryable(&e) => {
                    if attempt >= HAND_MAX_ATTEMPTS {
                        return Ok((false, true, attempt));
                    }
                    tokio::time::sleep(full_jitter(attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// What a user writes: begin SERIALIZABLE, read, write, commit; `?`
    /// drops (rolls back) the transaction on an error.
    async fn serializable_once(&self, id: i32, iso: Option<IsolationLevel>) -> Result<(), DbErr> {
        let txn = self.db.begin_with_config(iso, None).await?;
        read_modify_write(&txn, id, false).await?;
        txn.commit().await
    }

    async fn for_update_once(&self, id: i32) -> Result<(), DbErr> {
        let txn = if self.db.get_database_backend() == DbBackend::Sqlite {
            // SQLite has no row locks: the pessimistic form is BEGIN IMMEDIATE
            self.db
                .begin_with_options(TransactionOptions {
                    sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
                    ..Default::default()
                })
                .await?
        } else {
            self.db
                .begin_with_config(Some(IsolationLevel::ReadCommitted), None)
                .await?
        };
        read_modify_write(&txn, id, true).await?;
        txn.commit().await
    }
}

/// `resolver.run`: committed, gave up, attempts.
async fn managed(r: &ConflictResolver, id: i32, keyed: bool) -> Result<(bool, bool, u32), DbErr> {
    let tries = AtomicU32::new(0);
    let mut options = CallOptions::new(LABEL);
    if keyed {
        options = options.key(&id);
    }
    let res = r
        .run(options, |txn: &Txn| {
            tries.fetch_add(1, Ordering::Relaxed);
            Box::pin(async move {
                read_modify_write(txn, id, false).await?;
                Ok::<_, conflictkit::Error>(())
            })
        })
        .await;
    outcome(res, tries.load(Ordering::Relaxed))
}

/// A managed call's result as (committed, gave up, attempts); errors other
/// than a give-up end the task (counted in the cell's errors).
pub(crate) fn outcome(
    res: Result<(), conflictkit::Error>,
    attempts: u32,
) -> Result<(bool, bool, u32), DbErr> {
    match res {
        Ok(()) => Ok((true, false, attempts)),
        Err(conflictkit::Error::Unresolved(_)) => Ok((false, true, attempts)),
        Err(conflictkit::Error::Db(e)) => Err(e),
        Err(e) => Err(DbErr::Custom(e.to_string())),
    }
}

/// The raw numbers of one cell (one strategy, T tasks, K rows, one run).
#[derive(Debug, Clone)]
pub(crate) struct CellRun {
    pub(crate) committed: u64,
    pub(crate) give_ups: u64,
    /// Errors that were neither commits nor conflicts (should be 0).
    pub(crate) errors: u64,
    pub(crate) attempts: u64,
    pub(crate) elapsed: Duration,
    /// Latencies of committed ops, sorted.
    pub(crate) latencies: Vec<Duration>,
    /// Final sum minus committed ops: negative = lost updates.
    pub(crate) sum_delta: i64,
    /// The deadline stopped the cell before all ops ran.
    pub(crate) cut: bool,
    /// Adaptive limit at the end (`None` = unlimited or not adaptive).
    pub(crate) final_limit: Option<u32>,
    /// `ck-batch`: how the calls were batched (`None` for the others).
    pub(crate) batches: Option<BatchCounts>,
    pub(crate) first_error: Option<String>,
}

impl CellRun {
    /// A run with nothing counted yet.
    pub(crate) fn empty(ops: usize) -> Self {
        Self {
            committed: 0,
            give_ups: 0,
            errors: 0,
            attempts: 0,
            elapsed: Duration::ZERO,
            latencies: Vec::with_capacity(ops),
            sum_delta: 0,
            cut: false,
            final_limit: None,
            batches: None,
            first_error: None,
        }
    }

    /// Adds the counts and latency samples of `other` (a share of the same
    /// cell run elsewhere): percentiles are then taken over all samples,
    /// never averaged. The elapsed time is the caller's to set.
    pub(crate) fn absorb(&mut self, other: CellRun) {
        self.committed += other.committed;
        self.give_ups += other.give_ups;
        self.errors += other.errors;
        self.attempts += other.attempts;
        self.latencies.extend(other.latencies);
        self.latencies.sort_unstable();
        self.cut |= other.cut;
        self.final_limit = self.final_limit.or(other.final_limit);
        self.batches = match (self.batches, other.batches) {
            (Some(a), Some(b)) => Some(a.add(b)),
            (a, b) => a.or(b),
        };
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// Sets [`CellRun::sum_delta`] from the counters' final sum.
    pub(crate) async fn check_sum(&mut self, db: &DatabaseConnection) -> Result<(), DbErr> {
        let sum = crate::db::counter_sum(db).await?;
        self.sum_delta = sum - self.committed as i64;
        Ok(())
    }

    pub(crate) fn goodput(&self) -> f64 {
        self.committed as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    pub(crate) fn attempts_per_commit(&self) -> f64 {
        self.attempts as f64 / (self.committed.max(1)) as f64
    }
    /// Nearest-rank percentile of the latency of *committed* ops (give-ups
    /// and errors are counted in their own columns, not here), in ms.
    pub(crate) fn pct_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        let i = rank.clamp(1, self.latencies.len()) - 1;
        self.latencies[i].as_secs_f64() * 1000.0
    }
    /// `ck-batch`'s calls per batch (NaN for the other strategies).
    pub(crate) fn mean_batch(&self) -> f64 {
        self.batches.map_or(f64::NAN, BatchCounts::mean_size)
    }
    pub(crate) fn max_ms(&self) -> f64 {
        self.latencies
            .last()
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    }
}

/// Runs `ops` increments over `k` hot rows from `t` tasks (ops split across
/// tasks), stopping new ops after `deadline`; then checks the final sum.
pub(crate) async fn run_cell(
    db: &DatabaseConnection,
    strategy: Strategy,
    t: usize,
    k: usize,
    ops: usize,
    deadline: Duration,
) -> Result<CellRun, DbErr> {
    run_cell_on_nodes(std::slice::from_ref(db), strategy, t, k, ops, deadline).await
}

/// [`run_cell`] with the tasks spread over the nodes of a cluster (task i on
/// node i mod n, one runner and resolver per node); `dbs[0]` sets up and checks.
pub(crate) async fn run_cell_on_nodes(
    dbs: &[DatabaseConnection],
    strategy: Strategy,
    t: usize,
    k: usize,
    ops: usize,
    deadline: Duration,
) -> Result<CellRun, DbErr> {
    let db = &dbs[0];
    crate::db::reset_counter(db, k).await?;
    let runners: Vec<Arc<Runner>> = dbs
        .iter()
        .map(|d| Arc::new(Runner::new(strategy, d)))
        .collect();
    let mut run = run_tasks(&runners, t, k, ops, deadline).await?;
    run.check_sum(db).await?;
    Ok(run)
}

/// The increments themselves: `ops` over `k` rows from `t` tasks (task i on
/// `runners[i mod n]`), new ops stopped after `deadline`. The sum is not
/// checked here (a worker process runs only its share of a cell).
pub(crate) async fn run_tasks(
    runners: &[Arc<Runner>],
    t: usize,
    k: usize,
    ops: usize,
    deadline: Duration,
) -> Result<CellRun, DbErr> {
    let start = Instant::now();
    let stop_at = start + deadline;
    let mut tasks = Vec::with_capacity(t);
    for task in 0..t {
        let n = share(ops, t, task);
        let runner = runners[task % runners.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::with_capacity(n);
            let mut cut = false;
            let mut error = None;
            for _ in 0..n {
                if Instant::now() >= stop_at {
                    cut = true;
                    break;
                }
                let id = rand::random_range(0..k) as i32;
                match runner.op(id).await {
                    Ok(o) => outcomes.push(o),
                    Err(e) => {
                        error = Some(e.to_string());
                        break;
                    }
                }
            }
            (outcomes, cut, error)
        }));
    }
    let mut run = CellRun::empty(ops);
    for task in tasks {
        let (outcomes, cut, error) = task
            .await
            .map_err(|e| DbErr::Custom(format!("benchmark task failed: {e}")))?;
        run.cut |= cut;
        if let Some(e) = error {
            run.errors += 1;
            run.first_error.get_or_insert(e);
        }
        for o in outcomes {
            run.attempts += u64::from(o.attempts);
            if o.committed {
                run.committed += 1;
                run.latencies.push(o.latency);
            }
            if o.gave_up {
                run.give_ups += 1;
            }
        }
    }
    run.elapsed = start.elapsed();
    run.latencies.sort_unstable();
    run.final_limit = runners[0].contention_limit();
    run.batches = runners
        .iter()
        .filter_map(|r| r.batch_counts())
        .reduce(BatchCounts::add);
    Ok(run)
}

/// Share `i` of `total` split over `parts` (the first `total % parts` get one more).
pub(crate) fn share(total: usize, parts: usize, i: usize) -> usize {
    total / parts + usize::from(i < total % parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_and_differ_by_at_most_one() {
        for (total, parts) in [(8000, 4), (16, 4), (64, 3), (5, 4), (7, 1)] {
            let shares: Vec<usize> = (0..parts).map(|i| share(total, parts, i)).collect();
            assert_eq!(shares.iter().sum::<usize>(), total, "{total} over {parts}");
            let (lo, hi) = (shares.iter().min(), shares.iter().max());
            assert!(hi.zip(lo).is_some_and(|(h, l)| h - l <= 1), "{shares:?}");
        }
    }

    fn run_with(latencies_ms: &[u64], give_ups: u64) -> CellRun {
        let mut run = CellRun::empty(latencies_ms.len());
        run.committed = latencies_ms.len() as u64;
        run.attempts = run.committed + give_ups * 4;
        run.give_ups = give_ups;
        run.latencies = latencies_ms
            .iter()
            .map(|&ms| Duration::from_millis(ms))
            .collect();
        run
    }

    #[test]
    fn absorbed_runs_take_percentiles_over_every_sample() {
        // one process fast, one slow: the merged p99 is the slow one's tail,
        // where an average of the two p99s would be half of it
        let mut merged = run_with(&[1; 99], 0);
        merged.absorb(run_with(&[100; 99], 3));
        assert_eq!(merged.committed, 198);
        assert_eq!(merged.give_ups, 3);
        assert_eq!(merged.attempts, 198 + 12);
        assert_eq!(merged.pct_ms(99.0), 100.0);
        assert_eq!(merged.pct_ms(50.0), 1.0);
        assert!(merged.latencies.is_sorted());
    }
}
