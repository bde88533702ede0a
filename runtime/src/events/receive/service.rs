//! The listener as a tower [`Service`] (feature `tower`), for axum and other
//! tower-based servers: the warp filter of [`route::endpoint`] turned into a
//! service by `warp::service`, so routing, the body limit and decoding are
//! the same warp filters the standalone and warp-mounted forms run.
//!
//! `warp::service` takes request bodies that are `Sync`; axum's body (and
//! most tower bodies) is only `Send`. [`SyncBody`] makes any `Send` body
//! `Sync` with `sync_wrapper` (a body is only ever polled through
//! `&mut`, so no lock is needed).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use sync_wrapper::SyncWrapper;
use tower_service::Service;
use warp::Filter as _;
use warp::filters::BoxedFilter;

use super::listener::Listener;
use super::route::{self, EventReply};
use crate::events::error::ListenerError;

/// Errors of request bodies, as tower bodies give them.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The event listener as a [`tower::Service`](Service), to mount in an axum
/// app (or any tower-based server) with
/// `Router::route_service("/events", service)`; made by
/// [`Listener::into_service`]. Available with the `tower` feature.
///
/// It answers every request it is given: `POST` is an event delivery, with
/// the replies of the standalone listener; other methods get a JSON 405 with
/// `Allow: POST`. The path is not looked at: the host router has matched it.
///
/// Cloning is cheap (the clones share the listener).
#[derive(Clone)]
pub struct EventService {
    filter: BoxedFilter<(EventReply,)>,
}

impl std::fmt::Debug for EventService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventService").finish_non_exhaustive()
    }
}

impl<S: Send + Sync + 'static> Listener<S> {
    /// The event route as a [`tower::Service`](Service) (an
    /// [`EventService`]) for axum and other tower-based servers. Available
    /// with the `tower` feature.
    ///
    /// Mount it with axum's `Router::route_service("/events", service)`: it
    /// then answers `POST /events` (the path is the router's business; the
    /// service answers whatever request reaches it). With `nest_service`
    /// it would also answer every path under the prefix, so prefer
    /// `route_service`; to serve a page of your own at the same path, mount
    /// it for `POST` only: `.route("/events", get(page).post_service(service))`.
    ///
    /// Mounted, the host server owns connections: its connection limits,
    /// header timeouts and graceful shutdown apply, not
    /// [`ListenerConfig::max_connections`](crate::events::ListenerConfig::max_connections)
    /// or [`ListenerConfig::shutdown_timeout`](crate::events::ListenerConfig::shutdown_timeout)
    /// (and [`ListenerConfig::bind`](crate::events::ListenerConfig::bind) is not
    /// used). The body limit, the body budget and read timeout, signatures,
    /// de-duplication and handler timeouts work as standalone.
    ///
    /// ```
    /// use axum::routing::get;
    /// use conflictkit::events::{EventPoster, Listener, ListenerConfig};
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let listener = Listener::new(ListenerConfig::default());
    /// listener.on("txupdate", |update: serde_json::Value| async move {
    ///     tracing::info!(%update, "transaction updated");
    /// });
    /// let app = axum::Router::new()
    ///     .route("/health", get(|| async { "ok" }))
    ///     .route_service("/events", listener.into_service()?);
    ///
    /// let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let addr = socket.local_addr()?;
    /// tokio::spawn(async move { axum::serve(socket, app).await });
    /// EventPoster::new(&format!("http://{addr}/events"))?
    ///     .post("txupdate", &serde_json::json!({"txid": "ab12"}))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// Fails as [`start`](Self::start) does when a registered handler needs a
    /// state or a resolver the listener was not given.
    pub fn into_service(self) -> Result<EventService, ListenerError> {
        self.check_state()?;
        let filter = route::endpoint(Arc::new(self.shared)).boxed();
        Ok(EventService { filter })
    }
}

impl<B> Service<http::Request<B>> for EventService
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    /// The reply; its body is warp's (an `http_body::Body` of [`Bytes`]).
    type Response = warp::reply::Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let mut service = warp::service(self.filter.clone());
        Box::pin(service.call(request.map(SyncBody::new)))
    }
}

pin_project_lite::pin_project! {
    /// A request body made `Sync` for warp (see the module docs).
    struct SyncBody<B> {
        #[pin]
        inner: SyncWrapper<B>,
    }
}

impl<B> SyncBody<B> {
    fn new(body: B) -> Self {
        Self {
            inner: SyncWrapper::new(body),
        }
    }
}

impl<B> Body for SyncBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        self.project().inner.get_pin_mut().poll_frame(cx)
    }
}
