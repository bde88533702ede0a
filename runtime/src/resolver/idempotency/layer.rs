//! `Idempotency-Key` for axum and other tower-based servers (feature
//! `tower`): a [`Layer`] around a handler that runs it once per key, in a
//! managed transaction whose writes commit with the stored response.
//!
//! The answers are those of the warp filter (see the [`http`](super::http)
//! module's table): the stored response (status, content type and body,
//! byte for byte) to a repeat, 409 to a repeat that sends `Prefer: wait=0`
//! while the first runs, 422 to the key with another method, path or body,
//! 400 to a missing, malformed or repeated header. And:
//!
//! - the handler gets the call's transaction as a [`RequestTxn`] request
//!   extension (axum: `Extension(txn): Extension<RequestTxn>`), and writes
//!   through it;
//! - a response of status 500 or more rolls the handler's writes back and
//!   is sent as it is, not stored (the client may retry with the same
//!   key); any other status commits with the writes and is stored;
//! - on a serialization conflict the handler runs again with the same
//!   request (a conflict it swallowed, answering 500, is replayed too);
//! - a body over [`max_body`](IdempotencyLayer::max_body) gets 413, unread
//!   past the limit.
//!
//! The stored response keeps status, `Content-Type` and body; other headers
//! the handler set are sent the first time only.

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use tower_layer::Layer;
use tower_service::Service;

use super::super::inner::ConflictResolver;
use super::super::txn::Txn;
use super::http::{RunFailed, StoredResponse, outcome, prepare, refused};

/// Errors of bodies and services, as tower gives them.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The request bodies the layer reads at most, by default: 1 MiB.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;

/// A tower [`Layer`] that makes the service it wraps idempotent under the
/// request's `Idempotency-Key` (see the [module docs](self)). Available with
/// the `tower` feature.
///
/// ```
/// use axum::{Extension, Router, routing::post};
/// use conflictkit::ConflictResolver;
/// use conflictkit::resolver::idempotency::layer::{IdempotencyLayer, RequestTxn};
/// use conflictkit::resolver::idempotency::migrate_idempotency;
/// use sea_orm::ConnectionTrait;
///
/// async fn transfer(Extension(txn): Extension<RequestTxn>, body: String) -> (axum::http::StatusCode, String) {
///     let cents: i64 = body.trim().parse().unwrap_or(0);
///     match txn.execute_unprepared(&format!("INSERT INTO transfer VALUES ({cents})")).await {
///         Ok(_) => (axum::http::StatusCode::CREATED, format!("moved {cents}")),
///         Err(e) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
///     }
/// }
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let db = sea_orm::Database::connect("sqlite::memory:").await?;
/// migrate_idempotency(&db).await?;
/// db.execute_unprepared("CREATE TABLE transfer (cents BIGINT)").await?;
/// let resolver = ConflictResolver::new(db);
/// let app: Router = Router::new().route(
///     "/transfer",
///     post(transfer).layer(IdempotencyLayer::new(resolver, "api::transfer")),
/// );
///
/// let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let addr = socket.local_addr()?;
/// tokio::spawn(async move { axum::serve(socket, app).await });
/// let client = reqwest::Client::new();
/// for _ in 0..2 {
///     let reply = client
///         .post(format!("http://{addr}/transfer"))
///         .header("Idempotency-Key", "9b2f-req-1")
///         .body("250")
///         .send()
///         .await?;
///     assert_eq!(reply.status(), 201);
///     assert_eq!(reply.text().await?, "moved 250"); // the second: the stored response
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct IdempotencyLayer {
    resolver: ConflictResolver,
    label: Cow<'static, str>,
    max_body: usize,
}

impl IdempotencyLayer {
    /// Calls of the wrapped service run through `resolver`, with the call
    /// label `label` (the key's scope: the same key sent to two labels
    /// names two requests). The table must exist
    /// ([`migrate_idempotency`](super::migrate_idempotency)).
    pub fn new(resolver: ConflictResolver, label: impl Into<Cow<'static, str>>) -> Self {
        Self {
            resolver,
            label: label.into(),
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// The largest request body read (it is kept for the fingerprint and
    /// the replays); a larger one gets 413. Default [`DEFAULT_MAX_BODY`].
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use conflictkit::resolver::idempotency::layer::IdempotencyLayer;
    /// let resolver = conflictkit::ConflictResolver::connect("sqlite::memory:").await?;
    /// let layer = IdempotencyLayer::new(resolver, "api::pay").max_body(64 * 1024);
    /// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
    /// ```
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }
}

impl<S> Layer<S> for IdempotencyLayer {
    type Service = Idempotent<S>;

    fn layer(&self, inner: S) -> Idempotent<S> {
        Idempotent {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service an [`IdempotencyLayer`] makes of the service it wraps.
#[derive(Clone, Debug)]
pub struct Idempotent<S> {
    inner: S,
    layer: IdempotencyLayer,
}

/// The transaction of the request's idempotent call, given to the wrapped
/// service in the request's extensions: write through it (it derefs to
/// [`Txn`], a SeaORM connection), and the writes commit with the stored
/// response. Keep it inside the handler: a clone still alive when the
/// handler has answered fails the call (the transaction could not be
/// committed).
#[derive(Clone)]
pub struct RequestTxn(Arc<Txn>);

impl std::ops::Deref for RequestTxn {
    type Target = Txn;

    fn deref(&self) -> &Txn {
        &self.0
    }
}

impl std::fmt::Debug for RequestTxn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RequestTxn").field(&*self.0).finish()
    }
}

impl<S, B, RB> Service<Request<B>> for Idempotent<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + From<Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    RB: Body<Data = Bytes> + Send + 'static,
    RB::Error: Into<BoxError>,
{
    /// The handler's response, or the stored one; status, `Content-Type`
    /// and body for every answer but a first one.
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // each run takes a clone of the inner service and waits for it
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (inner, layer) = (self.inner.clone(), self.layer.clone());
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let body = match read_body(body, layer.max_body).await {
                Ok(body) => body,
                Err(refusal) => return Ok(refusal.into_response()),
            };
            let resolver = &layer.resolver;
            let (method, path) = (&parts.method, parts.uri.path());
            let options = match prepare(
                resolver,
                layer.label.clone(),
                method,
                path,
                &parts.headers,
                &body,
            ) {
                Ok(options) => options,
                Err(refusal) => return Ok(refusal.into_response()),
            };
            let result = resolver
                .run_idempotent(options, |txn: &Txn| {
                    let mut service = inner.clone();
                    let mut request = Request::from_parts(parts.clone(), B::from(body.clone()));
                    request
                        .extensions_mut()
                        .insert(RequestTxn(Arc::new(txn.share())));
                    Box::pin(async move { run_once(&mut service, request).await })
                })
                .await;
            Ok(outcome(resolver, result).into_response())
        })
    }
}

/// The whole request body, or the answer when it is over `max` bytes (413)
/// or cannot be read (400).
async fn read_body<B>(body: B, max: usize) -> Result<Bytes, StoredResponse>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(refused(
            413,
            "body_too_large",
            &format!("the request body is over {max} bytes, the most this endpoint reads"),
        )),
        Err(e) => Err(refused(
            400,
            "unreadable_body",
            &format!("the request body: {e}"),
        )),
    }
}

/// One run: the wrapped service's response, read whole.
async fn run_once<S, B, RB>(
    service: &mut S,
    request: Request<B>,
) -> Result<StoredResponse, RunFailed>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Error: Into<BoxError>,
    RB: Body<Data = Bytes>,
    RB::Error: Into<BoxError>,
{
    let service_failed = |e: S::Error| RunFailed::Handler(e.into());
    std::future::poll_fn(|cx| service.poll_ready(cx))
        .await
        .map_err(service_failed)?;
    let response = service.call(request).await.map_err(service_failed)?;
    let (head, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| RunFailed::Handler(e.into()))?
        .to_bytes();
    let content_type = head
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream");
    RunFailed::unless_server_error(StoredResponse::new(
        head.status.as_u16(),
        content_type,
        body.to_vec(),
    ))
}
