//! The public API of [`ConflictResolver`], and its builder.

use std::error::Error as StdError;
use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

use super::classify::{Classifier, Conflict};
use super::contention::Control;
use super::defaults::Defaults;
use super::engine::Engine;
use super::inject::{InjectConflicts, Injector};
use super::inner::ConflictResolver;
use super::inner::Inner;
use super::lifecycle::{CommitEvent, GiveUpEvent};
use super::options::{Backoff, CallOptions, Contention, Isolation, SqliteMode};
use super::plan::Plan;
use super::replica::set::ReplicaSet;
use super::retry_event::RetryEvent;
use super::stats::{AtomicStats, LabelStats, Stats};
use super::txn::Txn;

static DEFAULT_CLASSIFIER: LazyLock<Classifier> = LazyLock::new(Classifier::default);

impl ConflictResolver {
    /// A resolver with the defaults: 3 retries, SERIALIZABLE, SQLite
    /// `BEGIN IMMEDIATE`, full-jitter backoff from 10 ms capped at 1 s.
    pub fn new(db: DatabaseConnection) -> Self {
        Self::builder(db).build()
    }

    /// Connects a pool for the resolver, with the defaults: what
    /// `ConflictResolver::new(Database::connect(options).await?)` does, except
    /// that the pool does not ping a connection each time it is checked out
    /// (sea-orm's `test_before_acquire`, one round trip per transaction).
    /// The resolver needs no ping: when a pooled connection died on the
    /// server side (a restart, an idle timeout), beginning on it fails before
    /// anything ran, and the resolver begins again on another connection.
    ///
    /// ```
    /// use conflictkit::ConflictResolver;
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let resolver = ConflictResolver::connect("sqlite::memory:").await?;
    /// assert_eq!(resolver.retries(), 3);
    /// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
    /// ```
    pub async fn connect(options: impl Into<ConnectOptions>) -> Result<Self, DbErr> {
        let mut options = options.into();
        options.test_before_acquire(false);
        Ok(Self::new(Database::connect(options).await?))
    }

    /// A builder to change the defaults.
    pub fn builder(db: DatabaseConnection) -> ConflictResolverBuilder {
        ConflictResolverBuilder {
            db,
            defaults: Defaults::default(),
        }
    }

    /// The connection (pool) transactions are taken from.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    /// Replays allowed after the first run, unless a call says otherwise.
    pub fn retries(&self) -> u32 {
        self.inner.defaults.retries
    }

    /// A snapshot of the counters (see [`Stats`] for what each one counts).
    pub fn stats(&self) -> Stats {
        self.inner.stats.snapshot()
    }

    /// [`stats`](Self::stats) per label: what each managed function did,
    /// counted as `stats` counts (a nested call counts in its outermost
    /// call's label).
    ///
    /// ```
    /// use conflictkit::{ConflictResolver, Txn};
    /// use conflictkit::resolver::CallOptions;
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let resolver = ConflictResolver::connect("sqlite::memory:").await?;
    /// resolver
    ///     .run(CallOptions::new("wallet::top_up"), |_txn: &Txn| {
    ///         Box::pin(async { Ok::<_, conflictkit::Error>(()) })
    ///     })
    ///     .await?;
    /// assert_eq!(resolver.stats_by_label()["wallet::top_up"].success, 1);
    /// # Ok::<(), conflictkit::Error>(()) }).unwrap();
    /// ```
    pub fn stats_by_label(&self) -> std::collections::BTreeMap<String, Stats> {
        self.inner.by_label.snapshot()
    }

    /// How many transactions of `label` adaptive contention control admits
    /// at once now, in this process: `None` while it runs unlimited (never
    /// called yet, conflicts rare, or grown past 64).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// let resolver = conflictkit::ConflictResolver::new(db);
    /// assert_eq!(resolver.contention_limit("wallet::top_up"), None);
    /// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
    /// ```
    pub fn contention_limit(&self, label: &str) -> Option<u32> {
        self.inner.contention.limit(label, None)
    }

    /// [`contention_limit`](Self::contention_limit) of the calls of `label`
    /// made with [`CallOptions::key`] `key` (or `#[managed_transaction(key = …)]`).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// let resolver = conflictkit::ConflictResolver::new(db);
    /// assert_eq!(resolver.contention_limit_of_key("wallet::top_up", &7_i64), None);
    /// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
    /// ```
    pub fn contention_limit_of_key<K: std::hash::Hash + ?Sized>(
        &self,
        label: &str,
        key: &K,
    ) -> Option<u32> {
        self.inner
            .contention
            .limit(label, Some(super::contention::key::hash_key(key)))
    }

    /// Whether `err` is a serialization conflict that a replay may resolve,
    /// with the built-in codes (the original's `is_retryable_exception`).
    /// Code that catches errors broadly must re-raise these.
    ///
    /// ```
    /// use conflictkit::ConflictResolver;
    /// use sea_orm::DbErr;
    /// assert!(!ConflictResolver::is_retryable(&DbErr::RecordNotFound("x".into())));
    /// ```
    pub fn is_retryable(err: &(dyn StdError + 'static)) -> bool {
        DEFAULT_CLASSIFIER.classify(err).is_some()
    }

    /// The conflict in `err` under this resolver's codes and predicates, if any.
    pub fn classify(&self, err: &(dyn StdError + 'static)) -> Option<Conflict> {
        self.inner.defaults.classifier.classify(err)
    }

    /// Begins a plain transaction with this resolver's isolation, without
    /// any retry: the original's `transaction()` context manager. Commit it
    /// with [`Txn::commit`]; dropping it uncommitted rolls back.
    ///
    /// The guard keeps a managed call's promises except the replay (see
    /// [`Txn::commit`]): `Ok` from `commit()` means the writes committed,
    /// an ignored error still counts, hooks run exactly once if and only if
    /// it committed, and an unknown `COMMIT` outcome is an
    /// [`AmbiguousCommit`](super::AmbiguousCommit). To replay on conflicts,
    /// use a managed call instead.
    ///
    /// **One transaction per task.** Opening a guard inside a managed
    /// transaction on the same database, or making a managed call on the
    /// same database while a guard is open in the same task, is refused
    /// with an error: the second transaction would wait for the first's
    /// locks while the first's session idles, and no database reports that
    /// as a deadlock. Run the work through the open transaction's `Txn`
    /// instead, or after it ends.
    ///
    /// ```
    /// use conflictkit::ConflictResolver;
    /// use sea_orm::{ConnectionTrait, Database};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let resolver = ConflictResolver::new(Database::connect("sqlite::memory:").await?);
    /// let txn = resolver.transaction().await?;
    /// txn.execute_unprepared("CREATE TABLE t (x INTEGER)").await?;
    /// txn.commit().await?;
    /// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
    /// ```
    pub async fn transaction(&self) -> Result<Txn, DbErr> {
        const LABEL: &str = "ConflictResolver::transaction";
        if let Some(refusal) = self.refuse_nested(LABEL, false).await {
            return Err(refusal);
        }
        let plan = Plan::resolve(
            CallOptions::new(LABEL),
            &self.inner.defaults,
            self.inner.engine,
        );
        let (dbtx, writer) = self.begin_with_writer(&plan, false).await?;
        // so that a managed call refused inside this guard can be told it is
        // on the same database even when the guard holds the last connection
        self.learn_identity(&dbtx).await;
        Ok(Txn::guard(dbtx, writer, LABEL, self))
    }

    /// How many write transactions of this process wait for the SQLite
    /// database's write slot now (see the writer queue in
    /// [`resolver`](crate::resolver#sqlite-one-writer-queue-per-database));
    /// `None` on other engines, or before the first write transaction.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let resolver = conflictkit::ConflictResolver::connect("sqlite::memory:").await?;
    /// assert_eq!(resolver.sqlite_writers_waiting(), None);
    /// resolver.transaction().await?.commit().await?;
    /// assert_eq!(resolver.sqlite_writers_waiting(), Some(0));
    /// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
    /// ```
    pub fn sqlite_writers_waiting(&self) -> Option<usize> {
        self.inner.writer.get()?.as_ref().map(|q| q.waiting())
    }
}

/// Configures a [`ConflictResolver`].
///
/// ```
/// use std::time::Duration;
/// use conflictkit::ConflictResolver;
/// use conflictkit::resolver::{Backoff, Isolation};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let db = sea_orm::Database::connect("sqlite::memory:").await?;
/// let resolver = ConflictResolver::builder(db)
///     .retries(8)
///     .isolation(Isolation::Serializable)
///     .backoff(Backoff::new(Duration::from_millis(5), Duration::from_millis(500)))
///     .retry_on_sqlstate("55P03")
///     .on_retry(|e| tracing::warn!(label = e.label, attempt = e.attempt, "replaying"))
///     .build();
/// assert_eq!(resolver.retries(), 8);
/// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
/// ```
pub struct ConflictResolverBuilder {
    pub(crate) db: DatabaseConnection,
    pub(crate) defaults: Defaults,
}

impl fmt::Debug for ConflictResolverBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConflictResolverBuilder")
            .field("retries", &self.defaults.retries)
            .finish_non_exhaustive()
    }
}

impl ConflictResolverBuilder {
    /// Replays allowed after the first run (default 3, so 4 runs at most).
    pub fn retries(mut self, retries: u32) -> Self {
        self.defaults.retries = retries;
        self
    }
    /// Isolation level on PostgreSQL and MySQL/MariaDB (default SERIALIZABLE).
    pub fn isolation(mut self, isolation: Isolation) -> Self {
        self.defaults.isolation = isolation;
        self
    }
    /// Begin every transaction `READ ONLY`.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.defaults.read_only = read_only;
        self
    }
    /// How SQLite transactions begin (default immediate, deferred when read-only).
    pub fn sqlite_mode(mut self, mode: SqliteMode) -> Self {
        self.defaults.sqlite_mode = Some(mode);
        self
    }
    /// Wait between replays (default full jitter, 10 ms doubling to 1 s).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.defaults.backoff = backoff;
        self
    }
    /// How long a `ROLLBACK` the resolver sends (after a conflict, an
    /// error or a panic) may take before the call stops waiting for it
    /// (default [`DEFAULT_ROLLBACK_TIMEOUT`](super::DEFAULT_ROLLBACK_TIMEOUT), 30 s). A healthy server answers
    /// at once; the undo of a very large transaction can take a while on
    /// MySQL, hence the margin. A connection the driver left waiting for a
    /// reply that never comes (sqlx-mysql after a statement with the wrong
    /// number of bind values) would otherwise hang the call forever, with
    /// its admission permit, its lease and its connection. On expiry the
    /// transaction is dropped (sea-orm queues the rollback on the
    /// connection), an error is logged, and the call returns its error.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// let resolver = conflictkit::ConflictResolver::builder(db)
    ///     .rollback_timeout(std::time::Duration::from_secs(5))
    ///     .build();
    /// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
    /// ```
    pub fn rollback_timeout(mut self, bound: Duration) -> Self {
        self.defaults.rollback_timeout = bound;
        self
    }
    /// Also treat this SQLSTATE as a conflict (e.g. `23505`, `23P01`, `55P03`).
    pub fn retry_on_sqlstate(mut self, sqlstate: &str) -> Self {
        self.defaults.classifier.add_sqlstate(sqlstate);
        self
    }
    /// Also treat this MySQL / MariaDB error number as a conflict.
    pub fn retry_on_mysql_error(mut self, number: u16) -> Self {
        self.defaults.classifier.add_mysql(number);
        self
    }
    /// Also treat this SQLite result code as a conflict: a primary code
    /// (≤ 255) covers its extended codes, an extended code only itself.
    pub fn retry_on_sqlite_code(mut self, code: i32) -> Self {
        self.defaults.classifier.add_sqlite(code);
        self
    }
    /// Also treat errors for which `predicate` is true as conflicts. The
    /// predicate sees the error returned by the body (or by `COMMIT`).
    pub fn retry_if(
        mut self,
        predicate: impl Fn(&(dyn StdError + 'static)) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.defaults.classifier.add_predicate(Arc::new(predicate));
        self
    }
    /// Contention control (default [`Contention::Adaptive`]): a hot function
    /// queues in-process instead of fighting. Bodies that wait for each other
    /// (test barriers across transactions of one label) still go through on
    /// their first runs and replays, which wait in the queue no longer than a
    /// second while it does not move; a call's last replay waits for its
    /// (label, key) to empty, however long. Turn it off for such bodies.
    pub fn contention(mut self, contention: Contention) -> Self {
        self.defaults.contention = contention;
        self
    }
    /// The time budget of every call that sets none of its own (default:
    /// none, no deadline); see [`CallOptions::timeout`] and the
    /// [`deadline`](super::deadline) module for what it bounds and what
    /// happens on expiry.
    ///
    /// # Errors
    /// [`InvalidDeadline`](super::InvalidDeadline) for a zero budget or one
    /// above [`MAX_TIMEOUT`](super::MAX_TIMEOUT).
    ///
    /// ```
    /// use std::time::Duration;
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// let resolver = conflictkit::ConflictResolver::builder(db)
    ///     .timeout(Duration::from_secs(5))
    ///     .expect("a budget between zero and an hour")
    ///     .build();
    /// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
    /// ```
    pub fn timeout(mut self, budget: Duration) -> Result<Self, super::InvalidDeadline> {
        self.defaults.timeout = Some(super::deadline::check(budget)?);
        Ok(self)
    }
    /// Called before each replay (after the rollback, before the backoff sleep).
    pub fn on_retry(mut self, callback: impl Fn(&RetryEvent<'_>) + Send + Sync + 'static) -> Self {
        self.defaults.on_retry = Some(Arc::new(callback));
        self
    }
    /// Called when a managed call commits, before it returns, with its
    /// label, runs and time (see [`CommitEvent`]).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// let resolver = conflictkit::ConflictResolver::builder(db)
    ///     .on_commit(|e| tracing::info!(label = e.label, attempts = e.attempts, "committed"))
    ///     .build();
    /// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
    /// ```
    pub fn on_commit(
        mut self,
        callback: impl Fn(&CommitEvent<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.defaults.on_commit = Some(Arc::new(callback));
        self
    }
    /// Called when a managed call gives up on conflicts, before it returns
    /// [`CannotResolveDatabaseConflict`](super::CannotResolveDatabaseConflict),
    /// with every run's conflict and phase (see [`GiveUpEvent`]).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// let resolver = conflictkit::ConflictResolver::builder(db)
    ///     .on_give_up(|e| {
    ///         for run in e.attempts {
    ///             tracing::warn!(label = e.label, attempt = run.attempt, phase = %run.phase, error = %run.error);
    ///         }
    ///     })
    ///     .build();
    /// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
    /// ```
    pub fn on_give_up(
        mut self,
        callback: impl Fn(&GiveUpEvent<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.defaults.on_give_up = Some(Arc::new(callback));
        self
    }
    /// Called when a managed call runs out of its time budget before
    /// `COMMIT` (see [`timeout`](Self::timeout)), before it returns the
    /// [`DeadlineExceeded`](super::DeadlineExceeded) it receives.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// let resolver = conflictkit::ConflictResolver::builder(db)
    ///     .on_deadline(|e| tracing::warn!(label = e.label(), phase = %e.phase(), "out of time"))
    ///     .build();
    /// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
    /// ```
    pub fn on_deadline(
        mut self,
        callback: impl Fn(&super::DeadlineExceeded) + Send + Sync + 'static,
    ) -> Self {
        self.defaults.on_deadline = Some(Arc::new(callback));
        self
    }
    /// Label metrics (feature `metrics`) with the call's key too (see
    /// [`CallOptions::key`]), not only its label (default off: keys can be
    /// as many as accounts, and each key makes series of its own).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// let resolver = conflictkit::ConflictResolver::builder(db).metrics_per_key(true).build();
    /// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
    /// ```
    pub fn metrics_per_key(mut self, per_key: bool) -> Self {
        self.defaults.metrics_per_key = per_key;
        self
    }
    /// Inject synthetic conflicts into a share of the runs, to prove in a
    /// test suite that managed bodies are replay-safe (see
    /// [`InjectConflicts`]; the environment variable
    /// `CONFLICTKIT_INJECT_CONFLICTS` does the same without code). For tests
    /// only: it costs replays.
    ///
    /// ```
    /// use conflictkit::{ConflictResolver, Txn};
    /// use conflictkit::resolver::InjectConflicts;
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// let resolver = ConflictResolver::builder(db)
    ///     .inject_conflicts(InjectConflicts::rate(1.0))
    ///     .build();
    /// let runs = std::sync::atomic::AtomicU32::new(0);
    /// resolver
    ///     .managed(|_txn: &Txn| {
    ///         runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst); // not replay-safe!
    ///         Box::pin(async { Ok::<_, conflictkit::Error>(()) })
    ///     })
    ///     .await?;
    /// // every run but the last was injected: the body ran 4 times for one commit
    /// assert_eq!(runs.into_inner(), 4);
    /// assert_eq!(resolver.stats().retries, 3);
    /// # Ok::<(), conflictkit::Error>(()) }).unwrap();
    /// ```
    pub fn inject_conflicts(mut self, inject: InjectConflicts) -> Self {
        self.defaults.inject = Some(Injector::new(inject));
        self
    }

    /// The resolver. What its engine is (see `Engine`) is settled here, once.
    /// Its [`replica`](Self::replica)s are checked in the background:
    /// [`build_checked`](Self::build_checked) returns the refusal instead.
    pub fn build(self) -> ConflictResolver {
        if let Some(inject) = &self.defaults.inject {
            tracing::warn!(
                rate = inject.rate(),
                "conflict injection is on: a share of managed runs fail with a synthetic conflict \
                 and are replayed (for tests only)"
            );
        }
        let engine = Engine::of(&self.db);
        ConflictResolver {
            inner: Arc::new(Inner {
                contention: Control::new(&self.db, engine),
                replicas: Arc::new(ReplicaSet::new(self.defaults.replicas.clone())),
                batches: Default::default(),
                waits: Default::default(),
                db: self.db,
                engine,
                defaults: self.defaults,
                stats: AtomicStats::default(),
                by_label: LabelStats::default(),
                writer: tokio::sync::OnceCell::new(),
                identity: tokio::sync::OnceCell::new(),
            }),
        }
    }
}
