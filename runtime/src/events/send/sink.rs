//! What an [`OutboxRelay`](crate::events::OutboxRelay) delivers to: a
//! [`Sink`]. The HTTP [`EventPoster`] is one (the default); a queue, a log or
//! a message broker can be another.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::poster::EventPoster;

/// One outbox event as the relay hands it to a [`Sink`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutboxEvent {
    /// The delivery's id, the same on every attempt (and after a restart):
    /// the receiver de-duplicates on it.
    pub webhook_id: String,
    /// The event's name.
    pub event_name: String,
    /// The event data as the publisher serialised it (JSON text).
    pub payload: String,
    /// Which attempt of the relay this is: 1 the first time, one more on
    /// each round that retries it (attempts continue across restarts).
    pub attempt: u32,
}

impl OutboxEvent {
    /// An event as a relay would hand it over, for testing a sink.
    ///
    /// ```
    /// use conflictkit::events::OutboxEvent;
    ///
    /// let event = OutboxEvent::new("msg_1", "credited", "250", 1);
    /// assert_eq!(event.data()?, serde_json::json!(250));
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn new(webhook_id: &str, event_name: &str, payload: &str, attempt: u32) -> Self {
        Self {
            webhook_id: webhook_id.to_owned(),
            event_name: event_name.to_owned(),
            payload: payload.to_owned(),
            attempt,
        }
    }

    /// The event data, parsed from [`payload`](Self::payload).
    pub fn data(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(&self.payload)
    }
}

/// What became of one delivery attempt, as a [`Sink`] tells the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkOutcome {
    /// Delivered: the relay marks the event delivered and never sends it again.
    Delivered,
    /// Not delivered this time: the relay tries again on its schedule (the
    /// next step, or later when `retry_after` asks for more, at most the
    /// schedule's longest step), and gives the event up after the last step.
    RetryLater {
        /// What went wrong (recorded as the event's `last_error`).
        error: String,
        /// How long the receiver asked to be left alone, if it did.
        retry_after: Option<Duration>,
    },
    /// Never deliverable (the receiver refused it for good): the relay gives
    /// the event up now, whatever is left of its schedule; it stays in the
    /// outbox until requeued.
    Failed {
        /// Why (recorded as the event's `last_error`).
        error: String,
    },
}

/// The future a [`Sink`] returns.
pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = SinkOutcome> + Send + 'a>>;

/// Where an [`OutboxRelay`](crate::events::OutboxRelay) delivers events: it
/// claims a batch, calls [`deliver`](Self::deliver) for each event (several
/// at once, outside any database transaction) and records the outcome.
///
/// Delivery is at least once: the same event (same `webhook_id`) can come
/// again, after a crash or when a lease ran out, so the receiving side
/// de-duplicates on the id. [`EventPoster`] is the HTTP sink, the one
/// [`OutboxRelay::new`](crate::events::OutboxRelay::new) takes; give
/// [`OutboxRelay::with_sink`](crate::events::OutboxRelay::with_sink) any other.
///
/// A sink that hands events to an in-process queue (a tokio channel):
///
/// ```
/// use conflictkit::events::{
///     OutboxEvent, OutboxRelay, Publish, Sink, SinkFuture, SinkOutcome, migrate_outbox,
/// };
/// use conflictkit::{ConflictResolver, Txn};
/// use tokio::sync::mpsc;
///
/// struct Queue(mpsc::UnboundedSender<OutboxEvent>);
///
/// impl Sink for Queue {
///     fn deliver<'a>(&'a self, event: &'a OutboxEvent) -> SinkFuture<'a> {
///         Box::pin(async move {
///             match self.0.send(event.clone()) {
///                 Ok(()) => SinkOutcome::Delivered,
///                 // No consumer right now: keep the event, try again later.
///                 Err(_) => SinkOutcome::RetryLater {
///                     error: "the queue's consumer is gone".into(),
///                     retry_after: None,
///                 },
///             }
///         })
///     }
/// }
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let db = sea_orm::Database::connect("sqlite::memory:").await?;
/// migrate_outbox(&db).await?;
/// ConflictResolver::new(db.clone())
///     .managed(|txn: &Txn| Box::pin(async move {
///         txn.publish("credited", &250).await?;
///         Ok::<_, conflictkit::Error>(())
///     }))
///     .await?;
///
/// let (tx, mut rx) = mpsc::unbounded_channel();
/// let relay = OutboxRelay::with_sink(db, Queue(tx));
/// assert_eq!(relay.deliver_pending().await?, 1);
/// let event = rx.recv().await.unwrap();
/// assert_eq!((event.event_name.as_str(), event.data()?), ("credited", serde_json::json!(250)));
/// assert_eq!(relay.deliver_pending().await?, 0, "delivered once");
/// # Ok(()) }
/// ```
pub trait Sink: Send + Sync + 'static {
    /// Delivers `event` once (retrying within the call is the sink's choice)
    /// and says how it went. It should end within the relay's
    /// [`lease`](crate::events::OutboxRelay::lease): past it, another relay may
    /// deliver the event beside this one.
    fn deliver<'a>(&'a self, event: &'a OutboxEvent) -> SinkFuture<'a>;
}

/// The HTTP sink: posts the event (the original's form body, signed when
/// the poster has a secret) with the poster's timeout and in-round retries.
/// Every failure, whatever the status, is [`SinkOutcome::RetryLater`] (with
/// the reply's `Retry-After`): the relay's schedule decides when to give up.
/// The `webhook-attempt` header numbers the requests across rounds.
impl Sink for EventPoster {
    fn deliver<'a>(&'a self, event: &'a OutboxEvent) -> SinkFuture<'a> {
        Box::pin(async move {
            let body = event
                .data()
                .map_err(|e| format!("the stored payload is not JSON: {e}"))
                .and_then(|data| {
                    EventPoster::encode(&event.event_name, &data).map_err(|e| e.to_string())
                });
            let body = match body {
                Ok(body) => body,
                Err(error) => {
                    return SinkOutcome::RetryLater {
                        error,
                        retry_after: None,
                    };
                }
            };
            // Request numbers continue across rounds (and restarts).
            let first = event
                .attempt
                .saturating_sub(1)
                .saturating_mul(self.attempts_per_post())
                .saturating_add(1);
            match self
                .send(&event.event_name, &body, &event.webhook_id, first)
                .await
            {
                Ok(()) => SinkOutcome::Delivered,
                Err(e) => SinkOutcome::RetryLater {
                    error: e.to_string(),
                    retry_after: e.retry_after(),
                },
            }
        })
    }
}
