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
//!   ([`Listener::start`]), on its own thread
//!   ([`Listener::start_blocking_thread`]) or in the foreground
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

mod claim;
mod config;
mod dedup;
mod dispatch;
mod ed25519;
mod error;
mod extract;
mod handle;
mod handler;
mod inbox;
mod listener;
mod metrics;
mod outbox;
mod poster;
mod receive;
mod registry;
mod relay;
mod request;
mod route;
mod serve;
#[cfg(feature = "tower")]
mod service;
mod signature;
mod start;
mod transactional;
mod verifier;
mod wire;

pub use config::ListenerConfig;
pub use ed25519::WebhookPublicKey;
pub use error::{ListenerConfigError, ListenerError, PostError, SecretError};
pub use extract::{
    BlockingEventHandler, EventContext, EventHandler, ExtractError, FromEvent, ProvidesState, State,
};
pub use handle::{BlockingListenerHandle, ListenerHandle, Shutdown};
pub use handler::{DecodeError, Event, IntoHandlerResult};
pub use inbox::{
    INBOX_TABLE, LEGACY_CONSUMER, MAX_WEBHOOK_ID_CHARS, first_delivery, migrate_inbox,
};
pub use listener::Listener;
pub use outbox::{OUTBOX_TABLE, Publish, migrate_outbox, purge_inbox, purge_outbox};
pub use poster::EventPoster;
pub use registry::registered_handlers;
pub use relay::{Backlog, OutboxRelay};
#[cfg(feature = "tower")]
pub use service::EventService;
pub use signature::{
    WEBHOOK_ATTEMPT, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP, WebhookSecret,
};
pub use verifier::{SignatureError, Verified, Verifier};

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
    pub use super::wire::{form_encode, python_json};
}

/// What `#[event_listener]` expands to. Not public API.
#[doc(hidden)]
pub mod macro_support {
    pub use super::extract::{
        DynState, EventContext, ExtractError, FromEvent, StateNeed, call_async, call_blocking,
    };
    pub use super::handler::{
        Event, HandlerFuture, IntoHandlerResult, Ran, prepare_any_async, prepare_any_sync,
    };
    pub use super::registry::{NeedFn, PrepareFn, Registration};
    pub use super::transactional::{TxnAttempt, TxnFuture, TxnOutput, prepare_transactional};
    pub use crate::resolver::Txn;
    pub use inventory;
}
