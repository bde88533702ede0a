//! Receiving events: the listener and its configuration, the warp route
//! (mounted in a host app, or standalone with its own server), accepting
//! one request (checks, signature, decoding, de-duplication) and running
//! its handlers to completion.
//!
//! ```text
//! listener ─ route ─ accept ─ request (decoding)
//!    │         │        ├──── verifier (signatures)
//!    │         │        ├──── dedup (webhook-id, per listener)
//!    │         │        └──── dispatch (handlers of ../handlers)
//!    ├ start / serve (the standalone server), handle (its handle)
//!    └ service (the route as a tower Service, feature `tower`)
//! ```

pub(super) mod accept;
pub(super) mod config;
pub(super) mod dedup;
pub(super) mod dispatch;
pub(super) mod handle;
pub(super) mod listener;
pub(super) mod request;
pub(super) mod route;
pub(super) mod serve;
#[cfg(feature = "tower")]
pub(super) mod service;
pub(super) mod slot;
pub(super) mod start;
pub(super) mod verifier;
