//! The resolver itself: [`ConflictResolver`] is an `Arc` of its [`Inner`]
//! (the connection, the engine's facts, the configuration, and the state its
//! calls share, as sqlx's `PoolInner` holds its `PoolOptions`). Its methods
//! live with what they do: the public API and builder in
//! `conflict_resolver`, the replay loop in `run`, one run in `attempt`,
//! `BEGIN` in `begin`, nesting in `nesting`.

use std::fmt;
use std::sync::Arc;

use sea_orm::DatabaseConnection;

use super::batch::Lanes;
use super::contention::Control;
use super::defaults::Defaults;
use super::engine::Engine;
use super::replica::set::ReplicaSet;
use super::sqlite_writer::WriterQueue;
use super::stats::{AtomicStats, LabelStats};
use super::waits::LabelWaits;

/// A resolver: its connection, what its engine is, its configuration, and
/// the state its calls share.
pub(crate) struct Inner {
    pub(crate) db: DatabaseConnection,
    pub(crate) engine: Engine,
    pub(crate) defaults: Defaults,
    pub(crate) stats: AtomicStats,
    /// The same counters, per label.
    pub(crate) by_label: LabelStats,
    pub(crate) contention: Control,
    /// The SQLite writer queue of the database, found at the first write
    /// (`None` on other engines).
    pub(crate) writer: tokio::sync::OnceCell<Option<Arc<WriterQueue>>>,
    /// Which database this is (server and database name, or SQLite file),
    /// asked the first time a managed call nests in another resolver's.
    pub(crate) identity: tokio::sync::OnceCell<Option<String>>,
    /// The read replicas and their lag samples (none: every call on `db`).
    pub(crate) replicas: Arc<ReplicaSet>,
    /// The queues of batched calls (see `batch`).
    pub(crate) batches: Lanes,
    /// How long each label's runs waited before they ran.
    pub(crate) waits: LabelWaits,
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
            .field("backend", &self.inner.db.get_database_backend())
            .field("retries", &self.inner.defaults.retries)
            .field("isolation", &self.inner.defaults.isolation)
            .field("backoff", &self.inner.defaults.backoff)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl ConflictResolver {
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.inner) as *const () as usize
    }
}
