//! What an event handler takes, decided by type (as axum extractors are): the
//! event data (any `serde::Deserialize` type), the listener's application
//! state ([`State`]) and the delivery's [`EventContext`], in any order.
//!
//! Run-time handlers ([`Listener::on`](super::Listener::on)) are checked at
//! compile time against the listener's state type. `#[event_listener]`
//! functions are registered process-wide before any listener exists, so their
//! parameters are checked at compile time one by one (errors land on the
//! parameter) and the state type they ask for is checked when a listener
//! starts ([`ListenerError::MissingState`](super::ListenerError::MissingState)).

use std::any::{Any, TypeId};
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::resolver::ConflictResolver;

use super::handler::{DecodeError, Event, HandlerFuture, IntoHandlerResult, Ran, blocking};

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
    /// same on every retry of one event ([`EventPoster`](super::EventPoster)
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
    /// ([`EventPoster`](super::EventPoster) sends the
    /// [`WEBHOOK_ATTEMPT`](super::WEBHOOK_ATTEMPT) header).
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
/// [`Listener::with_state`](super::Listener::with_state). Each handler call
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
    /// answers 500; [`Listener::start`](super::Listener::start) refuses to
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
    /// with [`EventPoster`](super::EventPoster), which always sends one.
    #[error(
        "the transactional handler `{handler}` needs the delivery's `webhook-id` header to apply it exactly once: send one (EventPoster always does)"
    )]
    MissingWebhookId {
        /// The handler's name (function path).
        handler: &'static str,
    },
    /// A transactional handler received a delivery whose `webhook-id` is
    /// longer than the inbox records
    /// ([`MAX_WEBHOOK_ID_CHARS`](super::MAX_WEBHOOK_ID_CHARS)); the listener
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
    /// listener answers 500; [`Listener::start`](super::Listener::start)
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

/// A listener state `Self` from which a handler's `State<T>` is taken.
#[diagnostic::on_unimplemented(
    message = "the listener's state is `{Self}`, but the handler takes `State<{T}>`",
    label = "this listener has no state of type `{T}`",
    note = "give the listener this state with `Listener::new(config).with_state(value)`, or take `State<{Self}>`"
)]
pub trait ProvidesState<T> {
    /// A clone of the state, if this is it.
    fn provide(&self) -> Option<T>;

    /// The state type to check when the listener starts.
    #[doc(hidden)]
    fn need() -> Option<StateNeed> {
        None
    }
}

impl<T: Clone> ProvidesState<T> for T {
    fn provide(&self) -> Option<T> {
        Some(self.clone())
    }
}

impl<T: Clone + Send + Sync + 'static> ProvidesState<T> for DynState {
    fn provide(&self) -> Option<T> {
        self.state.downcast_ref::<T>().cloned()
    }

    fn need() -> Option<StateNeed> {
        Some(StateNeed::of::<T>())
    }
}

/// The listener's state with its type erased, as `#[event_listener]`
/// functions receive it. Not public API. Deliberately not `Clone`, so that
/// `State<T>` never overlaps between a concrete state and this.
#[doc(hidden)]
pub struct DynState {
    state: Arc<dyn Any + Send + Sync>,
    /// What transactional handlers run their managed transaction with.
    resolver: Option<ConflictResolver>,
}

impl DynState {
    pub(crate) fn new<S: Send + Sync + 'static>(state: S) -> Self {
        DynState {
            state: Arc::new(state),
            resolver: None,
        }
    }

    /// The same state with the listener's resolver.
    pub(crate) fn with_resolver(self, resolver: ConflictResolver) -> Self {
        DynState {
            resolver: Some(resolver),
            ..self
        }
    }

    /// The same state with the resolver of `other`.
    pub(crate) fn keep_resolver(self, other: &DynState) -> Self {
        DynState {
            resolver: other.resolver.clone(),
            ..self
        }
    }

    /// Another handle on the same state (not `Clone`, see the type's docs).
    pub(crate) fn share(&self) -> Self {
        DynState {
            state: self.state.clone(),
            resolver: self.resolver.clone(),
        }
    }

    /// The listener's resolver, if it was given one.
    pub(crate) fn resolver(&self) -> Option<&ConflictResolver> {
        self.resolver.as_ref()
    }

    /// The state as `S`; a listener without state gives `()`.
    pub(crate) fn get<S: 'static>(&self) -> Option<&S> {
        self.state
            .downcast_ref::<S>()
            .or_else(|| (&() as &dyn Any).downcast_ref::<S>())
    }
}

impl fmt::Debug for DynState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DynState")
    }
}

/// A state type a handler needs. Not public API.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateNeed {
    pub(crate) type_id: TypeId,
    pub(crate) type_name: &'static str,
}

impl StateNeed {
    /// The need of `State<T>`.
    pub fn of<T: 'static>() -> Self {
        Self {
            type_id: TypeId::of::<T>(),
            type_name: std::any::type_name::<T>(),
        }
    }
}

/// An async function (or closure) usable as an event handler of a listener
/// with state `S`: every parameter implements [`FromEvent<S>`] and it returns
/// `()` or `Result<(), E: Display>`. Implemented for up to 8 parameters.
///
/// ```
/// use conflictkit::events::{EventContext, EventHandler, State};
///
/// fn assert_handler<A, H: EventHandler<A, u32>>(_: H) {}
///
/// async fn on_tx(State(n): State<u32>, ctx: EventContext, data: serde_json::Value) {
///     let _ = (n, ctx, data);
/// }
/// assert_handler(on_tx);
/// ```
#[diagnostic::on_unimplemented(
    message = "this is not an async event handler of a listener with state `{S}`",
    label = "not an event handler",
    note = "an async event handler's parameters are, in any order: the event data (a type implementing `serde::Deserialize`), `State<{S}>` and `EventContext`; it returns `()` or `Result<(), E>` where `E: Display`",
    note = "a blocking function is added with `on_sync`"
)]
pub trait EventHandler<Args, S>: Send + Sync + 'static {
    /// Produces the parameters, then returns the future of the call.
    #[doc(hidden)]
    fn prepare(
        this: &Arc<Self>,
        event: &Event,
        context: &EventContext,
        state: &S,
    ) -> Result<HandlerFuture, ExtractError>;
}

/// A blocking function (or closure) usable as an event handler of a listener
/// with state `S` (see [`EventHandler`]); it runs on tokio's blocking pool.
///
/// ```
/// use conflictkit::events::{BlockingEventHandler, EventContext};
///
/// fn assert_handler<A, H: BlockingEventHandler<A, ()>>(_: H) {}
///
/// fn on_tx(ctx: EventContext, data: serde_json::Value) -> Result<(), String> {
///     let _ = (ctx, data);
///     Ok(())
/// }
/// assert_handler(on_tx);
/// ```
#[diagnostic::on_unimplemented(
    message = "this is not a blocking event handler of a listener with state `{S}`",
    label = "not a blocking event handler",
    note = "a blocking event handler's parameters are, in any order: the event data (a type implementing `serde::Deserialize`), `State<{S}>` and `EventContext`; it returns `()` or `Result<(), E>` where `E: Display`",
    note = "an async function is added with `on`"
)]
pub trait BlockingEventHandler<Args, S>: Send + Sync + 'static {
    /// Produces the parameters, then returns the future of the call.
    #[doc(hidden)]
    fn prepare(
        this: &Arc<Self>,
        event: &Event,
        context: &EventContext,
        state: &S,
    ) -> Result<HandlerFuture, ExtractError>;
}

macro_rules! impl_handlers {
    ($($t:ident),*) => {
        impl<F, Fut, S, $($t,)*> EventHandler<($($t,)*), S> for F
        where
            F: Fn($($t),*) -> Fut + Send + Sync + 'static,
            Fut: Future + Send + 'static,
            Fut::Output: IntoHandlerResult,
            $($t: FromEvent<S> + Send + 'static,)*
        {
            #[allow(non_snake_case, unused_variables)]
            fn prepare(
                this: &Arc<Self>,
                event: &Event,
                context: &EventContext,
                state: &S,
            ) -> Result<HandlerFuture, ExtractError> {
                $(let $t = $t::from_event(event, context, state)?;)*
                let f = this.clone();
                Ok(Box::pin(async move {
                    f($($t),*).await.into_handler_result().map(|()| Ran::Applied)
                }))
            }
        }

        impl<F, R, S, $($t,)*> BlockingEventHandler<($($t,)*), S> for F
        where
            F: Fn($($t),*) -> R + Send + Sync + 'static,
            R: IntoHandlerResult + Send + 'static,
            $($t: FromEvent<S> + Send + 'static,)*
        {
            #[allow(non_snake_case, unused_variables)]
            fn prepare(
                this: &Arc<Self>,
                event: &Event,
                context: &EventContext,
                state: &S,
            ) -> Result<HandlerFuture, ExtractError> {
                $(let $t = $t::from_event(event, context, state)?;)*
                let f = this.clone();
                Ok(blocking(move || f($($t),*)))
            }
        }
    };
}

impl_handlers!();
impl_handlers!(T1);
impl_handlers!(T1, T2);
impl_handlers!(T1, T2, T3);
impl_handlers!(T1, T2, T3, T4);
impl_handlers!(T1, T2, T3, T4, T5);
impl_handlers!(T1, T2, T3, T4, T5, T6);
impl_handlers!(T1, T2, T3, T4, T5, T6, T7);
impl_handlers!(T1, T2, T3, T4, T5, T6, T7, T8);

/// A function called with a tuple of arguments (what `#[event_listener]`
/// functions are, whatever their arity). Not public API.
#[doc(hidden)]
pub trait CallWith<Args>: Send + 'static {
    /// What the function returns.
    type Output;
    /// Calls the function.
    fn call_with(self, args: Args) -> Self::Output;
}

macro_rules! impl_call_with {
    ($($t:ident),*) => {
        impl<F, R, $($t,)*> CallWith<($($t,)*)> for F
        where
            F: FnOnce($($t),*) -> R + Send + 'static,
        {
            type Output = R;

            #[allow(non_snake_case)]
            fn call_with(self, ($($t,)*): ($($t,)*)) -> R {
                self($($t),*)
            }
        }
    };
}

impl_call_with!();
impl_call_with!(T1);
impl_call_with!(T1, T2);
impl_call_with!(T1, T2, T3);
impl_call_with!(T1, T2, T3, T4);
impl_call_with!(T1, T2, T3, T4, T5);
impl_call_with!(T1, T2, T3, T4, T5, T6);
impl_call_with!(T1, T2, T3, T4, T5, T6, T7);
impl_call_with!(T1, T2, T3, T4, T5, T6, T7, T8);
impl_call_with!(T1, T2, T3, T4, T5, T6, T7, T8, T9);
impl_call_with!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10);
impl_call_with!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11);
impl_call_with!(T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12);

/// The future of an `#[event_listener]` async function called with its
/// parameters (when the future is first polled). Not public API.
#[doc(hidden)]
pub fn call_async<F, A>(f: F, args: A) -> HandlerFuture
where
    F: CallWith<A>,
    F::Output: Future + Send + 'static,
    <F::Output as Future>::Output: IntoHandlerResult,
    A: Send + 'static,
{
    Box::pin(async move {
        f.call_with(args)
            .await
            .into_handler_result()
            .map(|()| Ran::Applied)
    })
}

/// The future of an `#[event_listener]` blocking function called with its
/// parameters (on tokio's blocking pool). Not public API.
#[doc(hidden)]
pub fn call_blocking<F, A>(f: F, args: A) -> HandlerFuture
where
    F: CallWith<A>,
    F::Output: IntoHandlerResult + Send + 'static,
    A: Send + 'static,
{
    blocking(move || f.call_with(args))
}
