//! `ck-batch`, the group-commit strategy of the contention scenario (issue
//! 29): each increment through `resolver.run_batched`, keyed by its
//! counter, and what the resolver's `batch_stats` counted of it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use conflictkit::resolver::CallOptions;
use conflictkit::{ConflictResolver, Txn};
use sea_orm::DbErr;

use crate::workload::{LABEL, outcome, read_modify_write};

/// The most calls one batch of `ck-batch` takes (`CallOptions::batch`).
pub(crate) const BATCH_MAX: usize = 64;

/// `resolver.run_batched`, keyed by the counter, batches of up to
/// [`BATCH_MAX`]: the body the other conflictkit strategies give
/// `resolver.run`, owning what it uses (a batched body runs in the batch's
/// task). Attempts count the runs of this
/// call's body (a replayed batch runs every member's body again).
pub(crate) async fn increment(r: &ConflictResolver, id: i32) -> Result<(bool, bool, u32), DbErr> {
    let tries = Arc::new(AtomicU32::new(0));
    let options = CallOptions::new(LABEL).key(&id).batch(BATCH_MAX);
    let counted = tries.clone();
    let res = r
        .run_batched(options, move |txn: &Txn| {
            counted.fetch_add(1, Ordering::Relaxed);
            Box::pin(async move {
                read_modify_write(txn, id, false).await?;
                Ok::<_, conflictkit::Error>(())
            })
        })
        .await;
    outcome(res, tries.load(Ordering::Relaxed))
}

/// How many batches `ck-batch` ran in a cell and how many calls they held
/// (from the resolver's `batch_stats`, summed over processes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct BatchCounts {
    pub(crate) batches: u64,
    pub(crate) members: u64,
    pub(crate) largest: u64,
}

impl BatchCounts {
    /// What `resolver` counted for [`LABEL`] so far.
    pub(crate) fn of(resolver: &ConflictResolver) -> Self {
        let stats = resolver
            .batch_stats()
            .get(LABEL)
            .copied()
            .unwrap_or_default();
        Self {
            batches: stats.batches,
            members: stats.members,
            largest: stats.largest,
        }
    }

    /// Calls per batch (0 before the first batch).
    pub(crate) fn mean_size(self) -> f64 {
        if self.batches == 0 {
            0.0
        } else {
            self.members as f64 / self.batches as f64
        }
    }

    /// The counts of two shares of one cell together.
    pub(crate) fn add(self, other: BatchCounts) -> BatchCounts {
        BatchCounts {
            batches: self.batches + other.batches,
            members: self.members + other.members,
            largest: self.largest.max(other.largest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{CellRun, Strategy};

    #[test]
    fn absorbed_batch_counts_give_the_mean_over_every_batch() {
        // two processes: 10 calls in 10 batches and 90 calls in 3 batches;
        // the cell's mean is 100 / 13, where a mean of the two means is 15.5
        let share = |batches, members, largest| {
            let mut run = CellRun::empty(0);
            run.batches = Some(BatchCounts {
                batches,
                members,
                largest,
            });
            run
        };
        let mut merged = CellRun::empty(0);
        assert!(merged.mean_batch().is_nan(), "no batches counted yet");
        merged.absorb(share(10, 10, 1));
        merged.absorb(share(3, 90, 40));
        let counts = merged.batches.expect("counted");
        assert_eq!(
            (counts.batches, counts.members, counts.largest),
            (13, 100, 40)
        );
        assert!((merged.mean_batch() - 100.0 / 13.0).abs() < 1e-9);
        // a strategy that does not batch reports no batch size
        assert!(CellRun::empty(0).mean_batch().is_nan());
    }

    #[test]
    fn every_contention_strategy_parses_from_its_name_and_batch_is_one() {
        for s in Strategy::CONTENTION {
            assert_eq!(s.name().parse::<Strategy>(), Ok(s));
        }
        assert!(Strategy::CONTENTION.contains(&Strategy::CkBatch));
        assert_eq!("ck-batch".parse::<Strategy>(), Ok(Strategy::CkBatch));
    }
}
