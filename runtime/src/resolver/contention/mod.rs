//! Contention control: one object per (label, key) of a resolver, owning
//! the two halves that keep a hot key's transactions from fighting.
//!
//! - **In the process**, a [`Gate`] queues the runs of the (label, key)
//!   under a concurrency limit adjusted from what its runs report
//!   ([`queue`] is the queue, [`limit`] the AIMD arithmetic of the limit);
//! - **across processes**, a run that the [lock rule](hot#the-lock-rule)
//!   picks also holds its process's [`lease`] of a database lock of the
//!   (label, key) ([`db_lock`], named by [`key::lock_id`]).
//!
//! [`Control`] is a resolver's: its gates by (label, key), its leases, and
//! the engine facts they need. [`KeyContention`] is one (label, key) of it,
//! and [`KeyContention::enter`] admits one run: it queues in the gate (its
//! place decided by its [`Turn`]), begins the transaction while it waits
//! where `BEGIN` takes no snapshot, and enters the lease when the lock rule
//! says so. The run then reports back ([`KeyContention::on_commit`],
//! [`KeyContention::on_conflict`]), and gives back what it holds
//! ([`Release`]) around its `COMMIT`.
//!
//! The queue is first come, first served, except that replays go ahead of
//! first runs (behind earlier replays), and a call's last allowed replay runs
//! alone in its gate: it waits until no other run of the (label, key) is in
//! flight and nothing is admitted beside it, so it cannot conflict with its
//! own (label, key) again (only with other functions or processes).
//! Admission comes before the transaction's first statement, so a queued run
//! takes its snapshot after the one ahead of it committed and reads fresh
//! data. A first run or a replay waits in the queue no longer than
//! [`MAX_QUEUE_WAIT`] while the queue does not move: then it is admitted
//! over the limit, so a body that waits for another call of its own label
//! cannot deadlock on the gate. A last replay is never admitted over the
//! limit (give calls whose bodies wait for each other more retries, or
//! `Contention::Off`). A permit is given back before the backoff sleep, and
//! while the gate is limiting and other runs are in it or queued, the replay
//! does not sleep at all: the queue already spaces it out.

pub(crate) mod db_lock;
mod honoured;
mod hot;
pub(crate) mod key;
mod lease;
mod limit;
mod prepare_budget;
mod queue;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr};

pub(crate) use hot::Warm;
pub(crate) use lease::LeaseGuard;
use lease::Leases;
pub(crate) use prepare_budget::PrepareBudget;
pub(crate) use queue::{Admission, Gate, Permit};

use super::engine::{DbLock, Engine};
use crate::sync::{SweepAt, lock};

/// The longest a first run or a replay waits in a gate's queue *while no run
/// of the gate finishes*: then it is admitted beside the others, over the
/// limit. A body that waits for another call of its own label (a barrier, a
/// channel) can therefore never deadlock on the gate. While runs keep
/// finishing, the queue is moving and the wait goes on, however long it is
/// (a busy or slow machine). A last replay never takes this way in.
pub(crate) const MAX_QUEUE_WAIT: Duration = Duration::from_secs(1);

/// A gate nobody used for this long, with no run in it, is forgotten when
/// the map is swept (labels built from user input would grow it forever).
pub(crate) const IDLE_GATE_EVICTED_AFTER: Duration = Duration::from_secs(300);

/// Gates kept before the first sweep; each sweep sets the next at twice
/// what it left.
const FIRST_SWEEP_AT: usize = 256;

/// Which run of a managed call asks for admission: it decides the place in
/// the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turn {
    /// A first run: it queues behind everyone.
    First,
    /// A replay: it queues ahead of first runs (behind earlier replays), so
    /// a conflicted call is not sent to the back of the line.
    Replay,
    /// The last replay the call is allowed: it runs alone in its gate (it
    /// waits until nothing else of the gate runs, and nothing is admitted
    /// beside it), so it cannot conflict with its own (label, key) again.
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

/// A resolver's contention control: its gates by (label, key), its leases
/// of database locks, and the engine facts both need.
pub(crate) struct Control {
    gates: Mutex<GateMap>,
    /// `None` where the engine has no lock across processes.
    leases: Option<Leases>,
    /// How many connections queued runs of all gates may hold by beginning
    /// early.
    budget: Arc<PrepareBudget>,
    /// Which new gates start hot.
    warm: Warm,
    /// A queued run may begin its transaction while it waits.
    begin_while_queued: bool,
    /// See `Engine::lockers_deadlock`.
    lockers_deadlock: bool,
}

struct GateMap {
    gates: HashMap<String, HashMap<Option<u64>, Arc<Gate>>>,
    /// Gates in `gates`, all labels together.
    count: usize,
    sweep_at: SweepAt,
}

impl Control {
    /// The contention control of a resolver on `db`, an `engine` database.
    pub(crate) fn new(db: &DatabaseConnection, engine: Engine) -> Self {
        Self {
            gates: Mutex::new(GateMap {
                gates: HashMap::new(),
                count: 0,
                sweep_at: SweepAt::new(FIRST_SWEEP_AT),
            }),
            leases: (engine.db_lock() != DbLock::None).then(|| Leases::new(db.clone())),
            budget: Arc::new(PrepareBudget::new(prepare_cap(engine.pool_size(db)))),
            warm: Warm::for_lock(engine.db_lock()),
            begin_while_queued: !engine.begin_waits(),
            lockers_deadlock: engine.lockers_deadlock(),
        }
    }

    /// The contention control of (`label`, `key`), its gate made on first use.
    pub(crate) fn of<'c>(&'c self, label: &'c str, key: Option<u64>) -> KeyContention<'c> {
        KeyContention {
            control: self,
            label,
            key,
            gate: self.gate(label, key),
        }
    }

    /// The gate of (`label`, `key`), made on first use.
    fn gate(&self, label: &str, key: Option<u64>) -> Arc<Gate> {
        let mut map = lock(&self.gates);
        if let Some(g) = map.gates.get(label).and_then(|keys| keys.get(&key)) {
            return g.clone();
        }
        if map.sweep_at.due(map.count) {
            let now = std::time::Instant::now();
            let mut count = 0;
            map.gates.retain(|_, keys| {
                keys.retain(|_, g| {
                    Arc::strong_count(g) > 1 || !g.idle_since(now, IDLE_GATE_EVICTED_AFTER)
                });
                count += keys.len();
                !keys.is_empty()
            });
            map.count = count;
            map.sweep_at.swept(count);
        }
        let g = Arc::new(Gate::slow_start(
            self.budget.clone(),
            self.warm.starts_warm(key),
        ));
        map.gates
            .entry(label.to_owned())
            .or_default()
            .insert(key, g.clone());
        map.count += 1;
        g
    }

    /// How many gates are kept now.
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.gates).count
    }

    /// How many transactions of (`label`, `key`) are admitted at once now
    /// (`None`: unlimited, or never called).
    pub(crate) fn limit(&self, label: &str, key: Option<u64>) -> Option<u32> {
        let gate = lock(&self.gates)
            .gates
            .get(label)
            .and_then(|keys| keys.get(&key))
            .cloned()?;
        gate.slots()
    }
}

/// Queued runs that may begin early with a pool of `pool_size`: at most a
/// quarter of it (none with a pool of fewer than 4); without a known size,
/// one per slot.
fn prepare_cap(pool_size: Option<u32>) -> Option<u32> {
    pool_size.map(|n| n / 4)
}

/// The contention control of one (label, key): its gate, and its lease of
/// the database lock across processes.
pub(crate) struct KeyContention<'c> {
    control: &'c Control,
    label: &'c str,
    key: Option<u64>,
    gate: Arc<Gate>,
}

/// One run, admitted (see [`KeyContention::enter`]).
pub(crate) struct Entry {
    /// The transaction, when it was begun while the run waited (or before
    /// it entered the lease); `None`: the run begins it now.
    pub(crate) begun: Option<Result<DatabaseTransaction, DbErr>>,
    /// Where the gate stood when it admitted the run.
    pub(crate) admitted: Option<Admission>,
    /// A last replay inside the lease: it can only lose to a run that did
    /// not ask for the lock.
    pub(crate) alone_across_processes: bool,
    /// What the run holds, and when to give it back.
    pub(crate) release: Release,
    /// How long the run waited in the gate's queue, and for the lease.
    pub(crate) waited: Waited,
}

/// How long one run waited before it ran (for metrics).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Waited {
    pub(crate) queue: Option<Duration>,
    pub(crate) lease: Option<Duration>,
}

impl Entry {
    /// A run under no contention control (`Contention::Off`).
    pub(crate) fn uncontrolled() -> Self {
        Self {
            begun: None,
            admitted: None,
            alone_across_processes: false,
            release: Release {
                permit: None,
                db_lock: None,
                before_commit: false,
            },
            waited: Waited::default(),
        }
    }
}

impl KeyContention<'_> {
    /// Admits a run of `turn`: waits for room in the gate (beginning the
    /// transaction with `begin` while it waits, where `BEGIN` takes no
    /// snapshot), and, when [the lock rule](hot#the-lock-rule) says so,
    /// enters the process's lease of the database lock from after `BEGIN`
    /// (which takes no snapshot) to before the first statement (which does).
    /// The run says it wants the lease before it queues, so that the lease is
    /// kept for it. `admit_next_before_commit`: the engine admits the next
    /// run while this one sends `COMMIT` (see `Engine::admits_next_before_commit`).
    pub(crate) async fn enter<B, F>(
        &self,
        turn: Turn,
        admit_next_before_commit: bool,
        begin: B,
    ) -> Entry
    where
        B: Fn() -> F,
        F: Future<Output = Result<DatabaseTransaction, DbErr>>,
    {
        let c = self.control;
        let ticket = match &c.leases {
            Some(leases)
                if hot::takes_db_lock(turn, self.gate.hot()) && leases.honoured().await =>
            {
                Some(leases.ticket(key::lock_id(self.label, self.key)))
            }
            _ => None,
        };
        // Admission comes before the first statement: a queued run takes
        // its snapshot after the one ahead of it finished.
        let prepare = c.begin_while_queued.then(&begin);
        let queued_at = std::time::Instant::now();
        let (permit, begun) = self.gate.admit(turn, prepare).await;
        let queue_wait = queued_at.elapsed();
        let mut lease_wait = None;
        let admitted = permit.admission();
        // A run admitted at once begins before it enters the lease (where
        // BEGIN takes no snapshot), off the serialised path. Never both at
        // once: a run holding the lease (a lock-pool connection) while it
        // waits for a pooled connection, beside runs holding pooled
        // connections while they wait for a lock-pool connection, would be a
        // lock-order cycle (pool, then lease, always).
        let (entered, begun) = match ticket {
            Some(ticket) if begun.is_none() && c.begin_while_queued => {
                let begun = begin().await;
                let entered = match &begun {
                    Ok(_) => {
                        let at = std::time::Instant::now();
                        let entered = ticket.enter(turn == Turn::Last).await;
                        lease_wait = Some(at.elapsed());
                        Some(entered)
                    }
                    // nothing to run: the ticket goes unused
                    Err(_) => None,
                };
                (entered, Some(begun))
            }
            Some(ticket) => {
                let at = std::time::Instant::now();
                let entered = ticket.enter(turn == Turn::Last).await;
                lease_wait = Some(at.elapsed());
                (Some(entered), begun)
            }
            None => (None, begun),
        };
        let db_lock = match entered {
            Some(Ok(guard)) => {
                // Other processes want this key too: the gate stays hot
                // while the lease keeps their runs and ours from conflicting
                // (else it would cool down and its runs would go without the
                // lock, beside theirs).
                if guard.contended() {
                    self.gate.mark_hot();
                }
                Some(guard)
            }
            Some(Err(e)) => {
                tracing::warn!(label = %self.label, error = %e, "could not take the contention lock across processes; running without it");
                None
            }
            None => None,
        };
        Entry {
            begun,
            admitted: Some(admitted),
            alone_across_processes: turn == Turn::Last && db_lock.is_some(),
            release: Release {
                permit: Some(permit),
                db_lock,
                before_commit: admit_next_before_commit,
            },
            waited: Waited {
                queue: Some(queue_wait),
                lease: lease_wait,
            },
        }
    }

    /// The gate's limit now (`None`: unlimited) and whether it is hot.
    pub(crate) fn state(&self) -> (Option<u32>, bool) {
        (self.gate.slots(), self.gate.hot())
    }

    /// A run of this (label, key) committed.
    pub(crate) fn on_commit(&self) {
        self.gate.on_commit();
    }

    /// A run admitted at `admitted` conflicted (`own_commit`: in its own
    /// `COMMIT`).
    pub(crate) fn on_conflict(&self, admitted: Admission, own_commit: bool) {
        self.gate
            .on_conflict(admitted, own_commit, self.control.lockers_deadlock);
    }

    /// Whether the queue will space a replay out, so that it need not sleep
    /// (see [`Gate::queue_spaces_replay`]).
    pub(crate) fn queue_spaces_replay(&self) -> bool {
        self.gate.queue_spaces_replay()
    }
}

/// The admission permit of one run and its lease of the database lock
/// across processes, and when to give them back.
pub(crate) struct Release {
    permit: Option<Permit>,
    /// Left after `COMMIT` answered, whatever the engine: a lease given back
    /// while its last run commits would be given back (and taken again)
    /// between every two runs of a process that runs one call at a time.
    db_lock: Option<LeaseGuard>,
    /// Give the permit back before `COMMIT` rather than after the run.
    before_commit: bool,
}

impl Release {
    /// The run is about to send `COMMIT`: the gate counts it, and the permit
    /// goes back now where the next run may start while this one commits.
    pub(crate) fn at_commit(&mut self) {
        if let Some(permit) = &self.permit {
            permit.committing();
        }
        if self.before_commit {
            self.permit = None;
        }
    }

    /// The lease, to be given back once `COMMIT` answered.
    pub(crate) fn take_db_lock(&mut self) -> Option<LeaseGuard> {
        self.db_lock.take()
    }
}

#[cfg(test)]
mod tests;
