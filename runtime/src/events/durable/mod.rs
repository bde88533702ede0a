//! Durable delivery: the outbox (events published in the sender's
//! transaction), its relay (claim, POST outside any transaction, record),
//! and the inbox (a transactional handler applies each event once per
//! consumer).

pub(super) mod claim;
pub(super) mod inbox;
mod inbox_migrate;
pub(super) mod outbox;
pub(super) mod relay;
