//! Synchronisation helpers the whole crate shares.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, carrying on through poisoning: every critical section of the
/// crate leaves its data consistent at each step, so a panic elsewhere while
/// the lock was held (a user's callback, a failed assertion in a test) is no
/// reason to stop serving every later call.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// When a map of per-key state that grows with user input is swept of the
/// entries nobody uses: at `sweep_at` entries, and after each sweep at twice
/// what it left (never below `floor`), so sweeping costs amortised O(1) per
/// insert whatever the number of live entries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SweepAt {
    next: usize,
    floor: usize,
}

impl SweepAt {
    /// The first sweep at `floor` entries.
    pub(crate) const fn new(floor: usize) -> Self {
        Self { next: floor, floor }
    }

    /// Whether a map of `len` entries is due for a sweep.
    pub(crate) fn due(&self, len: usize) -> bool {
        len >= self.next
    }

    /// A sweep left `len` entries: the next one comes at twice that.
    pub(crate) fn swept(&mut self, len: usize) {
        self.next = (2 * len).max(self.floor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_come_at_twice_what_the_last_one_left() {
        let mut at = SweepAt::new(4);
        assert!(!at.due(3));
        assert!(at.due(4));
        at.swept(1);
        assert!(!at.due(3), "never below the floor");
        assert!(at.due(4));
        at.swept(10);
        assert!(!at.due(19));
        assert!(at.due(20));
    }
}
