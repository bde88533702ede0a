//! The event route as warp filters: [`mounted`] answers `POST` at the end of
//! whatever path it is mounted under and rejects everything else (so a host
//! app's other routes are tried), [`standalone`] adds the JSON 404 and 405
//! replies the listener's own server gives to other paths and methods, and
//! [`endpoint`] (feature `tower`) answers whatever a host router sends it.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, header};
use warp::Filter;

use super::accept::{Shared, error};
use super::slot::Slot;

/// The reply every event route produces.
pub(crate) type EventReply = http::Response<Bytes>;

/// `POST` at any path: an event delivery. Other methods are rejected.
fn event(
    shared: Arc<Shared>,
) -> impl Filter<Extract = (EventReply,), Error = warp::Rejection> + Clone + Send + Sync + 'static {
    warp::post()
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .and(warp::ext::optional::<Slot>())
        .then(move |headers: HeaderMap, body, slot: Option<Slot>| {
            let shared = shared.clone();
            async move { shared.handle(&headers, body, slot).await }
        })
}

/// `POST` at the end of the path (relative to where it is mounted): the
/// event route. Other methods and paths are rejected, not answered.
pub(crate) fn mounted(
    shared: Arc<Shared>,
) -> impl Filter<Extract = (EventReply,), Error = warp::Rejection> + Clone + Send + Sync + 'static {
    warp::path::end().and(event(shared))
}

/// The listener's own server: the event route at `/`, JSON 405 (with
/// `Allow: POST`) for other methods there, JSON 404 for other paths.
pub(crate) fn standalone(
    shared: Arc<Shared>,
) -> impl Filter<Extract = (EventReply,), Error = std::convert::Infallible> + Clone + Send + Sync + 'static
{
    mounted(shared)
        .or(warp::method().and(warp::path::full()).map(
            |method: Method, path: warp::path::FullPath| {
                not_the_event_route(&method, path.as_str())
            },
        ))
        .unify()
}

/// A route of its own in a host router (axum's `route_service`): the host
/// has already matched the path, so the path is not looked at; `POST` is an
/// event delivery and other methods get the JSON 405 (with `Allow: POST`).
#[cfg(feature = "tower")]
pub(crate) fn endpoint(
    shared: Arc<Shared>,
) -> impl Filter<Extract = (EventReply,), Error = std::convert::Infallible> + Clone + Send + Sync + 'static
{
    event(shared)
        .or(warp::method().map(|method: Method| method_not_allowed(&method, "`POST`")))
        .unify()
}

fn not_the_event_route(method: &Method, path: &str) -> EventReply {
    if path != "/" {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "the event listener serves only `POST /`",
        );
    }
    method_not_allowed(method, "`POST /`")
}

/// JSON 405 with `Allow: POST`; `how` says how to post an event.
fn method_not_allowed(method: &Method, how: &str) -> EventReply {
    let mut r = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("`{method}` is not allowed: post events with {how}"),
    );
    r.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
    r
}
