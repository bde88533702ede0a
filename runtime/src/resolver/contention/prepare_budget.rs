//! The room queued runs of a resolver have, all its gates together, to
//! begin their transactions early while they wait (see the queue's
//! admission).

use std::sync::atomic::{AtomicU32, Ordering};

/// How many queued runs of a resolver, all its gates together, may hold a
/// pooled connection by beginning their transactions while they wait (see
/// [`Gate::admit`]): a share of the pool, so that they never take the
/// connections the admitted runs and everything else need. Per gate, many
/// hot keys would each take their share and together exhaust the pool.
#[derive(Debug, Default)]
pub(crate) struct PrepareBudget {
    /// `None`: no bound but the gates' slots (the pool size is unknown).
    cap: Option<u32>,
    used: AtomicU32,
}

impl PrepareBudget {
    /// A budget of `cap` connections.
    pub(crate) fn new(cap: Option<u32>) -> Self {
        Self {
            cap,
            used: AtomicU32::new(0),
        }
    }

    /// Takes one connection's room, if there is any left.
    pub(super) fn try_take(&self) -> bool {
        let Some(cap) = self.cap else {
            return true;
        };
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives back the room of `n` waiters that left the queue told.
    pub(super) fn give_back(&self, n: u32) {
        if self.cap.is_some() && n > 0 {
            self.used.fetch_sub(n, Ordering::AcqRel);
        }
    }

    /// Room taken now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> u32 {
        self.used.load(Ordering::Acquire)
    }
}
