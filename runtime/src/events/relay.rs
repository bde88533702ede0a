//! The outbox relay: delivers the events published with
//! [`Publish`](super::Publish) and marks them delivered.

use std::future::Future;
use std::time::Duration;

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, QueryResult, Statement, TransactionTrait,
};

use super::outbox::{OUTBOX_TABLE, placeholder, unix_millis};
use super::poster::EventPoster;
use crate::backoff::Backoff;

/// Default attempts before the relay gives an event up.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 12;

/// Delivers the outbox's pending events with an [`EventPoster`] and marks
/// them delivered: **at least once**, with the same `webhook-id` on every
/// attempt (also after a restart), so a receiver with an inbox applies each
/// once.
///
/// - **One relay per event at a time.** On PostgreSQL and MySQL/MariaDB
///   (≥ 10.6, 8.0 for MySQL) an event is claimed with
///   `SELECT … FOR UPDATE SKIP LOCKED` and its row stays locked until it is
///   marked: any number of relays, in any number of processes, share one
///   outbox and never post one event concurrently. On SQLite run **one relay
///   per database file** (SQLite has no row locks).
/// - **Order.** Events of one stream (by default the event name; see
///   [`Publish::publish_in`](super::Publish::publish_in)) are delivered one at
///   a time in publish order: an event is not sent before every earlier event
///   of its stream was delivered or given up. Streams are independent.
/// - **Failures.** A failed post (after the poster's own retries, which honour
///   `Retry-After`) is retried later with exponential backoff (full jitter,
///   [`backoff`](Self::backoff)), or after the listener's last
///   `Retry-After` when it sent one (at most the backoff's maximum). After [`max_attempts`](Self::max_attempts)
///   failed rounds the event is given up: `failed_at` and `last_error` are set
///   and its stream moves on, so a permanently failing event holds up its
///   stream for a bounded time and the others not at all. Given-up events stay
///   in the table for you to inspect and re-queue (`UPDATE … SET failed_at =
///   NULL, attempts = 0`).
/// - **Crashes and cancellation.** A relay killed or cancelled mid-delivery
///   leaves the event pending (its transaction rolls back, its lock goes with
///   the connection); it is delivered again with the same `webhook-id`.
///   [`run`](Self::run) stops between events when its shutdown signal fires.
///
/// ```
/// use conflictkit::events::{
///     EventPoster, Listener, ListenerConfig, OutboxRelay, Publish, migrate_outbox,
/// };
/// use conflictkit::{ConflictResolver, Txn};
/// use std::sync::{Arc, Mutex};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let listener = Listener::new(ListenerConfig::new("127.0.0.1:0".parse()?));
/// let log = seen.clone();
/// listener.on("credited", move |cents: i64| {
///     let log = log.clone();
///     async move { log.lock().unwrap().push(cents) }
/// });
/// let handle = listener.start().await?;
///
/// let db = sea_orm::Database::connect("sqlite::memory:").await?;
/// migrate_outbox(&db).await?;
/// ConflictResolver::new(db.clone())
///     .managed(|txn: &Txn| Box::pin(async move {
///         txn.publish("credited", &250).await?;
///         Ok::<_, conflictkit::Error>(())
///     }))
///     .await?;
///
/// let relay = OutboxRelay::new(db, EventPoster::new(&format!("http://{}", handle.local_addr()))?);
/// assert_eq!(relay.deliver_pending().await?, 1);
/// assert_eq!(*seen.lock().unwrap(), [250]);
/// assert_eq!(relay.deliver_pending().await?, 0, "delivered once");
/// handle.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct OutboxRelay {
    db: DatabaseConnection,
    poster: EventPoster,
    max_attempts: u32,
    backoff: Backoff,
    poll_interval: Duration,
}

/// One pending event, as claimed.
struct Pending {
    id: i64,
    webhook_id: String,
    event_name: String,
    payload: String,
    attempts: i64,
}

impl OutboxRelay {
    /// A relay delivering the outbox of `db` with `poster` (its URL, secret,
    /// timeout and in-round retries).
    pub fn new(db: DatabaseConnection, poster: EventPoster) -> Self {
        Self {
            db,
            poster,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
            poll_interval: Duration::from_millis(500),
        }
    }

    /// Failed delivery rounds before an event is given up (default
    /// [`DEFAULT_MAX_ATTEMPTS`]; at least 1).
    ///
    /// ```
    /// # use conflictkit::events::{EventPoster, OutboxRelay};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// let relay = OutboxRelay::new(db, EventPoster::new("http://127.0.0.1:10000")?).max_attempts(5);
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The wait before round `n + 1` of a failed event is random in
    /// `0..=min(max, base * 2^(n-1))` (defaults 1 s and 5 min), the schedule
    /// of [`Backoff`](crate::resolver::Backoff). When the listener's last
    /// reply carried `Retry-After`, the wait is what it asked, at most `max`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use conflictkit::events::{EventPoster, OutboxRelay};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// let relay = OutboxRelay::new(db, EventPoster::new("http://127.0.0.1:10000")?)
    ///     .backoff(Duration::from_millis(200), Duration::from_secs(60));
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff = Backoff::new(base, max);
        self
    }

    /// How often [`run`](Self::run) looks for new events when the outbox is
    /// empty (default 500 ms).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use conflictkit::events::{EventPoster, OutboxRelay};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// let relay = OutboxRelay::new(db, EventPoster::new("http://127.0.0.1:10000")?)
    ///     .poll_interval(Duration::from_millis(100));
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Delivers every event that is due now, one at a time; returns how many
    /// were delivered (failed attempts are recorded and not counted).
    pub async fn deliver_pending(&self) -> Result<usize, DbErr> {
        let mut delivered = 0;
        while let Some(ok) = self.deliver_one().await? {
            delivered += usize::from(ok);
        }
        Ok(delivered)
    }

    /// Delivers events until `shutdown` completes, looking for new ones every
    /// [`poll_interval`](Self::poll_interval) when the outbox is empty. It
    /// stops between two events (a delivery under way finishes first, within
    /// the poster's timeout); a database error ends it.
    ///
    /// ```no_run
    /// use conflictkit::events::{EventPoster, OutboxRelay};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let db = sea_orm::Database::connect("sqlite:events.db?mode=rwc").await?;
    /// let relay = OutboxRelay::new(db, EventPoster::new("http://127.0.0.1:10000")?);
    /// relay.run(async { tokio::signal::ctrl_c().await.ok(); }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<(), DbErr> {
        use futures::FutureExt as _;
        tokio::pin!(shutdown);
        loop {
            // Checked between events only: a delivery under way is not cut
            // between its POST and the row that records it.
            if shutdown.as_mut().now_or_never().is_some() {
                return Ok(());
            }
            if self.deliver_one().await?.is_none() {
                tokio::select! {
                    () = &mut shutdown => return Ok(()),
                    () = tokio::time::sleep(self.poll_interval) => {}
                }
            }
        }
    }

    /// Claims and delivers the oldest due event: `None` when there is none,
    /// else whether it was delivered.
    async fn deliver_one(&self) -> Result<Option<bool>, DbErr> {
        let backend = self.db.get_database_backend();
        if backend == DbBackend::Sqlite {
            // One relay per file: no lock to hold while posting.
            let Some(event) = claim(&self.db, "").await? else {
                return Ok(None);
            };
            return self.deliver(&self.db, event).await.map(Some);
        }
        let txn = self.db.begin().await?;
        let Some(event) = claim(&txn, " FOR UPDATE SKIP LOCKED").await? else {
            txn.commit().await?;
            return Ok(None);
        };
        let delivered = self.deliver(&txn, event).await?;
        txn.commit().await?;
        Ok(Some(delivered))
    }

    /// Posts `event` and records the outcome through `conn`.
    async fn deliver<C: ConnectionTrait>(&self, conn: &C, event: Pending) -> Result<bool, DbErr> {
        let round = u32::try_from(event.attempts)
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        let outcome = match encode(&event) {
            Ok(body) => {
                // Attempt numbers continue across rounds (and restarts).
                let first = round
                    .saturating_sub(1)
                    .saturating_mul(self.poster.attempts_per_post())
                    + 1;
                self.poster
                    .send(&event.event_name, &body, &event.webhook_id, first)
                    .await
                    .map_err(|e| (e.to_string(), e.retry_after()))
            }
            Err(e) => Err((e, None)),
        };
        let backend = conn.get_database_backend();
        let now = unix_millis();
        let (sql, values): (String, Vec<sea_orm::Value>) = match &outcome {
            Ok(()) => (
                format!(
                    "UPDATE {OUTBOX_TABLE} SET delivered_at = {}, attempts = attempts + 1 WHERE id = {}",
                    placeholder(backend, 1),
                    placeholder(backend, 2)
                ),
                vec![now.into(), event.id.into()],
            ),
            Err((error, retry_after)) => {
                let given_up = round >= self.max_attempts;
                let wait = match *retry_after {
                    Some(asked) => asked.min(self.backoff.cap()),
                    None => self.backoff.delay(round),
                };
                let next = now.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
                if given_up {
                    tracing::error!(webhook_id = %event.webhook_id, event = %event.event_name, attempts = round, %error, "giving up delivering the outbox event");
                } else {
                    tracing::warn!(webhook_id = %event.webhook_id, event = %event.event_name, attempts = round, %error, "delivering the outbox event failed; it will be retried");
                }
                (
                    format!(
                        "UPDATE {OUTBOX_TABLE} SET attempts = attempts + 1, next_attempt_at = {}, \
                         last_error = {}, failed_at = {} WHERE id = {}",
                        placeholder(backend, 1),
                        placeholder(backend, 2),
                        placeholder(backend, 3),
                        placeholder(backend, 4)
                    ),
                    vec![
                        next.into(),
                        error.clone().into(),
                        given_up.then_some(now).into(),
                        event.id.into(),
                    ],
                )
            }
        };
        conn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        Ok(outcome.is_ok())
    }
}

/// The body the poster sends: the original's form, the payload as the
/// Python original would write it.
fn encode(event: &Pending) -> Result<String, String> {
    let data: serde_json::Value = serde_json::from_str(&event.payload)
        .map_err(|e| format!("the stored payload is not JSON: {e}"))?;
    EventPoster::encode(&event.event_name, &data).map_err(|e| e.to_string())
}

/// The oldest due event whose stream has no earlier pending event.
async fn claim<C: ConnectionTrait>(conn: &C, lock: &str) -> Result<Option<Pending>, DbErr> {
    let backend = conn.get_database_backend();
    let sql = format!(
        "SELECT id, webhook_id, event_name, payload, attempts FROM {OUTBOX_TABLE} o \
         WHERE o.delivered_at IS NULL AND o.failed_at IS NULL AND o.next_attempt_at <= {} \
         AND NOT EXISTS (SELECT 1 FROM {OUTBOX_TABLE} e WHERE e.stream = o.stream \
         AND e.id < o.id AND e.delivered_at IS NULL AND e.failed_at IS NULL) \
         ORDER BY o.id LIMIT 1{lock}",
        placeholder(backend, 1)
    );
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [unix_millis().into()],
        ))
        .await?;
    row.map(|row| pending(&row)).transpose()
}

fn pending(row: &QueryResult) -> Result<Pending, DbErr> {
    Ok(Pending {
        id: row.try_get("", "id")?,
        webhook_id: row.try_get("", "webhook_id")?,
        event_name: row.try_get("", "event_name")?,
        payload: row.try_get("", "payload")?,
        attempts: match row.try_get::<i64>("", "attempts") {
            Ok(n) => n,
            Err(_) => i64::from(row.try_get::<i32>("", "attempts")?),
        },
    })
}
