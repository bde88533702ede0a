//! Adaptive contention control: a per-label admission gate that queues a hot
//! function instead of letting its transactions fight.
//!
//! Each label (managed function) has a concurrency limit, adjusted from what
//! its transactions report (AIMD, as in TCP congestion control):
//! - a conflict halves the limit, at most once per "window": conflicts of
//!   transactions admitted before the last cut are ignored, since the cut
//!   already answered them. The limit never goes below 1: the function then
//!   runs one transaction at a time in this process and stops conflicting
//!   with itself;
//! - a clean commit raises it by `1/(GROWTH_DAMPING * limit)`, so it climbs
//!   back slowly, and it is lifted altogether above [`UNLIMITED_ABOVE`].
//!
//! While a label has never conflicted (or has recovered) the gate only counts:
//! no waiting. The gate is passed *before* `BEGIN`, so a queued transaction
//! takes its snapshot after the one ahead of it committed and reads fresh data;
//! a permit is given back before the backoff sleep, and while the gate is
//! limiting a label the replay does not sleep at all: the queue already spaces
//! the replays out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// Above this limit a label runs unlimited again.
pub const UNLIMITED_ABOVE: f64 = 64.0;
/// How much slower than TCP's `1/limit` the limit grows per clean commit.
const GROWTH_DAMPING: f64 = 8.0;

/// Contention control of a resolver or of one call.
///
/// ```
/// use conflictkit::resolver::Contention;
/// assert_eq!("off".parse::<Contention>(), Ok(Contention::Off));
/// assert_eq!(Contention::default(), Contention::Adaptive);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Contention {
    /// Per-label adaptive admission (the default).
    #[default]
    Adaptive,
    /// No admission control: every call begins at once; conflicts are only
    /// met with backoff and replay.
    Off,
}

impl std::str::FromStr for Contention {
    type Err = super::policy::UnknownOption;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "adaptive" => Ok(Contention::Adaptive),
            "off" => Ok(Contention::Off),
            _ => Err(super::policy::UnknownOption::new(
                "contention",
                s,
                "adaptive, off",
            )),
        }
    }
}

/// The gates of one resolver, by label.
#[derive(Debug, Default)]
pub(crate) struct Gates {
    by_label: Mutex<HashMap<String, Arc<Gate>>>,
}

impl Gates {
    pub(crate) fn gate(&self, label: &str) -> Arc<Gate> {
        let mut map = lock(&self.by_label);
        if let Some(g) = map.get(label) {
            return g.clone();
        }
        let g = Arc::new(Gate::default());
        map.insert(label.to_owned(), g.clone());
        g
    }

    /// The current limit of `label` (`None` = unlimited), for stats and tests.
    pub(crate) fn limit(&self, label: &str) -> Option<f64> {
        lock(&self.by_label)
            .get(label)
            .and_then(|g| lock(&g.state).limit)
    }
}

/// One label's admission gate.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    state: Mutex<GateState>,
    notify: Notify,
}

#[derive(Debug, Default)]
struct GateState {
    in_flight: u32,
    /// `None`: unlimited.
    limit: Option<f64>,
    /// Incremented at every cut of the limit.
    epoch: u64,
}

impl GateState {
    fn has_room(&self) -> bool {
        self.limit
            .is_none_or(|l| f64::from(self.in_flight) < l.floor().max(1.0))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Gate {
    /// Waits for room under the limit; the permit frees it on drop.
    pub(crate) async fn admit(self: &Arc<Self>) -> Permit {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut s = lock(&self.state);
                if s.has_room() {
                    s.in_flight += 1;
                    let room_left = s.has_room();
                    let epoch = s.epoch;
                    drop(s);
                    if room_left {
                        // pass the wake-up on: the limit may have grown by more than one
                        self.notify.notify_one();
                    }
                    return Permit { gate: self.clone(), epoch };
                }
            }
            notified.await;
        }
    }

    /// A transaction admitted at `admitted` (its permit's epoch) conflicted:
    /// halve the limit, unless it was already cut since that admission.
    pub(crate) fn on_conflict(&self, admitted: u64) {
        let mut s = lock(&self.state);
        if admitted < s.epoch {
            return;
        }
        let current = s.limit.unwrap_or(f64::from(s.in_flight.max(1)));
        s.limit = Some((current / 2.0).max(1.0));
        s.epoch += 1;
    }

    /// A transaction of this label committed: grow the limit.
    pub(crate) fn on_commit(&self) {
        let mut s = lock(&self.state);
        if let Some(l) = s.limit {
            let grown = l + 1.0 / (GROWTH_DAMPING * l);
            s.limit = (grown <= UNLIMITED_ABOVE).then_some(grown);
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Whether the gate is limiting this label now.
    pub(crate) fn is_limiting(&self) -> bool {
        lock(&self.state).limit.is_some()
    }
}

/// Room taken under a gate's limit.
#[derive(Debug)]
pub(crate) struct Permit {
    gate: Arc<Gate>,
    epoch: u64,
}

impl Permit {
    /// The gate's epoch when this permit was given.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        lock(&self.gate.state).in_flight -= 1;
        self.gate.notify.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unlimited_until_a_conflict() {
        let gate = Arc::new(Gate::default());
        let permits: Vec<Permit> = futures::future::join_all((0..100).map(|_| gate.admit())).await;
        assert_eq!(lock(&gate.state).in_flight, 100);
        drop(permits);
        assert_eq!(lock(&gate.state).in_flight, 0);
    }

    #[tokio::test]
    async fn conflicts_halve_and_commits_grow_back() {
        let gate = Arc::new(Gate::default());
        let held: Vec<Permit> = futures::future::join_all((0..16).map(|_| gate.admit())).await;
        gate.on_conflict(held[0].epoch());
        assert_eq!(lock(&gate.state).limit, Some(8.0));
        // the other 15 were admitted before that cut: one window, one cut
        for p in &held[1..] {
            gate.on_conflict(p.epoch());
        }
        assert_eq!(lock(&gate.state).limit, Some(8.0));
        drop(held);
        for _ in 0..4 {
            let p = gate.admit().await;
            gate.on_conflict(p.epoch());
        }
        assert_eq!(lock(&gate.state).limit, Some(1.0), "floor 1");
        gate.on_commit();
        assert_eq!(lock(&gate.state).limit, Some(1.125), "slow growth at the floor");
        for _ in 0..100_000 {
            gate.on_commit();
        }
        assert_eq!(lock(&gate.state).limit, None, "recovered: unlimited again");
    }

    #[tokio::test]
    async fn limit_one_queues_and_wakes_in_turn() {
        let gate = Arc::new(Gate::default());
        let first = gate.admit().await;
        gate.on_conflict(first.epoch());
        assert_eq!(lock(&gate.state).limit, Some(1.0));
        let g = gate.clone();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let waiter = tokio::spawn(async move {
            let p = g.admit().await;
            tx.send(()).unwrap();
            p
        });
        tokio::task::yield_now().await;
        assert!(
            rx.try_recv().is_err(),
            "second caller waits while the first holds the only slot"
        );
        drop(first);
        rx.recv()
            .await
            .expect("admitted after the first permit was dropped");
        drop(waiter.await.unwrap());
        assert_eq!(lock(&gate.state).in_flight, 0);
    }
}
