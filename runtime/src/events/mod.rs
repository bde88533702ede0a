//! HTTP events, wire-compatible with cryptoassets.core: a listener that
//! receives events (`POST /` with form fields `event_name` and `data`, or a
//! JSON body) and dispatches them to handlers, and a poster that sends them.
//!
//! - [`Listener`] — the event route and its server. Mount the route in a
//!   warp app of your own with [`Listener::filter`], in an axum (or other
//!   tower-based) app with `Listener::into_service` (feature `tower`), or let
//!   the listener serve it. Configure
//!   it explicitly with
//!   [`ListenerConfig`] or from a configuration value
//!   ([`Listener::from_config`]); run it in the background
//!   ([`Listener::start`]) or in the foreground until a signal
//!   ([`Listener::serve`]).
//! - Handlers: `#[conflictkit::event_listener("txupdate")]` functions anywhere
//!   in the program, or [`Listener::on`] at run time.
//! - [`EventPoster`] — the sending side, cryptoassets.core's `HTTPEventHandler`.
//! - Optional [Standard Webhooks](https://www.standardwebhooks.com/)
//!   signatures ([`WebhookSecret`], [`ListenerConfig::secrets`]) with replay
//!   protection; [`Verifier`] checks them on requests received some other
//!   way.
//!
//! Replies: 200 handled (also for an unknown event unless
//! [`ListenerConfig::strict`]); 200 `{"status": "duplicate"}` for a
//! `webhook-id` already handled (remembered by the listener, or found in the
//! inbox by every transactional handler of the event): Standard Webhooks
//! asks receivers to answer a redelivery 2xx so that the sender stops; 400 missing field, bad JSON or data that does
//! not decode into a handler's type, a `webhook-id` longer than a
//! transactional handler's inbox holds ([`MAX_WEBHOOK_ID_CHARS`]); 401 bad signature; 404 other paths
//! (and unknown events when strict); 405 other methods; 411 no
//! `Content-Length`; 413 body too large; 415 wrong content type; 500 a handler
//! failed, panicked or timed out; 408 the body did not arrive within
//! [`ListenerConfig::body_read_timeout`]; 503 with `Retry-After` when the
//! bodies in flight hold the whole [`ListenerConfig::body_budget`]. Error bodies are JSON:
//! `{"error": <code>, "message": …}`.
//!
//! The code is in four wings, each depending only on those before it (and
//! on `error` and `metrics`): `send/` (the poster, the wire format,
//! signatures), `durable/` (the outbox, its relay, the inbox), `handlers/`
//! (what a handler takes, how it is called, the registry, transactional
//! handlers through the inbox) and `receive/` (the listener, its route and
//! server, accepting a request, de-duplication, dispatch).
//!
//! ```no_run
//! use conflictkit::events::{EventPoster, Listener, ListenerConfig};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = Listener::new(ListenerConfig::new("127.0.0.1:0".parse()?));
//! listener.on("txupdate", |update: serde_json::Value| async move {
//!     println!("{update}");
//! });
//! let handle = listener.start().await?;
//! EventPoster::new(&format!("http://{}", handle.local_addr()))?
//!     .post("txupdate", &serde_json::json!({"txid": "abc"}))
//!     .await?;
//! handle.shutdown().await;
//! # Ok(()) }
//! ```

mod durable;
mod error;
mod handlers;
mod metrics;
mod receive;
mod send;

pub use durable::claim::Backlog;
pub use durable::inbox::{
    INBOX_TABLE, LEGACY_CONSUMER, MAX_WEBHOOK_ID_CHARS, first_delivery, migrate_inbox,
};
pub use durable::outbox::{OUTBOX_TABLE, Publish, migrate_outbox, purge_inbox, purge_outbox};
pub use durable::relay::OutboxRelay;
pub use error::{ListenerConfigError, ListenerError, PostError, SecretError};
pub use handlers::call::IntoHandler;
pub use handlers::extract::{DecodeError, Event};
pub use handlers::extract::{EventContext, ExtractError, FromEvent, State};
pub use handlers::handler::IntoHandlerResult;
pub use handlers::registry::registered_handlers;
pub use handlers::state::ProvidesState;
pub use receive::config::ListenerConfig;
pub use receive::handle::{ListenerHandle, Shutdown};
pub use receive::listener::Listener;
#[cfg(feature = "tower")]
pub use receive::service::EventService;
pub use receive::verifier::{SignatureError, Verified, Verifier};
pub use send::ed25519::WebhookPublicKey;
pub use send::poster::EventPoster;
pub use send::signature::{
    WEBHOOK_ATTEMPT, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP, WebhookSecret,
};
pub use send::sink::{OutboxEvent, Sink, SinkFuture, SinkOutcome};

/// Wire compatibility with the Python original (cryptoassets.core): its JSON
/// text, its form encoding and its event handler class name. The listener
/// and [`EventPoster`] use them; they are here for tests and tools that
/// speak the original's wire format by hand.
///
/// ```
/// use conflictkit::events::compat::{form_encode, python_json};
///
/// assert_eq!(python_json(&serde_json::json!({"a": [1, 2]}))?, r#"{"a": [1, 2]}"#);
/// assert_eq!(form_encode(&[("event_name", "txupdate"), ("data", "{}")]), "event_name=txupdate&data=%7B%7D");
/// # Ok::<(), serde_json::Error>(())
/// ```
pub mod compat {
    pub use super::error::HTTP_EVENT_HANDLER_CLASS;
    pub use super::send::wire::{form_encode, python_json};
}

/// What `#[event_listener]` expands to. Not public API.
#[doc(hidden)]
pub mod macro_support {
    pub use super::handlers::call::{call_async, call_blocking};
    pub use super::handlers::extract::Event;
    pub use super::handlers::extract::{EventContext, ExtractError, FromEvent};
    pub use super::handlers::handler::{
        HandlerFuture, IntoHandlerResult, Ran, prepare_any_async, prepare_any_sync,
    };
    pub use super::handlers::registry::{NeedFn, PrepareFn, Registration};
    pub use super::handlers::state::{DynState, StateNeed};
    pub use super::handlers::transactional::{
        TxnAttempt, TxnFuture, TxnOutput, prepare_transactional,
    };
    pub use crate::resolver::Txn;
    pub use inventory;
}
