//! The idempotent calls of this process now running, by resolver, label and
//! key: what lets an HTTP caller that prefers not to wait get 409 while the
//! first request with its key is in flight, instead of waiting for it.
//! (A request in flight in *another* process is waited for, as the
//! database's unique-key wait makes every repeat do.)

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use crate::sync::lock;

type Slot = (usize, String, String);

static RUNNING: LazyLock<Mutex<HashMap<Slot, usize>>> = LazyLock::new(Default::default);

/// One call counted as running until dropped.
pub(crate) struct InFlight {
    slot: Slot,
}

impl InFlight {
    pub(crate) fn enter(resolver: usize, label: &str, key: &str) -> Self {
        let slot = (resolver, label.to_owned(), key.to_owned());
        *lock(&RUNNING).entry(slot.clone()).or_insert(0) += 1;
        Self { slot }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut running = lock(&RUNNING);
        if let Some(n) = running.get_mut(&self.slot) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.slot);
            }
        }
    }
}

/// Whether a call of `resolver` with (`label`, `key`) runs now in this process.
pub(crate) fn is_running(resolver: usize, label: &str, key: &str) -> bool {
    lock(&RUNNING).contains_key(&(resolver, label.to_owned(), key.to_owned()))
}
