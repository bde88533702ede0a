//! A process's tenure of the database lock of one hot (label, key): the lock
//! across processes is taken once for a run of transactions of the process,
//! not once per transaction, and handed to the other processes in turn.
//!
//! Taking the lock for every run costs every run a round trip on the lock
//! connection and puts a round trip of the unlock, and another of the next
//! lock's answer, between each commit and the next run anywhere: with four
//! processes on one hot row that made the resolver three times slower than
//! `SELECT … FOR UPDATE`. A lease is taken by the first run of the process
//! that needs it and kept while runs of the process keep coming (the runs in
//! the process are then spaced out by the in-process gate alone, as if the
//! process were alone on the row). After [`TENURE`] runs, or as soon as no
//! run of the process wants it, it is given back; if runs still want it, it
//! is asked for again at once, behind the other processes already waiting
//! (the database grants a lock in order of request), so processes take
//! turns of at most [`TENURE`] runs each (and [`OVER_TENURE`] more where
//! the runs inside do not leave, see [`Ticket::enter`]).
//!
//! Which runs want it: every run of a hot gate, and every last replay
//! (see [the lock rule](super::hot#the-lock-rule)). A run says so before it queues in its gate (a
//! [`Ticket`]), so a lease is not given back between two runs of the
//! process that follow each other; it enters when admitted, and leaves
//! after its `COMMIT` answered (or before `COMMIT` where the next run may
//! start while it commits, see `Release`).
//!
//! The lock itself is taken exclusive, on a connection of the resolver's
//! lock pool, by a task of its own (see `db_lock::lock`): a caller
//! dropped while it waits leaves the lease to the others who want it, or
//! gives it back when nobody does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::{DatabaseConnection, DbErr};
use tokio::sync::Notify;

use super::MAX_QUEUE_WAIT;
use super::db_lock::{self, HeldLock, LockPools};
use crate::sync::{SweepAt, lock};

/// The most runs of one process let in under one tenure of a lease while it
/// is wanted; then it goes to the next process waiting for it (or back to
/// this one at once, when none waits).
///
/// Why 16: a tenure costs two round trips (unlock, then the next lock's
/// answer) on top of its runs, so a tenure of 16 adds a few per cent to a
/// process alone on a hot row; and with four processes, a call waits for at
/// most three tenures of the others, about what it would wait in the
/// row-lock queue of `FOR UPDATE` with 64 tasks (see BENCHMARKS.md).
pub(crate) const TENURE: u32 = 16;

/// The longest a run other than a last replay waits for another process to
/// give the lock up (see [`Ticket::enter`]): far longer than the turns of
/// the other processes take on a busy machine (a few tenures of
/// milliseconds each).
pub(crate) const LONGEST_LOCK_WAIT: Duration = Duration::from_secs(5);

/// The longest a call's last replay waits for the lease (see
/// [`Ticket::enter`]): then it runs without the lock, with a warning, and
/// may lose to another process and give up. Far longer than
/// [`LONGEST_LOCK_WAIT`], since a last replay that runs without the lock may
/// fail the call; bounded, since the run holding the lock may be waiting
/// for this one (a body that waits for a call of its own label in another
/// process), and no wait of a call is unbounded.
pub(crate) const LONGEST_PATIENT_LOCK_WAIT: Duration = Duration::from_secs(30);

/// The most runs let in over a tenure that is over because the runs inside
/// did not leave for [`MAX_QUEUE_WAIT`] (one of them may wait for the run
/// let in, see [`Ticket::enter`]). Without a bound, runs that each last
/// longer than that wait, arriving one after the other, would keep the
/// lease inside the process forever, and another process's last replay
/// waiting for it with it; past the bound the runs waiting wait for the runs
/// inside to leave (or give up waiting, see [`LONGEST_LOCK_WAIT`]), and the
/// lease goes round.
pub(crate) const OVER_TENURE: u32 = 4;

/// How many turns of the scheduler a lease nobody wants is kept before it
/// is given back (see [`Lease::linger`]).
const LINGER_YIELDS: u32 = 16;

/// Leases kept before the first sweep of the unused ones; each sweep sets
/// the next at twice what it left.
const FIRST_SWEEP_AT: usize = 256;

/// The leases of one resolver, by lock id.
pub(crate) struct Leases {
    db: DatabaseConnection,
    pools: Arc<LockPools>,
    map: Mutex<LeaseMap>,
    /// Whether the database honours the lock (not CockroachDB's stubs).
    honoured: super::honoured::Honoured,
}

struct LeaseMap {
    leases: HashMap<i64, Arc<Lease>>,
    sweep_at: SweepAt,
}

impl Leases {
    /// Leases of locks on `db`, taken on connections of a lock pool beside
    /// its own.
    pub(crate) fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            pools: Arc::new(LockPools::default()),
            honoured: Default::default(),
            map: Mutex::new(LeaseMap {
                leases: HashMap::new(),
                sweep_at: SweepAt::new(FIRST_SWEEP_AT),
            }),
        }
    }

    /// Whether the database honours the lock at all (see `honoured`):
    /// asked once, by the first run that would take it.
    pub(crate) async fn honoured(&self) -> bool {
        self.honoured.ask(&self.db).await
    }

    /// Says that a run will want the lease of lock `id`: it is kept for the
    /// run until the ticket is dropped.
    pub(crate) fn ticket(&self, id: i64) -> Ticket {
        let lease = {
            let mut map = lock(&self.map);
            if map.sweep_at.due(map.leases.len()) {
                map.leases
                    .retain(|_, l| Arc::strong_count(l) > 1 || !lock(&l.state).unused());
                let left = map.leases.len();
                map.sweep_at.swept(left);
            }
            map.leases
                .entry(id)
                .or_insert_with(|| {
                    Arc::new(Lease {
                        id,
                        db: self.db.clone(),
                        pools: self.pools.clone(),
                        state: Mutex::new(State::default()),
                        changed: Notify::new(),
                    })
                })
                .clone()
        };
        lock(&lease.state).expected += 1;
        Ticket { lease: Some(lease) }
    }
}

/// One (label, key)'s lease in this process.
pub(crate) struct Lease {
    id: i64,
    db: DatabaseConnection,
    pools: Arc<LockPools>,
    state: Mutex<State>,
    /// Told whenever the lease is taken, given back or failed to be taken.
    changed: Notify,
}

#[derive(Default)]
struct State {
    hold: Hold,
    /// Tickets alive: runs that want the lease, inside it or not yet.
    expected: u32,
    /// Runs inside the lease now.
    users: u32,
    /// Runs let in under the current tenure (over it too, see
    /// [`OVER_TENURE`]).
    tenure: u32,
    /// Another session held the lock when the current tenure asked for it.
    contended: bool,
    /// A task keeps the lease a moment before giving it back (see
    /// [`Lease::linger`]).
    lingering: bool,
    /// When a run last left the lease, or it was last taken.
    moved: Option<tokio::time::Instant>,
    /// Attempts to take the lock so far.
    attempts: u64,
    /// The attempt that last failed, and why.
    failure: Option<(u64, String)>,
}

#[derive(Default)]
enum Hold {
    #[default]
    Free,
    /// A task is taking the lock.
    Acquiring,
    /// Taken: dropping the lock gives it back.
    Held { _lock: HeldLock },
}

impl State {
    fn unused(&self) -> bool {
        self.expected == 0 && matches!(self.hold, Hold::Free)
    }
}

impl Lease {
    /// Starts taking the lock in a task of its own (the state says
    /// `Acquiring` from now on): on the session of `held`, which is given
    /// back first, or on a new one.
    fn acquire(self: &Arc<Self>, s: &mut State, held: Option<HeldLock>) {
        s.hold = Hold::Acquiring;
        s.attempts += 1;
        let attempt = s.attempts;
        let lease = self.clone();
        tokio::spawn(async move {
            let got = match held {
                Some(held) => db_lock::retake(held).await,
                None => db_lock::lock(&lease.db, &lease.pools, lease.id).await,
            };
            let mut s = lock(&lease.state);
            match got {
                Ok(taken) => {
                    s.hold = Hold::Held { _lock: taken.lock };
                    s.contended = taken.contended;
                    s.tenure = 0;
                    s.moved = Some(tokio::time::Instant::now());
                    // everyone left while it waited: give it back at once
                    lease.give_back_if_done(&mut s);
                }
                Err(e) => {
                    s.hold = Hold::Free;
                    s.failure = Some((attempt, e.to_string()));
                }
            }
            drop(s);
            lease.changed.notify_waiters();
        });
    }

    /// Gives the lock back when no run is inside and the tenure is over or
    /// nobody wants it any more; asks for it again at once when runs still
    /// want it (behind the other processes waiting). Returns whether the
    /// lease changed.
    fn give_back_if_done(self: &Arc<Self>, s: &mut State) -> bool {
        self.give_back_unless_kept(s, true)
    }

    /// [`Lease::give_back_if_done`], lingering first only if `may_linger`.
    fn give_back_unless_kept(self: &Arc<Self>, s: &mut State, may_linger: bool) -> bool {
        if s.users > 0 || !matches!(s.hold, Hold::Held { .. }) {
            return false;
        }
        if s.expected > 0 && s.tenure < TENURE {
            return false;
        }
        if may_linger && s.expected == 0 && s.tenure < TENURE && !s.lingering && self.linger(s) {
            return false;
        }
        let Hold::Held { _lock: held } = std::mem::take(&mut s.hold) else {
            unreachable!("checked above")
        };
        s.tenure = 0;
        if s.expected > 0 && tokio::runtime::Handle::try_current().is_ok() {
            // given back and asked for again on the same session: granted
            // after the other processes already waiting
            self.acquire(s, Some(held));
        }
        // else dropping the lock unlocks it in a task of its own
        true
    }
}

impl Lease {
    /// Keeps a lease nobody wants for a moment before giving it back: the
    /// task whose run just left usually asks for it again at once (its next
    /// call), and would otherwise pay a round trip to give it back and
    /// another to take it again. The moment is [`LINGER_YIELDS`] turns of
    /// the scheduler, so every task of the process that was ready when the
    /// run left gets to run first. Returns whether it lingers.
    fn linger(self: &Arc<Self>, s: &mut State) -> bool {
        if tokio::runtime::Handle::try_current().is_err() {
            return false;
        }
        s.lingering = true;
        let lease = self.clone();
        tokio::spawn(async move {
            for _ in 0..LINGER_YIELDS {
                tokio::task::yield_now().await;
            }
            let mut s = lock(&lease.state);
            s.lingering = false;
            if lease.give_back_unless_kept(&mut s, false) {
                drop(s);
                lease.changed.notify_waiters();
            }
        });
        true
    }
}

/// A run's claim on a lease, from before it queues in its gate until it
/// leaves; the lease is kept for it meanwhile.
pub(crate) struct Ticket {
    lease: Option<Arc<Lease>>,
}

impl Ticket {
    /// Waits until this process holds the lock and the current tenure has
    /// room, then enters the lease; takes the lock when nobody in the
    /// process is taking it. An error means the lock could not be taken (the
    /// run may go on without it); the ticket is used up either way.
    ///
    /// A run gives up waiting after [`LONGEST_LOCK_WAIT`], or after
    /// [`LONGEST_PATIENT_LOCK_WAIT`] if `patient` (a call's last replay),
    /// and goes on without the lock (an error saying so): the run holding
    /// the lock, here or in another process, may be waiting for this one (a
    /// body that waits for a call of its own label elsewhere), and two such
    /// calls must not wait for each other forever.
    ///
    /// For the same reason, a run waiting for a tenure that is over enters
    /// over it when no run inside left for [`MAX_QUEUE_WAIT`], at most
    /// [`OVER_TENURE`] runs per tenure: past that, the runs inside must
    /// leave for the lease to go round to the other processes.
    pub(crate) async fn enter(mut self, patient: bool) -> Result<LeaseGuard, DbErr> {
        let Some(lease) = self.lease.clone() else {
            unreachable!("a ticket enters once")
        };
        // a dropped wait gives the ticket back (its drop)
        let since = lock(&lease.state).attempts;
        let longest = if patient {
            LONGEST_PATIENT_LOCK_WAIT
        } else {
            LONGEST_LOCK_WAIT
        };
        let give_up_at = tokio::time::Instant::now() + longest;
        loop {
            let changed = lease.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            let wake_at = {
                let mut s = lock(&lease.state);
                if let Some((attempt, why)) = &s.failure
                    && *attempt > since
                {
                    let why = why.clone();
                    return Err(DbErr::Custom(format!(
                        "could not take the contention lock across processes: {why}"
                    )));
                }
                let now = tokio::time::Instant::now();
                match s.hold {
                    Hold::Held { .. } if s.tenure < TENURE => {
                        s.tenure += 1;
                        return Ok(self.inside(&mut s));
                    }
                    // The tenure is over: wait for it to be given back and
                    // taken again, unless the runs inside do not move (one
                    // of them may wait for this very run), a few times.
                    Hold::Held { .. } => {
                        let left = s.moved.unwrap_or(now);
                        let room = s.tenure < TENURE + OVER_TENURE;
                        if room && left + MAX_QUEUE_WAIT <= now {
                            s.tenure += 1;
                            tracing::debug!(
                                waited_ms = MAX_QUEUE_WAIT.as_millis() as u64,
                                "entered a lease over its tenure: no run inside left for the longest queue wait"
                            );
                            return Ok(self.inside(&mut s));
                        }
                        if give_up_at <= now {
                            return Err(DbErr::Custom(format!(
                                "waited {} s for this process's lease of the contention lock \
                                 across processes: its tenure is over and the runs inside do \
                                 not leave (maybe one waits for this run)",
                                longest.as_secs()
                            )));
                        }
                        if room {
                            give_up_at.min(left + MAX_QUEUE_WAIT)
                        } else {
                            give_up_at
                        }
                    }
                    Hold::Acquiring | Hold::Free => {
                        if give_up_at <= now {
                            return Err(DbErr::Custom(format!(
                                "waited {} s for the contention lock across processes, \
                                 which another process holds (maybe a run waiting for this one)",
                                longest.as_secs()
                            )));
                        }
                        if matches!(s.hold, Hold::Free) {
                            lease.acquire(&mut s, None);
                        }
                        give_up_at
                    }
                }
            };
            let _ = tokio::time::timeout_at(wake_at, changed).await;
        }
    }

    /// Enters the lease (its state locked in `s`): the ticket lives on in
    /// the guard.
    fn inside(&mut self, s: &mut State) -> LeaseGuard {
        s.users += 1;
        LeaseGuard {
            lease: self.lease.take(),
            contended: s.contended,
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            let mut s = lock(&lease.state);
            s.expected -= 1;
            if lease.give_back_if_done(&mut s) {
                drop(s);
                lease.changed.notify_waiters();
            }
        }
    }
}

/// A run inside a lease: this process holds the lock across processes
/// until the last run inside leaves.
pub(crate) struct LeaseGuard {
    lease: Option<Arc<Lease>>,
    contended: bool,
}

impl LeaseGuard {
    /// Whether another process held the lock when this tenure asked for it:
    /// the key is contended across processes, though the lock keeps the
    /// contention from turning into conflicts.
    pub(crate) fn contended(&self) -> bool {
        self.contended
    }
}

impl std::fmt::Debug for LeaseGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseGuard")
            .field("id", &self.lease.as_ref().map(|l| l.id))
            .finish()
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            let mut s = lock(&lease.state);
            s.users -= 1;
            s.expected -= 1;
            s.moved = Some(tokio::time::Instant::now());
            if lease.give_back_if_done(&mut s) {
                drop(s);
                lease.changed.notify_waiters();
            }
        }
    }
}

#[cfg(test)]
mod tests;
