//! The end of a managed call as the resolver records it: the counters (all
//! labels, and the call's label), the metrics, and the lifecycle callbacks
//! (types in [`lifecycle`](super::lifecycle)).
//!
//! A batch (see `batch`) runs through the same replay loop as one call, but
//! its members end one by one, each with its own outcome: the loop's ends
//! of a batch are skipped here, and the batch records each member's with
//! [`member_ended`](ConflictResolver::member_ended).

use super::inner::ConflictResolver;
use super::lifecycle::{CommitEvent, FailedAttempt, GiveUpEvent};
use super::metrics::{self, Outcome};
use super::plan::Plan;

impl ConflictResolver {
    /// A managed call ended with `outcome` after `attempts` runs: the
    /// counters (all labels, and its label's), the metrics, and the
    /// `on_commit` callback. Nothing for a batch: its members are recorded
    /// one by one.
    pub(crate) fn ended(&self, plan: &Plan, outcome: Outcome, attempts: u32) {
        if plan.batch.is_none() {
            self.member_ended(plan, outcome, attempts);
        }
    }

    /// One call (alone, or a member of a batch, with the member's own plan)
    /// ended with `outcome` after `attempts` runs.
    pub(crate) fn member_ended(&self, plan: &Plan, outcome: Outcome, attempts: u32) {
        let stats = &self.inner.stats;
        match outcome {
            Outcome::Committed => stats.success(),
            Outcome::GaveUp => stats.unresolved(),
            Outcome::Error | Outcome::Deadline | Outcome::Ambiguous => stats.error(),
        }
        self.inner.by_label.ended(plan.label(), outcome);
        metrics::call_finished(plan, outcome, attempts);
        if outcome == Outcome::Committed
            && let Some(cb) = &self.inner.defaults.on_commit
        {
            cb(&CommitEvent {
                label: plan.label(),
                attempts,
                elapsed: plan.started.elapsed(),
            });
        }
    }

    /// A run of a retryable call conflicted (replayed or not): every member
    /// of a batch counts, since each one's body runs again.
    pub(crate) fn conflicted(&self, plan: &Plan) {
        for _ in 0..plan.batch.unwrap_or(1) {
            self.inner.stats.retry();
            self.inner.by_label.conflicted(plan.label());
        }
    }

    /// Calls `on_give_up` with every run's conflict: once per member of a
    /// batch (each member gave up).
    pub(crate) fn gave_up(&self, plan: &Plan, failures: Option<&[FailedAttempt]>) {
        if let (Some(cb), Some(attempts)) = (&self.inner.defaults.on_give_up, failures) {
            for _ in 0..plan.batch.unwrap_or(1) {
                cb(&GiveUpEvent {
                    label: plan.label(),
                    attempts,
                    elapsed: plan.started.elapsed(),
                });
            }
        }
    }
}
