//! The outbox relay: delivers the events published with
//! [`Publish`](crate::events::Publish) and marks them delivered.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use sea_orm::{DatabaseConnection, DbErr};

use super::claim::{self, Backlog, Claimed};
use super::outbox::unix_millis;
use crate::events::metrics::{self, Attempt};
use crate::events::send::poster::{EventPoster, message_id};
use crate::events::send::sink::{OutboxEvent, Sink, SinkOutcome};

/// Delivers the outbox's pending events to a [`Sink`] (an [`EventPoster`],
/// over HTTP, with [`new`](Self::new); any other with
/// [`with_sink`](Self::with_sink)) and marks them delivered: **at least once**, with the same `webhook-id` on every
/// attempt (also after a restart), so a receiver with an inbox applies each
/// once.
///
/// - **No transaction across the network.** A round claims a batch of due
///   events (at most [`batch`](Self::batch), the head of each stream) with one
///   committed `UPDATE` that sets a lease (`claimed_until`, `claim_token`),
///   posts them outside any transaction, then records each outcome in a
///   statement of its own, only while the claim is still this relay's. No
///   pooled connection sits idle in a transaction while a receiver is slow.
/// - **Any number of relays** (in any number of processes, on every engine,
///   SQLite included) share one outbox: a claimed event is not claimed again
///   while its lease ([`lease`](Self::lease), default [`LEASE`](Self::LEASE))
///   lasts. A relay that crashes mid-delivery leaves its claims behind; once
///   their lease ends another relay takes them over and delivers them with
///   the same `webhook-id`. Give the lease more time than the poster's
///   longest send (its timeout times its attempts, plus the `Retry-After`
///   waits it honours): a lease that runs out mid-POST lets a second relay
///   post the event beside the first (still with the same `webhook-id`).
/// - **Order.** Events of one stream (by default the event name; see
///   [`Publish::publish_in`](crate::events::Publish::publish_in)) are delivered one at
///   a time in publish order: an event is not sent before every earlier event
///   of its stream was delivered or given up. Streams are independent, and a
///   batch's events (one per stream) are posted concurrently.
/// - **Failures.** A failed post (after the poster's own retries) is retried
///   on a published schedule ([`schedule`](Self::schedule), default
///   [`SCHEDULE`](Self::SCHEDULE), Svix's: 5 s, 5 min, 30 min, 2 h, 5 h,
///   10 h, 10 h after the first attempt, about 28 hours in all), never sooner
///   than the receiver's last `Retry-After` asked (at most the schedule's
///   longest step). After the last step the event is given up: `failed_at`
///   and `last_error` are set and its stream moves on. Given-up events stay
///   in the table; [`requeue`](Self::requeue) and
///   [`requeue_failed`](Self::requeue_failed) put them back. A sink that
///   answers [`SinkOutcome::Failed`] (refused for good) has its event given
///   up at once.
/// - **Cancellation.** [`run`](Self::run) stops between rounds when its
///   shutdown signal fires; a round dropped half-way leaves claims that the
///   next relay takes over when their lease ends.
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
#[derive(Clone)]
pub struct OutboxRelay {
    db: DatabaseConnection,
    sink: Arc<dyn Sink>,
    schedule: Vec<Duration>,
    lease: Duration,
    batch: usize,
    poll_interval: Duration,
}

/// Seconds in a minute and an hour, for the schedule below.
const MIN: u64 = 60;
const HOUR: u64 = 60 * MIN;

impl OutboxRelay {
    /// The default retry schedule, Svix's: the waits after each failed
    /// attempt (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h), so an event is
    /// tried 8 times over about 28 hours before it is given up.
    pub const SCHEDULE: [Duration; 7] = [
        Duration::from_secs(5),
        Duration::from_secs(5 * MIN),
        Duration::from_secs(30 * MIN),
        Duration::from_secs(2 * HOUR),
        Duration::from_secs(5 * HOUR),
        Duration::from_secs(10 * HOUR),
        Duration::from_secs(10 * HOUR),
    ];

    /// The default lease on a claimed event: 5 minutes, more than the
    /// default poster's longest send (4 attempts of at most 10 s and 3
    /// `Retry-After` waits of at most 60 s).
    pub const LEASE: Duration = Duration::from_secs(5 * MIN);

    /// The default number of events claimed (and posted concurrently) per round.
    pub const BATCH: usize = 16;

    /// The default time [`run`](Self::run) waits before looking again when
    /// nothing was due.
    pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

    /// A relay delivering the outbox of `db` with `poster` (its URL, secret,
    /// timeout and in-round retries).
    pub fn new(db: DatabaseConnection, poster: EventPoster) -> Self {
        Self::with_sink(db, poster)
    }

    /// A relay delivering the outbox of `db` to `sink` (see [`Sink`] for one
    /// that hands events to a queue).
    pub fn with_sink(db: DatabaseConnection, sink: impl Sink) -> Self {
        Self::with_shared_sink(db, Arc::new(sink))
    }

    /// A relay delivering to a sink shared with other relays (or other code).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use conflictkit::events::{EventPoster, OutboxRelay, Sink};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// let sink: Arc<dyn Sink> = Arc::new(EventPoster::new("http://127.0.0.1:10000")?);
    /// let a = OutboxRelay::with_shared_sink(db.clone(), sink.clone());
    /// let b = OutboxRelay::with_shared_sink(db, sink);
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub fn with_shared_sink(db: DatabaseConnection, sink: Arc<dyn Sink>) -> Self {
        Self {
            db,
            sink,
            schedule: Self::SCHEDULE.to_vec(),
            lease: Self::LEASE,
            batch: Self::BATCH,
            poll_interval: Self::POLL_INTERVAL,
        }
    }

    /// The waits after each failed attempt (default
    /// [`SCHEDULE`](Self::SCHEDULE)): an event is tried once more than there
    /// are steps, then given up; an empty schedule gives up after the first
    /// failure. A receiver's `Retry-After` makes a wait longer, up to the
    /// longest step.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use conflictkit::events::{EventPoster, OutboxRelay};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// // Three attempts: now, a minute later, an hour after that.
    /// let relay = OutboxRelay::new(db, EventPoster::new("http://127.0.0.1:10000")?)
    ///     .schedule([Duration::from_secs(60), Duration::from_secs(3600)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub fn schedule(mut self, waits: impl IntoIterator<Item = Duration>) -> Self {
        self.schedule = waits.into_iter().collect();
        self
    }

    /// How long a claimed event stays this relay's (default
    /// [`LEASE`](Self::LEASE)); after it, another relay may take the event
    /// over. Give it more than the poster's longest send.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use conflictkit::events::{EventPoster, OutboxRelay};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// let relay = OutboxRelay::new(db, EventPoster::new("http://127.0.0.1:10000")?)
    ///     .lease(Duration::from_secs(60));
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How many events a round claims and posts concurrently, one per stream
    /// (default [`BATCH`](Self::BATCH); at least 1).
    ///
    /// ```
    /// # use conflictkit::events::{EventPoster, OutboxRelay};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// let relay = OutboxRelay::new(db, EventPoster::new("http://127.0.0.1:10000")?).batch(64);
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub fn batch(mut self, events: usize) -> Self {
        self.batch = events.max(1);
        self
    }

    /// How often [`run`](Self::run) looks for new events when nothing is due
    /// (default [`POLL_INTERVAL`](Self::POLL_INTERVAL)).
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

    /// Delivers every event that is due now, round after round until none
    /// is left; returns how many were delivered (failed attempts are
    /// recorded and not counted). Events another relay holds are left to it.
    pub async fn deliver_pending(&self) -> Result<usize, DbErr> {
        let mut delivered = 0;
        loop {
            let round = self.round().await?;
            delivered += round.delivered;
            if round.found == 0 {
                return Ok(delivered);
            }
        }
    }

    /// Delivers events until `shutdown` completes, looking for new ones every
    /// [`poll_interval`](Self::poll_interval) when nothing is due. It stops
    /// between rounds (a round under way finishes first, within the
    /// poster's timeout); a database error ends it.
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
            // Checked between rounds only: a delivery under way is not cut
            // between its POST and the statement that records it.
            if shutdown.as_mut().now_or_never().is_some() {
                return Ok(());
            }
            if self.round().await?.found == 0 {
                tokio::select! {
                    () = &mut shutdown => return Ok(()),
                    () = tokio::time::sleep(self.poll_interval) => {}
                }
            }
        }
    }

    /// Puts the given-up event `webhook_id` back in the queue: due now, its
    /// schedule from the start, the same `webhook-id`. `false` when no
    /// given-up event has that id.
    ///
    /// ```
    /// # use conflictkit::events::{EventPoster, OutboxRelay, migrate_outbox};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// # migrate_outbox(&db).await?;
    /// let relay = OutboxRelay::new(db, EventPoster::new("http://127.0.0.1:10000")?);
    /// assert!(!relay.requeue("msg_not_given_up").await?);
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub async fn requeue(&self, webhook_id: &str) -> Result<bool, DbErr> {
        Ok(claim::requeue(&self.db, Some(webhook_id)).await? > 0)
    }

    /// Puts every given-up event back in the queue (as
    /// [`requeue`](Self::requeue) does one); returns how many.
    ///
    /// ```
    /// # use conflictkit::events::{EventPoster, OutboxRelay, migrate_outbox};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// # migrate_outbox(&db).await?;
    /// let relay = OutboxRelay::new(db, EventPoster::new("http://127.0.0.1:10000")?);
    /// assert_eq!(relay.requeue_failed().await?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub async fn requeue_failed(&self) -> Result<u64, DbErr> {
        claim::requeue(&self.db, None).await
    }

    /// How many events of the outbox wait: pending (not yet delivered, not
    /// given up; due or waiting for a retry) and given up (until
    /// [`requeue`](Self::requeue)), and the age of the oldest pending one. With the `metrics` feature a running
    /// relay also records these as gauges after each round.
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use conflictkit::events::{EventPoster, OutboxRelay, migrate_outbox};
    ///
    /// let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// migrate_outbox(&db).await?;
    /// let relay = OutboxRelay::new(db, EventPoster::new("http://127.0.0.1:10000")?);
    /// let backlog = relay.backlog().await?;
    /// assert_eq!((backlog.pending, backlog.failed, backlog.oldest_pending), (0, 0, None));
    /// # Ok(()) }
    /// ```
    pub async fn backlog(&self) -> Result<Backlog, DbErr> {
        claim::backlog(&self.db).await
    }

    /// Claims a batch, then posts its events concurrently, each recorded as
    /// it ends.
    async fn round(&self) -> Result<Round, DbErr> {
        let round = self.claim_and_deliver().await?;
        if metrics::SAMPLE_BACKLOG {
            metrics::outbox_backlog(claim::backlog(&self.db).await?);
        }
        Ok(round)
    }

    /// Claims a batch, then posts its events concurrently.
    async fn claim_and_deliver(&self) -> Result<Round, DbErr> {
        let token = message_id();
        let lease_ms = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX);
        let batch = claim::claim_batch(&self.db, &token, self.batch, lease_ms).await?;
        let results: Vec<Result<bool, DbErr>> = futures::stream::iter(batch.claimed)
            .map(|event| self.deliver(event, &token))
            .buffer_unordered(self.batch)
            .collect()
            .await;
        let mut delivered = 0;
        for result in results {
            delivered += usize::from(result?);
        }
        Ok(Round {
            found: batch.found,
            delivered,
        })
    }

    /// Hands `event` to the sink (no transaction is open meanwhile) and
    /// records the outcome; whether it was delivered.
    async fn deliver(&self, event: Claimed, token: &str) -> Result<bool, DbErr> {
        let attempts = event.attempts.saturating_add(1);
        let outgoing = OutboxEvent {
            webhook_id: event.webhook_id,
            event_name: event.event_name,
            payload: event.payload,
            attempt: attempts,
        };
        let outcome = self.sink.deliver(&outgoing).await;
        let (webhook_id, name) = (&outgoing.webhook_id, &outgoing.event_name);
        let record = match &outcome {
            SinkOutcome::Delivered => {
                metrics::relay_attempt(Attempt::Delivered);
                claim::Outcome::Delivered
            }
            SinkOutcome::Failed { error } => {
                tracing::error!(%webhook_id, event = %name, attempts, %error, "the sink refused the outbox event for good; giving it up");
                metrics::relay_attempt(Attempt::GivenUp);
                claim::Outcome::GivenUp { error }
            }
            SinkOutcome::RetryLater { error, retry_after } => {
                match self.schedule.get(event.attempts as usize) {
                    None => {
                        tracing::error!(%webhook_id, event = %name, attempts, %error, "giving up delivering the outbox event");
                        metrics::relay_attempt(Attempt::GivenUp);
                        claim::Outcome::GivenUp { error }
                    }
                    Some(&step) => {
                        let wait = self.wait(step, *retry_after);
                        tracing::warn!(%webhook_id, event = %name, attempts, %error, retry_in_ms = wait.as_millis(), "delivering the outbox event failed; it will be retried");
                        metrics::relay_attempt(Attempt::Retry);
                        let wait = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
                        claim::Outcome::Retry {
                            error,
                            next_attempt_at: unix_millis().saturating_add(wait),
                        }
                    }
                }
            }
        };
        if !claim::record(&self.db, event.id, token, record).await? {
            tracing::warn!(%webhook_id, "the lease on this outbox event ran out and another relay took it over: the outcome is theirs to record");
        }
        Ok(outcome == SinkOutcome::Delivered)
    }

    /// The wait before the next attempt: the schedule's `step`, or longer
    /// when the receiver's `Retry-After` asked (at most the longest step).
    fn wait(&self, step: Duration, retry_after: Option<Duration>) -> Duration {
        let longest = self.schedule.iter().copied().max().unwrap_or(step);
        match retry_after {
            Some(asked) => step.max(asked.min(longest)),
            None => step,
        }
    }
}

/// What one round came to: how many events were free to claim (another
/// relay may have won some of them: the next round looks again), and how
/// many of those this relay claimed were delivered.
struct Round {
    found: usize,
    delivered: usize,
}

impl std::fmt::Debug for OutboxRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxRelay")
            .field("db", &self.db)
            .field("schedule", &self.schedule)
            .field("lease", &self.lease)
            .field("batch", &self.batch)
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}
