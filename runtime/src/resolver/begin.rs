//! Beginning the transaction of one run: a place in the SQLite writer
//! queue first where the engine has one, then `BEGIN` in a task of its own,
//! stepping over pooled connections that died.

use std::sync::Arc;

use sea_orm::{ConnectionTrait, DbErr, TransactionTrait};

use super::driver_error::is_lost_connection;
use super::inner::ConflictResolver;
use super::metrics::{self, Wait};
use super::options::SqliteMode;
use super::plan::Plan;
use super::sqlite_writer::{TxnWriter, WriterQueue};
use super::txn::Txn;

/// How many dead pooled connections one `BEGIN` steps over before it gives
/// up with the error.
const LOST_CONNECTION_REBEGINS: u32 = 16;

impl ConflictResolver {
    /// The writer queue of this resolver's SQLite database, shared with every
    /// pool of this process on the same file; `None` on other engines.
    async fn writer_queue(&self) -> Result<Option<Arc<WriterQueue>>, DbErr> {
        if !self.inner.engine.writer_queue() {
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
        Ok(Txn::new(dbtx, writer, plan.label(), attempt, self))
    }

    /// [`begin_txn`](Self::begin_txn)'s transaction and SQLite writer, not
    /// yet made a [`Txn`].
    pub(crate) async fn begin_with_writer(
        &self,
        plan: &Plan,
        behind_queue: bool,
    ) -> Result<(sea_orm::DatabaseTransaction, TxnWriter), DbErr> {
        let writer = match self.writer_queue().await? {
            None => TxnWriter::default(),
            Some(queue) if behind_queue || plan.sqlite_mode != SqliteMode::Deferred => {
                metrics::slot_waiters(plan, queue.waiting() + 1);
                let at = tokio::time::Instant::now();
                let slot = queue.acquire().await;
                self.waited(plan, Wait::SqliteSlot, at.elapsed());
                metrics::slot_waiters(plan, queue.waiting());
                let slot = slot?;
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
        let db = match plan.replica {
            Some(i) => self.inner.replicas.pool(i),
            None => &self.inner.db,
        };
        let topts = plan.transaction_options();
        let deferrable = plan
            .deferrable
            .then(|| self.inner.engine.deferrable())
            .flatten();
        let mut lost = 0;
        loop {
            // BEGIN runs in a task of its own: a caller dropped while it is
            // under way cannot cut it midway (sqlx 0.9.0 may then hand the
            // connection back to the pool inside an open transaction); the
            // task finishes it, and a transaction nobody takes rolls back.
            let pool = db.clone();
            let begun = match tokio::spawn(async move {
                let dbtx = pool.begin_with_options(topts).await?;
                if let Some(sql) = deferrable {
                    // before any query: the transaction's mode is still open
                    dbtx.execute_unprepared(sql).await?;
                }
                Ok(dbtx)
            })
            .await
            {
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
}
