#![doc = include_str!("../README.md")]
// The README links the optional modules (`config`, `events`, `event_listener`,
// `tunnel`); in a build without their features those links have no target.
#![cfg_attr(
    not(all(feature = "events", feature = "tunnel", feature = "config")),
    allow(rustdoc::broken_intra_doc_links)
)]

// The macros are documented here, where users meet them, rather than in
// conflictkit-macros: their examples use this crate, and a dev-dependency of a
// proc-macro crate on it builds the whole database stack a second time (for
// the host) in every test build of the workspace.
#[doc = include_str!("macro_docs/managed_non_retryable_transaction.md")]
#[doc(inline)]
pub use conflictkit_macros::managed_non_retryable_transaction;
#[doc = include_str!("macro_docs/managed_transaction.md")]
#[doc(inline)]
pub use conflictkit_macros::managed_transaction;
pub use conflictkit_runtime::resolver;
pub use conflictkit_runtime::resolver::{
    CannotResolveDatabaseConflict, ConflictResolver, Error, Txn,
};

#[doc = include_str!("macro_docs/AutoNumber.md")]
#[doc(inline)]
pub use conflictkit_macros::AutoNumber;
pub use conflictkit_runtime::auto_number;
pub use conflictkit_runtime::auto_number::AutoNumber;

#[cfg(feature = "config")]
pub use conflictkit_runtime::config;
pub use conflictkit_runtime::merge;

#[doc = include_str!("macro_docs/event_listener.md")]
/// # Example
///
/// Handlers registered with the attribute, and a listener receiving an event
/// posted to it:
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use conflictkit::events::{EventPoster, Listener, ListenerConfig};
///
/// #[derive(serde::Deserialize)]
/// struct TxUpdate {
///     txid: String,
///     confirmations: u32,
/// }
///
/// static CONFIRMATIONS: AtomicU32 = AtomicU32::new(0);
///
/// #[conflictkit::event_listener("doc_txupdate")]
/// async fn on_txupdate(update: TxUpdate) -> Result<(), std::io::Error> {
///     tracing::info!(txid = update.txid, "transaction updated");
///     CONFIRMATIONS.store(update.confirmations, Ordering::SeqCst);
///     Ok(())
/// }
///
/// #[conflictkit::event_listener]
/// fn log_every_event(event_name: &str, data: serde_json::Value) {
///     tracing::info!(event_name, %data, "event received");
/// }
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let handle = Listener::new(ListenerConfig::new("127.0.0.1:0".parse()?)).start().await?;
/// EventPoster::new(&format!("http://{}", handle.local_addr()))?
///     .post("doc_txupdate", &serde_json::json!({"txid": "ab12", "confirmations": 3}))
///     .await?;
/// assert_eq!(CONFIRMATIONS.load(Ordering::SeqCst), 3);
/// handle.shutdown().await;
/// # Ok(()) }
/// ```
#[cfg(feature = "events")]
#[doc(inline)]
pub use conflictkit_macros::event_listener;
#[cfg(feature = "events")]
pub use conflictkit_runtime::events;

#[cfg(feature = "tunnel")]
pub use conflictkit_runtime::tunnel;

/// Support for the code the macros generate. Not public API: it may change in
/// any release without notice.
#[doc(hidden)]
pub mod __private {
    pub use conflictkit_runtime::auto_number::__private as auto_number;
    #[cfg(feature = "events")]
    pub use conflictkit_runtime::events::macro_support as events;
    #[cfg(feature = "serde")]
    pub use conflictkit_runtime::resolver::idempotency::{
        ArgsFingerprint, idempotency_key, run_idempotent_call, run_idempotent_call_storing_errors,
    };
    pub use conflictkit_runtime::resolver::{
        CallOptions, Caller, ConflictResolver, Contention, Isolation, ReplayArg, SqliteMode, Txn,
        run_managed, run_managed_batched,
    };
    #[cfg(feature = "events")]
    pub use inventory;
    pub use sea_orm;
    pub use serde_json;
}
