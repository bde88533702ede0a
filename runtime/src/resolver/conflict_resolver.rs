//! [`ConflictResolver`] and its builder.

use std::error::Error as StdError;
use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, TransactionTrait,
};

use super::classify::{Classifier, Conflict, is_lost_connection};
use super::contention::{Contention, Gates, Warm};
use super::inject::{InjectConflicts, Injector};
use super::lease::Leases;
use super::plan::Plan;
use super::policy::{Backoff, CallOptions, Isolation, SqliteMode};
use super::sqlite_writer::{TxnWriter, WriterQueue};
use super::stats::{AtomicStats, Stats};
use super::txn::Txn;

/// Called before each replay with what happened.
pub type OnRetry = Arc<dyn Fn(&RetryEvent<'_>) + Send + Sync>;

/// What [`ConflictResolverBuilder::on_retry`] callbacks receive.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RetryEvent<'a> {
    /// Label of the managed call.
    pub label: &'a str,
    /// The run that conflicted (1 = first run).
    pub attempt: u32,
    /// The conflict.
    pub conflict: &'a Conflict,
    /// Where the run met it: in the body (or an error the body ignored), or
    /// at `COMMIT`.
    pub phase: super::Phase,
    /// How long the resolver waits before the replay.
    pub delay: Duration,
}

pub(crate) struct Inner {
    pub(crate) db: DatabaseConnection,
    pub(crate) retries: u32,
    pub(crate) isolation: Isolation,
    pub(crate) read_only: bool,
    pub(crate) sqlite_mode: Option<SqliteMode>,
    pub(crate) backoff: Backoff,
    /// How long a `ROLLBACK` the resolver sends may take.
    pub(crate) rollback_timeout: Duration,
    pub(crate) classifier: Classifier,
    pub(crate) on_retry: Option<OnRetry>,
    pub(crate) stats: AtomicStats,
    pub(crate) contention: Contention,
    pub(crate) gates: Gates,
    /// The SQLite writer queue of the database, found at the first write
    /// (`None` on other engines).
    pub(crate) writer: tokio::sync::OnceCell<Option<Arc<WriterQueue>>>,
    /// Which database this is (server and database name, or SQLite file),
    /// asked the first time a managed call nests in another resolver's.
    pub(crate) identity: tokio::sync::OnceCell<Option<String>>,
    /// Conflict injection, when on.
    pub(crate) inject: Option<Injector>,
    /// This process's leases of database locks across processes.
    pub(crate) leases: Leases,
}

/// Runs transactions and replays them when the database reports a
/// serialization conflict. The port of cryptoassets.core's `ConflictResolver`.
///
/// Cheap to clone (an `Arc` inside); clones share configuration and stats.
///
/// ```
/// use conflictkit::{ConflictResolver, Txn};
/// use sea_orm::{ConnectionTrait, Database};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let db = Database::connect("sqlite::memory:").await?;
/// db.execute_unprepared("CREATE TABLE counter (n INTEGER NOT NULL)").await?;
/// db.execute_unprepared("INSERT INTO counter VALUES (0)").await?;
///
/// let resolver = ConflictResolver::builder(db).retries(5).build();
/// resolver
///     .managed(|txn: &Txn| Box::pin(async move {
///         txn.execute_unprepared("UPDATE counter SET n = n + 1").await?;
///         Ok::<_, conflictkit::Error>(())
///     }))
///     .await?;
/// assert_eq!(resolver.stats().success, 1);
/// # Ok::<(), conflictkit::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct ConflictResolver {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for ConflictResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConflictResolver")
            .field(
                "backend",
                &sea_orm::ConnectionTrait::get_database_backend(&self.inner.db),
            )
            .field("retries", &self.inner.retries)
            .field("isolation", &self.inner.isolation)
            .field("backoff", &self.inner.backoff)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// How long a `ROLLBACK` the resolver sends may take by default (see
/// [`ConflictResolverBuilder::rollback_timeout`]).
pub const DEFAULT_ROLLBACK_TIMEOUT: Duration = Duration::from_secs(30);

/// How many dead pooled connections one `BEGIN` steps over before it gives
/// up with the error.
const LOST_CONNECTION_REBEGINS: u32 = 16;

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
        let warm = match db.get_database_backend() {
            _ if !super::coordination::supported(&db) => Warm::None,
            sea_orm::DbBackend::Postgres => Warm::All,
            _ => Warm::Labels,
        };
        let gates = Gates::new(pool_size(&db), warm);
        ConflictResolverBuilder {
            inner: Inner {
                leases: Leases::new(db.clone()),
                db,
                retries: 3,
                isolation: Isolation::Serializable,
                read_only: false,
                sqlite_mode: None,
                backoff: Backoff::default(),
                rollback_timeout: DEFAULT_ROLLBACK_TIMEOUT,
                classifier: Classifier::default(),
                on_retry: None,
                stats: AtomicStats::default(),
                contention: Contention::Adaptive,
                gates,
                writer: tokio::sync::OnceCell::new(),
                identity: tokio::sync::OnceCell::new(),
                inject: match InjectConflicts::from_env() {
                    Ok(inject) => inject.map(Injector::new),
                    Err(e) => {
                        tracing::error!("{e}; conflict injection stays off");
                        None
                    }
                },
            },
        }
    }

    /// The connection (pool) transactions are taken from.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    /// Replays allowed after the first run, unless a call says otherwise.
    pub fn retries(&self) -> u32 {
        self.inner.retries
    }

    /// A snapshot of the counters (see [`Stats`] for what each one counts).
    pub fn stats(&self) -> Stats {
        self.inner.stats.snapshot()
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
        self.inner.gates.limit(label, None)
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
            .gates
            .limit(label, Some(super::key::hash_key(key)))
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
        self.inner.classifier.classify(err)
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
        let plan = Plan::resolve(CallOptions::new(LABEL), &self.inner);
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

    /// Whether `other` runs its transactions on the same database as this
    /// resolver (the same server and database, or the same SQLite file). Not
    /// knowing counts as no.
    pub(crate) async fn same_database(&self, other: &ConflictResolver) -> bool {
        if Arc::ptr_eq(&self.inner, &other.inner) {
            return true;
        }
        match (self.identity().await, other.identity().await) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }

    /// Names the database this resolver's pool connects to; `None` when it
    /// cannot be told (a mock, an in-memory SQLite database) or the lookup
    /// failed.
    async fn identity(&self) -> Option<&str> {
        self.identity_lookup(None).await.ok().flatten()
    }

    /// Learns which database this resolver connects to through `open`, a
    /// transaction of its own already open (so it needs no second pooled
    /// connection: the pool may be exhausted by that very transaction), if
    /// it is not known yet. A failure is not kept.
    pub(crate) async fn learn_identity(&self, open: &sea_orm::DatabaseTransaction) {
        if self.inner.identity.get().is_none() {
            let _ = self.identity_lookup(Some(open)).await;
        }
    }

    /// Asks once which database the pool connects to (through `via` when
    /// given, else through a pooled connection), and keeps the answer.
    async fn identity_lookup(
        &self,
        via: Option<&sea_orm::DatabaseTransaction>,
    ) -> Result<Option<&str>, DbErr> {
        let db = &self.inner.db;
        let sql = match db.get_database_backend() {
            _ if db.is_mock_connection() => return Ok(None),
            sea_orm::DbBackend::Postgres => {
                "SELECT current_database() || '@' || (SELECT system_identifier::text FROM pg_control_system()) AS id"
            }
            sea_orm::DbBackend::MySql => {
                "SELECT CONCAT(COALESCE(DATABASE(), ''), '@', @@hostname, ':', @@port) AS id"
            }
            sea_orm::DbBackend::Sqlite => {
                "SELECT file AS id FROM pragma_database_list WHERE name = 'main' AND file <> ''"
            }
            _ => return Ok(None),
        };
        // An answer is kept; a failure (an exhausted pool, a restart) is
        // not, so that the next nesting check asks again instead of
        // treating the database as unknown for the rest of the process.
        let found = self
            .inner
            .identity
            .get_or_try_init(|| async {
                let stmt = sea_orm::Statement::from_string(db.get_database_backend(), sql);
                let row = match via {
                    Some(open) => query_inside(open, stmt).await,
                    None => db.query_one_raw(stmt).await,
                };
                match row.and_then(|r| r.map(|r| r.try_get::<String>("", "id")).transpose()) {
                    Ok(Some(id)) => Ok(Some(match db.get_database_backend() {
                        sea_orm::DbBackend::Sqlite => std::fs::canonicalize(&id)
                            .map(|p| p.display().to_string())
                            .unwrap_or(id),
                        _ => id,
                    })),
                    Ok(None) => Ok(None),
                    Err(e) => {
                        tracing::debug!(error = %e, "could not tell which database the pool connects to");
                        Err(e)
                    }
                }
            })
            .await;
        found.map(|id| id.as_deref())
    }

    /// The writer queue of this resolver's SQLite database, shared with every
    /// pool of this process on the same file; `None` on other engines.
    async fn writer_queue(&self) -> Result<Option<Arc<WriterQueue>>, DbErr> {
        let db = &self.inner.db;
        if db.get_database_backend() != sea_orm::DbBackend::Sqlite || db.is_mock_connection() {
            return Ok(None);
        }
        let queue = self
            .inner
            .writer
            .get_or_try_init(|| async {
                // an in-memory or temporary database (no file) queues alone;
                // a failed lookup is not kept (the next call asks again)
                let file = self
                    .identity_lookup(None)
                    .await?
                    .map(std::path::PathBuf::from);
                Ok::<_, DbErr>(Some(WriterQueue::for_file(file)))
            })
            .await?;
        Ok(queue.clone())
    }

    /// Begins the transaction of one run. On SQLite it first takes its place
    /// in the writer queue: an immediate or exclusive transaction, or any
    /// run `behind_queue` (a replay), takes the write slot before `BEGIN`; a
    /// deferred one takes it at its first write statement.
    pub(crate) async fn begin_txn(
        &self,
        plan: &Plan,
        attempt: u32,
        behind_queue: bool,
    ) -> Result<Txn, DbErr> {
        let (dbtx, writer) = self.begin_with_writer(plan, behind_queue).await?;
        Ok(Txn::new(dbtx, writer, plan.label(), attempt))
    }

    /// [`begin_txn`](Self::begin_txn)'s transaction and SQLite writer, not
    /// yet made a [`Txn`].
    async fn begin_with_writer(
        &self,
        plan: &Plan,
        behind_queue: bool,
    ) -> Result<(sea_orm::DatabaseTransaction, TxnWriter), DbErr> {
        let writer = match self.writer_queue().await? {
            None => TxnWriter::default(),
            Some(queue) if behind_queue || plan.sqlite_mode != SqliteMode::Deferred => {
                let slot = queue.acquire().await?;
                TxnWriter::holding(queue, slot)
            }
            Some(queue) => TxnWriter::on_first_write(queue),
        };
        let dbtx = self.begin(plan).await?;
        Ok((dbtx, writer))
    }

    /// Begins a transaction for `plan`. A pooled connection that died on
    /// the server side fails here, before anything ran: then it begins again
    /// on another one (the pool drops the dead one), up to
    /// `LOST_CONNECTION_REBEGINS` times.
    pub(crate) async fn begin(&self, plan: &Plan) -> Result<sea_orm::DatabaseTransaction, DbErr> {
        let db = &self.inner.db;
        let topts = plan.transaction_options(db.get_database_backend());
        let mut lost = 0;
        loop {
            // BEGIN runs in a task of its own: a caller dropped while it is
            // under way cannot cut it midway (sqlx 0.9.0 may then hand the
            // connection back to the pool inside an open transaction); the
            // task finishes it, and a transaction nobody takes rolls back.
            let pool = db.clone();
            let begun =
                match tokio::spawn(async move { pool.begin_with_options(topts).await }).await {
                    Ok(begun) => begun,
                    Err(join) => Err(DbErr::Custom(format!(
                        "the BEGIN task ended without an answer: {join}"
                    ))),
                };
            match begun {
                Err(e) if lost < LOST_CONNECTION_REBEGINS && is_lost_connection(&e) => {
                    lost += 1;
                    tracing::warn!(label = %plan.label(), error = %e, "a pooled connection was lost; beginning on another");
                }
                begun => return begun,
            }
        }
    }

    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.inner) as *const () as usize
    }
}

/// Runs a query of the resolver's own inside a transaction that belongs to
/// someone else. On PostgreSQL a failed statement would abort that
/// transaction, so the query runs inside a savepoint there (elsewhere a
/// failed statement fails alone).
async fn query_inside(
    open: &sea_orm::DatabaseTransaction,
    stmt: sea_orm::Statement,
) -> Result<Option<sea_orm::QueryResult>, DbErr> {
    if open.get_database_backend() != sea_orm::DbBackend::Postgres {
        return open.query_one_raw(stmt).await;
    }
    open.execute_unprepared("SAVEPOINT conflictkit_identity")
        .await?;
    let row = open.query_one_raw(stmt).await;
    let end = if row.is_ok() {
        "RELEASE SAVEPOINT conflictkit_identity"
    } else {
        "ROLLBACK TO SAVEPOINT conflictkit_identity"
    };
    open.execute_unprepared(end).await?;
    row
}

/// The most connections `db`'s pool opens, where it can be told.
pub(crate) fn pool_size(db: &DatabaseConnection) -> Option<u32> {
    if db.is_mock_connection() {
        return None;
    }
    match db.get_database_backend() {
        #[cfg(feature = "sqlx-postgres")]
        sea_orm::DbBackend::Postgres => Some(
            db.get_postgres_connection_pool()
                .options()
                .get_max_connections(),
        ),
        #[cfg(feature = "sqlx-mysql")]
        sea_orm::DbBackend::MySql => Some(
            db.get_mysql_connection_pool()
                .options()
                .get_max_connections(),
        ),
        _ => None,
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
    inner: Inner,
}

impl fmt::Debug for ConflictResolverBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConflictResolverBuilder")
            .field("retries", &self.inner.retries)
            .finish_non_exhaustive()
    }
}

impl ConflictResolverBuilder {
    /// Replays allowed after the first run (default 3, so 4 runs at most).
    pub fn retries(mut self, retries: u32) -> Self {
        self.inner.retries = retries;
        self
    }
    /// Isolation level on PostgreSQL and MySQL/MariaDB (default SERIALIZABLE).
    pub fn isolation(mut self, isolation: Isolation) -> Self {
        self.inner.isolation = isolation;
        self
    }
    /// Begin every transaction `READ ONLY`.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.inner.read_only = read_only;
        self
    }
    /// How SQLite transactions begin (default immediate, deferred when read-only).
    pub fn sqlite_mode(mut self, mode: SqliteMode) -> Self {
        self.inner.sqlite_mode = Some(mode);
        self
    }
    /// Wait between replays (default full jitter, 10 ms doubling to 1 s).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.inner.backoff = backoff;
        self
    }
    /// How long a `ROLLBACK` the resolver sends (after a conflict, an
    /// error or a panic) may take before the call stops waiting for it
    /// (default [`DEFAULT_ROLLBACK_TIMEOUT`], 30 s). A healthy server answers
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
        self.inner.rollback_timeout = bound;
        self
    }
    /// Also treat this SQLSTATE as a conflict (e.g. `23505`, `23P01`, `55P03`).
    pub fn retry_on_sqlstate(mut self, sqlstate: &str) -> Self {
        self.inner.classifier.add_sqlstate(sqlstate);
        self
    }
    /// Also treat this MySQL / MariaDB error number as a conflict.
    pub fn retry_on_mysql_error(mut self, number: u16) -> Self {
        self.inner.classifier.add_mysql(number);
        self
    }
    /// Also treat this SQLite result code as a conflict: a primary code
    /// (≤ 255) covers its extended codes, an extended code only itself.
    pub fn retry_on_sqlite_code(mut self, code: i32) -> Self {
        self.inner.classifier.add_sqlite(code);
        self
    }
    /// Also treat errors for which `predicate` is true as conflicts. The
    /// predicate sees the error returned by the body (or by `COMMIT`).
    pub fn retry_if(
        mut self,
        predicate: impl Fn(&(dyn StdError + 'static)) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.inner.classifier.add_predicate(Arc::new(predicate));
        self
    }
    /// Contention control (default [`Contention::Adaptive`]): a hot function
    /// queues in-process instead of fighting. Bodies that wait for each other
    /// (test barriers across transactions of one label) still go through on
    /// their first runs and replays, which wait in the queue no longer than a
    /// second while it does not move; a call's last replay waits for its
    /// label to empty, however long. Turn it off for such bodies.
    pub fn contention(mut self, contention: Contention) -> Self {
        self.inner.contention = contention;
        self
    }
    /// Called before each replay (after the rollback, before the backoff sleep).
    pub fn on_retry(mut self, callback: impl Fn(&RetryEvent<'_>) + Send + Sync + 'static) -> Self {
        self.inner.on_retry = Some(Arc::new(callback));
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
        self.inner.inject = Some(Injector::new(inject));
        self
    }

    /// The resolver.
    pub fn build(self) -> ConflictResolver {
        if let Some(inject) = &self.inner.inject {
            tracing::warn!(
                rate = inject.rate(),
                "conflict injection is on: a share of managed runs fail with a synthetic conflict \
                 and are replayed (for tests only)"
            );
        }
        ConflictResolver {
            inner: Arc::new(self.inner),
        }
    }
}
