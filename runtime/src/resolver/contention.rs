//! Adaptive contention control: a per-label admission gate that queues a hot
//! function instead of letting its transactions fight.
//!
//! Each label (managed function) has a concurrency limit, adjusted from what
//! its transactions report (AIMD, as in TCP congestion control):
//! - a label seen for the first time starts at [`SLOW_START_FROM`] slots and
//!   gains a slot per commit (TCP's slow start: the limit doubles every round,
//!   and is lifted above [`UNLIMITED_ABOVE`]), so a burst of calls on one hot
//!   row does not all collide before the gate has seen a conflict; the first
//!   cut ends it;
//! - the limit is cut only while conflicts are frequent: more than
//!   [`CUT_ABOVE`] (a quarter) of the label's recent runs (an EWMA). Rarer
//!   conflicts (spread over many rows) cost less to replay than running
//!   fewer at a time, so the gate stays out of the way;
//! - a cut halves the limit, and takes it no higher than the number of runs
//!   that committed since the previous cut (a cold start of many runs on one
//!   row converges in two cuts); at most once per "window": conflicts of runs
//!   admitted before the last cut are ignored, the cut already answered them.
//!   The limit never goes below 1: the function then runs one transaction at
//!   a time in this process and stops conflicting with itself;
//! - a clean commit raises it by `1/(damping * limit)`, and it is lifted
//!   altogether above [`UNLIMITED_ABOVE`]. Each new slot is on probation: if
//!   two or more, and more than a quarter, of the runs admitted since it
//!   opened conflict, the limit goes back one slot and the damping doubles
//!   (up to 256), so a hot row is probed ever more rarely; after twice as many
//!   clean commits as there are slots the slot holds and the damping halves
//!   (down to 4).
//!
//! The queue is first come, first served, except that replays go ahead of
//! first runs (behind earlier replays), and a call's last allowed replay runs
//! alone in its label: it waits until no other run of the label is in flight
//! and nothing is admitted beside it, so it cannot conflict with its own
//! label again (only with other functions or processes).
//!
//! Admission comes before the transaction's first statement, so a queued run
//! takes its snapshot after the one ahead of it committed and reads fresh
//! data. Where `BEGIN` takes no snapshot and no lock (PostgreSQL,
//! MySQL/MariaDB), the runs at the head of the queue (as many as there are
//! slots) begin their transactions while they wait, so the round trips of
//! `BEGIN` and `SET TRANSACTION` are off the serialised path. On MySQL/MariaDB
//! under SERIALIZABLE, where reads are locking reads of the latest committed
//! rows, a run gives its room back before `COMMIT`: the next one's reads wait
//! for the commit inside the server, as `SELECT … FOR UPDATE` would.
//!
//! No run waits in the queue longer than [`MAX_QUEUE_WAIT`]: then it is
//! admitted over the limit, so a body that waits for another call of its own
//! label cannot deadlock on the gate.
//!
//! A permit is given back before the backoff sleep, and while the gate is
//! limiting a label and other transactions of it are running or queued, the
//! replay does not sleep at all: the queue already spaces it out behind them.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use std::time::Duration;

use tokio::sync::oneshot;

/// Above this limit a label runs unlimited again.
pub const UNLIMITED_ABOVE: f64 = 64.0;
/// The limit of a label seen for the first time, which then grows by a slot
/// per commit until the first cut (slow start).
pub const SLOW_START_FROM: f64 = 4.0;
/// The longest a run waits in a label's queue *while no run of the label
/// finishes*: then it is admitted beside the others, over the limit. A body
/// that waits for another call of its own label (a barrier, a channel) can
/// therefore never deadlock on the gate. While runs keep finishing, the
/// queue is moving and the wait goes on, however long it is (a busy or slow
/// machine): admitting over the limit then would only bring back the
/// conflicts the limit prevents, and break the last replay's promise to run
/// alone.
pub const MAX_QUEUE_WAIT: Duration = Duration::from_secs(1);
/// How much slower than TCP's `1/limit` the limit grows per clean commit, at
/// least and at most: the damping doubles when a probe of one more slot
/// fails (see [`GateState::probing`]) and halves when one holds.
const MIN_DAMPING: f64 = 4.0;
const MAX_DAMPING: f64 = 256.0;
/// The limit is cut only while more than this share of the label's recent
/// runs conflicted: below it, replaying those that conflict costs less than
/// running fewer at a time (conflicts spread over many rows). Measured
/// against 0.35 and 0.5: those spare ten hot rows some queueing, but leave a
/// single hot row at four tasks to the backoff, which costs it a third.
pub const CUT_ABOVE: f64 = 0.25;
/// A new slot fails its probation when more than this share (and at least
/// two) of the runs admitted since it opened conflict.
const PROBE_FAILS_ABOVE: f64 = 0.25;
/// Weight of the newest outcome in the conflict rate (an EWMA over roughly
/// the last `1/RATE_WEIGHT` runs).
const RATE_WEIGHT: f64 = 1.0 / 8.0;

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

/// A gate nobody used for this long, with no run in it, is forgotten when
/// the map is swept (labels built from user input would grow it forever).
pub(crate) const IDLE_GATE_EVICTED_AFTER: Duration = Duration::from_secs(300);

/// Gates kept before the first sweep; each sweep sets the next at twice
/// what it left.
const FIRST_SWEEP_AT: usize = 256;

/// The gates of one resolver, by label.
#[derive(Debug)]
pub(crate) struct Gates {
    by_label: Mutex<GateMap>,
    /// How many connections queued runs may hold by beginning early (see
    /// [`Gate::admit`]): a share of the pool, so that they never take the
    /// connections the admitted runs and everything else need.
    prepare_cap: Option<u32>,
}

#[derive(Debug)]
struct GateMap {
    gates: HashMap<String, Arc<Gate>>,
    sweep_at: usize,
}

impl Default for Gates {
    fn default() -> Self {
        Self::with_pool(None)
    }
}

impl Gates {
    /// Gates for a pool of `pool_size` connections (`None`: unknown).
    pub(crate) fn with_pool(pool_size: Option<u32>) -> Self {
        Self {
            by_label: Mutex::new(GateMap {
                gates: HashMap::new(),
                sweep_at: FIRST_SWEEP_AT,
            }),
            prepare_cap: prepare_cap(pool_size),
        }
    }

    pub(crate) fn gate(&self, label: &str) -> Arc<Gate> {
        let mut map = lock(&self.by_label);
        if let Some(g) = map.gates.get(label) {
            return g.clone();
        }
        if map.gates.len() >= map.sweep_at {
            let now = std::time::Instant::now();
            map.gates.retain(|_, g| {
                Arc::strong_count(g) > 1 || !g.idle_since(now, IDLE_GATE_EVICTED_AFTER)
            });
            map.sweep_at = (2 * map.gates.len()).max(FIRST_SWEEP_AT);
        }
        let g = Arc::new(Gate::slow_start(self.prepare_cap));
        map.gates.insert(label.to_owned(), g.clone());
        g
    }

    /// How many gates are kept now.
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.by_label).gates.len()
    }

    /// The current limit of `label` (`None` = unlimited), for stats and tests.
    pub(crate) fn limit(&self, label: &str) -> Option<f64> {
        lock(&self.by_label)
            .gates
            .get(label)
            .and_then(|g| lock(&g.state).limit)
    }
}

/// Queued runs that may begin early with a pool of `pool_size`: at most a
/// quarter of it (none with a pool of fewer than 4); without a known size,
/// one per slot.
fn prepare_cap(pool_size: Option<u32>) -> Option<u32> {
    pool_size.map(|n| n / 4)
}

/// Which run of a managed call asks for admission: it decides the place in
/// the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turn {
    /// A first run: it queues behind everyone.
    First,
    /// A replay: it queues ahead of first runs (behind earlier replays), so
    /// a conflicted call is not sent to the back of the line.
    Replay,
    /// The last replay the call is allowed: it runs alone in its label (it
    /// waits until nothing else of the label runs, and nothing is admitted
    /// beside it), so it cannot conflict with its own label again.
    Last,
}

impl Turn {
    /// The turn of run number `attempt` (1 = first) when `retries` replays
    /// are allowed.
    pub(crate) fn of(attempt: u32, retries: u32) -> Self {
        if attempt <= 1 {
            Turn::First
        } else if attempt > retries {
            Turn::Last
        } else {
            Turn::Replay
        }
    }
}

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
    /// The most waiters told to prepare at once (see [`Gates::prepare_cap`];
    /// `None`: one per slot).
    prepare_cap: Option<u32>,
    in_flight: u32,
    /// A [`Turn::Last`] run holds the gate alone.
    solo: bool,
    /// `None`: unlimited.
    limit: Option<f64>,
    /// Incremented at every cut of the limit and every new slot; permits
    /// carry the value of their admission.
    epoch: u64,
    /// The epoch the last cut started: conflicts of runs admitted before it
    /// were answered by it.
    cut_at: u64,
    /// The epoch the last new slot (the probe) started.
    rose_at: u64,
    /// Callers waiting for room, replays first, then first runs, each in
    /// order of arrival. Arrivals never overtake them, so no caller starves.
    waiting: VecDeque<Waiter>,
    /// Waiters told to prepare (begin their transaction) while they wait.
    told: u32,
    /// How slowly the limit grows (between MIN_DAMPING and MAX_DAMPING).
    damping: f64,
    /// The slot count rose and the new slot is on probation: it fails when
    /// two or more, and more than [`PROBE_FAILS_ABOVE`], of the outcomes of runs
    /// admitted since then are conflicts (the limit goes back one slot and the next probe comes
    /// twice as late); it holds after twice as many commits as there are
    /// slots (the damping halves).
    probing: bool,
    probe_commits: u32,
    probe_conflicts: u32,
    /// Commits since the last cut: how many runs got through at the limit
    /// that was cut; the next cut goes no higher.
    since_cut: u32,
    /// Recent share of runs that conflicted (EWMA, 0 to 1).
    conflict_rate: f64,
    /// A new label's limit starts at 1 and gains a slot per commit until the
    /// first cut (TCP's slow start), so a burst of calls on a hot row does
    /// not all collide before the gate has seen a single conflict.
    slow_start: bool,
}

#[derive(Debug)]
struct Waiter {
    admit: oneshot::Sender<u64>,
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
    /// Sets the limit to `limit` (at least 1) and starts a new window.
    fn cut_to(&mut self, limit: f64) {
        self.slow_start = false;
        self.limit = Some(limit.max(1.0));
        self.probing = false;
        self.since_cut = 0;
        self.epoch += 1;
        self.cut_at = self.epoch;
    }

    fn damping(&self) -> f64 {
        self.damping.clamp(MIN_DAMPING, MAX_DAMPING)
    }

    fn slots(&self) -> u32 {
        // `as` saturates; the limit lives in [1, UNLIMITED_ABOVE]
        self.limit.map_or(u32::MAX, |l| l.max(1.0).floor() as u32)
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
            }
            self.in_flight += 1;
            self.solo = next.turn == Turn::Last;
            if next.admit.send(self.epoch).is_err() {
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
    fn tell_next(&mut self) {
        let wanted = self
            .slots()
            .min(UNLIMITED_ABOVE as u32)
            .min(self.prepare_cap.unwrap_or(u32::MAX));
        for w in self.waiting.iter_mut() {
            if self.told >= wanted {
                break;
            }
            if let Tell::Pending(_) = w.tell
                && let Tell::Pending(tx) = std::mem::replace(&mut w.tell, Tell::Told)
            {
                if tx.send(()).is_ok() {
                    self.told += 1;
                } else {
                    w.tell = Tell::Never;
                }
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Gate {
    /// The gate of a label seen for the first time: in slow start.
    fn slow_start(prepare_cap: Option<u32>) -> Self {
        Self {
            state: Mutex::new(GateState {
                limit: Some(SLOW_START_FROM),
                slow_start: true,
                prepare_cap,
                last_used: Some(std::time::Instant::now()),
                ..GateState::default()
            }),
        }
    }

    /// Whether no run is in the gate or waits for it, and none entered or
    /// left for `idle` until `now`.
    fn idle_since(&self, now: std::time::Instant, idle: Duration) -> bool {
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
                    epoch: s.epoch,
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
        let (epoch, solo) = loop {
            let Some(rx) = wait.rx.as_mut() else {
                unreachable!("the receiver is only taken below")
            };
            tokio::select! {
                biased;
                granted = rx => {
                    wait.rx = None; // received: nothing to give back on drop
                    match granted {
                        Ok(epoch) => break (epoch, turn == Turn::Last),
                        // Cannot happen while the gate lives (senders leave
                        // the queue only by sending); take the room anyway so
                        // the permit's release stays balanced.
                        Err(_) => {
                            let mut s = lock(&self.state);
                            s.in_flight += 1;
                            break (s.epoch, false);
                        }
                    }
                }
                out = &mut preparing, if prepared.is_none() => prepared = Some(out),
                () = &mut overdue => {
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
                        if let Ok(epoch) = rx.try_recv() {
                            break (epoch, turn == Turn::Last);
                        }
                        rx.close();
                    }
                    s.purge();
                    // over the limit, beside the others
                    s.in_flight += 1;
                    tracing::debug!(waited_ms = MAX_QUEUE_WAIT.as_millis() as u64, "admitted over the contention limit after the longest queue wait");
                    break (s.epoch, false);
                }
            }
        };
        let permit = Permit {
            gate: self.clone(),
            epoch,
            solo,
        };
        if prepared.is_none() && started.load(Ordering::Relaxed) {
            // admitted while beginning: finish that rather than waste it
            prepared = Some(preparing.await);
        }
        (permit, prepared)
    }

    /// A transaction admitted at `admitted` (its permit's epoch) conflicted:
    /// cut the limit when conflicts are frequent or the newest slot failed its
    /// probe, unless it was already cut since that admission.
    pub(crate) fn on_conflict(&self, admitted: u64) {
        let mut s = lock(&self.state);
        s.conflict_rate += (1.0 - s.conflict_rate) * RATE_WEIGHT;
        if admitted < s.cut_at {
            return;
        }
        if s.probing && admitted >= s.rose_at {
            s.probe_conflicts += 1;
            let share =
                f64::from(s.probe_conflicts) / f64::from(s.probe_conflicts + s.probe_commits);
            // one conflict is not a verdict on a new slot (spread-out
            // conflicts come now and then); two at this share are
            if s.probe_conflicts >= 2 && share > PROBE_FAILS_ABOVE {
                // back to the slots that worked, and probe half as often
                let back = f64::from(s.slots().saturating_sub(1).max(1));
                s.damping = s.damping() * 2.0;
                s.cut_to(back);
                return;
            }
        }
        if s.conflict_rate > CUT_ABOVE {
            let current = s.limit.unwrap_or(f64::from(s.in_flight.max(1)));
            // Halve, but to no more than the commits the current limit let
            // through: a cold start with many runs on one row converges in
            // two cuts instead of log2(runs).
            let cut = (current / 2.0).min(f64::from(s.since_cut));
            s.cut_to(cut);
        }
    }

    /// A transaction of this label committed: grow the limit.
    pub(crate) fn on_commit(&self) {
        let mut s = lock(&self.state);
        s.conflict_rate -= s.conflict_rate * RATE_WEIGHT;
        s.since_cut = s.since_cut.saturating_add(1);
        if s.probing {
            s.probe_commits += 1;
            if s.probe_commits >= 2 * s.slots() {
                s.probing = false;
                s.damping = s.damping() / 2.0;
            }
        }
        if let Some(l) = s.limit {
            let grown = if s.slow_start {
                l + 1.0
            } else {
                l + 1.0 / (s.damping() * l)
            };
            if !s.slow_start && grown.floor() > l.floor() && grown <= UNLIMITED_ABOVE {
                s.epoch += 1;
                s.rose_at = s.epoch;
                s.probing = true;
                s.probe_commits = 0;
                s.probe_conflicts = 0;
            }
            s.limit = (grown <= UNLIMITED_ABOVE).then_some(grown);
            s.admit_waiters();
        }
    }

    /// Whether a replay of this label, just rolled back, will be spaced out
    /// by the queue: the gate is limiting and full (or others wait), so the
    /// replay waits behind the runs it most likely conflicted with. When it
    /// would be admitted at once (a limit that does not bind, or a
    /// transaction alone in its label that conflicted with another function
    /// or process), only a backoff sleep spaces it out.
    pub(crate) fn queue_spaces_replay(&self) -> bool {
        let s = lock(&self.state);
        s.limit.is_some() && (!s.waiting.is_empty() || s.in_flight >= s.slots())
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
    rx: Option<oneshot::Receiver<u64>>,
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
    epoch: u64,
    solo: bool,
}

impl Permit {
    /// The gate's epoch when this permit was given.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.gate.release(self.solo);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use std::sync::atomic::AtomicUsize;

    type NoPrep = std::future::Ready<()>;

    async fn enter(gate: &Arc<Gate>) -> Permit {
        gate.admit(Turn::First, None::<NoPrep>).await.0
    }

    /// Consecutive conflicts that take a quiet label's rate above CUT_ABOVE.
    fn conflicts_to_cut() -> usize {
        (1..)
            .find(|&n| 1.0 - (1.0 - RATE_WEIGHT).powi(n) > CUT_ABOVE)
            .unwrap() as usize
    }

    fn set_limit(gate: &Gate, limit: f64) {
        lock(&gate.state).limit = Some(limit);
    }

    /// Waits until `n` callers are queued at `gate`.
    async fn queued(gate: &Gate, n: usize) {
        while lock(&gate.state).waiting.len() < n {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_cancelled_waiter_leaves_the_queue_at_once() {
        let gate = Arc::new(Gate::default());
        set_limit(&gate, 2.0);
        let _running = enter(&gate).await;
        // a last replay waits for the label to empty; its caller gives up
        let g = gate.clone();
        let last = tokio::spawn(async move { g.admit(Turn::Last, None::<NoPrep>).await });
        queued(&gate, 1).await;
        last.abort();
        assert!(last.await.unwrap_err().is_cancelled());
        assert_eq!(lock(&gate.state).waiting.len(), 0, "purged when cancelled");
        // a slot is free: the next first run is admitted without waiting
        let admitted = gate.admit(Turn::First, None::<NoPrep>).now_or_never();
        assert!(
            admitted.is_some(),
            "not held up behind the cancelled waiter"
        );
    }

    #[test]
    fn idle_gates_are_forgotten_busy_ones_kept() {
        let gates = Gates::default();
        let held = gates.gate("held");
        for i in 1..FIRST_SWEEP_AT {
            drop(gates.gate(&format!("label-{i}")));
        }
        let long_ago = std::time::Instant::now()
            .checked_sub(IDLE_GATE_EVICTED_AFTER * 2)
            .expect("the clock reaches back");
        for g in lock(&gates.by_label).gates.values() {
            lock(&g.state).last_used = Some(long_ago);
        }
        drop(gates.gate("fresh"));
        assert_eq!(gates.len(), 2, "only the held gate and the new one remain");
        assert!(Arc::ptr_eq(&held, &gates.gate("held")));
    }

    #[tokio::test]
    async fn a_small_pool_lends_queued_runs_a_quarter_of_itself() {
        assert_eq!(prepare_cap(Some(3)), Some(0));
        assert_eq!(prepare_cap(Some(4)), Some(1));
        assert_eq!(prepare_cap(None), None);
        let gates = Gates::with_pool(Some(4));
        let gate = gates.gate("hot");
        set_limit(&gate, 4.0);
        let _running: Vec<Permit> = futures::future::join_all((0..4).map(|_| enter(&gate))).await;
        let prepared = Arc::new(AtomicUsize::new(0));
        let mut waiting = Vec::new();
        for i in 0..6 {
            let (g, prepared) = (gate.clone(), prepared.clone());
            waiting.push(tokio::spawn(async move {
                let prep = async move {
                    prepared.fetch_add(1, Ordering::SeqCst);
                };
                g.admit(Turn::First, Some(prep)).await
            }));
            queued(&gate, i + 1).await;
        }
        assert_eq!(
            lock(&gate.state).told,
            1,
            "one of six queued runs begins early"
        );
        for w in waiting {
            w.abort();
        }
    }

    #[tokio::test]
    async fn unlimited_until_a_conflict() {
        let gate = Arc::new(Gate::default());
        let permits: Vec<Permit> = futures::future::join_all((0..100).map(|_| enter(&gate))).await;
        assert_eq!(lock(&gate.state).in_flight, 100);
        drop(permits);
        assert_eq!(lock(&gate.state).in_flight, 0);
    }

    #[tokio::test]
    async fn a_new_label_starts_slow_and_gains_a_slot_per_commit() {
        let gates = Gates::default();
        let gate = gates.gate("hot");
        assert_eq!(gates.limit("hot"), Some(SLOW_START_FROM));
        let start = SLOW_START_FROM as usize;
        let first: Vec<Permit> = futures::future::join_all((0..start).map(|_| enter(&gate))).await;
        let g = gate.clone();
        let one_more = tokio::spawn(async move { enter(&g).await });
        queued(&gate, 1).await;
        gate.on_commit();
        drop(one_more.await.unwrap());
        drop(first);
        assert_eq!(gates.limit("hot"), Some(SLOW_START_FROM + 1.0));
        while gates.limit("hot").is_some_and(|l| l < UNLIMITED_ABOVE) {
            gate.on_commit();
        }
        assert_eq!(
            gates.limit("hot"),
            Some(UNLIMITED_ABOVE),
            "a slot per commit, no damping"
        );
        gate.on_commit();
        assert_eq!(gates.limit("hot"), None, "above 64: unlimited");
    }

    #[tokio::test]
    async fn frequent_conflicts_end_the_slow_start() {
        let gates = Gates::default();
        let gate = gates.gate("hot");
        for _ in 0..12 {
            gate.on_commit();
        }
        assert_eq!(gates.limit("hot"), Some(SLOW_START_FROM + 12.0));
        let held: Vec<Permit> = futures::future::join_all((0..8).map(|_| enter(&gate))).await;
        for p in &held[..conflicts_to_cut()] {
            gate.on_conflict(p.epoch());
        }
        let s = lock(&gate.state);
        assert!(!s.slow_start);
        assert_eq!(s.limit, Some(8.0), "16 slots halved");
    }

    #[tokio::test(start_paused = true)]
    async fn no_run_waits_longer_than_the_longest_queue_wait() {
        let gate = Arc::new(Gate::default());
        set_limit(&gate, 1.0);
        let first = enter(&gate).await;
        let g = gate.clone();
        let second = tokio::spawn(async move { enter(&g).await });
        queued(&gate, 1).await;
        tokio::time::advance(MAX_QUEUE_WAIT - Duration::from_millis(1)).await;
        tokio::task::yield_now().await;
        assert!(!second.is_finished(), "still queued just before the bound");
        tokio::time::advance(Duration::from_millis(2)).await;
        let second = second.await.unwrap();
        assert_eq!(lock(&gate.state).in_flight, 2, "admitted over the limit");
        drop(first);
        drop(second);
        let s = lock(&gate.state);
        assert_eq!(s.in_flight, 0, "the skipped queue entry took no room");
        assert!(s.waiting.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_moving_queue_is_waited_for_however_long() {
        let gate = Arc::new(Gate::default());
        set_limit(&gate, 1.0);
        let running = enter(&gate).await;
        let (ga, gb) = (gate.clone(), gate.clone());
        let a = tokio::spawn(async move { enter(&ga).await });
        queued(&gate, 1).await;
        let b = tokio::spawn(async move { enter(&gb).await });
        queued(&gate, 2).await;
        // the queue moves just before the bound: the head is admitted
        tokio::time::advance(MAX_QUEUE_WAIT - Duration::from_millis(100)).await;
        drop(running);
        let a = a.await.unwrap();
        // past the bound of the second waiter, but the queue moved since
        tokio::time::advance(Duration::from_millis(200)).await;
        tokio::task::yield_now().await;
        assert!(
            !b.is_finished(),
            "not admitted over the limit while the queue moves"
        );
        assert_eq!(lock(&gate.state).in_flight, 1);
        // the queue moves again: the second waiter gets the slot in turn
        tokio::time::advance(MAX_QUEUE_WAIT - Duration::from_millis(200)).await;
        drop(a);
        let b = b.await.unwrap();
        assert_eq!(lock(&gate.state).in_flight, 1, "never over the limit");
        drop(b);
    }

    #[tokio::test]
    async fn rare_conflicts_do_not_cut() {
        let gate = Arc::new(Gate::default());
        let held: Vec<Permit> = futures::future::join_all((0..16).map(|_| enter(&gate))).await;
        // one conflict in twenty runs, evenly spread: the rate stays low
        for p in &held[..5] {
            for _ in 0..19 {
                gate.on_commit();
            }
            gate.on_conflict(p.epoch());
        }
        let s = lock(&gate.state);
        assert!(s.conflict_rate < CUT_ABOVE, "rate {}", s.conflict_rate);
        assert_eq!(s.limit, None, "no cut while conflicts are rare");
    }

    #[tokio::test]
    async fn frequent_conflicts_cut_once_per_window_and_commits_grow_back() {
        let gate = Arc::new(Gate::default());
        for _ in 0..100 {
            gate.on_commit();
        }
        let held: Vec<Permit> = futures::future::join_all((0..16).map(|_| enter(&gate))).await;
        let n = conflicts_to_cut();
        for p in &held[..n - 1] {
            gate.on_conflict(p.epoch());
        }
        assert_eq!(
            lock(&gate.state).limit,
            None,
            "the rate is still below CUT_ABOVE"
        );
        gate.on_conflict(held[n - 1].epoch());
        assert_eq!(lock(&gate.state).limit, Some(8.0), "16 in flight, halved");
        // the others were admitted before that cut: one window, one cut
        for p in &held[n..] {
            gate.on_conflict(p.epoch());
        }
        assert_eq!(lock(&gate.state).limit, Some(8.0));
        drop(held);
        // two commits, then a conflict of a run admitted after the cut: the
        // limit goes to what got through, not just half
        let p = enter(&gate).await;
        gate.on_commit();
        gate.on_commit();
        gate.on_conflict(p.epoch());
        assert_eq!(lock(&gate.state).limit, Some(2.0));
        drop(p);
        let p = enter(&gate).await;
        gate.on_conflict(p.epoch());
        assert_eq!(lock(&gate.state).limit, Some(1.0), "floor 1");
        drop(p);
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
    async fn a_failed_probe_goes_back_one_slot_and_doubles_the_damping() {
        let gate = Arc::new(Gate::default());
        let p = enter(&gate).await;
        while lock(&gate.state).limit.is_none() {
            gate.on_conflict(p.epoch());
        }
        drop(p);
        assert_eq!(lock(&gate.state).limit, Some(1.0));
        // commits at damping 4 raise the limit to two slots: a probe
        let mut commits = 0;
        while lock(&gate.state).slots() < 2 {
            gate.on_commit();
            commits += 1;
        }
        assert_eq!(commits, 6, "1 → 2 at 1/(4·limit) per commit");
        assert!(lock(&gate.state).probing);
        let (a, b) = (enter(&gate).await, enter(&gate).await);
        for _ in 0..3 {
            gate.on_commit();
        }
        gate.on_conflict(a.epoch());
        assert_eq!(
            lock(&gate.state).slots(),
            2,
            "one conflict in four outcomes: not yet"
        );
        gate.on_conflict(b.epoch());
        let s = lock(&gate.state);
        assert_eq!(
            s.limit,
            Some(1.0),
            "two in five conflicted: back to one slot"
        );
        assert_eq!(s.damping(), 8.0, "the next probe comes twice as late");
        assert!(!s.probing);
    }

    #[tokio::test]
    async fn a_probe_that_holds_halves_the_damping() {
        let gate = Arc::new(Gate::default());
        {
            let mut s = lock(&gate.state);
            s.limit = Some(2.9);
            s.damping = 16.0;
        }
        let mut commits = 0;
        while !lock(&gate.state).probing {
            gate.on_commit();
            commits += 1;
        }
        assert_eq!(commits, 5, "2.9 → 3 at 1/(16·limit) per commit");
        for _ in 0..5 {
            gate.on_commit();
        }
        assert!(lock(&gate.state).probing, "on probation for 2 · 3 commits");
        gate.on_commit();
        let s = lock(&gate.state);
        assert!(!s.probing);
        assert_eq!(s.damping(), 8.0);
    }

    #[tokio::test]
    async fn limit_one_queues_and_wakes_in_turn() {
        let gate = Arc::new(Gate::default());
        set_limit(&gate, 1.0);
        let first = enter(&gate).await;
        let g = gate.clone();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let waiter = tokio::spawn(async move {
            let p = enter(&g).await;
            tx.send(()).unwrap();
            p
        });
        queued(&gate, 1).await;
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
        set_limit(&gate, 1.0);
        let first = enter(&gate).await;
        let (tx, mut order) = tokio::sync::mpsc::unbounded_channel();
        let mut waiters = Vec::new();
        for i in 0..3 {
            let g = gate.clone();
            let tx = tx.clone();
            waiters.push(tokio::spawn(async move {
                let p = enter(&g).await;
                tx.send(i).unwrap();
                drop(p);
            }));
            // let waiter i queue before the next one arrives
            queued(&gate, i + 1).await;
        }
        // a cancelled wait: queued, then dropped
        let cancelled = {
            let g = gate.clone();
            tokio::spawn(async move { enter(&g).await })
        };
        queued(&gate, 4).await;
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

    #[tokio::test]
    async fn replays_go_ahead_of_first_runs_and_the_last_runs_alone() {
        let gate = Arc::new(Gate::default());
        set_limit(&gate, 2.0);
        let a = enter(&gate).await;
        let b = enter(&gate).await;
        let (tx, mut order) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for (i, turn) in [Turn::First, Turn::Last, Turn::Replay, Turn::First]
            .into_iter()
            .enumerate()
        {
            let g = gate.clone();
            let tx = tx.clone();
            tasks.push(tokio::spawn(async move {
                let (p, _) = g.admit(turn, None::<NoPrep>).await;
                let alone = lock(&g.state).in_flight == 1;
                tx.send((i, turn, alone)).unwrap();
                // the last run holds its room until the test lets it go
                (turn == Turn::Last).then_some(p)
            }));
            queued(&gate, i + 1).await;
        }
        let turns: Vec<Turn> = lock(&gate.state).waiting.iter().map(|w| w.turn).collect();
        assert_eq!(
            turns,
            vec![Turn::Last, Turn::Replay, Turn::First, Turn::First],
            "replays (in arrival order) before first runs"
        );
        drop(a);
        // one slot free, but the last run waits for the other to finish too
        tokio::task::yield_now().await;
        assert!(order.try_recv().is_err());
        drop(b);
        let (i, turn, alone) = order.recv().await.unwrap();
        assert_eq!((i, turn, alone), (1, Turn::Last, true));
        assert!(
            order.try_recv().is_err(),
            "nothing is admitted beside a last run"
        );
        // one at a time from here, so the order is the queue's
        set_limit(&gate, 1.0);
        drop(tasks.remove(1).await.unwrap());
        for t in tasks {
            assert!(t.await.unwrap().is_none());
        }
        let got: Vec<usize> = std::iter::from_fn(|| order.try_recv().ok())
            .map(|(i, _, _)| i)
            .collect();
        assert_eq!(got, vec![2, 0, 3]);
    }

    #[tokio::test]
    async fn queued_callers_prepare_while_they_wait_as_many_as_there_are_slots() {
        let gate = Arc::new(Gate::default());
        set_limit(&gate, 1.0);
        let first = enter(&gate).await;
        let prepared = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..3 {
            let g = gate.clone();
            let prepared = prepared.clone();
            tasks.push(tokio::spawn(async move {
                let prep = async move {
                    prepared.fetch_add(1, Ordering::SeqCst);
                    i
                };
                g.admit(Turn::First, Some(prep)).await
            }));
            queued(&gate, i + 1).await;
        }
        while prepared.load(Ordering::SeqCst) < 1 {
            tokio::task::yield_now().await;
        }
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            prepared.load(Ordering::SeqCst),
            1,
            "one slot: only the head of the queue prepares"
        );
        drop(first);
        let (p0, out0) = tasks.remove(0).await.unwrap();
        assert_eq!(
            out0,
            Some(0),
            "the head got its prepared output with the permit"
        );
        // the next one was told when the head was admitted
        while prepared.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        drop(p0);
        let (p1, out1) = tasks.remove(0).await.unwrap();
        assert_eq!(out1, Some(1));
        drop(p1);
        let (p2, out2) = tasks.remove(0).await.unwrap();
        assert_eq!(out2, Some(2));
        drop(p2);
        let s = lock(&gate.state);
        assert_eq!((s.in_flight, s.told), (0, 0));
    }

    #[tokio::test]
    async fn a_replay_skips_the_backoff_only_when_it_will_queue() {
        let gate = Arc::new(Gate::default());
        let first = enter(&gate).await;
        assert!(
            !gate.queue_spaces_replay(),
            "unlimited: only a backoff spaces it"
        );
        set_limit(&gate, 2.0);
        assert!(
            !gate.queue_spaces_replay(),
            "room left: it would run at once"
        );
        let second = enter(&gate).await;
        assert!(
            gate.queue_spaces_replay(),
            "full: it waits behind the others"
        );
        drop((first, second));
    }
}
