//! One gate's admission queue: first come, first served under the
//! [`Limiter`]'s limit, replays ahead of first runs, a last replay alone.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use super::hot::{Hotness, counts_from_outside};
use super::limit::{Limiter, UNLIMITED_ABOVE};
use super::prepare_budget::PrepareBudget;
use super::{MAX_QUEUE_WAIT, Turn};
use crate::sync::lock;

/// One label's admission gate: a FIFO queue under an adjustable limit.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    state: Mutex<GateState>,
}

#[derive(Debug, Default)]
struct GateState {
    /// When a run last entered or left.
    last_used: Option<std::time::Instant>,
    /// When a run last left (the queue moved).
    last_release: Option<tokio::time::Instant>,
    /// The connections queued runs of every gate of the resolver may hold
    /// by preparing (see [`PrepareBudget`]).
    budget: Arc<PrepareBudget>,
    in_flight: u32,
    /// A [`Turn::Last`] run holds the gate alone.
    solo: bool,
    /// The concurrency limit.
    limiter: Limiter,
    /// Whether other processes fight over this gate's key (see `hot`).
    hot: Hotness,
    /// Callers waiting for room, replays first, then first runs, each in
    /// order of arrival. Arrivals never overtake them, so no caller starves.
    waiting: VecDeque<Waiter>,
    /// Waiters told to prepare (begin their transaction) while they wait.
    told: u32,
    /// Runs of this gate that reached `COMMIT` (sent it, whatever came
    /// back): a conflict that none of them could have caused came from
    /// outside the process.
    commits_started: u64,
    /// Runs admitted so far.
    admissions: u64,
}

/// Where a gate stood when it admitted a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Admission {
    /// The limiter's epoch (see [`Limiter::epoch`]).
    pub(crate) epoch: u64,
    /// [`GateState::commits_started`] then.
    commits_started: u64,
    /// [`GateState::admissions`], this one included.
    admissions: u64,
    /// No other run of the gate was in flight.
    alone: bool,
}

#[derive(Debug)]
struct Waiter {
    admit: oneshot::Sender<Admission>,
    turn: Turn,
    tell: Tell,
}

#[derive(Debug)]
enum Tell {
    /// This waiter prepares nothing.
    Never,
    /// Not told yet: the sender tells it to start preparing.
    Pending(oneshot::Sender<()>),
    /// Told; counted in [`GateState::told`] until it leaves the queue.
    Told,
}

impl GateState {
    /// Records the admission of a run (already counted in `in_flight`).
    fn admission(&mut self) -> Admission {
        self.admissions += 1;
        Admission {
            epoch: self.limiter.epoch(),
            commits_started: self.commits_started,
            admissions: self.admissions,
            alone: self.in_flight == 1,
        }
    }

    fn slots(&self) -> u32 {
        self.limiter.slots()
    }

    fn fits(&self, turn: Turn) -> bool {
        if self.solo {
            return false;
        }
        match turn {
            Turn::Last => self.in_flight == 0,
            Turn::First | Turn::Replay => self.in_flight < self.slots(),
        }
    }

    /// Where a waiter of `turn` goes: replays ahead of first runs.
    fn place(&self, turn: Turn) -> usize {
        match turn {
            Turn::First => self.waiting.len(),
            Turn::Replay | Turn::Last => self
                .waiting
                .iter()
                .position(|w| w.turn == Turn::First)
                .unwrap_or(self.waiting.len()),
        }
    }

    /// Forgets waiters whose caller is gone (cancelled, timed out, or
    /// admitted over the limit after the longest wait): a stale entry at the
    /// head must not hold up the queue.
    fn purge(&mut self) {
        let before = self.waiting.len();
        let mut told_gone = 0;
        self.waiting.retain(|w| {
            let gone = w.admit.is_closed();
            if gone && matches!(w.tell, Tell::Told) {
                told_gone += 1;
            }
            !gone
        });
        self.told -= told_gone;
        self.budget.give_back(told_gone);
        if self.waiting.len() != before {
            self.admit_waiters();
        }
    }

    /// Hands free room to the waiters at the head of the queue, then tells
    /// the next ones to prepare.
    fn admit_waiters(&mut self) {
        while self.waiting.front().is_some_and(|w| self.fits(w.turn)) {
            let Some(next) = self.waiting.pop_front() else {
                break;
            };
            if matches!(next.tell, Tell::Told) {
                self.told -= 1;
                self.budget.give_back(1);
            }
            self.in_flight += 1;
            self.solo = next.turn == Turn::Last;
            if next.admit.send(self.admission()).is_err() {
                // that caller gave up waiting (its future was dropped)
                self.in_flight -= 1;
                self.solo = false;
            }
        }
        self.tell_next();
    }

    /// Tells waiters, from the head of the queue, to prepare, so that as
    /// many are prepared as there are slots: each begins its transaction
    /// while the runs ahead of it finish, and starts its first statement the
    /// moment it is admitted.
    ///
    /// No more are told than the resolver's [`PrepareBudget`] has room for,
    /// all gates together. A waiter not told still runs when admitted: it
    /// begins then.
    fn tell_next(&mut self) {
        let wanted = self.slots().min(UNLIMITED_ABOVE as u32);
        for w in self.waiting.iter_mut() {
            if self.told >= wanted {
                break;
            }
            if let Tell::Pending(_) = w.tell {
                if !self.budget.try_take() {
                    break;
                }
                if let Tell::Pending(tx) = std::mem::replace(&mut w.tell, Tell::Told) {
                    if tx.send(()).is_ok() {
                        self.told += 1;
                    } else {
                        w.tell = Tell::Never;
                        self.budget.give_back(1);
                    }
                }
            }
        }
    }
}

impl Gate {
    /// The gate of a label seen for the first time: in slow start.
    pub(super) fn slow_start(budget: Arc<PrepareBudget>, warm: bool) -> Self {
        Self {
            state: Mutex::new(GateState {
                limiter: Limiter::slow_start(),
                hot: Hotness::new(warm),
                budget,
                last_used: Some(std::time::Instant::now()),
                ..GateState::default()
            }),
        }
    }

    /// Whether no run is in the gate or waits for it, and none entered or
    /// left for `idle` until `now`.
    pub(super) fn idle_since(&self, now: std::time::Instant, idle: Duration) -> bool {
        let s = lock(&self.state);
        s.in_flight == 0
            && s.waiting.is_empty()
            && s.last_used.is_none_or(|t| now.duration_since(t) >= idle)
    }

    /// Waits for room under the limit (see [`Turn`] for the place in the
    /// queue); the permit frees it on drop. Cancel-safe: a dropped wait takes
    /// no room.
    ///
    /// `prepare` (beginning the transaction) is run while the caller waits,
    /// once it is near enough the head of the queue, and its output returned
    /// with the permit; `None` when the caller was admitted before it was
    /// told to prepare (it then prepares after admission, as usual).
    pub(crate) async fn admit<P: Future>(
        self: &Arc<Self>,
        turn: Turn,
        prepare: Option<P>,
    ) -> (Permit, Option<P::Output>) {
        let (admit_rx, tell_rx) = {
            let mut s = lock(&self.state);
            s.last_used = Some(std::time::Instant::now());
            let place = s.place(turn);
            if place == 0 && s.fits(turn) {
                s.in_flight += 1;
                s.solo = turn == Turn::Last;
                let permit = Permit {
                    gate: self.clone(),
                    admission: s.admission(),
                    solo: turn == Turn::Last,
                };
                return (permit, None);
            }
            let (admit_tx, admit_rx) = oneshot::channel();
            let (tell, tell_rx) = if prepare.is_some() {
                let (tx, rx) = oneshot::channel();
                (Tell::Pending(tx), Some(rx))
            } else {
                (Tell::Never, None)
            };
            s.waiting.insert(
                place,
                Waiter {
                    admit: admit_tx,
                    turn,
                    tell,
                },
            );
            s.tell_next();
            (admit_rx, tell_rx)
        };
        let mut wait = Waiting {
            gate: self.clone(),
            rx: Some(admit_rx),
            turn,
        };
        let started = AtomicBool::new(false);
        let preparing = async {
            if let (Some(told), Some(prepare)) = (tell_rx, prepare)
                && told.await.is_ok()
            {
                started.store(true, Ordering::Relaxed);
                return prepare.await;
            }
            std::future::pending().await
        };
        let mut preparing = std::pin::pin!(preparing);
        let mut prepared = None;
        let overdue = tokio::time::sleep(MAX_QUEUE_WAIT);
        let mut overdue = std::pin::pin!(overdue);
        let (admission, solo) = loop {
            let Some(rx) = wait.rx.as_mut() else {
                unreachable!("the receiver is only taken below")
            };
            tokio::select! {
                biased;
                granted = rx => {
                    wait.rx = None; // received: nothing to give back on drop
                    match granted {
                        Ok(admission) => break (admission, turn == Turn::Last),
                        // Cannot happen while the gate lives (senders leave
                        // the queue only by sending); take the room anyway so
                        // the permit's release stays balanced.
                        Err(_) => {
                            let mut s = lock(&self.state);
                            s.in_flight += 1;
                            break (s.admission(), false);
                        }
                    }
                }
                out = &mut preparing, if prepared.is_none() => prepared = Some(out),
                // A last replay is never admitted over the limit: it waits
                // for its gate to empty, however long that takes.
                () = &mut overdue, if turn != Turn::Last => {
                    // (sends happen under this lock: none can slip in)
                    let mut s = lock(&self.state);
                    // the queue moved within the bound: keep waiting
                    if let Some(moved) = s.last_release
                        && moved + MAX_QUEUE_WAIT > tokio::time::Instant::now()
                    {
                        overdue.as_mut().reset(moved + MAX_QUEUE_WAIT);
                        continue;
                    }
                    if let Some(mut rx) = wait.rx.take() {
                        // admitted meanwhile: take that room
                        if let Ok(admission) = rx.try_recv() {
                            break (admission, turn == Turn::Last);
                        }
                        rx.close();
                    }
                    s.purge();
                    // over the limit, beside the others
                    s.in_flight += 1;
                    tracing::debug!(waited_ms = MAX_QUEUE_WAIT.as_millis() as u64, "admitted over the contention limit after the longest queue wait");
                    break (s.admission(), false);
                }
            }
        };
        let permit = Permit {
            gate: self.clone(),
            admission,
            solo,
        };
        if prepared.is_none() && started.load(Ordering::Relaxed) {
            // admitted while beginning: finish that rather than waste it
            prepared = Some(preparing.await);
        }
        (permit, prepared)
    }

    /// A transaction admitted at `admitted` conflicted (`own_commit`: in its
    /// own `COMMIT`): the limiter may cut the limit, and the gate is hot
    /// from now on if the conflict may have come from outside the process
    /// (see [`counts_from_outside`]; `lockers_deadlock` is the engine's).
    pub(crate) fn on_conflict(
        &self,
        admitted: Admission,
        own_commit: bool,
        lockers_deadlock: bool,
    ) {
        let mut s = lock(&self.state);
        let in_flight = s.in_flight;
        let persists_at_one_slot = s.limiter.on_conflict(admitted.epoch, in_flight);
        let others = s
            .commits_started
            .saturating_sub(admitted.commits_started)
            .saturating_sub(u64::from(own_commit));
        let alone = admitted.alone && s.admissions == admitted.admissions;
        if persists_at_one_slot || counts_from_outside(lockers_deadlock, others, alone) {
            s.hot.mark();
        }
    }

    /// Keeps the gate hot: another process wants its key.
    pub(crate) fn mark_hot(&self) {
        lock(&self.state).hot.mark();
    }

    /// A run of this gate is about to send `COMMIT`.
    fn committing(&self) {
        lock(&self.state).commits_started += 1;
    }

    /// A transaction of this gate committed: the limiter may grow the limit,
    /// and waiters get the room.
    pub(crate) fn on_commit(&self) {
        let mut s = lock(&self.state);
        s.hot.on_commit();
        if s.limiter.on_commit() {
            s.admit_waiters();
        }
    }

    /// Whole transactions admitted at once (`None`: unlimited).
    pub(crate) fn slots(&self) -> Option<u32> {
        let s = lock(&self.state);
        s.limiter.limit().map(|_| s.slots())
    }

    #[cfg(test)]
    pub(super) fn told(&self) -> u32 {
        lock(&self.state).told
    }

    #[cfg(test)]
    pub(super) fn backdate(&self, to: std::time::Instant) {
        lock(&self.state).last_used = Some(to);
    }

    /// Whether the gate is hot (see [the lock rule](super::hot#the-lock-rule)).
    pub(crate) fn hot(&self) -> bool {
        lock(&self.state).hot.hot()
    }

    /// Whether a replay of this label, just rolled back, will be spaced out
    /// by the queue: the gate is limiting and full (or others wait), so the
    /// replay waits behind the runs it most likely conflicted with. When it
    /// would be admitted at once (a limit that does not bind, or a
    /// transaction alone in its gate that conflicted with another function
    /// or process), only a backoff sleep spaces it out.
    pub(crate) fn queue_spaces_replay(&self) -> bool {
        let s = lock(&self.state);
        s.limiter.limit().is_some() && (!s.waiting.is_empty() || s.in_flight >= s.slots())
    }

    fn release(&self, solo: bool) {
        let mut s = lock(&self.state);
        s.last_used = Some(std::time::Instant::now());
        s.last_release = Some(tokio::time::Instant::now());
        s.in_flight -= 1;
        if solo {
            s.solo = false;
        }
        s.admit_waiters();
    }
}

/// A caller in the queue; if its future is dropped after room was handed to
/// it, the room goes back.
struct Waiting {
    gate: Arc<Gate>,
    rx: Option<oneshot::Receiver<Admission>>,
    turn: Turn,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            rx.close();
            if rx.try_recv().is_ok() {
                self.gate.release(self.turn == Turn::Last);
            } else {
                // still queued: leave the queue now, not when reached
                lock(&self.gate.state).purge();
            }
        }
    }
}

/// Room taken under a gate's limit.
#[derive(Debug)]
pub(crate) struct Permit {
    gate: Arc<Gate>,
    admission: Admission,
    solo: bool,
}

impl Permit {
    /// Where the gate stood when this permit was given.
    pub(crate) fn admission(&self) -> Admission {
        self.admission
    }

    /// Its run is about to send `COMMIT` (see [`Gate::on_conflict`]).
    pub(crate) fn committing(&self) {
        self.gate.committing();
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.gate.release(self.solo);
    }
}

#[cfg(test)]
pub(super) mod tests;
