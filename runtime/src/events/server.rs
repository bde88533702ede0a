//! The listener server: warp request handling on connections accepted from our
//! own tokio `TcpListener`, graceful shutdown with a timeout.

use std::any::TypeId;
use std::borrow::Cow;
use std::future::Future;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt as _};
use http::{HeaderMap, Method, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use warp::Filter as _;

use super::config::ListenerConfig;
use super::dedup::{Claim, Dedup};
use super::dispatch::{self, Outcome, Prepared};
use super::error::{ConfigError, ListenerError};
use super::extract::{BlockingEventHandler, DynState, EventContext, EventHandler, ExtractError};
use super::handler::{
    self, Handler, IntoHandlerResult, Prepare, prepare_any_async, prepare_any_sync, type_name_of,
};
use super::registry::Registry;
use super::request::{self, BodyKind};
use super::signature::{
    self, WEBHOOK_ATTEMPT, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP, WebhookSecret,
};

/// Time a client gets to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The HTTP event listener: receives events posted by cryptoassets.core's
/// `HTTPEventHandler` (or [`EventPoster`](super::EventPoster)) and dispatches
/// them to handlers.
///
/// Handlers come from `#[event_listener]` functions anywhere in the program
/// and from [`on`](Self::on) and friends. `S` is the application state
/// handlers may take ([`with_state`](Listener::with_state)); `()` without.
///
/// ```no_run
/// use conflictkit_runtime::events::{Listener, ListenerConfig};
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
    bind: SocketAddr,
    shared: Shared,
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

#[derive(Debug)]
struct Shared {
    config: ListenerConfig,
    secrets: Vec<WebhookSecret>,
    registry: Registry,
    dedup: Dedup,
    state: DynState,
}

/// How a shutdown ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Shutdown {
    /// Every in-flight request completed within the timeout.
    Graceful,
    /// The timeout passed; this many connections were aborted.
    Forced {
        /// Connections still open when the timeout passed.
        aborted: usize,
    },
}

impl Listener {
    /// A listener with this configuration (not yet bound), without
    /// application state; see [`with_state`](Self::with_state).
    pub fn new(config: ListenerConfig) -> Self {
        let secrets = config.secrets();
        Self {
            bind: config.bind,
            shared: Shared {
                registry: Registry::new(config.registered_handlers),
                dedup: Dedup::new(config.tolerance),
                secrets,
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
    /// let handle = conflictkit_runtime::events::Listener::from_config(&config)?.start().await?;
    /// assert_eq!(handle.local_addr().port(), 10000);
    /// # Ok(()) }
    /// ```
    pub fn from_config(config: &Value) -> Result<Self, ConfigError> {
        Ok(Self::new(ListenerConfig::from_config(config)?))
    }

    /// Gives the listener application state: handlers take it as a
    /// [`State<S>`](super::State) parameter, each call a clone of it. Handlers
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
                state: DynState::new(state),
                ..self.shared
            },
            state_type: (TypeId::of::<S>(), std::any::type_name::<S>()),
            _state: PhantomData,
        }
    }
}

impl<S: Send + Sync + 'static> Listener<S> {
    /// The configuration.
    pub fn config(&self) -> &ListenerConfig {
        &self.shared.config
    }

    fn add(
        &self,
        event: Option<Cow<'static, str>>,
        name: Cow<'static, str>,
        prepare: Arc<Prepare>,
    ) -> &Self {
        self.shared.registry.add(Handler {
            name,
            event,
            timeout: None,
            prepare,
            needs: Vec::new(),
        });
        self
    }

    /// Adds an async handler for `event`. Its parameters are decided by type,
    /// in any order: the event data decoded into any `serde::Deserialize`
    /// type (400 when it does not decode), [`State<S>`](super::State) and
    /// [`EventContext`](super::EventContext); a parameter of another type is a
    /// compile error. Handlers added here run after the `#[event_listener]`
    /// ones, in the order they were added.
    ///
    /// ```no_run
    /// use conflictkit::events::{EventContext, Listener, ListenerConfig};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let listener = Listener::new(ListenerConfig::new("127.0.0.1:0".parse()?));
    /// listener.on("txupdate", |data: serde_json::Value| async move {
    ///     tracing::info!(%data, "transaction updated");
    /// });
    /// listener.on("txupdate", |ctx: EventContext| async move {
    ///     tracing::info!(id = ctx.webhook_id(), "delivery");
    ///     Ok::<(), std::io::Error>(())
    /// });
    /// # Ok(()) }
    /// ```
    pub fn on<A, H>(&self, event: impl Into<Cow<'static, str>>, handler: H) -> &Self
    where
        H: EventHandler<A, S>,
    {
        let handler = Arc::new(handler);
        self.add(
            Some(event.into()),
            type_name_of::<H>(),
            Arc::new(move |ev, ctx, state| match state.get::<S>() {
                Some(state) => H::prepare(&handler, ev, ctx, state),
                None => Err(ExtractError::MissingState {
                    type_name: std::any::type_name::<S>(),
                }),
            }),
        )
    }

    /// Adds a blocking handler for `event` (parameters as for
    /// [`on`](Self::on)); it runs on tokio's blocking pool.
    ///
    /// ```no_run
    /// use conflictkit::events::{Listener, ListenerConfig};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let listener = Listener::new(ListenerConfig::new("127.0.0.1:0".parse()?));
    /// listener.on_sync("txupdate", |data: serde_json::Value| println!("{data}"));
    /// # Ok(()) }
    /// ```
    pub fn on_sync<A, H>(&self, event: impl Into<Cow<'static, str>>, handler: H) -> &Self
    where
        H: BlockingEventHandler<A, S>,
    {
        let handler = Arc::new(handler);
        self.add(
            Some(event.into()),
            type_name_of::<H>(),
            Arc::new(move |ev, ctx, state| match state.get::<S>() {
                Some(state) => H::prepare(&handler, ev, ctx, state),
                None => Err(ExtractError::MissingState {
                    type_name: std::any::type_name::<S>(),
                }),
            }),
        )
    }

    /// Adds an async handler for every event; it receives the name and the data.
    pub fn on_any<F, Fut>(&self, handler: F) -> &Self
    where
        F: Fn(String, Value) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoHandlerResult,
    {
        let handler = Arc::new(handler);
        self.add(
            None,
            type_name_of::<F>(),
            Arc::new(move |ev, _, _| {
                let handler = handler.clone();
                prepare_any_async(ev, move |name, data| handler(name.to_string(), data))
            }),
        )
    }

    /// Adds a blocking handler for every event.
    pub fn on_any_sync<F, R>(&self, handler: F) -> &Self
    where
        F: Fn(String, Value) -> R + Send + Sync + 'static,
        R: IntoHandlerResult + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.add(
            None,
            type_name_of::<F>(),
            Arc::new(move |ev, _, _| {
                let handler = handler.clone();
                prepare_any_sync(ev, move |name, data| handler(name.to_string(), data))
            }),
        )
    }

    /// Every handler's state is the listener's.
    fn check_state(&self) -> Result<(), ListenerError> {
        match self.shared.registry.missing_state(self.state_type.0) {
            None => Ok(()),
            Some((handler, need)) => Err(ListenerError::MissingState {
                handler: handler.name.into_owned(),
                needed: need.type_name,
                provided: self.state_type.1,
            }),
        }
    }

    async fn bind(&self) -> Result<(TcpListener, SocketAddr), ListenerError> {
        self.check_state()?;
        let socket = TcpListener::bind(self.bind)
            .await
            .map_err(|source| ListenerError::Bind {
                addr: self.bind,
                source,
            })?;
        let addr = socket.local_addr().map_err(ListenerError::LocalAddr)?;
        tracing::info!(%addr, "event listener listening");
        Ok((socket, addr))
    }

    /// Binds and serves in the background on the current tokio runtime.
    ///
    /// The returned handle stops the server when dropped (gracefully, in the
    /// background) or with [`ListenerHandle::shutdown`].
    pub async fn start(self) -> Result<ListenerHandle, ListenerError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| ListenerError::NoRuntime)?;
        let (socket, addr) = self.bind().await?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (closed_tx, closed_rx) = watch::channel(false);
        let task = runtime.spawn(serve_on(
            socket,
            Arc::new(self.shared),
            requested(shutdown_rx),
            closed_tx,
        ));
        Ok(ListenerHandle {
            addr,
            shutdown_tx,
            closed_rx,
            task: Some(task),
        })
    }

    /// Binds, then serves on a thread of its own with its own tokio runtime,
    /// for programs that are not async (the original's daemon thread).
    ///
    /// ```no_run
    /// use conflictkit_runtime::events::{Listener, ListenerConfig};
    ///
    /// let listener = Listener::new(ListenerConfig::new("127.0.0.1:0".parse().unwrap()));
    /// listener.on_sync("txupdate", |data: serde_json::Value| println!("{data}"));
    /// let handle = listener.start_blocking_thread()?;
    /// println!("listening on {}", handle.local_addr());
    /// handle.shutdown();
    /// # Ok::<(), conflictkit_runtime::events::ListenerError>(())
    /// ```
    pub fn start_blocking_thread(self) -> Result<BlockingListenerHandle, ListenerError> {
        self.check_state()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("conflictkit-events")
            .enable_all()
            .build()
            .map_err(ListenerError::Thread)?;
        let (socket, addr) = runtime.block_on(self.bind())?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (closed_tx, closed_rx) = watch::channel(false);
        let shutdown_timeout = self.shared.config.shutdown_timeout;
        let shared = Arc::new(self.shared);
        let (done_tx, done_rx) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("conflictkit-event-listener".into())
            .spawn(move || {
                let outcome =
                    runtime.block_on(serve_on(socket, shared, requested(shutdown_rx), closed_tx));
                // A hung sync handler must not keep the runtime (and this
                // thread) alive forever: give the blocking pool the shutdown
                // timeout, then leave it.
                runtime.shutdown_timeout(shutdown_timeout);
                let _ = done_tx.send(outcome);
            })
            .map_err(ListenerError::Thread)?;
        Ok(BlockingListenerHandle {
            addr,
            shutdown_tx,
            closed_rx,
            done_rx,
            shutdown_timeout,
            thread: Some(thread),
        })
    }

    /// Binds and serves in the foreground until Ctrl-C, then shuts down
    /// gracefully.
    pub async fn serve(self) -> Result<Shutdown, ListenerError> {
        let (socket, _) = self.bind().await?;
        let (closed_tx, _) = watch::channel(false);
        let (signal_tx, signal_rx) = tokio::sync::oneshot::channel();
        let signal = async move {
            let result = tokio::signal::ctrl_c().await;
            let _ = signal_tx.send(result);
        };
        let outcome = serve_on(socket, Arc::new(self.shared), signal, closed_tx).await;
        match signal_rx.await {
            Ok(Err(e)) => Err(ListenerError::Signal(e)),
            _ => Ok(outcome),
        }
    }

    /// Binds and serves in the foreground until `signal` completes, then
    /// shuts down gracefully.
    pub async fn serve_with_shutdown(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<Shutdown, ListenerError> {
        let (socket, _) = self.bind().await?;
        let (closed_tx, _) = watch::channel(false);
        Ok(serve_on(socket, Arc::new(self.shared), signal, closed_tx).await)
    }
}

/// Resolves when shutdown is requested or the requester is gone.
async fn requested(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Accepts connections until `signal`, then closes the socket, lets in-flight
/// requests finish for the shutdown timeout and aborts what is left.
async fn serve_on(
    socket: TcpListener,
    shared: Arc<Shared>,
    signal: impl Future<Output = ()> + Send,
    closed: watch::Sender<bool>,
) -> Shutdown {
    let timeout = shared.config.shutdown_timeout;
    // At the cap, stop accepting: waiting clients stay in the kernel's queue.
    let slots = Arc::new(Semaphore::new(shared.config.max_connections.max(1)));
    let service = warp::service(routes(shared));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut signal = std::pin::pin!(signal);
    loop {
        let slot = tokio::select! {
            () = &mut signal => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        tokio::select! {
            () = &mut signal => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = socket.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::trace!(%peer, "connection accepted");
                    let conn = warp::hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(HEADER_READ_TIMEOUT)
                        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service.clone()));
                    let conn = graceful.watch(conn);
                    connections.spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                        drop(slot);
                    });
                }
                // Per-connection failures (reset before accept) and resource
                // exhaustion: log and keep serving.
                Err(e) => tracing::warn!(error = %e, "accepting a connection failed"),
            },
        }
    }
    drop(socket);
    let _ = closed.send(true);
    tracing::info!(
        in_flight = connections.len(),
        "event listener stopped accepting; draining"
    );
    let outcome = tokio::select! {
        () = graceful.shutdown() => Shutdown::Graceful,
        () = tokio::time::sleep(timeout) => {
            let aborted = connections.len();
            tracing::warn!(aborted, "event listener shutdown timed out; aborting connections");
            connections.abort_all();
            Shutdown::Forced { aborted }
        }
    };
    while connections.join_next().await.is_some() {}
    outcome
}

fn routes(
    shared: Arc<Shared>,
) -> impl warp::Filter<Extract = (http::Response<Bytes>,), Error = warp::Rejection>
+ Clone
+ Send
+ Sync
+ 'static {
    warp::method()
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .then(
            move |method: Method, path: warp::path::FullPath, headers: HeaderMap, body| {
                let shared = shared.clone();
                async move { shared.handle(&method, path.as_str(), &headers, body).await }
            },
        )
}

fn reply(status: StatusCode, body: Value) -> http::Response<Bytes> {
    reply_bytes(status, Bytes::from(body.to_string()))
}

/// A JSON reply with a body already serialised.
fn reply_bytes(status: StatusCode, body: Bytes) -> http::Response<Bytes> {
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// `{"status": "handled", "handlers": n}`, serialised as [`reply`] would
/// (without building a `Value` for every event).
fn handled(handlers: usize) -> http::Response<Bytes> {
    let body = match handlers {
        1 => Bytes::from_static(br#"{"handlers":1,"status":"handled"}"#),
        n => Bytes::from(format!(r#"{{"handlers":{n},"status":"handled"}}"#)),
    };
    reply_bytes(StatusCode::OK, body)
}

/// `{"status": "ignored", "handlers": 0}`.
const IGNORED: &[u8] = br#"{"handlers":0,"status":"ignored"}"#;
/// `{"status": "duplicate"}`.
const DUPLICATE: &[u8] = br#"{"status":"duplicate"}"#;

fn error(status: StatusCode, code: &str, message: impl std::fmt::Display) -> http::Response<Bytes> {
    reply(
        status,
        json!({"error": code, "message": message.to_string()}),
    )
}

impl Shared {
    async fn handle<S, B>(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        body: S,
    ) -> http::Response<Bytes>
    where
        S: Stream<Item = Result<B, warp::Error>> + Send,
        B: bytes::Buf,
    {
        let response = self.handle_inner(method, path, headers, body).await;
        tracing::debug!(%method, path, status = response.status().as_u16(), "event request");
        response
    }

    async fn handle_inner<S, B>(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        body: S,
    ) -> http::Response<Bytes>
    where
        S: Stream<Item = Result<B, warp::Error>> + Send,
        B: bytes::Buf,
    {
        if path != "/" {
            return error(
                StatusCode::NOT_FOUND,
                "not_found",
                "the event listener serves only `POST /`",
            );
        }
        if method != Method::POST {
            let mut r = error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("`{method}` is not allowed: post events with `POST /`"),
            );
            r.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
            return r;
        }
        let max = self.config.max_body;
        let length = match headers
            .get(header::CONTENT_LENGTH)
            .map(|v| v.to_str().ok().and_then(|s| s.parse::<u64>().ok()))
        {
            None => {
                return error(
                    StatusCode::LENGTH_REQUIRED,
                    "length_required",
                    "send a `Content-Length` header",
                );
            }
            Some(None) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_content_length",
                    "`Content-Length` is not a number",
                );
            }
            Some(Some(n)) => n,
        };
        if length > max as u64 {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body is {length} bytes; the limit is {max} bytes"),
            );
        }
        let kind = match headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(BodyKind::from_content_type)
        {
            Some(kind) => kind,
            None => {
                return error(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "send `application/x-www-form-urlencoded` (fields `event_name` and `data`) or `application/json`",
                );
            }
        };
        let limit = self.config.body_read_timeout;
        let body = match tokio::time::timeout(limit, read_body(body, max)).await {
            Ok(Ok(body)) => body,
            Ok(Err(response)) => return response,
            Err(_) => {
                tracing::warn!(
                    timeout_ms = limit.as_millis(),
                    "a client did not send its body in time; disconnecting it"
                );
                let mut r = error(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_read_timeout",
                    format!("the body did not arrive within {} ms", limit.as_millis()),
                );
                r.headers_mut().insert(
                    header::CONNECTION,
                    header::HeaderValue::from_static("close"),
                );
                return r;
            }
        };
        let verified = if self.secrets.is_empty() {
            None
        } else {
            let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
            match signature::verify(
                &self.secrets,
                header(WEBHOOK_ID),
                header(WEBHOOK_TIMESTAMP),
                header(WEBHOOK_SIGNATURE),
                &body,
                signature::unix_now(),
                self.config.tolerance,
            ) {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!(error = %e, "rejected an event with a bad signature");
                    return error(StatusCode::UNAUTHORIZED, "bad_signature", e);
                }
            }
        };
        let event = match request::decode(kind, &body) {
            Ok(event) => event,
            Err(e) => return error(StatusCode::BAD_REQUEST, e.code(), e),
        };
        let handlers = self.registry.handlers_for(event.name());
        if handlers.is_empty() {
            if self.config.strict {
                return error(
                    StatusCode::NOT_FOUND,
                    "unknown_event",
                    format!("no handler is registered for the event `{}`", event.name()),
                );
            }
            tracing::warn!(
                event = event.name(),
                "no handler is registered for this event; ignored"
            );
            return reply_bytes(StatusCode::OK, Bytes::from_static(IGNORED));
        }
        let context = context(&event, headers, verified.as_ref());
        // De-duplicate by `webhook-id`: verified when signatures are checked;
        // without a secret, the id as sent (remembered from its arrival).
        let now = signature::unix_now();
        let key = match &verified {
            Some(v) => Some((v.id.as_str(), v.timestamp)),
            None => context.webhook_id().map(|id| (id, now)),
        };
        let claim = match key {
            None => None,
            Some((id, timestamp)) => match self.dedup.claim(id, timestamp, now).await {
                Claim::Duplicate => {
                    tracing::info!(webhook_id = %id, "duplicate event not dispatched again");
                    return reply_bytes(StatusCode::OK, Bytes::from_static(DUPLICATE));
                }
                Claim::Owner(guard) => Some(guard),
            },
        };
        // Prepare every handler before running any: undecodable data means nothing runs.
        let mut prepared = Vec::with_capacity(handlers.len());
        for h in &handlers {
            let future = match h.prepare(&event, &context, &self.state) {
                Ok(Ok(fut)) => Ok(fut),
                Ok(Err(ExtractError::Decode(e))) => {
                    return reply(
                        StatusCode::BAD_REQUEST,
                        json!({"error": "undecodable_data", "handler": h.name, "message": e.to_string()}),
                    );
                }
                Ok(Err(e)) => Err(handler::Failure::Returned(e.to_string())),
                Err(failure) => Err(failure),
            };
            prepared.push(Prepared {
                name: h.name.clone(),
                timeout: h.timeout.or(self.config.handler_timeout),
                future,
            });
        }
        match dispatch::run_detached(event.name().to_owned(), prepared, claim).await {
            Outcome::Handled(n) => handled(n),
            Outcome::Failed { failures, total } => {
                let names: Vec<&Value> = failures.iter().map(|f| &f["handler"]).collect();
                let message = format!("{} of {total} handler(s) failed: {names:?}", failures.len());
                reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": "handler_failed", "message": message, "failures": failures}),
                )
            }
        }
    }
}

/// The delivery's context: the verified id and timestamp when signatures are
/// checked, else whatever the sender's headers say.
fn context(
    event: &handler::Event,
    headers: &HeaderMap,
    verified: Option<&signature::Verified>,
) -> EventContext {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let mut context = EventContext::new(event.name());
    match verified {
        Some(v) => {
            context = context
                .with_webhook_id(v.id.as_str())
                .with_timestamp(v.timestamp)
                .verified(true);
        }
        None => {
            if let Some(id) = header(WEBHOOK_ID).filter(|id| !id.is_empty()) {
                context = context.with_webhook_id(id);
            }
            if let Some(ts) = header(WEBHOOK_TIMESTAMP).and_then(|t| t.trim().parse().ok()) {
                context = context.with_timestamp(ts);
            }
        }
    }
    if let Some(attempt) = header(WEBHOOK_ATTEMPT).and_then(|a| a.trim().parse().ok()) {
        context = context.with_attempt(attempt);
    }
    context
}

async fn read_body<S, B>(body: S, max: usize) -> Result<Bytes, http::Response<Bytes>>
where
    S: Stream<Item = Result<B, warp::Error>> + Send,
    B: bytes::Buf,
{
    let mut body = std::pin::pin!(body);
    // The body usually comes in one chunk: keep it as it is (no copy) and
    // only gather into a buffer when a second one follows.
    let mut first: Option<Bytes> = None;
    let mut out = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|e| error(StatusCode::BAD_REQUEST, "unreadable_body", e))?;
        let received = first.as_ref().map_or(0, Bytes::len) + out.len();
        if received + chunk.remaining() > max {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body exceeds the limit of {max} bytes"),
            ));
        }
        if received == 0 {
            first = Some(chunk.copy_to_bytes(chunk.remaining()));
            continue;
        }
        if let Some(first) = first.take() {
            out.extend_from_slice(&first);
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            out.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(match first {
        Some(first) => first,
        None => out.freeze(),
    })
}

/// A listener running in the background on a tokio runtime.
///
/// Dropping it starts a graceful shutdown in the background.
#[derive(Debug)]
pub struct ListenerHandle {
    addr: SocketAddr,
    shutdown_tx: watch::Sender<bool>,
    closed_rx: watch::Receiver<bool>,
    task: Option<tokio::task::JoinHandle<Shutdown>>,
}

impl ListenerHandle {
    /// The address the listener is bound to (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Resolves once the listening socket is closed (new connections are
    /// refused), after a shutdown has begun.
    pub fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.closed_rx.clone();
        async move {
            let _ = rx.wait_for(|closed| *closed).await;
        }
    }

    /// Stops accepting connections, waits for in-flight requests up to the
    /// configured shutdown timeout, then aborts the remaining connections.
    pub async fn shutdown(mut self) -> Shutdown {
        let _ = self.shutdown_tx.send(true);
        match self.task.take() {
            Some(task) => task.await.unwrap_or(Shutdown::Forced { aborted: 0 }),
            None => Shutdown::Graceful,
        }
    }
}

impl Drop for ListenerHandle {
    fn drop(&mut self) {
        let _ = self.shutdown_tx.send(true);
    }
}

/// A listener running on its own thread; see
/// [`Listener::start_blocking_thread`].
///
/// Dropping it shuts the listener down and waits for the thread, for a
/// bounded time: in-flight requests get the shutdown timeout, handlers still
/// running on the blocking pool another shutdown timeout; a thread still not
/// done after that (a sync handler that never returns) is logged and left
/// behind rather than blocking the caller forever.
#[derive(Debug)]
pub struct BlockingListenerHandle {
    addr: SocketAddr,
    shutdown_tx: watch::Sender<bool>,
    closed_rx: watch::Receiver<bool>,
    done_rx: std::sync::mpsc::Receiver<Shutdown>,
    shutdown_timeout: Duration,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BlockingListenerHandle {
    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the listening socket is closed.
    pub fn is_closed(&self) -> bool {
        *self.closed_rx.borrow()
    }

    /// Shuts down as [`ListenerHandle::shutdown`] does, blocking the caller.
    pub fn shutdown(mut self) -> Shutdown {
        self.stop()
    }

    fn stop(&mut self) -> Shutdown {
        let _ = self.shutdown_tx.send(true);
        let Some(thread) = self.thread.take() else {
            return Shutdown::Graceful;
        };
        // Draining, then the blocking pool: two shutdown timeouts, and a margin.
        let bound = self
            .shutdown_timeout
            .saturating_mul(2)
            .saturating_add(Duration::from_secs(1));
        match self.done_rx.recv_timeout(bound) {
            Ok(outcome) => {
                let _ = thread.join();
                outcome
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                tracing::error!(
                    waited_ms = bound.as_millis(),
                    "the event listener thread did not stop in time (a handler that never returns?); leaving it behind"
                );
                Shutdown::Forced { aborted: 0 }
            }
            // The thread ended without an outcome: it panicked.
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let _ = thread.join();
                Shutdown::Forced { aborted: 0 }
            }
        }
    }
}

impl Drop for BlockingListenerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_replies_are_what_reply_would_send() {
        for n in [1, 2, 17] {
            let fast = handled(n);
            let slow = reply(StatusCode::OK, json!({"status": "handled", "handlers": n}));
            assert_eq!(fast.body(), slow.body());
            assert_eq!(fast.headers(), slow.headers());
        }
        let ignored = json!({"status": "ignored", "handlers": 0}).to_string();
        assert_eq!(IGNORED, ignored.as_bytes());
        let duplicate = json!({"status": "duplicate"}).to_string();
        assert_eq!(DUPLICATE, duplicate.as_bytes());
    }

    async fn read(chunks: &[&'static str], max: usize) -> Result<Bytes, StatusCode> {
        let stream = futures::stream::iter(
            chunks
                .iter()
                .map(|c| Ok::<_, warp::Error>(Bytes::from_static(c.as_bytes())))
                .collect::<Vec<_>>(),
        );
        read_body(stream, max).await.map_err(|r| r.status())
    }

    #[tokio::test]
    async fn bodies_are_gathered_from_any_chunks_up_to_the_limit() {
        assert_eq!(read(&[], 4).await, Ok(Bytes::new()));
        assert_eq!(read(&["abcd"], 4).await, Ok(Bytes::from_static(b"abcd")));
        assert_eq!(
            read(&["", "ab", "", "cd"], 4).await,
            Ok(Bytes::from_static(b"abcd"))
        );
        assert_eq!(read(&["ab", "c"], 4).await, Ok(Bytes::from_static(b"abc")));
        assert_eq!(
            read(&["abcde"], 4).await,
            Err(StatusCode::PAYLOAD_TOO_LARGE)
        );
        assert_eq!(
            read(&["ab", "cde"], 4).await,
            Err(StatusCode::PAYLOAD_TOO_LARGE)
        );
    }
}
