//! The listener: configuration, state and handlers, and its route as a warp
//! filter to mount; `start.rs` runs its own server.

use std::any::TypeId;
use std::borrow::Cow;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::Value;

use super::accept::{self, Shared};
use super::config::ListenerConfig;
use super::dedup::Dedup;
use super::route;
use super::verifier::Verifier;
use crate::events::error::{ListenerConfigError, ListenerError};
use crate::events::handlers::call::IntoHandler;
use crate::events::handlers::extract::Event;
use crate::events::handlers::extract::{EventContext, ExtractError};
use crate::events::handlers::handler::{Handler, HandlerFuture, Prepare, type_name_of};
use crate::events::handlers::registry::Registry;
use crate::events::handlers::state::DynState;
use crate::resolver::ConflictResolver;

/// The HTTP event listener: receives events posted by cryptoassets.core's
/// `HTTPEventHandler` (or [`EventPoster`](crate::events::EventPoster)) and dispatches
/// them to handlers.
///
/// Handlers come from `#[event_listener]` functions anywhere in the program
/// and from [`on`](Self::on) and [`on_any`](Self::on_any). `S` is the application state
/// handlers may take ([`with_state`](Listener::with_state)); `()` without.
///
/// ```no_run
/// use conflictkit::events::{Listener, ListenerConfig};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let listener = Listener::new(ListenerConfig::new("127.0.0.1:0".parse()?));
/// listener.on("txupdate", |update: serde_json::Value| async move {
///     tracing::info!(%update, "transaction updated");
/// });
/// let handle = listener.start().await?;
/// println!("listening on {}", handle.local_addr());
/// handle.shutdown().await;
/// # Ok(()) }
/// ```
pub struct Listener<S = ()> {
    pub(super) bind: SocketAddr,
    pub(super) shared: Shared,
    state_type: (TypeId, &'static str),
    _state: PhantomData<fn() -> S>,
}

impl<S> std::fmt::Debug for Listener<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("bind", &self.bind)
            .field("state", &self.state_type.1)
            .field("shared", &self.shared)
            .finish()
    }
}

impl Listener {
    /// A listener with this configuration (not yet bound), without
    /// application state; see [`with_state`](Self::with_state).
    pub fn new(config: ListenerConfig) -> Self {
        // No secrets and no public keys: requests are not checked.
        let verifier = Verifier::trusting(
            config.secrets.iter().cloned(),
            config.public_keys.iter().cloned(),
        )
        .ok()
        .map(|v| v.tolerance(config.tolerance));
        Self {
            bind: config.bind,
            shared: Shared {
                registry: Registry::new(config.registered_handlers),
                dedup: Dedup::new(config.tolerance),
                body_budget: accept::body_budget(&config),
                verifier,
                config,
                state: DynState::new(()),
            },
            state_type: (TypeId::of::<()>(), "()"),
            _state: PhantomData,
        }
    }

    /// A listener configured from a cryptoassets.core style configuration
    /// value; see [`ListenerConfig::from_config`].
    ///
    /// ```no_run
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = serde_json::json!({"events": {"notify": {
    ///     "class": "cryptoassets.core.event.http.HTTPEventHandler",
    ///     "url": "http://localhost:10000",
    /// }}});
    /// let handle = conflictkit::events::Listener::from_config(&config)?.start().await?;
    /// assert_eq!(handle.local_addr().port(), 10000);
    /// # Ok(()) }
    /// ```
    pub fn from_config(config: &Value) -> Result<Self, ListenerConfigError> {
        Ok(Self::new(ListenerConfig::from_config(config)?))
    }

    /// Gives the listener application state: handlers take it as a
    /// [`State<S>`](crate::events::State) parameter, each call a clone of it. Handlers
    /// added with [`on`](Self::on) afterwards are checked against `S` at
    /// compile time; `#[event_listener]` functions when the listener starts
    /// (a function asking for another state type makes
    /// [`start`](Self::start) fail with
    /// [`ListenerError::MissingState`]).
    ///
    /// ```
    /// use conflictkit::events::{EventPoster, Listener, ListenerConfig, State};
    /// use std::sync::{Arc, Mutex};
    ///
    /// #[derive(Clone, Default)]
    /// struct AppState {
    ///     seen: Arc<Mutex<Vec<String>>>,
    /// }
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let app = AppState::default();
    /// let listener = Listener::new(ListenerConfig::new("127.0.0.1:0".parse()?))
    ///     .with_state(app.clone());
    /// listener.on("txupdate", |State(app): State<AppState>, txid: String| async move {
    ///     app.seen.lock().unwrap().push(txid);
    /// });
    /// let handle = listener.start().await?;
    /// EventPoster::new(&format!("http://{}", handle.local_addr()))?
    ///     .post("txupdate", "ab12")
    ///     .await?;
    /// assert_eq!(*app.seen.lock().unwrap(), ["ab12"]);
    /// handle.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub fn with_state<S: Clone + Send + Sync + 'static>(self, state: S) -> Listener<S> {
        Listener {
            bind: self.bind,
            shared: Shared {
                state: DynState::new(state).keep_resolver(&self.shared.state),
                ..self.shared
            },
            state_type: (TypeId::of::<S>(), std::any::type_name::<S>()),
            _state: PhantomData,
        }
    }
}

impl<S> Listener<S> {
    /// Gives the listener the [`ConflictResolver`] its transactional handlers
    /// (`#[event_listener("…", transactional)]`) run their managed
    /// transaction with. Without one, a listener with a transactional
    /// handler refuses to start ([`ListenerError::MissingResolver`]). The
    /// inbox table must exist ([`migrate_inbox`](crate::events::migrate_inbox)).
    ///
    /// (A transactional `#[event_listener]` function is registered in the
    /// whole program: every listener that includes registered handlers then
    /// needs a resolver.)
    ///
    /// ```standalone_crate
    /// use conflictkit::events::{EventPoster, Listener, ListenerConfig, migrate_inbox};
    /// use conflictkit::{ConflictResolver, Txn};
    /// use sea_orm::ConnectionTrait;
    ///
    /// #[conflictkit::event_listener("doc_with_resolver_deposit", transactional)]
    /// async fn on_deposit(txn: &Txn, cents: i64) -> Result<(), conflictkit::Error> {
    ///     txn.execute_unprepared(&format!("UPDATE totals SET cents = cents + {cents}"))
    ///         .await?;
    ///     Ok(())
    /// }
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// migrate_inbox(&db).await?;
    /// db.execute_unprepared("CREATE TABLE totals (cents BIGINT)").await?;
    /// db.execute_unprepared("INSERT INTO totals VALUES (0)").await?;
    /// let handle = Listener::new(ListenerConfig::new("127.0.0.1:0".parse()?))
    ///     .with_resolver(ConflictResolver::new(db.clone()))
    ///     .start()
    ///     .await?;
    /// EventPoster::new(&format!("http://{}", handle.local_addr()))?
    ///     .post("doc_with_resolver_deposit", &250)
    ///     .await?;
    /// let row = db
    ///     .query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), "SELECT cents FROM totals"))
    ///     .await?
    ///     .ok_or("no row")?;
    /// assert_eq!(row.try_get::<i64>("", "cents")?, 250);
    /// handle.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub fn with_resolver(self, resolver: ConflictResolver) -> Self {
        Listener {
            shared: Shared {
                state: self.shared.state.with_resolver(resolver),
                ..self.shared
            },
            ..self
        }
    }
}

impl<S: Send + Sync + 'static> Listener<S> {
    /// The configuration.
    pub fn config(&self) -> &ListenerConfig {
        &self.shared.config
    }

    /// The event route as a warp filter, to mount in a warp app of your own
    /// next to its other routes, under any path: it answers `POST` at the
    /// end of the path it is mounted under (`POST /events` below) with the
    /// replies of the standalone listener (see [the module docs](crate::events)),
    /// and rejects other methods and paths so that the app's other routes
    /// are tried.
    ///
    /// Mounted, the host server owns connections: its connection limits,
    /// header timeouts and graceful shutdown apply, not
    /// [`ListenerConfig::max_connections`] or
    /// [`ListenerConfig::shutdown_timeout`] (and [`ListenerConfig::bind`] is
    /// not used). The body limit, the body read timeout, signatures,
    /// de-duplication and handler timeouts work as standalone. A handler
    /// whose request is dropped mid-way (the client went away) still runs to
    /// its end, in a task of its own.
    ///
    /// For axum and other tower-based servers, `Listener::into_service`
    /// (feature `tower`) gives the route as a `tower::Service`.
    ///
    /// ```
    /// use conflictkit::events::{EventPoster, Listener, ListenerConfig};
    /// use warp::Filter as _;
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let listener = Listener::new(ListenerConfig::default());
    /// listener.on("txupdate", |update: serde_json::Value| async move {
    ///     tracing::info!(%update, "transaction updated");
    /// });
    /// let health = warp::path("health").map(|| "ok");
    /// let app = health.or(warp::path("events").and(listener.filter()?));
    ///
    /// let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let addr = socket.local_addr()?;
    /// tokio::spawn(warp::serve(app).incoming(socket).run());
    /// EventPoster::new(&format!("http://{addr}/events"))?
    ///     .post("txupdate", &serde_json::json!({"txid": "ab12"}))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// Fails as [`start`](Self::start) does when a registered handler needs a
    /// state or a resolver the listener was not given.
    pub fn filter(
        self,
    ) -> Result<
        impl warp::Filter<Extract = (impl warp::Reply,), Error = warp::Rejection>
        + Clone
        + Send
        + Sync
        + 'static,
        ListenerError,
    > {
        self.check_state()?;
        Ok(route::mounted(Arc::new(self.shared)))
    }

    fn add<M, H>(&self, event: Option<Cow<'static, str>>, handler: H) -> &Self
    where
        H: IntoHandler<M, S>,
    {
        let handler = Arc::new(handler);
        self.shared.registry.add(Handler {
            name: type_name_of::<H>(),
            event,
            timeout: None,
            prepare: typed::<S, _>(move |ev, ctx, state| H::prepare(&handler, ev, ctx, state)),
            needs: Vec::new(),
            transactional: false,
        });
        self
    }

    /// Adds a handler for `event`. Its parameters are decided by type, in
    /// any order: the event data decoded into any `serde::Deserialize` type
    /// (400 when it does not decode), [`State<S>`](crate::events::State) and
    /// [`EventContext`](crate::events::EventContext); a parameter of another
    /// type is a compile error. A handler returning a future is async; one
    /// returning `()` or `Result<(), E: Display>` is blocking and runs on
    /// tokio's blocking pool ([`IntoHandler`]). Handlers added here run after
    /// the `#[event_listener]` ones, in the order they were added.
    ///
    /// ```
    /// use conflictkit::events::{EventContext, EventPoster, Listener, ListenerConfig};
    /// use std::sync::{Arc, Mutex};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let listener = Listener::new(ListenerConfig::new("127.0.0.1:0".parse()?));
    /// // Async: returns a future.
    /// listener.on("txupdate", |data: serde_json::Value| async move {
    ///     tracing::info!(%data, "transaction updated");
    /// });
    /// // Blocking: returns `()` or a `Result`; runs on the blocking pool.
    /// let s = seen.clone();
    /// listener.on("txupdate", move |ctx: EventContext, txid: String| {
    ///     s.lock().unwrap().push((ctx.event_name().to_owned(), txid));
    ///     Ok::<(), std::io::Error>(())
    /// });
    /// let handle = listener.start().await?;
    /// EventPoster::new(&format!("http://{}", handle.local_addr()))?
    ///     .post("txupdate", "ab12")
    ///     .await?;
    /// assert_eq!(*seen.lock().unwrap(), [("txupdate".to_owned(), "ab12".to_owned())]);
    /// handle.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub fn on<M, H>(&self, event: impl Into<Cow<'static, str>>, handler: H) -> &Self
    where
        H: IntoHandler<M, S>,
    {
        self.add(Some(event.into()), handler)
    }

    /// Adds a handler for every event, async or blocking, with parameters
    /// decided by type as for [`on`](Self::on): the event's name is in
    /// [`EventContext::event_name`](crate::events::EventContext::event_name),
    /// and the data decodes into any `serde::Deserialize` type
    /// (`serde_json::Value` takes every event's).
    ///
    /// ```
    /// use conflictkit::events::{EventContext, EventPoster, Listener, ListenerConfig};
    /// use std::sync::{Arc, Mutex};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let names = Arc::new(Mutex::new(Vec::new()));
    /// let listener = Listener::new(ListenerConfig::new("127.0.0.1:0".parse()?));
    /// let n = names.clone();
    /// listener.on_any(move |ctx: EventContext, _data: serde_json::Value| {
    ///     n.lock().unwrap().push(ctx.event_name().to_owned());
    /// });
    /// let handle = listener.start().await?;
    /// let poster = EventPoster::new(&format!("http://{}", handle.local_addr()))?;
    /// poster.post("txupdate", &1).await?;
    /// poster.post("balance", &2).await?;
    /// assert_eq!(*names.lock().unwrap(), ["txupdate", "balance"]);
    /// handle.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub fn on_any<M, H>(&self, handler: H) -> &Self
    where
        H: IntoHandler<M, S>,
    {
        self.add(None, handler)
    }

    /// Every handler's state is the listener's, and transactional handlers
    /// have a resolver.
    pub(super) fn check_state(&self) -> Result<(), ListenerError> {
        if self.shared.state.resolver().is_none()
            && let Some(handler) = self.shared.registry.first_transactional()
        {
            return Err(ListenerError::MissingResolver {
                handler: handler.name.into_owned(),
            });
        }
        match self.shared.registry.missing_state(self.state_type.0) {
            None => Ok(()),
            Some((handler, need)) => Err(ListenerError::MissingState {
                handler: handler.name.into_owned(),
                needed: need.type_name,
                provided: self.state_type.1,
            }),
        }
    }
}

/// The type-erased prepare step of a handler of a listener with state `S`.
fn typed<S: Send + Sync + 'static, F>(prepare: F) -> Arc<Prepare>
where
    F: Fn(&Event, &EventContext, &S) -> Result<HandlerFuture, ExtractError> + Send + Sync + 'static,
{
    Arc::new(move |ev, ctx, state| match state.get::<S>() {
        Some(state) => prepare(ev, ctx, state),
        None => Err(ExtractError::MissingState {
            type_name: std::any::type_name::<S>(),
        }),
    })
}
