//! The end of a managed call as the resolver records it: the counters (all
//! labels, and the call's label), the metrics, and the lifecycle callbacks
//! (types in [`lifecycle`](super::lifecycle)).

use super::inner::ConflictResolver;
use super::lifecycle::{CommitEvent, FailedAttempt, GiveUpEvent};
use super::metrics::{self, Outcome};
use super::plan::Plan;

impl ConflictResolver {
    /// A managed call ended with `outcome` after `attempts` runs: the
    /// counters (all labels, and its label's), the metrics, and the
    /// `on_commit` callback.
    pub(crate) fn ended(&self, plan: &Plan, outcome: Outcome, attempts: u32) {
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

    /// A run of a retryable call conflicted (replayed or not).
    pub(crate) fn conflicted(&self, plan: &Plan) {
        self.inner.stats.retry();
        self.inner.by_label.conflicted(plan.label());
    }

    /// Calls `on_give_up` with every run's conflict.
    pub(crate) fn gave_up(&self, plan: &Plan, failures: Option<&[FailedAttempt]>) {
        if let (Some(cb), Some(attempts)) = (&self.inner.defaults.on_give_up, failures) {
            cb(&GiveUpEvent {
                label: plan.label(),
                attempts,
                elapsed: plan.started.elapsed(),
            });
        }
    }
}
