//! Everything over real HTTP on loopback that registers no
//! `#[event_listener]` handler: one test binary (one link) for them. The
//! events tests that register attribute handlers stay binaries of their own
//! (`tests/events_*.rs`), because registrations are process-wide and would
//! be seen by every listener of a shared binary.
//!
//! - the event poster: the original's bytes on the wire, retries, typed
//!   errors: [`poster`]; signatures (`v1`, `v1a`): [`signature`];
//! - the listener under hostile clients (limits, budgets, timeouts):
//!   [`hardening`]; mounted in a warp or an axum app: [`mounted`];
//! - the outbox and its relay: [`outbox`], [`relay`]; the relay with a
//!   sink of its own: [`sink`];
//! - `Idempotency-Key`, as a warp filter and a tower layer: [`idempotency`].

#[path = "../common/mod.rs"]
#[macro_use]
mod common;

mod durable;

mod hardening;
mod idempotency;
mod mounted;
mod outbox;
mod poster;
mod relay;
mod signature;
mod sink;
