//! Nesting: the managed transaction a task runs ([`ACTIVE`], scoped to its
//! body), so that a nested managed call of the same resolver runs as a savepoint
//! of it (see `savepoint`), and
//! a second transaction on the same database begun from the same task (a
//! managed call of another resolver, a guard inside a managed body, a
//! managed call inside an open guard, see `guards`) is refused instead of
//! waiting forever for the first one's locks; and which database a resolver
//! is on ([`ConflictResolver::same_database`]), asked through an open
//! transaction when there is one.
//!
//! What this cannot see: a task *spawned* by a managed body or by a guard's
//! task is another task. A managed call there runs as a transaction of its
//! own; the docs of [`ConflictResolver::run`] say so.

use std::sync::Arc;

use sea_orm::{ConnectionTrait, DbErr};

use super::carried;
use super::engine::Engine;
use super::error::NestedTransaction;
use super::guards::guards_in_this_task;
use super::inner::ConflictResolver;
use super::options::Isolation;
use super::txn::Txn;

tokio::task_local! {
    /// The managed transaction running in this task, so that a nested managed
    /// call runs as a savepoint of it instead of opening a second transaction.
    pub(crate) static ACTIVE: Active;
}

/// The managed transaction a task runs, and its resolver.
pub(crate) struct Active {
    pub(crate) resolver: ConflictResolver,
    pub(crate) txn: Txn,
    /// The call's isolation level and access mode, which its nested calls
    /// share.
    pub(crate) isolation: Isolation,
    pub(crate) read_only: bool,
}

/// The managed transaction of this resolver a nested call runs in.
pub(crate) struct Enclosing {
    pub(crate) txn: Txn,
    pub(crate) isolation: Isolation,
    pub(crate) read_only: bool,
}

impl ConflictResolver {
    /// Why a transaction of `label` may not begin in this task: another
    /// transaction on the same database is open in it (a managed body of
    /// any resolver, or, for a managed call (`guards`), a
    /// [`transaction()`](Self::transaction) guard), and the new one would
    /// wait for its locks forever. A managed call of this resolver inside
    /// its own managed body runs as a savepoint instead (checked before). Two guards in
    /// one task are two explicit transactions, as two sessions are: allowed.
    pub(crate) async fn refuse_nested(&self, label: &str, guards: bool) -> Option<DbErr> {
        if let Some((outer, outer_label)) = self.enclosing_managed().await
            && self.same_database(&outer).await
        {
            let advice = if outer.id() == self.id() {
                "run its statements on the managed body's `txn` instead"
            } else {
                "call it with the caller's resolver, so that it runs inside the caller's transaction, \
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

    /// The managed transaction of this resolver that this task runs, if any.
    pub(crate) fn enclosing(&self) -> Option<Enclosing> {
        ACTIVE
            .try_with(|a| {
                (a.resolver.id() == self.id()).then(|| Enclosing {
                    txn: a.txn.share(),
                    isolation: a.isolation,
                    read_only: a.read_only,
                })
            })
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
