//! Sending events: the poster (HTTP, retries, typed errors), the
//! original's wire format, and Standard Webhooks signatures (`v1` HMAC and
//! `v1a` ed25519 keys), which the receiving side verifies.

pub(super) mod ed25519;
pub(super) mod poster;
pub(super) mod signature;
pub(super) mod sink;
pub(super) mod wire;
