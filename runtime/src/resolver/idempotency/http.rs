//! `Idempotency-Key` over HTTP: a warp filter that runs a handler once per
//! key and replays its stored response (status, content type and body,
//! byte for byte) to every repeat.
//!
//! | request                                             | answer |
//! |-----------------------------------------------------|--------|
//! | first with its key                                  | the handler's response, stored with its writes |
//! | a repeat (same method, path and body)               | the stored response |
//! | a repeat while the first runs, with `Prefer: wait=0`| 409 (without it: waits, then the stored response) |
//! | the key with another method, path or body           | 422 |
//! | no key, an empty or malformed one, several          | 400 |
//! | the handler answers 500 or more                     | that answer; its writes rolled back, nothing stored (a retry runs again) |
//! | the call gives up on conflicts or runs out of time  | 503 with `Retry-After: 1`, nothing stored |
//! | the outcome of `COMMIT` stays unknown               | 500 `commit_outcome_unknown`: retry with the same key |
//!
//! The key may be sent bare (`Idempotency-Key: 8e03978e-…`) or as the
//! draft standard's quoted string (`Idempotency-Key: "8e03978e-…"`); it is
//! visible ASCII, at most [`MAX_KEY_CHARS`](super::MAX_KEY_CHARS)
//! characters. Error bodies are JSON: `{"error": "...", "message": "..."}`.
//! A request in flight in another process is always waited for.

use std::borrow::Cow;

/// The request body a handler gets (re-exported, so no `bytes` dependency is needed).
pub use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use warp::Filter;
use warp::filters::path::FullPath;
use warp::reply::Response;

use sea_orm::DbErr;

use super::super::deadline_exceeded::DeadlineExceeded;
use super::super::error::{AmbiguousCommit, CannotResolveDatabaseConflict};

use super::super::body::BodyFuture;
use super::super::call_error::TransactionError;
use super::super::inner::ConflictResolver;
use super::super::options::CallOptions;
use super::super::txn::Txn;
use super::{IdempotencyKey, IdempotencyKeyReused, InvalidIdempotencyKey, StoredOutcomeUnreadable};

/// The request header that carries the key.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// A response as stored under its key and replayed to repeats.
///
/// ```
/// use conflictkit::resolver::idempotency::http::StoredResponse;
/// let r = StoredResponse::json(201, &serde_json::json!({"id": 7}));
/// assert_eq!(r.status(), 201);
/// assert_eq!(r.body(), br#"{"id":7}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredResponse {
    status: u16,
    content_type: String,
    #[serde(with = "base64_body")]
    body: Vec<u8>,
}

impl StoredResponse {
    /// A response of `status` with `body` of `content_type`.
    pub fn new(status: u16, content_type: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            content_type: content_type.into(),
            body: body.into(),
        }
    }

    /// A JSON response of `status`.
    pub fn json<V: serde::Serialize + ?Sized>(status: u16, value: &V) -> Self {
        let body = serde_json::to_vec(value).unwrap_or_else(|e| {
            format!(
                "{{\"error\":\"unserializable\",\"message\":{:?}}}",
                e.to_string()
            )
            .into_bytes()
        });
        Self::new(status, "application/json", body)
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The response to send, with a body of any type made from bytes
    /// (warp's, or `http_body_util::Full` for tower). A 503 says
    /// `Retry-After: 1`.
    pub(super) fn into_response<B: From<Bytes>>(self) -> http::Response<B> {
        let mut response = http::Response::new(B::from(Bytes::from(self.body)));
        *response.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if let Ok(v) = http::HeaderValue::from_str(&self.content_type) {
            response.headers_mut().insert(http::header::CONTENT_TYPE, v);
        }
        if self.status == 503 {
            response.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}

mod base64_body {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;

    pub(super) fn serialize<S: serde::Serializer>(body: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&BASE64.encode(body))
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        BASE64.decode(text).map_err(serde::de::Error::custom)
    }
}

/// A warp filter that answers every request it gets (mount it under the
/// path and method you want) by running `handler` idempotently under the
/// request's `Idempotency-Key`, with the call label `label`. The handler
/// gets the call's transaction and the request body, and returns the
/// response to store; its writes and the response commit together. A
/// response of status 500 or more rolls its writes back and is sent
/// without being stored (a retry with the key runs again), as is an `Err`
/// (answered 500, or 503 with `Retry-After` when the call gave up on
/// conflicts or ran out of time). For axum, see the sibling module `layer`
/// (feature `tower`).
///
/// ```
/// use conflictkit::{ConflictResolver, Txn};
/// use conflictkit::resolver::idempotency::http::{Bytes, StoredResponse, idempotent};
/// use conflictkit::resolver::idempotency::migrate_idempotency;
/// use warp::Filter;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let db = sea_orm::Database::connect("sqlite::memory:").await?;
/// migrate_idempotency(&db).await?;
/// let resolver = ConflictResolver::new(db);
/// let transfer = warp::path("transfer").and(warp::post()).and(idempotent(
///     resolver,
///     "api::transfer",
///     |_txn: &Txn, body: Bytes| {
///         Box::pin(async move {
///             Ok::<_, conflictkit::Error>(StoredResponse::new(201, "text/plain", body.to_vec()))
///         })
///     },
/// ));
/// let reply = warp::test::request()
///     .method("POST")
///     .path("/transfer")
///     .header("Idempotency-Key", "k-1")
///     .body("5 cents")
///     .reply(&transfer)
///     .await;
/// assert_eq!(reply.status(), 201);
/// assert_eq!(reply.body(), "5 cents");
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
pub fn idempotent<H, E>(
    resolver: ConflictResolver,
    label: impl Into<Cow<'static, str>>,
    handler: H,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone + Send + Sync + 'static
where
    H: for<'t> Fn(&'t Txn, Bytes) -> BodyFuture<'static, 't, StoredResponse, E>
        + Clone
        + Send
        + Sync
        + 'static,
    E: TransactionError,
{
    let label: Cow<'static, str> = label.into();
    warp::method()
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and(warp::body::bytes())
        .then(
            move |method: Method, path: FullPath, headers: HeaderMap, body: Bytes| {
                let (resolver, label, handler) = (resolver.clone(), label.clone(), handler.clone());
                async move {
                    let response: Response = answer(
                        &resolver,
                        label,
                        &handler,
                        &method,
                        path.as_str(),
                        &headers,
                        body,
                    )
                    .await
                    .into_response();
                    response
                }
            },
        )
}

async fn answer<H, E>(
    resolver: &ConflictResolver,
    label: Cow<'static, str>,
    handler: &H,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> StoredResponse
where
    H: for<'t> Fn(&'t Txn, Bytes) -> BodyFuture<'static, 't, StoredResponse, E> + Sync,
    E: TransactionError,
{
    let options = match prepare(resolver, label, method, path, headers, &body) {
        Ok(options) => options,
        Err(refusal) => return refusal,
    };
    let result = resolver
        .run_idempotent(options, |txn: &Txn| {
            let run = handler(txn, body.clone());
            Box::pin(async move {
                let response = run.await.map_err(|e| RunFailed::Handler(Box::new(e)))?;
                RunFailed::unless_server_error(response)
            })
        })
        .await;
    outcome(resolver, result)
}

/// How one run of an idempotent request's handler failed: the call's
/// error type, for the warp filter and the tower layer.
#[derive(Debug, thiserror::Error)]
pub(super) enum RunFailed {
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    GaveUp(#[from] CannotResolveDatabaseConflict),
    /// A response of status 500 or more: rolled back, sent, not stored.
    #[error("the handler answered {}; its writes were rolled back", .0.status())]
    Answered(StoredResponse),
    /// The handler (the wrapped service, or its response's body) failed.
    #[error("the handler failed: {0}")]
    Handler(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl RunFailed {
    /// `response`, or `Answered` when it is a server error: a 5xx is
    /// rolled back and not stored, so a retry with the key runs again.
    pub(super) fn unless_server_error(response: StoredResponse) -> Result<StoredResponse, Self> {
        if response.status >= 500 {
            return Err(Self::Answered(response));
        }
        Ok(response)
    }
}

/// The answer to a request from its call's result.
pub(super) fn outcome(
    resolver: &ConflictResolver,
    result: Result<StoredResponse, RunFailed>,
) -> StoredResponse {
    match result {
        Ok(stored) => stored,
        Err(RunFailed::Answered(response)) => response,
        Err(err) => failed(resolver, &err),
    }
}

/// The call's options, with the request's key and fingerprint (method,
/// path and body), or the answer to give at once: a missing or malformed
/// key (400), a repeat that prefers not to wait for the first (409).
pub(super) fn prepare(
    resolver: &ConflictResolver,
    label: Cow<'static, str>,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<CallOptions, StoredResponse> {
    let key = key_of(headers)?;
    if prefers_no_wait(headers) && resolver.idempotent_call_running(&label, &key) {
        return Err(refused(
            409,
            "request_in_flight",
            "the first request with this Idempotency-Key is still being processed; retry later",
        ));
    }
    let mut fingerprint = Vec::with_capacity(body.len() + path.len() + 8);
    fingerprint.extend_from_slice(method.as_str().as_bytes());
    fingerprint.push(b' ');
    fingerprint.extend_from_slice(path.as_bytes());
    fingerprint.push(b'\n');
    fingerprint.extend_from_slice(body);
    match IdempotencyKey::new(key) {
        Ok(k) => Ok(CallOptions::new(label).idempotency_key(k.fingerprint_bytes(&fingerprint))),
        Err(e) => Err(refused(400, "invalid_idempotency_key", &e.to_string())),
    }
}

/// The answer to a request whose call failed (nothing stored, nothing
/// committed, unless the outcome is unknown):
///
/// | the call's error | answer |
/// |---|---|
/// | the key was used for another request | 422 |
/// | the key is invalid | 400 |
/// | gave up on conflicts, or ran out of its time | 503, `Retry-After: 1` |
/// | the outcome of `COMMIT` is unknown | 500 `commit_outcome_unknown` (retry with the same key: it answers from the stored response if the request committed) |
/// | any other | 500 |
pub(super) fn failed(
    resolver: &ConflictResolver,
    err: &(dyn std::error::Error + 'static),
) -> StoredResponse {
    if IdempotencyKeyReused::find(err).is_some() {
        return refused(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was used for another request (another method, path or body); use a new key for a new request",
        );
    }
    if InvalidIdempotencyKey::find(err).is_some() {
        return refused(400, "invalid_idempotency_key", &err.to_string());
    }
    if resolver.classify(err).is_some() || DeadlineExceeded::find(err).is_some() {
        tracing::warn!(error = %err, "idempotent request not done; answering 503");
        return refused(503, "try_again", &err.to_string());
    }
    let code = if AmbiguousCommit::find(err).is_some() {
        "commit_outcome_unknown"
    } else if StoredOutcomeUnreadable::find(err).is_some() {
        "stored_response_unreadable"
    } else {
        "handler_failed"
    };
    tracing::error!(error = %err, "idempotent request failed");
    refused(500, code, &err.to_string())
}

/// The request's one `Idempotency-Key`, unquoted, or the 400 to answer.
fn key_of(headers: &HeaderMap) -> Result<String, StoredResponse> {
    let mut values = headers.get_all(IDEMPOTENCY_KEY_HEADER).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        let several = headers.get_all(IDEMPOTENCY_KEY_HEADER).iter().count() > 1;
        return Err(if several {
            refused(
                400,
                "several_idempotency_keys",
                "send exactly one Idempotency-Key header",
            )
        } else {
            refused(
                400,
                "missing_idempotency_key",
                "this endpoint needs an Idempotency-Key header (a UUID of the request)",
            )
        });
    };
    let malformed = || {
        refused(
            400,
            "invalid_idempotency_key",
            "the Idempotency-Key must be 1 to 255 visible ASCII characters, bare or in double quotes",
        )
    };
    let raw = value.to_str().map_err(|_| malformed())?;
    let key = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(raw);
    let visible = |c: char| c.is_ascii_graphic() && c != '"' && c != '\\';
    if key.is_empty() || key.len() > super::MAX_KEY_CHARS || !key.chars().all(visible) {
        return Err(malformed());
    }
    Ok(key.to_owned())
}

/// Whether the request says `Prefer: wait=0` (RFC 7240): answer at once.
fn prefers_no_wait(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::HeaderName::from_static("prefer"))
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("wait=0"))
}

pub(super) fn refused(status: u16, error: &str, message: &str) -> StoredResponse {
    StoredResponse::json(
        status,
        &serde_json::json!({"error": error, "message": message}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn keys_are_read_bare_or_quoted_and_refused_when_malformed() {
        assert_eq!(
            key_of(&headers(&[("idempotency-key", "abc")])).unwrap(),
            "abc"
        );
        assert_eq!(
            key_of(&headers(&[("idempotency-key", "\"abc\"")])).unwrap(),
            "abc"
        );
        for bad in ["", "\"\"", "a b", "\"a"] {
            let mut h = HeaderMap::new();
            h.insert("idempotency-key", http::HeaderValue::from_str(bad).unwrap());
            assert_eq!(key_of(&h).unwrap_err().status(), 400, "{bad:?}");
        }
        let several = headers(&[("idempotency-key", "a"), ("idempotency-key", "b")]);
        assert!(String::from_utf8_lossy(key_of(&several).unwrap_err().body()).contains("several"));
        assert!(prefers_no_wait(&headers(&[(
            "prefer",
            "respond-async, wait=0"
        )])));
        assert!(!prefers_no_wait(&headers(&[("prefer", "wait=10")])));
    }

    #[test]
    fn a_stored_response_round_trips_byte_for_byte() {
        let r = StoredResponse::new(201, "application/octet-stream", vec![0u8, 255, 10, 13]);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<StoredResponse>(&json).unwrap(), r);
    }
}
