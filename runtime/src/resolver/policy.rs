//! Retry policy: how many replays, how long to back off, how transactions begin.

use std::time::Duration;

use sea_orm::{IsolationLevel, SqliteTransactionMode};

/// Isolation level of managed transactions on PostgreSQL and MySQL/MariaDB
/// (SQLite transactions are always serializable).
///
/// ```
/// use conflictkit::resolver::Isolation;
/// assert_eq!("repeatable_read".parse::<Isolation>(), Ok(Isolation::RepeatableRead));
/// assert!("snapshot".parse::<Isolation>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// `SERIALIZABLE`: the default; concurrent transactions behave as if run one by one.
    #[default]
    Serializable,
    /// `REPEATABLE READ`.
    RepeatableRead,
    /// `READ COMMITTED`.
    ReadCommitted,
}

impl Isolation {
    pub(crate) fn level(self) -> IsolationLevel {
        match self {
            Isolation::Serializable => IsolationLevel::Serializable,
            Isolation::RepeatableRead => IsolationLevel::RepeatableRead,
            Isolation::ReadCommitted => IsolationLevel::ReadCommitted,
        }
    }
}

/// An unknown isolation or SQLite mode name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{given}`; expected one of: {expected}")]
pub struct UnknownOption {
    what: &'static str,
    given: String,
    expected: &'static str,
}

impl UnknownOption {
    pub(crate) fn new(what: &'static str, given: &str, expected: &'static str) -> Self {
        Self {
            what,
            given: given.to_owned(),
            expected,
        }
    }
}

impl std::str::FromStr for Isolation {
    type Err = UnknownOption;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "serializable" => Ok(Isolation::Serializable),
            "repeatable_read" => Ok(Isolation::RepeatableRead),
            "read_committed" => Ok(Isolation::ReadCommitted),
            _ => Err(UnknownOption {
                what: "isolation",
                given: s.to_owned(),
                expected: "serializable, repeatable_read, read_committed",
            }),
        }
    }
}

/// How SQLite transactions begin.
///
/// ```
/// use conflictkit::resolver::SqliteMode;
/// assert_eq!("deferred".parse::<SqliteMode>(), Ok(SqliteMode::Deferred));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteMode {
    /// `BEGIN IMMEDIATE`: take the write lock at once (the default for
    /// read-write transactions), so writers queue on the busy timeout instead
    /// of failing with a stale snapshot.
    #[default]
    Immediate,
    /// `BEGIN DEFERRED`: the lock is taken by the first statement that needs it
    /// (the default for read-only transactions).
    Deferred,
    /// `BEGIN EXCLUSIVE`.
    Exclusive,
}

impl SqliteMode {
    pub(crate) fn mode(self) -> SqliteTransactionMode {
        match self {
            SqliteMode::Immediate => SqliteTransactionMode::Immediate,
            SqliteMode::Deferred => SqliteTransactionMode::Deferred,
            SqliteMode::Exclusive => SqliteTransactionMode::Exclusive,
        }
    }
}

impl std::str::FromStr for SqliteMode {
    type Err = UnknownOption;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "immediate" => Ok(SqliteMode::Immediate),
            "deferred" => Ok(SqliteMode::Deferred),
            "exclusive" => Ok(SqliteMode::Exclusive),
            _ => Err(UnknownOption {
                what: "sqlite_mode",
                given: s.to_owned(),
                expected: "immediate, deferred, exclusive",
            }),
        }
    }
}

/// Exponential backoff with full jitter between replays: before replay `n`
/// (1-based) the resolver sleeps a uniformly random time in
/// `[0, min(cap, base * 2^(n-1))]`.
///
/// ```
/// use std::time::Duration;
/// use conflictkit::resolver::Backoff;
///
/// let b = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
/// assert!(b.delay(1) <= Duration::from_millis(10));
/// assert!(b.delay(30) <= Duration::from_secs(1));
/// assert_eq!(Backoff::none().delay(5), Duration::ZERO);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
}

impl Default for Backoff {
    /// Base 10 ms, cap 1 s.
    fn default() -> Self {
        Self::new(Duration::from_millis(10), Duration::from_secs(1))
    }
}

impl Backoff {
    /// Backoff starting at `base`, doubling, never above `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self { base, cap }
    }

    /// No waiting between replays (for tests).
    pub fn none() -> Self {
        Self::new(Duration::ZERO, Duration::ZERO)
    }

    /// The ceiling of the wait before replay `replay` (1-based).
    pub fn ceiling(&self, replay: u32) -> Duration {
        let factor = 1u32
            .checked_shl(replay.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A random wait before replay `replay` (1-based): full jitter under [`ceiling`](Self::ceiling).
    pub fn delay(&self, replay: u32) -> Duration {
        let ceiling = self.ceiling(replay);
        if ceiling.is_zero() {
            return Duration::ZERO;
        }
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=nanos))
    }
}

/// Options of one managed call (what `#[managed_transaction(...)]` sets);
/// anything left unset falls back to the resolver's defaults.
///
/// ```
/// use conflictkit::resolver::{CallOptions, Isolation};
/// let opts = CallOptions::new("wallet::transfer").retries(5).isolation(Isolation::RepeatableRead);
/// assert_eq!(opts.label(), "wallet::transfer");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallOptions {
    pub(crate) label: std::borrow::Cow<'static, str>,
    pub(crate) retries: Option<u32>,
    pub(crate) isolation: Option<Isolation>,
    pub(crate) read_only: bool,
    pub(crate) sqlite_mode: Option<SqliteMode>,
    pub(crate) retryable: bool,
    pub(crate) contention: Option<super::contention::Contention>,
    pub(crate) key: Option<u64>,
}

impl CallOptions {
    /// Options for a call labelled `label` (used in logs, stats and errors).
    pub fn new(label: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        Self {
            label: label.into(),
            retries: None,
            isolation: None,
            read_only: false,
            sqlite_mode: None,
            retryable: true,
            contention: None,
            key: None,
        }
    }
    /// Replays allowed after the first run (`retries + 1` runs at most).
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = Some(retries);
        self
    }
    /// Isolation level on PostgreSQL and MySQL/MariaDB.
    pub fn isolation(mut self, isolation: Isolation) -> Self {
        self.isolation = Some(isolation);
        self
    }
    /// Begin the transaction `READ ONLY` (on SQLite: deferred unless a mode is set).
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }
    /// How a SQLite transaction begins.
    pub fn sqlite_mode(mut self, mode: SqliteMode) -> Self {
        self.sqlite_mode = Some(mode);
        self
    }
    /// Run once: a conflict becomes `CannotResolveDatabaseConflict` at once.
    pub fn non_retryable(mut self) -> Self {
        self.retryable = false;
        self
    }
    /// Contention control for this call (default: the resolver's).
    pub fn contention(mut self, contention: super::contention::Contention) -> Self {
        self.contention = Some(contention);
        self
    }
    /// What this call contends on (an account id, a row key): admission,
    /// and escalation across processes, work per (label, key). Calls on
    /// different keys never wait for each other; calls on one hot key
    /// queue. Without a key, all calls of the label share one queue.
    ///
    /// Any `Hash` value; it is hashed to 64 bits with a stable hash, the
    /// same in every process of the same build and architecture. Keys whose
    /// hashes collide share a queue (they serialise with each other while
    /// both are hot, nothing worse).
    ///
    /// ```
    /// use conflictkit::resolver::CallOptions;
    /// let a = CallOptions::new("wallet::top_up").key(&42_i64);
    /// assert_ne!(a, CallOptions::new("wallet::top_up").key(&43_i64));
    /// assert_eq!(a, CallOptions::new("wallet::top_up").key(&42_i64));
    /// ```
    pub fn key<K: std::hash::Hash + ?Sized>(mut self, key: &K) -> Self {
        self.key = Some(super::key::hash_key(key));
        self
    }
    /// The label.
    pub fn label(&self) -> &str {
        &self.label
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let b = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
        assert_eq!(b.ceiling(1), Duration::from_millis(10));
        assert_eq!(b.ceiling(2), Duration::from_millis(20));
        assert_eq!(b.ceiling(7), Duration::from_millis(640));
        assert_eq!(b.ceiling(8), Duration::from_secs(1));
        assert_eq!(b.ceiling(500), Duration::from_secs(1));
        for n in 1..40 {
            assert!(b.delay(n) <= b.ceiling(n));
        }
        // full jitter: not always the ceiling
        assert!((0..200).any(|_| b.delay(3) < Duration::from_millis(39)));
    }
}
