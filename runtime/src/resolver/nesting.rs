//! Nesting: the managed transaction a task runs, and the open
//! `resolver.transaction()` guards per tokio task, so that a second
//! transaction on the same database started from the same task is refused
//! instead of waiting forever.
//!
//! A managed call records its transaction in a task-local ([`ACTIVE`]),
//! scoped to its body, so that a nested managed call of the same resolver
//! joins it and one of another resolver on the same database (told by
//! [`ConflictResolver::same_database`]) is refused. A guard has no scope to put a task-local in: it lives
//! until it is committed, rolled back or dropped, so it registers here under
//! the id of the task that opened it, and leaves on drop. A managed call
//! made in that task while the guard is open would begin a second
//! transaction on another pooled connection; if it touches a row the guard
//! wrote, it waits for the guard's lock while the guard's task waits for it
//! (the guard's session idles, so the database never reports a deadlock).
//!
//! What this cannot see: a task *spawned* by a managed body or by a guard's
//! task is another task. A managed call there runs as a transaction of its
//! own; the docs of [`ConflictResolver::run`](super::ConflictResolver::run)
//! say so.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use sea_orm::{ConnectionTrait, DbErr};

use super::carried;
use super::conflict_resolver::ConflictResolver;
use super::engine::Engine;
use super::error::NestedTransaction;
use super::txn::Txn;

/// How many guards are open in the process: lets a managed call skip the
/// lock below when there are none (the common case).
static OPEN: AtomicUsize = AtomicUsize::new(0);
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(0);

/// Where a guard was opened: a tokio task, or a thread running a future
/// outside any task (`block_on`, which is what `#[tokio::main]` and
/// `#[tokio::test]` run their body in: such a future never leaves its
/// thread).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Place {
    Task(tokio::task::Id),
    Thread(std::thread::ThreadId),
}

impl Place {
    fn here() -> Place {
        match tokio::task::try_id() {
            Some(task) => Place::Task(task),
            None => Place::Thread(std::thread::current().id()),
        }
    }
}

type Registry = HashMap<Place, Vec<(u64, ConflictResolver)>>;

static GUARDS: LazyLock<Mutex<Registry>> = LazyLock::new(Mutex::default);

fn guards() -> MutexGuard<'static, Registry> {
    match GUARDS.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// A guard's place in the registry; it leaves when this is dropped.
pub(crate) struct OpenGuard {
    task: Place,
    token: u64,
}

impl OpenGuard {
    /// Registers a guard of `resolver` opened in the current task (or, in
    /// a future run by `block_on`, the current thread).
    pub(crate) fn register(resolver: &ConflictResolver) -> OpenGuard {
        let task = Place::here();
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        guards()
            .entry(task)
            .or_default()
            .push((token, resolver.clone()));
        OPEN.fetch_add(1, Ordering::AcqRel);
        OpenGuard { task, token }
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        let mut guards = guards();
        if let Some(open) = guards.get_mut(&self.task) {
            open.retain(|(token, _)| *token != self.token);
            if open.is_empty() {
                guards.remove(&self.task);
            }
        }
        OPEN.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The resolvers of the guards open in the current task.
pub(crate) fn guards_in_this_task() -> Vec<ConflictResolver> {
    if OPEN.load(Ordering::Acquire) == 0 {
        return Vec::new();
    }
    guards()
        .get(&Place::here())
        .map(|open| open.iter().map(|(_, r)| r.clone()).collect())
        .unwrap_or_default()
}

tokio::task_local! {
    /// The managed transaction running in this task, so that a nested managed
    /// call joins it instead of opening a second transaction.
    pub(crate) static ACTIVE: Active;
}

/// The managed transaction a task runs, and its resolver.
pub(crate) struct Active {
    pub(crate) resolver: ConflictResolver,
    pub(crate) txn: Txn,
}

impl ConflictResolver {
    /// Why a transaction of `label` may not begin in this task: another
    /// transaction on the same database is open in it (a managed body of
    /// any resolver, or, for a managed call (`guards`), a
    /// [`transaction()`](Self::transaction) guard), and the new one would
    /// wait for its locks forever. A managed call of this resolver inside
    /// its own managed body joins instead (checked before). Two guards in
    /// one task are two explicit transactions, as two sessions are: allowed.
    pub(crate) async fn refuse_nested(&self, label: &str, guards: bool) -> Option<DbErr> {
        if let Some((outer, outer_label)) = self.enclosing_managed().await
            && self.same_database(&outer).await
        {
            let advice = if outer.id() == self.id() {
                "run its statements on the managed body's `txn` instead"
            } else {
                "call it with the caller's resolver, so that it joins the caller's transaction, \
                 or after the caller returns"
            };
            return Some(carried::into_db_err(NestedTransaction::new(
                label,
                &outer_label,
                advice,
            )));
        }
        let open = if guards {
            guards_in_this_task()
        } else {
            Vec::new()
        };
        for guard in open {
            if self.same_database(&guard).await {
                return Some(carried::into_db_err(NestedTransaction::new(
                    label,
                    "ConflictResolver::transaction",
                    "run its statements on the open guard's `txn`, or commit or drop the guard \
                     first",
                )));
            }
        }
        None
    }

    /// The resolver and label of the managed transaction running in this
    /// task, if any, with that resolver's database identity learnt through
    /// the open transaction (its pool may have no connection left).
    async fn enclosing_managed(&self) -> Option<(ConflictResolver, String)> {
        let (outer, txn) = ACTIVE
            .try_with(|a| (a.resolver.clone(), a.txn.share()))
            .ok()?;
        if outer.id() != self.id() {
            outer.learn_identity(txn.as_database_transaction()).await;
        }
        let label = txn.label().to_owned();
        Some((outer, label))
    }

    pub(crate) fn active_txn(&self) -> Option<Txn> {
        ACTIVE
            .try_with(|a| (a.resolver.id() == self.id()).then(|| a.txn.share()))
            .ok()
            .flatten()
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
    pub(crate) async fn identity_lookup(
        &self,
        via: Option<&sea_orm::DatabaseTransaction>,
    ) -> Result<Option<&str>, DbErr> {
        let db = &self.inner.db;
        let engine = self.inner.engine;
        let Some(sql) = engine.identity_query() else {
            return Ok(None);
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
                    Some(open) => query_inside(engine, open, stmt).await,
                    None => db.query_one_raw(stmt).await,
                };
                match row.and_then(|r| r.map(|r| r.try_get::<String>("", "id")).transpose()) {
                    Ok(Some(id)) if engine.identity_is_a_file() => Ok(Some(
                        std::fs::canonicalize(&id)
                            .map(|p| p.display().to_string())
                            .unwrap_or(id),
                    )),
                    Ok(Some(id)) => Ok(Some(id)),
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
}

/// Runs a query of the resolver's own inside a transaction that belongs to
/// someone else. Where a failed statement aborts that transaction
/// (`Engine::statement_error_aborts`), the query runs inside a savepoint (elsewhere a
/// failed statement fails alone).
async fn query_inside(
    engine: Engine,
    open: &sea_orm::DatabaseTransaction,
    stmt: sea_orm::Statement,
) -> Result<Option<sea_orm::QueryResult>, DbErr> {
    if !engine.statement_error_aborts() {
        return open.query_one_raw(stmt).await;
    }
    let savepoint = engine.savepoint("conflictkit_identity");
    open.execute_unprepared(&savepoint.open).await?;
    let row = open.query_one_raw(stmt).await;
    let end = if row.is_ok() {
        &savepoint.release
    } else {
        &savepoint.rollback
    };
    open.execute_unprepared(end).await?;
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_guard_is_seen_in_its_own_task_only_while_it_is_open() {
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        let resolver = ConflictResolver::new(db);
        assert!(guards_in_this_task().is_empty());
        let open = OpenGuard::register(&resolver);
        let seen = guards_in_this_task();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].id(), resolver.id());
        // another task does not see it
        let elsewhere = tokio::spawn(async { guards_in_this_task().len() })
            .await
            .unwrap();
        assert_eq!(elsewhere, 0);
        drop(open);
        assert!(guards_in_this_task().is_empty());
    }
}
