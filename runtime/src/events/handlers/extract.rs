//! What an event handler takes, decided by type (as axum extractors are): the
//! event data (any `serde::Deserialize` type), the listener's application
//! state ([`State`]) and the delivery's [`EventContext`], in any order.
//!
//! Run-time handlers ([`Listener::on`](crate::events::Listener::on)) are checked at
//! compile time against the listener's state type. `#[event_listener]`
//! functions are registered process-wide before any listener exists, so their
//! parameters are checked at compile time one by one (errors land on the
//! parameter) and the state type they ask for is checked when a listener
//! starts ([`ListenerError::MissingState`](crate::events::ListenerError::MissingState)).

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::state::{ProvidesState, StateNeed};

/// An incoming event: its name and its JSON data.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    name: Arc<str>,
    data: Value,
}

impl Event {
    /// An event named `name` carrying `data`.
    pub fn new(name: impl Into<Arc<str>>, data: Value) -> Self {
        Self {
            name: name.into(),
            data,
        }
    }

    /// The event name (`txupdate`, …).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The event data.
    pub fn data(&self) -> &Value {
        &self.data
    }

    /// The name (shared) and a copy of the data, for an every-event handler.
    pub(crate) fn to_parts(&self) -> (Arc<str>, Value) {
        (self.name.clone(), self.data.clone())
    }

    /// Decodes the data into `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        T::deserialize(&self.data).map_err(|source| DecodeError {
            type_name: std::any::type_name::<T>(),
            source,
        })
    }
}

/// The event data does not decode into a handler's type.
#[derive(Debug, thiserror::Error)]
#[error("the event data does not decode into `{type_name}`: {source}")]
pub struct DecodeError {
    type_name: &'static str,
    #[source]
    source: serde_json::Error,
}

/// The delivery an event came in: its name and, when the sender gave them,
/// the Standard Webhooks `webhook-id` and `webhook-timestamp` and the delivery
/// attempt.
///
/// A handler gets it by taking a parameter of this type:
///
/// ```no_run
/// use conflictkit::events::{EventContext, Listener, ListenerConfig};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let listener = Listener::new(ListenerConfig::new("127.0.0.1:0".parse()?));
/// listener.on("txupdate", |ctx: EventContext, data: serde_json::Value| async move {
///     tracing::info!(
///         event = ctx.event_name(),
///         id = ctx.webhook_id(),
///         attempt = ctx.attempt(),
///         %data,
///         "event received"
///     );
/// });
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventContext {
    event_name: Arc<str>,
    webhook_id: Option<Arc<str>>,
    timestamp: Option<i64>,
    attempt: Option<u32>,
    verified: bool,
}

impl EventContext {
    /// A context for the event `event_name` with nothing else known, for
    /// calling handlers directly (in tests, for example).
    ///
    /// ```
    /// use conflictkit::events::EventContext;
    ///
    /// let ctx = EventContext::new("txupdate").with_webhook_id("msg_1").with_attempt(2);
    /// assert_eq!(ctx.event_name(), "txupdate");
    /// assert_eq!(ctx.webhook_id(), Some("msg_1"));
    /// assert_eq!(ctx.timestamp(), None);
    /// assert_eq!(ctx.attempt(), Some(2));
    /// assert!(!ctx.is_verified());
    /// ```
    pub fn new(event_name: impl Into<Arc<str>>) -> Self {
        Self {
            event_name: event_name.into(),
            webhook_id: None,
            timestamp: None,
            attempt: None,
            verified: false,
        }
    }

    /// The same context with a `webhook-id`.
    ///
    /// ```
    /// # use conflictkit::events::EventContext;
    /// assert_eq!(EventContext::new("e").with_webhook_id("msg_1").webhook_id(), Some("msg_1"));
    /// ```
    pub fn with_webhook_id(mut self, id: impl Into<Arc<str>>) -> Self {
        self.webhook_id = Some(id.into());
        self
    }

    /// The same context with a `webhook-timestamp` (Unix seconds).
    ///
    /// ```
    /// # use conflictkit::events::EventContext;
    /// assert_eq!(EventContext::new("e").with_timestamp(1_700_000_000).timestamp(), Some(1_700_000_000));
    /// ```
    pub fn with_timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// The same context with a delivery attempt (1 = first delivery).
    ///
    /// ```
    /// # use conflictkit::events::EventContext;
    /// assert_eq!(EventContext::new("e").with_attempt(3).attempt(), Some(3));
    /// ```
    pub fn with_attempt(mut self, attempt: u32) -> Self {
        self.attempt = Some(attempt);
        self
    }

    pub(crate) fn verified(mut self, verified: bool) -> Self {
        self.verified = verified;
        self
    }

    /// The event name (`txupdate`, …).
    ///
    /// ```
    /// # use conflictkit::events::EventContext;
    /// assert_eq!(EventContext::new("txupdate").event_name(), "txupdate");
    /// ```
    pub fn event_name(&self) -> &str {
        &self.event_name
    }

    /// The `webhook-id` of the delivery, if the sender sent one. It is the
    /// same on every retry of one event ([`EventPoster`](crate::events::EventPoster)
    /// always sends one), so it can key idempotent effects.
    ///
    /// ```
    /// # use conflictkit::events::EventContext;
    /// assert_eq!(EventContext::new("e").webhook_id(), None);
    /// ```
    pub fn webhook_id(&self) -> Option<&str> {
        self.webhook_id.as_deref()
    }

    /// The `webhook-timestamp` (Unix seconds) of the delivery, if the sender
    /// sent a valid one.
    ///
    /// ```
    /// # use conflictkit::events::EventContext;
    /// assert_eq!(EventContext::new("e").timestamp(), None);
    /// ```
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }

    /// The delivery attempt (1 = first), when the sender says
    /// ([`EventPoster`](crate::events::EventPoster) sends the
    /// [`WEBHOOK_ATTEMPT`](crate::events::WEBHOOK_ATTEMPT) header).
    ///
    /// ```
    /// # use conflictkit::events::EventContext;
    /// assert_eq!(EventContext::new("e").attempt(), None);
    /// ```
    pub fn attempt(&self) -> Option<u32> {
        self.attempt
    }

    /// Whether the `webhook-id` and timestamp come from a request whose
    /// Standard Webhooks signature was verified (the listener has a secret).
    ///
    /// ```
    /// # use conflictkit::events::EventContext;
    /// assert!(!EventContext::new("e").is_verified());
    /// ```
    pub fn is_verified(&self) -> bool {
        self.verified
    }
}

/// The listener's application state, taken by a handler parameter
/// `State(app): State<AppState>`; the listener gets it from
/// [`Listener::with_state`](crate::events::Listener::with_state). Each handler call
/// receives a clone (share what must be shared through `Arc` or a pool, as
/// `ConflictResolver` does).
///
/// ```no_run
/// use conflictkit::events::{Listener, ListenerConfig, State};
///
/// #[derive(Clone)]
/// struct AppState {
///     bank: &'static str,
/// }
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let listener = Listener::new(ListenerConfig::new("127.0.0.1:0".parse()?))
///     .with_state(AppState { bank: "demo" });
/// listener.on("txupdate", |State(app): State<AppState>, data: serde_json::Value| async move {
///     tracing::info!(bank = app.bank, %data, "deposit");
/// });
/// let handle = listener.start().await?;
/// # handle.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct State<T>(pub T);

impl<T> std::ops::Deref for State<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for State<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

/// A handler parameter could not be produced from the delivery.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// The event data does not decode into the parameter's type (the listener
    /// answers 400).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The handler asks for state the listener does not have (the listener
    /// answers 500; [`Listener::start`](crate::events::Listener::start) refuses to
    /// start with such a handler, so this is only reachable through a custom
    /// [`FromEvent`] implementation).
    #[error("the listener has no state of type `{type_name}`")]
    MissingState {
        /// The type asked for.
        type_name: &'static str,
    },
    /// A transactional handler received a delivery without a `webhook-id`
    /// (the listener answers 400): the id is what the inbox records, so
    /// without it the delivery cannot be applied exactly once. Send events
    /// with [`EventPoster`](crate::events::EventPoster), which always sends one.
    #[error(
        "the transactional handler `{handler}` needs the delivery's `webhook-id` header to apply it exactly once: send one (EventPoster always does)"
    )]
    MissingWebhookId {
        /// The handler's name (function path).
        handler: &'static str,
    },
    /// A transactional handler received a delivery whose `webhook-id` is
    /// longer than the inbox records
    /// ([`MAX_WEBHOOK_ID_CHARS`](crate::events::MAX_WEBHOOK_ID_CHARS)); the listener
    /// answers 400, and nothing runs.
    #[error(
        "the transactional handler `{handler}` records the delivery's `webhook-id` in the inbox, which holds at most {limit} characters; this one has {length}: send a shorter id"
    )]
    WebhookIdTooLong {
        /// The handler's name (function path).
        handler: &'static str,
        /// The id's length, in characters.
        length: usize,
        /// The most the inbox holds, in characters.
        limit: usize,
    },
    /// A transactional handler runs on a listener without a resolver (the
    /// listener answers 500; [`Listener::start`](crate::events::Listener::start)
    /// refuses to start such a listener, so this is only reachable by calling
    /// a handler by hand).
    #[error(
        "the transactional handler `{handler}` needs a ConflictResolver: give the listener one with `Listener::with_resolver`"
    )]
    MissingResolver {
        /// The handler's name (function path).
        handler: &'static str,
    },
}

/// A type an event handler can take as a parameter, produced from the
/// delivery for each call.
///
/// Implemented for every `serde::Deserialize` type (the event data), for
/// [`State<T>`] (the listener's state) and for [`EventContext`]. `S` is the
/// listener's state type.
///
/// ```
/// use conflictkit::events::{Event, EventContext, ExtractError, FromEvent};
///
/// /// The `webhook-id`, or the event name when there is none.
/// struct DeliveryKey(String);
///
/// impl<S> FromEvent<S> for DeliveryKey {
///     fn from_event(_: &Event, ctx: &EventContext, _: &S) -> Result<Self, ExtractError> {
///         Ok(DeliveryKey(ctx.webhook_id().unwrap_or(ctx.event_name()).to_owned()))
///     }
/// }
///
/// let event = Event::new("txupdate", serde_json::json!({}));
/// let key = DeliveryKey::from_event(&event, &EventContext::new("txupdate"), &()).unwrap();
/// assert_eq!(key.0, "txupdate");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a parameter of an event handler",
    label = "not the event data, `State<T>` or `EventContext`",
    note = "an event handler takes, in any order: the event data (a type implementing `serde::Deserialize`), `State<T>` where `T` (`Clone + Send + Sync + 'static`) is the state given to `Listener::with_state`, and `EventContext`"
)]
pub trait FromEvent<S>: Sized {
    /// Produces the parameter for one call of a handler.
    fn from_event(event: &Event, context: &EventContext, state: &S) -> Result<Self, ExtractError>;

    /// The state type this parameter needs at run time, when that cannot be
    /// checked at compile time (`#[event_listener]` functions).
    #[doc(hidden)]
    fn state_need() -> Option<StateNeed> {
        None
    }
}

impl<S, T> FromEvent<S> for T
where
    T: DeserializeOwned,
{
    fn from_event(event: &Event, _: &EventContext, _: &S) -> Result<Self, ExtractError> {
        Ok(event.decode::<T>()?)
    }
}

impl<S> FromEvent<S> for EventContext {
    fn from_event(_: &Event, context: &EventContext, _: &S) -> Result<Self, ExtractError> {
        Ok(context.clone())
    }
}

impl<S, T> FromEvent<S> for State<T>
where
    S: ProvidesState<T>,
{
    fn from_event(_: &Event, _: &EventContext, state: &S) -> Result<Self, ExtractError> {
        state
            .provide()
            .map(State)
            .ok_or(ExtractError::MissingState {
                type_name: std::any::type_name::<T>(),
            })
    }

    fn state_need() -> Option<StateNeed> {
        S::need()
    }
}
