//! The writer queue of a SQLite database: its one write slot, handed out in
//! FIFO order inside the process.
//!
//! SQLite lets one transaction write at a time. Without a queue, concurrent
//! writers of one process find out by sleeping in SQLite's busy handler
//! (`busy_timeout`, polled, unfair) or, for deferred transactions, by failing
//! their lock upgrade with `SQLITE_BUSY_SNAPSHOT`. The resolver knows every
//! write transaction it begins, so it queues them itself:
//!
//! - an immediate (or exclusive) transaction takes the slot before `BEGIN`,
//!   waiting in a FIFO async queue; the `BEGIN IMMEDIATE` then finds the lock
//!   free unless a writer of *another process* holds it, the one case left
//!   to the busy handler;
//! - a deferred transaction takes the slot at its first write statement. If
//!   another writer of this process holds it, that writer will commit after
//!   this transaction's snapshot was taken, so the upgrade could only fail:
//!   the statement fails at once with a conflict (code 517,
//!   `SQLITE_BUSY_SNAPSHOT`) instead of holding its pooled connection while it
//!   waits, and the replay takes the slot before its `BEGIN`, so it cannot
//!   fail again for the same reason;
//! - read-only work never queues: WAL readers run beside the writer.
//!
//! One queue serves every pool and resolver of the process that opened the
//! same database file (found with `PRAGMA database_list`); an in-memory or
//! temporary database gets a queue of its own resolver.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};

use sea_orm::DbErr;
#[cfg(feature = "sqlx-sqlite")]
use sea_orm::{RuntimeErr, sqlx};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// `SQLITE_BUSY_SNAPSHOT`: the code a deferred upgrade is refused with.
pub(crate) const BUSY_SNAPSHOT: i32 = 517;

/// The write slot of one SQLite database and the writers waiting for it.
pub(crate) struct WriterQueue {
    slot: Arc<Semaphore>,
    waiting: AtomicUsize,
}

/// The queues of the database files this process has open, by canonical path.
static BY_FILE: LazyLock<Mutex<HashMap<PathBuf, Weak<WriterQueue>>>> =
    LazyLock::new(Mutex::default);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl WriterQueue {
    fn new() -> Self {
        Self {
            slot: Arc::new(Semaphore::new(1)),
            waiting: AtomicUsize::new(0),
        }
    }

    /// The queue of the database file at `file`, shared with every other
    /// user of that file in this process; `None` (in-memory or temporary
    /// database) gives a queue of its own.
    pub(crate) fn for_file(file: Option<PathBuf>) -> Arc<Self> {
        let Some(file) = file else {
            return Arc::new(Self::new());
        };
        let file = std::fs::canonicalize(&file).unwrap_or(file);
        let mut by_file = lock(&BY_FILE);
        by_file.retain(|_, q| q.strong_count() > 0);
        if let Some(queue) = by_file.get(&file).and_then(Weak::upgrade) {
            return queue;
        }
        let queue = Arc::new(Self::new());
        by_file.insert(file, Arc::downgrade(&queue));
        queue
    }

    /// Waits for the write slot, behind every writer that asked before.
    /// Cancel-safe: a writer dropped while it waits takes nothing.
    pub(crate) async fn acquire(self: &Arc<Self>) -> Result<WriteSlot, DbErr> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _counted = Waiting(&self.waiting);
        match self.slot.clone().acquire_owned().await {
            Ok(permit) => Ok(WriteSlot { _permit: permit }),
            // The semaphore is never closed.
            Err(closed) => Err(DbErr::Custom(format!("the SQLite writer queue: {closed}"))),
        }
    }

    /// The write slot if it is free and nobody waits for it.
    pub(crate) fn try_acquire(self: &Arc<Self>) -> Option<WriteSlot> {
        self.slot
            .clone()
            .try_acquire_owned()
            .ok()
            .map(|permit| WriteSlot { _permit: permit })
    }

    /// How many writers wait for the slot now.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Whether the slot is taken now.
    #[cfg(test)]
    pub(crate) fn is_taken(&self) -> bool {
        self.slot.available_permits() == 0
    }
}

/// Counts a waiting writer until its wait ends, however it ends.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The write slot, held until dropped (after the transaction's `COMMIT` or
/// `ROLLBACK` returned).
pub(crate) struct WriteSlot {
    _permit: OwnedSemaphorePermit,
}

/// The write slot as one transaction sees it: taken before `BEGIN`, or
/// taken at the first write statement, or not needed (another engine).
#[derive(Default)]
pub(crate) struct TxnWriter {
    queue: Option<Arc<WriterQueue>>,
    slot: Mutex<Option<WriteSlot>>,
}

impl TxnWriter {
    /// A transaction that holds `slot` from its `BEGIN` on.
    pub(crate) fn holding(queue: Arc<WriterQueue>, slot: WriteSlot) -> Self {
        Self {
            queue: Some(queue),
            slot: Mutex::new(Some(slot)),
        }
    }

    /// A deferred transaction: it takes the slot at its first write.
    pub(crate) fn on_first_write(queue: Arc<WriterQueue>) -> Self {
        Self {
            queue: Some(queue),
            slot: Mutex::new(None),
        }
    }

    /// Called before each statement: a write statement of a deferred
    /// transaction takes the slot, or fails with a conflict when another
    /// writer of this process holds it.
    pub(crate) fn before_statement(&self, sql: &str) -> Result<(), DbErr> {
        let Some(queue) = &self.queue else {
            return Ok(());
        };
        let mut slot = lock(&self.slot);
        if slot.is_some() || !is_write(sql) {
            return Ok(());
        }
        match queue.try_acquire() {
            Some(taken) => {
                *slot = Some(taken);
                Ok(())
            }
            None => Err(WriterBusy::db_err()),
        }
    }

    /// The slot, to be dropped once `COMMIT` or `ROLLBACK` returned.
    pub(crate) fn into_slot(self) -> Option<WriteSlot> {
        self.slot
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Whether a statement may write, judged by its first keyword: `SELECT`,
/// `VALUES`, `EXPLAIN`, a `PRAGMA` that sets nothing and a `WITH` that names
/// no writing keyword are reads; everything else counts as a write. A write
/// judged a read is still correct: SQLite's busy handler covers it.
pub(crate) fn is_write(sql: &str) -> bool {
    let rest = skip_comments(sql);
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    match word.as_str() {
        "SELECT" | "VALUES" | "EXPLAIN" => false,
        "PRAGMA" => rest.contains('='),
        "WITH" => {
            let upper = rest.to_ascii_uppercase();
            upper
                .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .any(|w| matches!(w, "INSERT" | "UPDATE" | "DELETE" | "REPLACE"))
        }
        _ => true,
    }
}

/// `sql` after leading whitespace, parentheses and comments.
fn skip_comments(mut sql: &str) -> &str {
    loop {
        sql = sql.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
        if let Some(rest) = sql.strip_prefix("--") {
            sql = rest.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(rest) = sql.strip_prefix("/*") {
            sql = rest.split_once("*/").map_or("", |(_, after)| after);
        } else {
            return sql;
        }
    }
}

/// The conflict a deferred transaction's first write gets while another
/// writer of this process holds the write slot: reported as
/// `SQLITE_BUSY_SNAPSHOT` (517), which it would have become.
#[derive(Debug)]
pub(crate) struct WriterBusy;

impl WriterBusy {
    /// The error as the driver's would be, so that it classifies as a conflict.
    #[cfg(feature = "sqlx-sqlite")]
    fn db_err() -> DbErr {
        DbErr::Exec(RuntimeErr::SqlxError(Arc::new(sqlx::Error::Database(
            Box::new(WriterBusy),
        ))))
    }

    /// Without the SQLite driver no queue is ever made; never called.
    #[cfg(not(feature = "sqlx-sqlite"))]
    fn db_err() -> DbErr {
        DbErr::Custom(WriterBusy.to_string())
    }
}

impl fmt::Display for WriterBusy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "another writer of this process holds the SQLite write slot, so this deferred \
             transaction's snapshot is stale (SQLITE_BUSY_SNAPSHOT); the replay queues for the \
             slot before it begins",
        )
    }
}

impl StdError for WriterBusy {}

#[cfg(feature = "sqlx-sqlite")]
impl sqlx::error::DatabaseError for WriterBusy {
    fn message(&self) -> &str {
        "the SQLite write slot is taken by another writer of this process"
    }
    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        Some(std::borrow::Cow::Borrowed("517"))
    }
    fn as_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
        self
    }
    fn as_error_mut(&mut self) -> &mut (dyn StdError + Send + Sync + 'static) {
        self
    }
    fn into_error(self: Box<Self>) -> Box<dyn StdError + Send + Sync + 'static> {
        self
    }
    fn kind(&self) -> sqlx::error::ErrorKind {
        sqlx::error::ErrorKind::Other
    }
}

#[cfg(all(test, feature = "sqlx-sqlite"))]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_by_first_keyword() {
        for read in [
            "SELECT 1",
            "  select * from t",
            "-- note\nSELECT 1",
            "/* x */ (SELECT 1)",
            "VALUES (1)",
            "EXPLAIN QUERY PLAN SELECT 1",
            "PRAGMA table_info(t)",
            "WITH x AS (SELECT 1) SELECT * FROM x",
        ] {
            assert!(!is_write(read), "{read}");
        }
        for write in [
            "INSERT INTO t VALUES (1)",
            "update t set x = 1",
            "DELETE FROM t",
            "REPLACE INTO t VALUES (1)",
            "CREATE TABLE t (x)",
            "PRAGMA user_version = 3",
            "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x",
            "/* unterminated",
            "",
        ] {
            assert!(is_write(write), "{write}");
        }
    }

    #[tokio::test]
    async fn one_file_one_queue() {
        let dir = std::env::temp_dir();
        let name = format!("ck-writer-queue-{}.db", std::process::id());
        std::fs::write(dir.join(&name), b"").expect("a file to open");
        let a = WriterQueue::for_file(Some(dir.join(&name)));
        let b = WriterQueue::for_file(Some(dir.join(".").join(&name)));
        std::fs::remove_file(dir.join(&name)).expect("remove the file");
        assert!(Arc::ptr_eq(&a, &b));
        let memory = WriterQueue::for_file(None);
        assert!(!Arc::ptr_eq(&a, &memory));
        let held = a.acquire().await.expect("free slot");
        assert!(b.is_taken());
        assert!(b.try_acquire().is_none());
        drop(held);
        assert!(b.try_acquire().is_some());
    }

    #[test]
    fn a_deferred_write_takes_a_free_slot_or_fails_as_busy_snapshot() {
        let queue = WriterQueue::for_file(None);
        let first = TxnWriter::on_first_write(queue.clone());
        first
            .before_statement("SELECT 1")
            .expect("reads never queue");
        assert!(!queue.is_taken());
        first
            .before_statement("UPDATE t SET x = 1")
            .expect("free slot");
        assert!(queue.is_taken());
        first
            .before_statement("UPDATE t SET x = 2")
            .expect("already held");

        let second = TxnWriter::on_first_write(queue.clone());
        second
            .before_statement("SELECT 1")
            .expect("reads never queue");
        let err = second
            .before_statement("INSERT INTO t VALUES (1)")
            .unwrap_err();
        let code = match &err {
            DbErr::Exec(RuntimeErr::SqlxError(e)) => match &**e {
                sqlx::Error::Database(d) => d.code().map(|c| c.into_owned()),
                _ => None,
            },
            _ => None,
        };
        assert_eq!(code.as_deref(), Some("517"), "{err}");

        drop(first.into_slot());
        assert!(!queue.is_taken());
        second
            .before_statement("INSERT INTO t VALUES (1)")
            .expect("slot freed");
    }
}
