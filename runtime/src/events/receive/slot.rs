//! A connection's place under the standalone server's connection cap.

use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;

/// A connection's place under the connection cap, shared by the connection
/// and the handlers of its requests: the place is free again once the
/// connection has closed and every handler it started has ended. Each
/// request gets a clone in its extensions.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    _permit: Arc<OwnedSemaphorePermit>,
}

impl Slot {
    /// The place `permit` holds, to share between a connection and its handlers.
    pub(super) fn new(permit: OwnedSemaphorePermit) -> Self {
        Self {
            _permit: Arc::new(permit),
        }
    }
}
