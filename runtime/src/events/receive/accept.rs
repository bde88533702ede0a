//! Receiving one request the event route accepted (see `route`): the checks
//! (length, type, body, signature), decoding, de-duplication, preparing the
//! handlers and the reply.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt as _};
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::config::ListenerConfig;
use super::dedup::{Claim, Dedup};
use super::dispatch::{self, Outcome, Prepared};
use super::request::{self, BodyKind};
use super::slot::Slot;
use super::verifier::{self, Verifier};
use crate::events::handlers::extract::{Event, EventContext, ExtractError};
use crate::events::handlers::handler;
use crate::events::handlers::registry::Registry;
use crate::events::handlers::state::DynState;
use crate::events::metrics::{self, Duplicate};
use crate::events::send::signature::{self, WEBHOOK_ATTEMPT, WEBHOOK_ID, WEBHOOK_TIMESTAMP};

/// What every request of one listener shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: ListenerConfig,
    /// Checks signatures; `None` when the listener has no secrets.
    pub(crate) verifier: Option<Verifier>,
    pub(crate) registry: Registry,
    pub(crate) dedup: Dedup,
    pub(crate) state: DynState,
    /// What is left of [`ListenerConfig::body_budget`], in bytes.
    pub(crate) body_budget: Arc<Semaphore>,
}

/// The semaphore of a listener's body budget (see `ListenerConfig::body_budget`).
pub(crate) fn body_budget(config: &ListenerConfig) -> Arc<Semaphore> {
    let bytes = config
        .body_budget
        .max(config.max_body)
        .min(Semaphore::MAX_PERMITS);
    Arc::new(Semaphore::new(bytes))
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

pub(crate) fn error(
    status: StatusCode,
    code: &str,
    message: impl std::fmt::Display,
) -> http::Response<Bytes> {
    reply(
        status,
        json!({"error": code, "message": message.to_string()}),
    )
}

impl Shared {
    pub(crate) async fn handle<S, B>(
        &self,
        headers: &HeaderMap,
        body: S,
        slot: Option<Slot>,
    ) -> http::Response<Bytes>
    where
        S: Stream<Item = Result<B, warp::Error>> + Send,
        B: bytes::Buf,
    {
        let started = Instant::now();
        let response = self.handle_inner(headers, body, slot).await;
        tracing::debug!(status = response.status().as_u16(), "event request");
        metrics::request(response.status().as_u16(), started.elapsed());
        response
    }

    async fn handle_inner<S, B>(
        &self,
        headers: &HeaderMap,
        body: S,
        slot: Option<Slot>,
    ) -> http::Response<Bytes>
    where
        S: Stream<Item = Result<B, warp::Error>> + Send,
        B: bytes::Buf,
    {
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
        // Bodies above u32::MAX bytes take the whole budget (permits are
        // taken in u32), which is at least their size: they run alone.
        let want = u32::try_from(length).unwrap_or(u32::MAX);
        let _budget = match self.body_budget.clone().try_acquire_many_owned(want) {
            Ok(permit) => permit,
            Err(_) => {
                tracing::warn!(
                    length,
                    budget = self.config.body_budget,
                    "the memory budget for bodies in flight is spent; answering 503"
                );
                let mut r = error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "body_budget_spent",
                    format!(
                        "the listener holds as many request bodies as its budget allows ({} bytes); retry shortly",
                        self.config.body_budget.max(max)
                    ),
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
                // its body is not read: the connection cannot carry another request
                r.headers_mut().insert(
                    header::CONNECTION,
                    header::HeaderValue::from_static("close"),
                );
                return r;
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
        let verified = match self.verifier.as_ref().map(|v| v.verify(headers, &body)) {
            None => None,
            Some(Ok(v)) => Some(v),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "rejected an event with a bad signature");
                return error(StatusCode::UNAUTHORIZED, "bad_signature", e);
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
                    metrics::duplicate(Duplicate::Listener);
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
                Ok(Err(e @ ExtractError::MissingWebhookId { .. })) => {
                    return reply(
                        StatusCode::BAD_REQUEST,
                        json!({"error": "missing_webhook_id", "handler": h.name, "message": e.to_string()}),
                    );
                }
                Ok(Err(e @ ExtractError::WebhookIdTooLong { limit, .. })) => {
                    return reply(
                        StatusCode::BAD_REQUEST,
                        json!({"error": "webhook_id_too_long", "handler": h.name, "limit": limit, "message": e.to_string()}),
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
        match dispatch::run_detached(event.name().to_owned(), prepared, claim, slot).await {
            // Every handler had applied this delivery before: say so, as
            // for a `webhook-id` the listener itself remembers.
            Outcome::Handled {
                handlers,
                already_applied,
            } if handlers > 0 && already_applied == handlers => {
                metrics::duplicate(Duplicate::Inbox);
                reply_bytes(StatusCode::OK, Bytes::from_static(DUPLICATE))
            }
            Outcome::Handled { handlers, .. } => handled(handlers),
            Outcome::Failed {
                failures,
                total,
                still_running,
            } => {
                let names: Vec<&Value> = failures.iter().map(|f| &f["handler"]).collect();
                let message = format!("{} of {total} handler(s) failed: {names:?}", failures.len());
                let mut r = reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": "handler_failed", "message": message, "failures": failures}),
                );
                if still_running {
                    // The handler holds the connection's place until it
                    // returns: no further request on this connection beside it.
                    r.headers_mut().insert(
                        header::CONNECTION,
                        header::HeaderValue::from_static("close"),
                    );
                }
                r
            }
        }
    }
}

/// The delivery's context: the verified id and timestamp when signatures are
/// checked, else whatever the sender's headers say.
fn context(
    event: &Event,
    headers: &HeaderMap,
    verified: Option<&verifier::Verified>,
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
