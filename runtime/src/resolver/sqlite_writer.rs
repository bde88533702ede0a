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
//!
//! The wait for the slot is bounded ([`DEFAULT_SLOT_WAIT`], or
//! `CONFLICTKIT_SQLITE_SLOT_WAIT` in seconds): a write transaction left open
//! (a `resolver.transaction()` guard neither committed nor dropped) would
//! otherwise hold up every writer for ever, and a task that opened a guard
//! and then makes a managed call before committing it would wait for itself.
//! (Such a task is not refused at once: futures joined in one task, as
//! `join_all` does, legitimately wait for each other's slot, and cannot be
//! told apart from it.)

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use sea_orm::DbErr;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::WriteSlotUnavailable;
use crate::sync::lock;

/// `SQLITE_BUSY_SNAPSHOT`: the code a deferred upgrade is refused with.
pub(crate) const BUSY_SNAPSHOT: i32 = 517;

/// How long a write transaction waits at most for the SQLite write slot of
/// its database, behind the other writers of the process, unless
/// [`SLOT_WAIT_ENV`] says otherwise. A write transaction normally holds the
/// slot for milliseconds; a long queue of them for a second or two.
///
/// ```
/// assert_eq!(conflictkit::resolver::DEFAULT_SLOT_WAIT.as_secs(), 30);
/// ```
pub const DEFAULT_SLOT_WAIT: Duration = Duration::from_secs(30);

/// The environment variable that sets the bound on the wait for the SQLite
/// write slot, in seconds (`0.5`, `120`); read when a database's queue is
/// made (the first write transaction on that file).
///
/// ```
/// assert_eq!(conflictkit::resolver::SLOT_WAIT_ENV, "CONFLICTKIT_SQLITE_SLOT_WAIT");
/// ```
pub const SLOT_WAIT_ENV: &str = "CONFLICTKIT_SQLITE_SLOT_WAIT";

/// The bound on the slot wait: [`SLOT_WAIT_ENV`] when it holds a positive
/// number of seconds, else [`DEFAULT_SLOT_WAIT`] (an invalid value is logged).
fn slot_wait_from_env() -> Duration {
    let Ok(value) = std::env::var(SLOT_WAIT_ENV) else {
        return DEFAULT_SLOT_WAIT;
    };
    parse_slot_wait(&value).unwrap_or_else(|| {
        tracing::error!(
            value,
            "{SLOT_WAIT_ENV} must be a positive number of seconds; using {DEFAULT_SLOT_WAIT:?}"
        );
        DEFAULT_SLOT_WAIT
    })
}

fn parse_slot_wait(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs > 0.0)
        .then(|| Duration::try_from_secs_f64(secs).ok())
        .flatten()
}

/// The write slot of one SQLite database and the writers waiting for it.
pub(crate) struct WriterQueue {
    slot: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_wait: Duration,
}

/// The queues of the database files this process has open, by canonical path.
static BY_FILE: LazyLock<Mutex<HashMap<PathBuf, Weak<WriterQueue>>>> =
    LazyLock::new(Mutex::default);

impl WriterQueue {
    fn new() -> Self {
        Self::with_max_wait(slot_wait_from_env())
    }

    fn with_max_wait(max_wait: Duration) -> Self {
        Self {
            slot: Arc::new(Semaphore::new(1)),
            waiting: AtomicUsize::new(0),
            max_wait,
        }
    }

    fn slot(&self, permit: OwnedSemaphorePermit) -> WriteSlot {
        WriteSlot { _permit: permit }
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

    /// Waits for the write slot, behind every writer that asked before, for
    /// the queue's bound at most. Cancel-safe: a writer dropped while it waits takes
    /// nothing.
    pub(crate) async fn acquire(self: &Arc<Self>) -> Result<WriteSlot, DbErr> {
        self.acquire_within(self.max_wait).await
    }

    /// [`acquire`](Self::acquire) with a bound of `max_wait`.
    pub(crate) async fn acquire_within(
        self: &Arc<Self>,
        max_wait: Duration,
    ) -> Result<WriteSlot, DbErr> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _counted = Waiting(&self.waiting);
        match tokio::time::timeout(max_wait, self.slot.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(self.slot(permit)),
            // The semaphore is never closed.
            Ok(Err(closed)) => Err(DbErr::Custom(format!("the SQLite writer queue: {closed}"))),
            Err(_) => Err(super::carried::into_db_err(
                WriteSlotUnavailable::TimedOut { waited: max_wait },
            )),
        }
    }

    /// The write slot if it is free and nobody waits for it.
    pub(crate) fn try_acquire(self: &Arc<Self>) -> Option<WriteSlot> {
        self.slot
            .clone()
            .try_acquire_owned()
            .ok()
            .map(|permit| self.slot(permit))
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
        if slot.is_some() {
            return Ok(());
        }
        if !is_write(sql) {
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
    /// The error as the driver's would be (`SQLITE_BUSY_SNAPSHOT`), so that
    /// it classifies as a conflict.
    fn db_err() -> DbErr {
        super::carried::into_sqlite_db_err(WriterBusy, BUSY_SNAPSHOT)
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
    fn slot_wait_values() {
        assert_eq!(parse_slot_wait("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_slot_wait(" 120 "), Some(Duration::from_secs(120)));
        for bad in ["0", "-1", "soon", "", "inf", "NaN"] {
            assert_eq!(parse_slot_wait(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn the_wait_for_a_held_slot_is_bounded() {
        let queue = Arc::new(WriterQueue::with_max_wait(Duration::from_millis(50)));
        let (taken, has_it) = tokio::sync::oneshot::channel();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let q = queue.clone();
        let other = tokio::spawn(async move {
            let slot = q.acquire().await.expect("free slot");
            taken.send(()).expect("the test waits");
            released.await.ok();
            drop(slot);
        });
        has_it.await.expect("the other task took the slot");
        let err = match queue.acquire().await {
            Err(e) => e,
            Ok(_) => panic!("the slot is held by another task"),
        };
        assert!(
            matches!(
                WriteSlotUnavailable::find(&err),
                Some(WriteSlotUnavailable::TimedOut { waited }) if *waited == Duration::from_millis(50)
            ),
            "{err}"
        );
        assert_eq!(queue.waiting(), 0, "the timed-out writer left the queue");
        release.send(()).expect("the other task waits");
        other.await.expect("the other task");
        assert!(queue.acquire().await.is_ok(), "free again");
    }

    #[tokio::test]
    async fn futures_joined_in_one_task_wait_for_each_other() {
        let queue = Arc::new(WriterQueue::with_max_wait(Duration::from_secs(3600)));
        let held = queue.acquire().await.expect("free slot");
        let (next, ()) = tokio::join!(queue.acquire(), async move {
            tokio::task::yield_now().await;
            drop(held);
        });
        assert!(
            next.is_ok(),
            "the second writer of the task got the slot once the first let go"
        );
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
            DbErr::Exec(sea_orm::RuntimeErr::SqlxError(e)) => match &**e {
                sea_orm::sqlx::Error::Database(d) => d.code().map(|c| c.into_owned()),
                _ => None,
            },
            _ => None,
        };
        assert_eq!(code.as_deref(), Some("517"), "{err}");
        assert!(
            crate::resolver::ConflictResolver::is_retryable(&err),
            "classified as the driver's SQLITE_BUSY_SNAPSHOT would be"
        );

        drop(first.into_slot());
        assert!(!queue.is_taken());
        second
            .before_statement("INSERT INTO t VALUES (1)")
            .expect("slot freed");
    }
}
