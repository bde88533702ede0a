//! Event handlers: what a handler takes (`extract`: the event, its data,
//! state, the context), how any handler is called (`handler`), the
//! handlers registered by `#[event_listener]` (`registry`), and those that
//! run in a managed transaction with the inbox (`transactional`).

pub(super) mod call;
pub(super) mod extract;
pub(super) mod handler;
pub(super) mod registry;
pub(super) mod state;
pub(super) mod transactional;
