//! `Txn` as a SeaORM [`TransactionTrait`]: `txn.begin()` and
//! `txn.transaction(…)` open a savepoint, a [`TxnSavepoint`].
//!
//! # Design
//!
//! SeaORM asks `TransactionTrait::Transaction` to be a fixed point (its own
//! `begin` returns its own type: `ActiveModelEx` saves recurse through it),
//! to be a [`ConnectionTrait`], and a [`TransactionSession`] (`commit(self)`,
//! `rollback(self)`). So `begin` cannot hand out a plain
//! [`DatabaseTransaction`]: its statements would bypass the `Txn`'s
//! first-error record and the SQLite writer queue (what
//! [`Txn::as_database_transaction`] warns about). It returns a
//! [`TxnSavepoint`]: a handle to the same `Txn` (every statement runs
//! through it) plus SeaORM's own nested `DatabaseTransaction`, which names,
//! releases and rolls back the `SAVEPOINT` on the connection (sqlx keeps the
//! depth, so savepoints of savepoints, and of nested managed calls, nest).
//!
//! - `commit`: `RELEASE SAVEPOINT`; its writes and after-commit hooks become
//!   the enclosing transaction's. On PostgreSQL after an error swallowed
//!   inside, `RELEASE` fails (25P02) and that error is recorded: the call
//!   cannot commit.
//! - `rollback`: `ROLLBACK TO SAVEPOINT`; the hooks registered inside are
//!   dropped and an error a statement inside returned no longer counts
//!   against the call: it was handled, its effects are undone. A
//!   serialization conflict still counts (the outermost call replays), and
//!   after an error that left the connection outside the transaction the
//!   rollback is refused (nothing is left to roll back to).
//! - dropped without either (an early `?`): SeaORM queues the
//!   `ROLLBACK TO SAVEPOINT` on the connection, to be sent before its next
//!   statement. The hooks go at once; an error recorded inside stops
//!   counting only once a later statement through the `Txn` succeeds, which
//!   proves the rollback went through. If none runs before the body returns,
//!   the error still counts (on PostgreSQL the call fails with
//!   `AbortedTransaction` rather than guess): call `rollback()` to be sure.
//!
//! A savepoint cannot change the isolation level or access mode of the
//! transaction it is part of: `begin_with_config` and `begin_with_options`
//! with any of them set return [`NestedOption`] (carried in a [`DbErr`])
//! instead of ignoring them.

use std::future::Future;
use std::pin::Pin;

use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, ExecResult, IsolationLevel,
    QueryResult, Statement, TransactionError, TransactionOptions, TransactionSession,
    TransactionTrait,
};

use super::{Mark, Txn};
use crate::resolver::carried;
use crate::resolver::error::NestedOption;

/// A savepoint of a managed transaction, opened by `txn.begin()` (SeaORM's
/// [`TransactionTrait`] on a [`Txn`]) or by `txn.transaction(…)`.
///
/// Its statements run through the [`Txn`] (its first-error record and, on
/// SQLite, the writer queue). [`commit`](Self::commit) releases the
/// savepoint; [`rollback`](Self::rollback), or dropping it, rolls the
/// writes made since back. An error swallowed inside a savepoint that was
/// then rolled back was *handled*: it does not fail the managed call. One
/// swallowed without a rollback counts as any other (see [`Txn`]). Hooks
/// registered inside a rolled-back savepoint never run.
///
/// ```
/// use conflictkit::{ConflictResolver, Txn};
/// use sea_orm::{ConnectionTrait, Database, TransactionSession, TransactionTrait};
///
/// // a helper written for any SeaORM connection
/// async fn book<C: ConnectionTrait + TransactionTrait>(db: &C, x: i32) -> Result<(), sea_orm::DbErr> {
///     let sp = db.begin().await?;
///     sp.execute_unprepared(&format!("INSERT INTO t VALUES ({x})")).await?;
///     sp.commit().await
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let resolver = ConflictResolver::new(Database::connect("sqlite::memory:").await?);
/// resolver
///     .managed(|txn: &Txn| Box::pin(async move {
///         txn.execute_unprepared("CREATE TABLE t (x INTEGER PRIMARY KEY)").await?;
///         book(txn, 1).await?;
///         // a duplicate key inside a savepoint: rolled back, handled
///         let sp = txn.begin().await?;
///         let _ = sp.execute_unprepared("INSERT INTO t VALUES (1)").await;
///         sp.rollback().await?;
///         Ok::<_, conflictkit::Error>(())
///     }))
///     .await?;
/// # Ok::<(), conflictkit::Error>(()) }).unwrap();
/// ```
pub struct TxnSavepoint {
    txn: Txn,
    /// SeaORM's nested transaction on the same connection (the
    /// `SAVEPOINT`); `None` once released or rolled back.
    savepoint: Option<DatabaseTransaction>,
    mark: Mark,
}

impl std::fmt::Debug for TxnSavepoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxnSavepoint")
            .field("txn", &self.txn)
            .field("savepoint", &self.mark.number)
            .finish()
    }
}

impl TxnSavepoint {
    /// Opens a savepoint of `txn`.
    async fn open(txn: &Txn) -> Result<Self, DbErr> {
        txn.usable()?;
        let mark = txn.mark();
        let savepoint = txn.observe_statement(txn.state.inner.begin().await)?;
        Ok(Self {
            txn: txn.share(),
            savepoint: Some(savepoint),
            mark,
        })
    }

    /// The managed transaction this savepoint is part of.
    ///
    /// ```
    /// # use conflictkit::resolver::TxnSavepoint;
    /// fn label(sp: &TxnSavepoint) -> &str { sp.txn().label() }
    /// ```
    pub fn txn(&self) -> &Txn {
        &self.txn
    }

    /// Runs `hook` after the final commit of the managed call, if this
    /// savepoint is released and the call commits; never if it is rolled
    /// back (see [`Txn::after_commit`]).
    ///
    /// ```
    /// # use conflictkit::resolver::TxnSavepoint;
    /// fn note(sp: &TxnSavepoint) { sp.after_commit(|| tracing::info!("booked")) }
    /// ```
    pub fn after_commit(&self, hook: impl FnOnce() + Send + 'static) {
        self.txn.after_commit(hook);
    }

    /// `RELEASE SAVEPOINT`: what it wrote, and its hooks, become the
    /// enclosing transaction's.
    ///
    /// ```
    /// # use conflictkit::resolver::TxnSavepoint;
    /// async fn done(sp: TxnSavepoint) -> Result<(), sea_orm::DbErr> { sp.commit().await }
    /// ```
    pub async fn commit(mut self) -> Result<(), DbErr> {
        let Some(savepoint) = self.savepoint.take() else {
            return Ok(());
        };
        self.txn.usable()?;
        self.txn.observe_statement(savepoint.commit().await)
    }

    /// `ROLLBACK TO SAVEPOINT`: takes back what it wrote and the hooks it
    /// registered; an error a statement inside returned no longer counts
    /// against the managed call (except a serialization conflict).
    ///
    /// ```
    /// # use conflictkit::resolver::TxnSavepoint;
    /// async fn undo(sp: TxnSavepoint) -> Result<(), sea_orm::DbErr> { sp.rollback().await }
    /// ```
    pub async fn rollback(mut self) -> Result<(), DbErr> {
        let Some(savepoint) = self.savepoint.take() else {
            return Ok(());
        };
        if let Err(e) = self.txn.usable() {
            // nothing to roll back to; `savepoint` queues its rollback as it
            // drops, and every later statement is refused anyway
            self.txn.dropped(self.mark.clone());
            return Err(e);
        }
        self.txn.observe_statement(savepoint.rollback().await)?;
        self.txn.rewind(&self.mark);
        Ok(())
    }
}

impl Drop for TxnSavepoint {
    fn drop(&mut self) {
        if self.savepoint.take().is_some() {
            // SeaORM queued `ROLLBACK TO SAVEPOINT` as its transaction dropped
            self.txn.dropped(self.mark.clone());
        }
    }
}

#[async_trait::async_trait]
impl TransactionSession for TxnSavepoint {
    async fn commit(self) -> Result<(), DbErr> {
        TxnSavepoint::commit(self).await
    }

    async fn rollback(self) -> Result<(), DbErr> {
        TxnSavepoint::rollback(self).await
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for TxnSavepoint {
    fn get_database_backend(&self) -> DbBackend {
        self.txn.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.txn.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.txn.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.txn.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.txn.query_all_raw(stmt).await
    }

    fn support_returning(&self) -> bool {
        self.txn.support_returning()
    }

    fn is_mock_connection(&self) -> bool {
        self.txn.is_mock_connection()
    }
}

/// Refuses what a savepoint cannot change.
fn refuse_config(
    txn: &Txn,
    isolation_level: Option<IsolationLevel>,
    access_mode: Option<AccessMode>,
) -> Result<(), DbErr> {
    let asked = match (isolation_level, access_mode) {
        (None, None) => return Ok(()),
        (Some(i), None) => format!("isolation level {i}"),
        (None, Some(a)) => format!("access mode {a}"),
        (Some(i), Some(a)) => format!("isolation level {i} and access mode {a}"),
    };
    Err(carried::into_db_err(NestedOption::new(
        "begin_with_config",
        txn.label(),
        asked,
        "its own isolation level and access mode".to_owned(),
    )))
}

/// `TransactionTrait` for a type that reaches a [`Txn`] through `$txn`.
macro_rules! transaction_trait {
    ($ty:ty, |$this:ident| $txn:expr) => {
        #[async_trait::async_trait]
        impl TransactionTrait for $ty {
            type Transaction = TxnSavepoint;

            async fn begin(&self) -> Result<TxnSavepoint, DbErr> {
                let $this = self;
                TxnSavepoint::open($txn).await
            }

            async fn begin_with_config(
                &self,
                isolation_level: Option<IsolationLevel>,
                access_mode: Option<AccessMode>,
            ) -> Result<TxnSavepoint, DbErr> {
                let $this = self;
                refuse_config($txn, isolation_level, access_mode)?;
                TxnSavepoint::open($txn).await
            }

            async fn begin_with_options(
                &self,
                options: TransactionOptions,
            ) -> Result<TxnSavepoint, DbErr> {
                // the SQLite mode applies to `BEGIN` alone, as in SeaORM
                self.begin_with_config(options.isolation_level, options.access_mode)
                    .await
            }

            async fn transaction<F, T, E>(&self, callback: F) -> Result<T, TransactionError<E>>
            where
                F: for<'c> FnOnce(
                        &'c TxnSavepoint,
                    )
                        -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
                    + Send,
                T: Send,
                E: std::fmt::Display + std::fmt::Debug + Send,
            {
                let savepoint = self.begin().await.map_err(TransactionError::Connection)?;
                run(savepoint, callback).await
            }

            async fn transaction_with_config<F, T, E>(
                &self,
                callback: F,
                isolation_level: Option<IsolationLevel>,
                access_mode: Option<AccessMode>,
            ) -> Result<T, TransactionError<E>>
            where
                F: for<'c> FnOnce(
                        &'c TxnSavepoint,
                    )
                        -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
                    + Send,
                T: Send,
                E: std::fmt::Display + std::fmt::Debug + Send,
            {
                let savepoint = self
                    .begin_with_config(isolation_level, access_mode)
                    .await
                    .map_err(TransactionError::Connection)?;
                run(savepoint, callback).await
            }
        }
    };
}

transaction_trait!(Txn, |this| this);
transaction_trait!(TxnSavepoint, |this| &this.txn);

/// SeaORM's `transaction(…)`: release on `Ok`, roll back on `Err`.
async fn run<F, T, E>(savepoint: TxnSavepoint, callback: F) -> Result<T, TransactionError<E>>
where
    F: for<'c> FnOnce(&'c TxnSavepoint) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
        + Send,
    T: Send,
    E: std::fmt::Display + std::fmt::Debug + Send,
{
    let result = callback(&savepoint).await;
    match result {
        Ok(value) => {
            savepoint
                .commit()
                .await
                .map_err(TransactionError::Connection)?;
            Ok(value)
        }
        Err(e) => {
            savepoint
                .rollback()
                .await
                .map_err(TransactionError::Connection)?;
            Err(TransactionError::Transaction(e))
        }
    }
}
