//! Metrics of the resolver, through the [`metrics`](https://docs.rs/metrics)
//! facade: every recording call of the crate lives here. With the `metrics`
//! feature off (the default), each function is an empty `#[inline]` one, so
//! call sites carry no `cfg`, and nothing is recorded.
//!
//! The library installs no exporter: the application installs one
//! (`metrics-exporter-prometheus`, an OpenTelemetry bridge, …). Names
//! follow OpenTelemetry's database conventions where one applies
//! (`db.client.operation.duration` for `COMMIT`, the `db.system.name`
//! attribute); the others are `conflictkit.*`. Durations are in seconds.
//! Every metric carries `db.system.name` and `conflictkit.label` (the
//! call's label), and `conflictkit.key` (the hash of the call's key) only
//! when the resolver was built with
//! [`metrics_per_key`](super::ConflictResolverBuilder::metrics_per_key): keys
//! can be as many as accounts, and a label per key would explode the series.
//!
//! | name | kind | extra labels | what |
//! |---|---|---|---|
//! | `conflictkit.calls` | counter | `outcome` | managed calls ended, by outcome: `committed`, `error`, `gave_up`, `deadline`, `ambiguous` |
//! | `conflictkit.call.attempts` | histogram | | runs of the body per call |
//! | `conflictkit.call.duration` | histogram | `outcome` | a call from start to end |
//! | `conflictkit.wait.duration` | histogram | `wait` | waits before a run: `queue` (contention gate), `lease` (lock across processes), `sqlite_slot` (SQLite write slot) |
//! | `conflictkit.body.duration` | histogram | | one run of the body |
//! | `db.client.operation.duration` | histogram | `db.operation.name` = `COMMIT` | `COMMIT`, sent to answered |
//! | `conflictkit.contention.limit` | gauge | | runs the gate admits at once (0: unlimited) |
//! | `conflictkit.contention.hot` | gauge | | 1 while the gate is hot (runs take the lock across processes) |
//! | `conflictkit.sqlite.slot.waiters` | gauge | | write transactions of the process waiting for the SQLite write slot (labels: `db.system.name` only) |
//! | `conflictkit.batch.size` | histogram | | calls run in one transaction by a batch run (see `batch`) |
//! | `conflictkit.reads` | counter | `route` | read-only calls of a resolver with replicas, by where they ran: `replica`, `primary_lagging`, `primary_down`, `primary_wait_expired`, `primary_fell_back` |

use std::time::Duration;

use super::plan::Plan;

/// How a managed call ended (the `outcome` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Committed.
    Committed,
    /// An error that is no conflict: the body's own, or the database's.
    Error,
    /// Every allowed run conflicted (`CannotResolveDatabaseConflict`).
    GaveUp,
    /// The time budget ran out before `COMMIT` (`DeadlineExceeded`).
    Deadline,
    /// `COMMIT`'s outcome is unknown (`AmbiguousCommit`).
    Ambiguous,
}

impl Outcome {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn name(self) -> &'static str {
        match self {
            Outcome::Committed => "committed",
            Outcome::Error => "error",
            Outcome::GaveUp => "gave_up",
            Outcome::Deadline => "deadline",
            Outcome::Ambiguous => "ambiguous",
        }
    }
}

/// What a run waited for before it ran (the `wait` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    Queue,
    Lease,
    SqliteSlot,
}

#[cfg(feature = "metrics")]
mod on {
    use super::*;
    use metrics::{Label, counter, gauge, histogram};

    /// The labels of every metric of `plan`'s call.
    fn labels(plan: &Plan) -> Vec<Label> {
        let mut labels = vec![
            Label::new("db.system.name", plan.engine().system_name()),
            Label::new("conflictkit.label", plan.label.clone().into_owned()),
        ];
        if let Some(key) = plan.metric_key {
            labels.push(Label::new("conflictkit.key", format!("{key:016x}")));
        }
        labels
    }

    fn with(mut labels: Vec<Label>, key: &'static str, value: &'static str) -> Vec<Label> {
        labels.push(Label::new(key, value));
        labels
    }

    pub(crate) fn call_finished(plan: &Plan, outcome: Outcome, attempts: u32) {
        let labels = labels(plan);
        let by_outcome = with(labels.clone(), "outcome", outcome.name());
        counter!("conflictkit.calls", by_outcome.clone()).increment(1);
        histogram!("conflictkit.call.duration", by_outcome).record(plan.started.elapsed());
        histogram!("conflictkit.call.attempts", labels).record(f64::from(attempts));
    }

    pub(crate) fn waited(plan: &Plan, wait: Wait, took: Duration) {
        let wait = match wait {
            Wait::Queue => "queue",
            Wait::Lease => "lease",
            Wait::SqliteSlot => "sqlite_slot",
        };
        histogram!(
            "conflictkit.wait.duration",
            with(labels(plan), "wait", wait)
        )
        .record(took);
    }

    pub(crate) fn body_time(plan: &Plan, took: Duration) {
        histogram!("conflictkit.body.duration", labels(plan)).record(took);
    }

    pub(crate) fn commit_time(plan: &Plan, took: Duration) {
        let labels = with(labels(plan), "db.operation.name", "COMMIT");
        histogram!("db.client.operation.duration", labels).record(took);
    }

    pub(crate) fn contention(plan: &Plan, limit: Option<u32>, hot: bool) {
        let labels = labels(plan);
        gauge!("conflictkit.contention.limit", labels.clone()).set(f64::from(limit.unwrap_or(0)));
        gauge!("conflictkit.contention.hot", labels).set(if hot { 1.0 } else { 0.0 });
    }

    pub(crate) fn batch_size(plan: &Plan, members: usize) {
        histogram!("conflictkit.batch.size", labels(plan)).record(members as f64);
    }

    pub(crate) fn read_routed(plan: &Plan, route: &'static str) {
        counter!("conflictkit.reads", with(labels(plan), "route", route)).increment(1);
    }

    pub(crate) fn slot_waiters(plan: &Plan, waiting: usize) {
        gauge!(
            "conflictkit.sqlite.slot.waiters",
            "db.system.name" => plan.engine().system_name()
        )
        .set(waiting as f64);
    }
}

#[cfg(feature = "metrics")]
pub(crate) use on::*;

#[cfg(not(feature = "metrics"))]
mod off {
    use super::*;

    #[inline]
    pub(crate) fn call_finished(_: &Plan, _: Outcome, _: u32) {}

    #[inline]
    pub(crate) fn waited(_: &Plan, _: Wait, _: Duration) {}

    #[inline]
    pub(crate) fn body_time(_: &Plan, _: Duration) {}

    #[inline]
    pub(crate) fn commit_time(_: &Plan, _: Duration) {}

    #[inline]
    pub(crate) fn contention(_: &Plan, _: Option<u32>, _: bool) {}

    #[inline]
    pub(crate) fn batch_size(_: &Plan, _: usize) {}

    #[inline]
    pub(crate) fn read_routed(_: &Plan, _: &'static str) {}

    #[inline]
    pub(crate) fn slot_waiters(_: &Plan, _: usize) {}
}

#[cfg(not(feature = "metrics"))]
pub(crate) use off::*;
