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
//! limiting a label and other transactions of it are running or queued, the
//! replay does not sleep at all: the queue already spaces it out behind them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

/// Above this limit a label runs unlimited again.
pub const UNLIMITED_ABOVE: f64 = 64.0;
/// How much slower than TCP's `1/limit` the limit grows per clean commit.
const GROWTH_DAMPING: f64 = 4.0;

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

/// One label's admission gate: a FIFO queue under an adjustable limit.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    state: Mutex<GateState>,
}

#[derive(Debug, Default)]
struct GateState {
    in_flight: u32,
    /// `None`: unlimited.
    limit: Option<f64>,
    /// Incremented at every cut of the limit.
    epoch: u64,
    /// Callers waiting for room, oldest first. Arrivals never overtake them,
    /// so no caller starves (the tail latency stays bounded).
    waiting: VecDeque<oneshot::Sender<u64>>,
}

impl GateState {
    fn has_room(&self) -> bool {
        self.limit
            .is_none_or(|l| f64::from(self.in_flight) < l.floor().max(1.0))
    }

    /// Hands free room to the oldest waiters.
    fn admit_waiters(&mut self) {
        while self.has_room() {
            let Some(next) = self.waiting.pop_front() else {
                break;
            };
            self.in_flight += 1;
            if next.send(self.epoch).is_err() {
                // that caller gave up waiting (its future was dropped)
                self.in_flight -= 1;
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Gate {
    /// Waits for room under the limit, behind everyone already waiting; the
    /// permit frees it on drop. Cancel-safe: a dropped wait takes no room.
    pub(crate) async fn admit(self: &Arc<Self>) -> Permit {
        loop {
            let rx = {
                let mut s = lock(&self.state);
                if s.waiting.is_empty() && s.has_room() {
                    s.in_flight += 1;
                    return Permit {
                        gate: self.clone(),
                        epoch: s.epoch,
                    };
                }
                let (tx, rx) = oneshot::channel();
                s.waiting.push_back(tx);
                rx
            };
            let mut wait = Waiting {
                gate: self.clone(),
                rx: Some(rx),
            };
            let granted = match wait.rx.as_mut() {
                Some(rx) => rx.await,
                None => continue,
            };
            wait.rx = None; // received: nothing to give back on drop
            // A closed channel cannot happen while the gate lives (senders
            // leave the queue only by sending); queue again if it ever does.
            if let Ok(epoch) = granted {
                return Permit {
                    gate: self.clone(),
                    epoch,
                };
            }
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
            s.admit_waiters();
        }
    }

    /// Whether a replay of this label, just rolled back, will be spaced out
    /// by the queue: the gate is limiting and other transactions of the label
    /// are running or waiting (the ones it conflicted with, most likely). A
    /// transaction alone in its label conflicted with someone else (another
    /// function, another process): only a backoff sleep spaces that out.
    pub(crate) fn queue_spaces_replay(&self) -> bool {
        let s = lock(&self.state);
        s.limit.is_some() && (s.in_flight > 0 || !s.waiting.is_empty())
    }

    fn release(&self) {
        let mut s = lock(&self.state);
        s.in_flight -= 1;
        s.admit_waiters();
    }
}

/// A caller in the queue; if its future is dropped after room was handed to
/// it, the room goes back.
struct Waiting {
    gate: Arc<Gate>,
    rx: Option<oneshot::Receiver<u64>>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            rx.close();
            if rx.try_recv().is_ok() {
                self.gate.release();
            }
        }
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
        self.gate.release();
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
        assert_eq!(
            lock(&gate.state).limit,
            Some(1.25),
            "damped growth at the floor: 1 + 1/(4·1)"
        );
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

    #[tokio::test]
    async fn waiters_are_served_in_order_and_cancelled_waits_take_no_room() {
        let gate = Arc::new(Gate::default());
        let first = gate.admit().await;
        gate.on_conflict(first.epoch());
        let (tx, mut order) = tokio::sync::mpsc::unbounded_channel();
        let mut waiters = Vec::new();
        for i in 0..3 {
            let g = gate.clone();
            let tx = tx.clone();
            waiters.push(tokio::spawn(async move {
                let p = g.admit().await;
                tx.send(i).unwrap();
                drop(p);
            }));
            // let waiter i queue before the next one arrives
            while lock(&gate.state).waiting.len() < i + 1 {
                tokio::task::yield_now().await;
            }
        }
        // a cancelled wait: queued, then dropped
        let cancelled = {
            let g = gate.clone();
            tokio::spawn(async move { g.admit().await })
        };
        while lock(&gate.state).waiting.len() < 4 {
            tokio::task::yield_now().await;
        }
        cancelled.abort();
        assert!(cancelled.await.unwrap_err().is_cancelled());
        drop(first);
        for w in waiters {
            w.await.unwrap();
        }
        let got: Vec<usize> = std::iter::from_fn(|| order.try_recv().ok()).collect();
        assert_eq!(got, vec![0, 1, 2], "first come, first served");
        let s = lock(&gate.state);
        assert_eq!(s.in_flight, 0, "the cancelled wait holds no room");
        assert!(s.waiting.is_empty());
    }
}
