//! A managed call's options resolved against its resolver's defaults and
//! engine, once per call: the one place where an unset option takes the
//! default.

use std::borrow::Cow;

use sea_orm::TransactionOptions;

use super::contention::Turn;
use super::defaults::Defaults;
use super::engine::Engine;
use super::options::Budget;
use super::options::{CallOptions, Contention, Isolation, SqliteMode};

/// What one managed call does, every option decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) label: Cow<'static, str>,
    /// Whether conflicts are replayed at all.
    pub(crate) retryable: bool,
    /// Replays allowed after the first run (0 when not retryable).
    pub(crate) retries: u32,
    pub(crate) isolation: Isolation,
    pub(crate) read_only: bool,
    /// How a SQLite transaction begins: the mode set, else immediate, or
    /// deferred when read-only.
    pub(crate) sqlite_mode: SqliteMode,
    pub(crate) contention: Contention,
    /// The hash of the call's contention key.
    pub(crate) key: Option<u64>,
    /// The next run of the gate is admitted while this one sends `COMMIT`
    /// (see `Engine::admits_next_before_commit`).
    pub(crate) admit_next_before_commit: bool,
    /// When the call started (what a relative timeout counts from).
    pub(crate) started: tokio::time::Instant,
    /// When the call's time budget runs out (see `deadline`).
    pub(crate) deadline: Option<tokio::time::Instant>,
    /// The key metrics carry (only when the resolver asks for it).
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) metric_key: Option<u64>,
    /// `SERIALIZABLE READ ONLY DEFERRABLE` (see `Engine::deferrable`).
    pub(crate) deferrable: bool,
    /// The replica the call runs on (see `replica`); `None`: the primary.
    pub(crate) replica: Option<usize>,
    /// A batch of this many calls run as one (see `batch`): its members'
    /// ends are counted by the batch, one by one; `None`: a single call.
    pub(crate) batch: Option<u32>,
    engine: Engine,
}

impl Plan {
    /// `options`, with what they leave unset taken from the resolver's
    /// `defaults`, on `engine`.
    pub(crate) fn resolve(options: CallOptions, defaults: &Defaults, engine: Engine) -> Self {
        let deferrable = options.deferrable;
        let read_only = options.read_only || defaults.read_only || deferrable;
        let retryable = options.retryable;
        let isolation = match deferrable {
            true => Isolation::Serializable,
            false => options.isolation.unwrap_or(defaults.isolation),
        };
        let started = tokio::time::Instant::now();
        let deadline = match options.budget {
            Some(Budget::At(at)) => Some(at),
            Some(Budget::Timeout(budget)) => Some(started + budget),
            None => defaults.timeout.map(|budget| started + budget),
        };
        Self {
            started,
            deadline,
            metric_key: options.key.filter(|_| defaults.metrics_per_key),
            retries: if retryable {
                options.retries.unwrap_or(defaults.retries)
            } else {
                0
            },
            isolation,
            sqlite_mode: options
                .sqlite_mode
                .or(defaults.sqlite_mode)
                .unwrap_or(if read_only {
                    SqliteMode::Deferred
                } else {
                    SqliteMode::Immediate
                }),
            contention: options.contention.unwrap_or(defaults.contention),
            key: options.key,
            admit_next_before_commit: engine.admits_next_before_commit(isolation),
            engine,
            read_only,
            retryable,
            deferrable,
            replica: None,
            batch: None,
            label: options.label,
        }
    }

    /// This read-only call, on replica `i` at `isolation` (what a replica
    /// offers): no contention control, which guards writes of the primary.
    pub(crate) fn on_replica(&self, i: usize, isolation: Isolation) -> Self {
        Self {
            replica: Some(i),
            isolation,
            contention: Contention::Off,
            admit_next_before_commit: false,
            ..self.clone()
        }
    }

    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// The engine the call runs on.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn engine(&self) -> Engine {
        self.engine
    }

    /// The admission turn of run number `attempt` (1 = first).
    pub(crate) fn turn(&self, attempt: u32) -> Turn {
        if self.retryable {
            Turn::of(attempt, self.retries)
        } else {
            Turn::First
        }
    }

    /// Whether run number `attempt` may still be followed by a replay.
    pub(crate) fn replay_left(&self, attempt: u32) -> bool {
        self.retryable && attempt <= self.retries
    }

    /// How the transaction begins.
    pub(crate) fn transaction_options(&self) -> TransactionOptions {
        self.engine
            .transaction_options(self.isolation, self.read_only, self.sqlite_mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{AccessMode, DbBackend, IsolationLevel, SqliteTransactionMode};

    fn defaults() -> Defaults {
        Defaults {
            retries: 7,
            isolation: Isolation::RepeatableRead,
            ..Defaults::default()
        }
    }

    #[test]
    fn unset_options_take_the_resolver_defaults_and_set_ones_win() {
        let (d, pg) = (defaults(), Engine::new(DbBackend::Postgres));
        let plan = Plan::resolve(CallOptions::new("x"), &d, pg);
        assert_eq!(plan.retries, 7);
        assert_eq!(plan.isolation, Isolation::RepeatableRead);
        assert_eq!(plan.contention, Contention::Adaptive);
        let plan = Plan::resolve(
            CallOptions::new("x")
                .retries(1)
                .isolation(Isolation::ReadCommitted)
                .contention(Contention::Off),
            &d,
            pg,
        );
        assert_eq!(
            (plan.retries, plan.isolation, plan.contention),
            (1, Isolation::ReadCommitted, Contention::Off)
        );
        let plan = Plan::resolve(CallOptions::new("x").retries(5).non_retryable(), &d, pg);
        assert_eq!(plan.retries, 0, "a non-retryable call runs once");
        assert_eq!(plan.turn(1), Turn::First);
        assert!(!plan.replay_left(1));
    }

    #[test]
    fn sqlite_defaults_follow_access() {
        let d = defaults();
        let lite = Engine::new(DbBackend::Sqlite);
        let rw = Plan::resolve(CallOptions::new("x"), &d, lite).transaction_options();
        assert_eq!(
            rw.sqlite_transaction_mode,
            Some(SqliteTransactionMode::Immediate)
        );
        assert_eq!(rw.isolation_level, None);
        let ro =
            Plan::resolve(CallOptions::new("x").read_only(true), &d, lite).transaction_options();
        assert_eq!(
            ro.sqlite_transaction_mode,
            Some(SqliteTransactionMode::Deferred)
        );
        let pg = Plan::resolve(
            CallOptions::new("x").read_only(true),
            &d,
            Engine::new(DbBackend::Postgres),
        )
        .transaction_options();
        assert_eq!(pg.isolation_level, Some(IsolationLevel::RepeatableRead));
        assert_eq!(pg.access_mode, Some(AccessMode::ReadOnly));
        assert_eq!(pg.sqlite_transaction_mode, None);
    }

    #[test]
    fn the_next_run_is_admitted_before_commit_only_where_reads_lock() {
        let d = Defaults::default();
        let my = Engine::new(DbBackend::MySql);
        assert!(Plan::resolve(CallOptions::new("x"), &d, my).admit_next_before_commit);
        assert!(
            !Plan::resolve(
                CallOptions::new("x").isolation(Isolation::RepeatableRead),
                &d,
                my
            )
            .admit_next_before_commit
        );
        assert!(
            !Plan::resolve(CallOptions::new("x"), &d, Engine::new(DbBackend::Postgres))
                .admit_next_before_commit
        );
    }
}
