//! A managed call's options resolved against its resolver's defaults, once
//! per call: the one place where an unset option takes the default.

use std::borrow::Cow;

use sea_orm::{AccessMode, DbBackend, TransactionOptions};

use super::conflict_resolver::Inner;
use super::contention::{Contention, Turn};
use super::policy::{CallOptions, Isolation, SqliteMode};

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
}

impl Plan {
    /// `options`, with what they leave unset taken from the resolver's
    /// defaults.
    pub(crate) fn resolve(options: CallOptions, defaults: &Inner) -> Self {
        let read_only = options.read_only || defaults.read_only;
        let retryable = options.retryable;
        Self {
            retries: if retryable {
                options.retries.unwrap_or(defaults.retries)
            } else {
                0
            },
            isolation: options.isolation.unwrap_or(defaults.isolation),
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
            read_only,
            retryable,
            label: options.label,
        }
    }

    pub(crate) fn label(&self) -> &str {
        &self.label
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

    /// How the transaction begins on `backend`.
    pub(crate) fn transaction_options(&self, backend: DbBackend) -> TransactionOptions {
        let mut t = TransactionOptions::default();
        if backend == DbBackend::Sqlite {
            t.sqlite_transaction_mode = Some(self.sqlite_mode.mode());
        } else {
            t.isolation_level = Some(self.isolation.level());
            if self.read_only {
                t.access_mode = Some(AccessMode::ReadOnly);
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolver::ConflictResolver;
    use sea_orm::{IsolationLevel, SqliteTransactionMode};

    fn resolver() -> ConflictResolver {
        let db = sea_orm::MockDatabase::new(DbBackend::Postgres).into_connection();
        ConflictResolver::builder(db)
            .retries(7)
            .isolation(Isolation::RepeatableRead)
            .build()
    }

    #[test]
    fn unset_options_take_the_resolver_defaults_and_set_ones_win() {
        let r = resolver();
        let plan = Plan::resolve(CallOptions::new("x"), &r.inner);
        assert_eq!(plan.retries, 7);
        assert_eq!(plan.isolation, Isolation::RepeatableRead);
        assert_eq!(plan.contention, Contention::Adaptive);
        let plan = Plan::resolve(
            CallOptions::new("x")
                .retries(1)
                .isolation(Isolation::ReadCommitted)
                .contention(Contention::Off),
            &r.inner,
        );
        assert_eq!(
            (plan.retries, plan.isolation, plan.contention),
            (1, Isolation::ReadCommitted, Contention::Off)
        );
        let plan = Plan::resolve(CallOptions::new("x").retries(5).non_retryable(), &r.inner);
        assert_eq!(plan.retries, 0, "a non-retryable call runs once");
        assert_eq!(plan.turn(1), Turn::First);
        assert!(!plan.replay_left(1));
    }

    #[test]
    fn sqlite_defaults_follow_access() {
        let r = resolver();
        let rw =
            Plan::resolve(CallOptions::new("x"), &r.inner).transaction_options(DbBackend::Sqlite);
        assert_eq!(
            rw.sqlite_transaction_mode,
            Some(SqliteTransactionMode::Immediate)
        );
        assert_eq!(rw.isolation_level, None);
        let ro = Plan::resolve(CallOptions::new("x").read_only(true), &r.inner)
            .transaction_options(DbBackend::Sqlite);
        assert_eq!(
            ro.sqlite_transaction_mode,
            Some(SqliteTransactionMode::Deferred)
        );
        let pg = Plan::resolve(CallOptions::new("x").read_only(true), &r.inner)
            .transaction_options(DbBackend::Postgres);
        assert_eq!(pg.isolation_level, Some(IsolationLevel::RepeatableRead));
        assert_eq!(pg.access_mode, Some(AccessMode::ReadOnly));
        assert_eq!(pg.sqlite_transaction_mode, None);
    }
}
