//! A resolver's configuration: the defaults its calls fall back on, set by
//! [`ConflictResolverBuilder`](super::ConflictResolverBuilder) and never
//! changed after (the runtime state lives beside it, in the resolver).

use std::time::Duration;

use super::classify::Classifier;
use super::inject::{InjectConflicts, Injector};
use super::lifecycle::{OnCommit, OnDeadline, OnGiveUp};
use super::options::{Backoff, Contention, Isolation, SqliteMode};
use super::replica::setup::ReplicaSetup;
use super::retry_event::OnRetry;

/// How long a `ROLLBACK` the resolver sends may take by default (see
/// [`ConflictResolverBuilder::rollback_timeout`](super::ConflictResolverBuilder::rollback_timeout)).
pub const DEFAULT_ROLLBACK_TIMEOUT: Duration = Duration::from_secs(30);

/// What a resolver was built with.
pub(crate) struct Defaults {
    /// Replays allowed after the first run.
    pub(crate) retries: u32,
    pub(crate) isolation: Isolation,
    pub(crate) read_only: bool,
    /// `None`: immediate, deferred when read-only.
    pub(crate) sqlite_mode: Option<SqliteMode>,
    pub(crate) contention: Contention,
    pub(crate) backoff: Backoff,
    /// How long a `ROLLBACK` the resolver sends may take.
    pub(crate) rollback_timeout: Duration,
    /// What counts as a conflict.
    pub(crate) classifier: Classifier,
    pub(crate) on_retry: Option<OnRetry>,
    /// Conflict injection, when on.
    pub(crate) inject: Option<Injector>,
    /// The time budget of calls that set none (see `deadline`).
    pub(crate) timeout: Option<Duration>,
    pub(crate) on_commit: Option<OnCommit>,
    pub(crate) on_give_up: Option<OnGiveUp>,
    pub(crate) on_deadline: Option<OnDeadline>,
    /// Metrics carry the call's key (see `metrics`).
    pub(crate) metrics_per_key: bool,
    /// The replicas read-only calls run on, and their bounds.
    pub(crate) replicas: ReplicaSetup,
}

impl Default for Defaults {
    /// 3 retries, SERIALIZABLE, SQLite `BEGIN IMMEDIATE`, adaptive
    /// contention control, full-jitter backoff from 10 ms capped at 1 s;
    /// conflict injection as `CONFLICTKIT_INJECT_CONFLICTS` says.
    fn default() -> Self {
        Self {
            retries: 3,
            isolation: Isolation::Serializable,
            read_only: false,
            sqlite_mode: None,
            contention: Contention::Adaptive,
            backoff: Backoff::default(),
            rollback_timeout: DEFAULT_ROLLBACK_TIMEOUT,
            classifier: Classifier::default(),
            on_retry: None,
            timeout: None,
            on_commit: None,
            on_give_up: None,
            on_deadline: None,
            metrics_per_key: false,
            replicas: ReplicaSetup::default(),
            inject: match InjectConflicts::from_env() {
                Ok(inject) => inject.map(Injector::new),
                Err(e) => {
                    tracing::error!("{e}; conflict injection stays off");
                    None
                }
            },
        }
    }
}
