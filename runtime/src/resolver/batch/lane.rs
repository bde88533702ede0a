//! The lanes of a resolver's batches: one per (label, key, and what else
//! must be the same for calls to share a transaction), each with the calls
//! queued in it and, while it has any, one worker task that runs them in
//! batches, one batch at a time.
//!
//! A lane exists while its worker runs: the first call finds none, makes
//! it and starts the worker, which takes up to `max` queued calls per
//! batch, and removes the lane when it finds the queue empty. So a call
//! that arrives while a batch is in flight waits for the next batch: no
//! timer, and a call alone costs one task spawn and one channel.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use super::super::inner::ConflictResolver;
use super::super::options::{Contention, Isolation, SqliteMode};
use super::super::plan::Plan;
use super::member::Member;
use crate::sync::lock;

/// What calls must share to run in one batch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct LaneKey {
    label: Cow<'static, str>,
    key: Option<u64>,
    isolation: Isolation,
    sqlite_mode: SqliteMode,
    contention: Contention,
    retries: u32,
    pub(super) max: usize,
}

impl LaneKey {
    pub(super) fn of(plan: &Plan, max: usize) -> Self {
        Self {
            label: plan.label.clone(),
            key: plan.key,
            isolation: plan.isolation,
            sqlite_mode: plan.sqlite_mode,
            contention: plan.contention,
            retries: plan.retries,
            max,
        }
    }
}

/// How a label's calls were batched (see
/// [`ConflictResolver::batch_stats`]).
///
/// ```
/// let stats = conflictkit::resolver::BatchStats::default();
/// assert_eq!(stats.mean_size(), 0.0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchStats {
    /// Batches run (a replayed batch counts once).
    pub batches: u64,
    /// Calls run in them.
    pub members: u64,
    /// The most calls one batch ran.
    pub largest: u64,
    /// Calls waiting for a batch now (queued behind the one in flight).
    pub queued: u64,
}

impl BatchStats {
    /// Calls per batch, on average (0 before the first batch).
    pub fn mean_size(&self) -> f64 {
        if self.batches == 0 {
            0.0
        } else {
            self.members as f64 / self.batches as f64
        }
    }
}

/// The lanes of one resolver, and its batch counters per label.
#[derive(Default)]
pub(crate) struct Lanes {
    queued: Mutex<HashMap<LaneKey, VecDeque<Box<dyn Member>>>>,
    stats: Mutex<BTreeMap<String, BatchStats>>,
}

impl Lanes {
    /// Queues `member` in `lane`; `true` when the lane was idle (the caller
    /// starts its worker).
    pub(super) fn queue(&self, lane: &LaneKey, member: Box<dyn Member>) -> bool {
        let mut queued = lock(&self.queued);
        match queued.get_mut(lane) {
            Some(queue) => {
                queue.push_back(member);
                false
            }
            None => {
                queued.insert(lane.clone(), VecDeque::from([member]));
                true
            }
        }
    }

    /// The next batch of `lane`: up to `max` queued members whose callers
    /// still wait for them. Empty when none is left: the lane is gone then.
    pub(super) fn next_batch(&self, lane: &LaneKey) -> Vec<Box<dyn Member>> {
        let mut batch = Vec::new();
        // members whose callers gave them up: dropped (the caller's body
        // with them) once the lock is given back
        let mut given_up = Vec::new();
        let mut queued = lock(&self.queued);
        if let Some(queue) = queued.get_mut(lane) {
            while batch.len() < lane.max {
                let Some(member) = queue.pop_front() else {
                    break;
                };
                if member.place().take() {
                    batch.push(member);
                } else {
                    given_up.push(member);
                }
            }
        }
        if batch.is_empty() {
            queued.remove(lane);
        }
        drop(queued);
        drop(given_up);
        batch
    }

    /// Removes `lane` with what it holds (its worker stopped without
    /// emptying it: their callers are told so by their closed channels).
    fn abandon(&self, lane: &LaneKey) {
        let dropped = lock(&self.queued).remove(lane);
        drop(dropped);
    }

    pub(super) fn record(&self, label: &str, members: usize) {
        let mut stats = lock(&self.stats);
        let s = stats.entry(label.to_owned()).or_default();
        s.batches += 1;
        s.members += members as u64;
        s.largest = s.largest.max(members as u64);
    }

    pub(super) fn snapshot(&self) -> BTreeMap<String, BatchStats> {
        let mut stats = lock(&self.stats).clone();
        for (lane, queue) in lock(&self.queued).iter() {
            let s = stats.entry(lane.label.clone().into_owned()).or_default();
            s.queued += queue.len() as u64;
        }
        stats
    }
}

impl ConflictResolver {
    /// Queues `member` in `lane`, and starts the lane's worker if it had
    /// none.
    pub(super) fn queue_member(&self, lane: LaneKey, member: Box<dyn Member>) {
        if self.inner.batches.queue(&lane, member) {
            let resolver = self.clone();
            tokio::spawn(async move {
                let worker = Worker {
                    resolver: resolver.clone(),
                    lane: Some(lane),
                };
                worker.run().await;
            });
        }
    }

    /// How calls were batched, per label: batches run, calls in them, the
    /// largest, and the calls queued now (see [`CallOptions::batch`](super::super::CallOptions::batch)).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let resolver = conflictkit::ConflictResolver::new(sea_orm::Database::connect("sqlite::memory:").await?);
    /// assert!(resolver.batch_stats().is_empty());
    /// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
    /// ```
    pub fn batch_stats(&self) -> BTreeMap<String, BatchStats> {
        self.inner.batches.snapshot()
    }
}

/// The worker of one lane. Dropped before it emptied the lane (its task
/// panicked, or its runtime shut down), it removes the lane, so that later
/// calls start a new worker, and the queued callers learn from their
/// closed channels.
struct Worker {
    resolver: ConflictResolver,
    lane: Option<LaneKey>,
}

impl Worker {
    async fn run(mut self) {
        let Some(lane) = self.lane.clone() else {
            return;
        };
        loop {
            // Let the callers just answered run first: in a service whose
            // tasks call again at once, their next calls then join this
            // batch rather than the one after it. A turn of the scheduler,
            // no timer: an idle lane is not slowed.
            tokio::task::yield_now().await;
            let batch = self.resolver.inner.batches.next_batch(&lane);
            if batch.is_empty() {
                // the lane is gone with its last batch
                self.lane = None;
                return;
            }
            self.resolver.run_batch(batch, true).await;
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(lane) = self.lane.take() {
            tracing::error!(label = %lane.label, "a batch worker stopped before its queue was empty; its queued calls fail");
            self.resolver.inner.batches.abandon(&lane);
        }
    }
}
