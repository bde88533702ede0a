//! The options of a managed call and their names: [`CallOptions`], and the
//! values it takes ([`Isolation`], [`SqliteMode`], [`Contention`],
//! [`Backoff`]).

use super::replica::CommitPosition;
use std::borrow::Cow;
use std::fmt;

use sea_orm::{IsolationLevel, SqliteTransactionMode};

/// Isolation level of managed transactions on PostgreSQL and MySQL/MariaDB
/// (SQLite transactions are always serializable).
///
/// Its names (`serializable`, `repeatable_read`, `read_committed`) are the
/// ones `#[managed_transaction(isolation = "…")]` takes.
///
/// ```
/// use conflictkit::resolver::Isolation;
/// assert_eq!("repeatable_read".parse::<Isolation>(), Ok(Isolation::RepeatableRead));
/// assert_eq!(Isolation::ReadCommitted.name(), "read_committed");
/// assert!("snapshot".parse::<Isolation>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
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
    /// Every level, in the order error messages list them.
    ///
    /// ```
    /// use conflictkit::resolver::Isolation;
    /// let names: Vec<&str> = Isolation::ALL.iter().map(|i| i.name()).collect();
    /// assert_eq!(names, ["serializable", "repeatable_read", "read_committed"]);
    /// ```
    pub const ALL: [Isolation; 3] = [
        Isolation::Serializable,
        Isolation::RepeatableRead,
        Isolation::ReadCommitted,
    ];

    /// The name [`FromStr`](std::str::FromStr) and the macro take.
    pub fn name(self) -> &'static str {
        match self {
            Isolation::Serializable => "serializable",
            Isolation::RepeatableRead => "repeatable_read",
            Isolation::ReadCommitted => "read_committed",
        }
    }

    pub(crate) fn level(self) -> IsolationLevel {
        match self {
            Isolation::Serializable => IsolationLevel::Serializable,
            Isolation::RepeatableRead => IsolationLevel::RepeatableRead,
            Isolation::ReadCommitted => IsolationLevel::ReadCommitted,
        }
    }
}

impl fmt::Display for Isolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Isolation {
    type Err = UnknownOption;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        by_name(&Self::ALL, Self::name, s, "isolation")
    }
}

/// How SQLite transactions begin.
///
/// Its names (`immediate`, `deferred`, `exclusive`) are the ones
/// `#[managed_transaction(sqlite_mode = "…")]` takes.
///
/// ```
/// use conflictkit::resolver::SqliteMode;
/// assert_eq!("deferred".parse::<SqliteMode>(), Ok(SqliteMode::Deferred));
/// assert_eq!(SqliteMode::Exclusive.to_string(), "exclusive");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
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
    /// Every mode, in the order error messages list them.
    ///
    /// ```
    /// use conflictkit::resolver::SqliteMode;
    /// let names: Vec<&str> = SqliteMode::ALL.iter().map(|m| m.name()).collect();
    /// assert_eq!(names, ["immediate", "deferred", "exclusive"]);
    /// ```
    pub const ALL: [SqliteMode; 3] = [
        SqliteMode::Immediate,
        SqliteMode::Deferred,
        SqliteMode::Exclusive,
    ];

    /// The name [`FromStr`](std::str::FromStr) and the macro take.
    pub fn name(self) -> &'static str {
        match self {
            SqliteMode::Immediate => "immediate",
            SqliteMode::Deferred => "deferred",
            SqliteMode::Exclusive => "exclusive",
        }
    }

    pub(crate) fn mode(self) -> SqliteTransactionMode {
        match self {
            SqliteMode::Immediate => SqliteTransactionMode::Immediate,
            SqliteMode::Deferred => SqliteTransactionMode::Deferred,
            SqliteMode::Exclusive => SqliteTransactionMode::Exclusive,
        }
    }
}

impl fmt::Display for SqliteMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for SqliteMode {
    type Err = UnknownOption;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        by_name(&Self::ALL, Self::name, s, "sqlite_mode")
    }
}

/// The value of `all` named `given`, or an error listing the names.
fn by_name<T: Copy>(
    all: &[T],
    name: fn(T) -> &'static str,
    given: &str,
    what: &'static str,
) -> Result<T, UnknownOption> {
    all.iter()
        .copied()
        .find(|&v| name(v) == given)
        .ok_or_else(|| {
            let expected: Vec<&str> = all.iter().map(|&v| name(v)).collect();
            UnknownOption::new(what, given, expected.join(", "))
        })
}

/// An unknown isolation, SQLite mode or contention name.
///
/// ```
/// use conflictkit::resolver::Isolation;
/// let err = "snapshot".parse::<Isolation>().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "unknown isolation `snapshot`; expected one of: serializable, repeatable_read, read_committed"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{given}`; expected one of: {expected}")]
pub struct UnknownOption {
    what: &'static str,
    given: String,
    expected: Cow<'static, str>,
}

impl UnknownOption {
    pub(crate) fn new(
        what: &'static str,
        given: &str,
        expected: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            what,
            given: given.to_owned(),
            expected: expected.into(),
        }
    }
}

pub use crate::backoff::Backoff;

/// Contention control of a resolver or of one call.
///
/// ```
/// use conflictkit::resolver::Contention;
/// assert_eq!("off".parse::<Contention>(), Ok(Contention::Off));
/// assert_eq!(Contention::default(), Contention::Adaptive);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Contention {
    /// Adaptive admission per (label, key), and while a key is hot, and for
    /// a call's last replay, a database lock across processes that the
    /// processes hold in turn (the default).
    #[default]
    Adaptive,
    /// No admission control: every call begins at once; conflicts are only
    /// met with backoff and replay.
    Off,
}

impl std::str::FromStr for Contention {
    type Err = UnknownOption;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "adaptive" => Ok(Contention::Adaptive),
            "off" => Ok(Contention::Off),
            _ => Err(UnknownOption::new("contention", s, "adaptive, off")),
        }
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
    pub(crate) durable: bool,
    pub(crate) sqlite_mode: Option<SqliteMode>,
    pub(crate) retryable: bool,
    pub(crate) contention: Option<Contention>,
    pub(crate) key: Option<u64>,
    /// The call's time budget (see `deadline`).
    pub(crate) budget: Option<Budget>,
    /// `SERIALIZABLE READ ONLY DEFERRABLE` on the primary.
    pub(crate) deferrable: bool,
    /// What a read-only call asks of a replica (see `replica`).
    pub(crate) max_lag: Option<std::time::Duration>,
    pub(crate) after: Option<CommitPosition>,
    pub(crate) replica_wait: Option<std::time::Duration>,
    /// Group commit: at most this many calls of one (label, key) in one
    /// transaction (see `batch`).
    pub(crate) batch: Option<usize>,
    /// The request's idempotency key (see `idempotency_key`).
    #[cfg(feature = "serde")]
    pub(crate) idempotency: Option<super::idempotency::IdempotencyKey>,
}

impl CallOptions {
    /// Options for a call labelled `label` (used in logs, stats and errors).
    pub fn new(label: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        Self {
            label: label.into(),
            retries: None,
            isolation: None,
            read_only: false,
            durable: false,
            sqlite_mode: None,
            retryable: true,
            contention: None,
            key: None,
            budget: None,
            deferrable: false,
            max_lag: None,
            after: None,
            replica_wait: None,
            batch: None,
            #[cfg(feature = "serde")]
            idempotency: None,
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
    /// Refuse to run nested (Django's `atomic(durable=True)`): called inside
    /// another managed call, the call fails with
    /// [`DurableNested`](super::DurableNested) before anything runs, instead
    /// of becoming a savepoint whose commit the caller could still undo. For
    /// a call whose `Ok` must mean "committed now" (it sends money out, its
    /// hooks tell the world).
    ///
    /// ```
    /// use conflictkit::resolver::CallOptions;
    /// assert_ne!(CallOptions::new("pay_out").durable(true), CallOptions::new("pay_out"));
    /// ```
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
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
    pub fn contention(mut self, contention: Contention) -> Self {
        self.contention = Some(contention);
        self
    }
    /// What this call contends on (an account id, a row key): admission,
    /// and the lock across processes, work per (label, key). Calls on
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
        self.key = Some(super::contention::key::hash_key(key));
        self
    }
    /// A read-only report that can never conflict: on PostgreSQL the
    /// transaction begins `SERIALIZABLE READ ONLY DEFERRABLE`, whose
    /// snapshot is taken once no concurrent serializable transaction can
    /// make it part of an anomaly (it may wait for that at its first
    /// statement), so it never fails with a serialization conflict and never
    /// makes a writer fail. It runs on the primary, even when the resolver
    /// has replicas (a replica has no serializable snapshots). Implies
    /// `read_only`; on MySQL / MariaDB and SQLite a plain read-only call.
    ///
    /// ```
    /// use conflictkit::resolver::CallOptions;
    /// let report = CallOptions::new("wallet::audit").deferrable(true);
    /// assert_ne!(report, CallOptions::new("wallet::audit").read_only(true));
    /// ```
    pub fn deferrable(mut self, deferrable: bool) -> Self {
        self.deferrable = deferrable;
        self
    }
    /// The staleness bound of this read-only call on a resolver with
    /// replicas: it runs on a replica only if that replica's data is at
    /// most this old, else on the primary (default: the resolver's
    /// [`max_lag`](super::ConflictResolverBuilder::max_lag)). No effect on
    /// calls that are not read-only, or without replicas.
    ///
    /// ```
    /// use std::time::Duration;
    /// use conflictkit::resolver::CallOptions;
    /// let fresh = CallOptions::new("wallet::balance").read_only(true).max_lag(Duration::from_millis(200));
    /// assert_ne!(fresh, CallOptions::new("wallet::balance").read_only(true));
    /// ```
    pub fn max_lag(mut self, bound: std::time::Duration) -> Self {
        self.max_lag = Some(bound);
        self
    }
    /// Read your writes: this read-only call runs on a replica only once
    /// the replica has replayed up to `position` (taken with
    /// [`ConflictResolver::commit_position`](super::ConflictResolver::commit_position)
    /// after the caller's commit, and carried with the caller's session),
    /// so it sees that commit. The call waits for that at most
    /// [`replica_wait`](Self::replica_wait), then reads the primary. No
    /// effect on calls that are not read-only, or without replicas (the
    /// primary has every commit).
    ///
    /// ```
    /// use conflictkit::resolver::{CallOptions, CommitPosition};
    /// let seen: CommitPosition = "0/16B3748".parse()?; // from the caller's cookie
    /// let opts = CallOptions::new("wallet::balance").read_only(true).after(seen);
    /// assert_ne!(opts, CallOptions::new("wallet::balance").read_only(true));
    /// # Ok::<(), conflictkit::resolver::InvalidCommitPosition>(())
    /// ```
    pub fn after(mut self, position: CommitPosition) -> Self {
        self.after = Some(position);
        self
    }
    /// How long this call waits for a replica to replay up to its
    /// [`after`](Self::after) position before it reads the primary
    /// (default: the resolver's
    /// [`replica_wait`](super::ConflictResolverBuilder::replica_wait); never
    /// past the call's deadline).
    ///
    /// ```
    /// use std::time::Duration;
    /// use conflictkit::resolver::CallOptions;
    /// let opts = CallOptions::new("wallet::balance").read_only(true).replica_wait(Duration::from_millis(50));
    /// assert_ne!(opts, CallOptions::new("wallet::balance").read_only(true));
    /// ```
    pub fn replica_wait(mut self, bound: std::time::Duration) -> Self {
        self.replica_wait = Some(bound);
        self
    }
    /// Group commit (see [`batch`](crate::resolver::batch)): while a run of
    /// this (label, [`key`](Self::key)) is in flight, the calls that arrive
    /// queue, and the next run takes up to `max` of them into **one**
    /// transaction, each body in a savepoint of its own, with one `COMMIT`.
    /// Takes effect through
    /// [`ConflictResolver::run_batched`](super::ConflictResolver::run_batched)
    /// (what `#[managed_transaction(batch)]` calls), whose body owns its
    /// data. `max` is at least 1 (1: every call alone, as without it).
    ///
    /// ```
    /// use conflictkit::resolver::CallOptions;
    /// let fee = CallOptions::new("wallet::credit_fee").key(&0_i64).batch(64);
    /// assert_ne!(fee, CallOptions::new("wallet::credit_fee").key(&0_i64));
    /// ```
    pub fn batch(mut self, max: usize) -> Self {
        self.batch = Some(max.max(1));
        self
    }
    /// The request's idempotency key: the call runs once per key, its
    /// outcome stored with the key in its own transaction, and a repeat
    /// answered from it (see
    /// [`ConflictResolver::run_idempotent`](super::ConflictResolver::run_idempotent),
    /// the call that takes these options; `run` and `run_batched` refuse a
    /// key with [`InvalidIdempotencyKey::NotStorable`](super::idempotency::InvalidIdempotencyKey::NotStorable),
    /// as they cannot store an outcome). Available with the `serde` feature.
    ///
    /// ```
    /// use conflictkit::resolver::CallOptions;
    /// use conflictkit::resolver::idempotency::IdempotencyKey;
    /// let key = IdempotencyKey::new("7f1c0c9e-client-request-1")?.fingerprint(&250)?;
    /// let opts = CallOptions::new("payments::pay").idempotency_key(key.clone());
    /// assert_eq!(opts.idempotency_key_of(), Some(&key));
    /// # Ok::<(), conflictkit::resolver::idempotency::InvalidIdempotencyKey>(())
    /// ```
    #[cfg(feature = "serde")]
    pub fn idempotency_key(mut self, key: super::idempotency::IdempotencyKey) -> Self {
        self.idempotency = Some(key);
        self
    }
    /// The idempotency key set with [`idempotency_key`](Self::idempotency_key).
    #[cfg(feature = "serde")]
    pub fn idempotency_key_of(&self) -> Option<&super::idempotency::IdempotencyKey> {
        self.idempotency.as_ref()
    }
    /// The call's label (see [`new`](Self::new)).
    pub fn label(&self) -> &str {
        &self.label
    }
    /// The refusal of `run` and `run_batched` (`through`) given options
    /// with an idempotency key: they cannot store an outcome, and ignoring
    /// the key would run every repeat again.
    #[cfg(feature = "serde")]
    pub(crate) fn refuse_idempotency_key<E: From<sea_orm::DbErr>>(
        &self,
        through: &'static str,
    ) -> Result<(), E> {
        use super::idempotency::InvalidIdempotencyKey;
        match self.idempotency {
            None => Ok(()),
            Some(_) => Err(E::from(sea_orm::DbErr::from(
                InvalidIdempotencyKey::NotStorable {
                    label: self.label().to_owned(),
                    through,
                },
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_value() {
        for i in Isolation::ALL {
            assert_eq!(i.name().parse::<Isolation>(), Ok(i));
        }
        for m in SqliteMode::ALL {
            assert_eq!(m.name().parse::<SqliteMode>(), Ok(m));
        }
        assert_eq!(
            "EXCLUSIVE".parse::<SqliteMode>().unwrap_err().to_string(),
            "unknown sqlite_mode `EXCLUSIVE`; expected one of: immediate, deferred, exclusive"
        );
    }
}

/// A call's time budget as set on it (see [`deadline`](super::deadline)):
/// relative to its start, or an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Budget {
    /// From the moment the call starts.
    Timeout(std::time::Duration),
    /// A fixed instant.
    At(tokio::time::Instant),
}
