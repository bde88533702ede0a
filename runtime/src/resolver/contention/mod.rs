//! Adaptive contention control: an admission gate per label (managed
//! function) and optional key (`CallOptions::key`) that queues a hot
//! function, or a hot key of it, instead of letting its transactions fight.
//! Calls on different keys go through different gates and never wait for
//! each other; across processes, the runs of a hot gate and a call's last
//! replay also run inside their process's lease of a database lock (see
//! `coordination` and `lease`).
//!
//! Each gate has a concurrency limit, adjusted from what
//! its transactions report (AIMD, as in TCP congestion control):
//! - a label seen for the first time starts at 4 slots and gains a slot per
//!   commit (TCP's slow start: the limit doubles every round, and is lifted
//!   above 64), so a burst of calls on one hot row does not all collide
//!   before the gate has seen a conflict; the first cut ends it;
//! - the limit is cut only while conflicts are frequent: more than a quarter
//!   of the label's recent runs (an EWMA). Rarer
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
//! That arithmetic is the pure [`limit::Limiter`]; the queue in front of it
//! is [`queue::Gate`].
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
//! A first run or a replay waits in the queue no longer than
//! [`MAX_QUEUE_WAIT`] while the queue does not move: then it is admitted over
//! the limit, so a body that waits for another call of its own label cannot
//! deadlock on the gate. A last replay is never admitted over the limit: it
//! waits for its label to empty however long that takes (a body that waits
//! for another call of its own label must therefore not be the last replay
//! of a call: give such calls more retries or `Contention::Off`).
//!
//! A permit is given back before the backoff sleep, and while the gate is
//! limiting a label and other transactions of it are running or queued, the
//! replay does not sleep at all: the queue already spaces it out behind them.

mod limit;
mod queue;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use queue::lock;
pub(crate) use queue::{Gate, Permit};

/// The longest a first run or a replay waits in a gate's queue *while no run
/// of the gate finishes*: then it is admitted beside the others, over the
/// limit. A body that waits for another call of its own label (a barrier, a
/// channel) can therefore never deadlock on the gate. While runs keep
/// finishing, the queue is moving and the wait goes on, however long it is
/// (a busy or slow machine). A last replay never takes this way in.
pub(crate) const MAX_QUEUE_WAIT: Duration = Duration::from_secs(1);

/// Contention control of a resolver or of one call.
///
/// ```
/// use conflictkit::resolver::Contention;
/// assert_eq!("off".parse::<Contention>(), Ok(Contention::Off));
/// assert_eq!(Contention::default(), Contention::Adaptive);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Contention {
    /// Adaptive admission per (label, key), and while a key is hot, and for
    /// a call's last replay, a database lock across processes that the
    /// processes hold in turn (the default).
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

/// The gates of one resolver, by label and key.
#[derive(Debug)]
pub(crate) struct Gates {
    by_label: Mutex<GateMap>,
    /// How many connections queued runs may hold by beginning early (see
    /// [`Gate::admit`]): a share of the pool, so that they never take the
    /// connections the admitted runs and everything else need.
    prepare_cap: Option<u32>,
    /// Which new gates start hot (see `limit::WARM_FOR`).
    warm: Warm,
}

#[derive(Debug)]
struct GateMap {
    gates: HashMap<String, HashMap<Option<u64>, Arc<Gate>>>,
    /// Gates in `gates`, all labels together.
    count: usize,
    sweep_at: usize,
}

impl Default for Gates {
    fn default() -> Self {
        Self::new(None, Warm::None)
    }
}

impl Gates {
    /// Gates for a pool of `pool_size` connections (`None`: unknown); the
    /// `warm` ones are hot for their first commits, so that their runs take
    /// the lock across processes from the first one.
    pub(crate) fn new(pool_size: Option<u32>, warm: Warm) -> Self {
        Self {
            by_label: Mutex::new(GateMap {
                gates: HashMap::new(),
                count: 0,
                sweep_at: FIRST_SWEEP_AT,
            }),
            prepare_cap: prepare_cap(pool_size),
            warm,
        }
    }

    /// The gate of (`label`, `key`), made on first use.
    pub(crate) fn gate(&self, label: &str, key: Option<u64>) -> Arc<Gate> {
        let mut map = lock(&self.by_label);
        if let Some(g) = map.gates.get(label).and_then(|keys| keys.get(&key)) {
            return g.clone();
        }
        if map.count >= map.sweep_at {
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
            map.sweep_at = (2 * count).max(FIRST_SWEEP_AT);
        }
        let g = Arc::new(Gate::slow_start(
            self.prepare_cap,
            match self.warm {
                Warm::None => false,
                Warm::Labels => key.is_none(),
                Warm::All => true,
            },
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
        lock(&self.by_label).count
    }

    /// How many transactions of (`label`, `key`) are admitted at once now
    /// (`None`: unlimited, or never called).
    pub(crate) fn limit(&self, label: &str, key: Option<u64>) -> Option<u32> {
        let gate = lock(&self.by_label)
            .gates
            .get(label)
            .and_then(|keys| keys.get(&key))
            .cloned()?;
        gate.slots()
    }
}

/// Which new gates start hot (see `limit::WARM_FOR`): where the lock across
/// processes costs nothing but a round trip taken while the run begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Warm {
    /// None (SQLite, mock connections: no lock across processes).
    None,
    /// Gates without a key (MySQL/MariaDB: each lock is a row of the lock
    /// table, so one per function is fine, one per key ever written is not).
    Labels,
    /// Every gate (PostgreSQL's advisory locks cost no row).
    All,
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
#[cfg(test)]
mod tests {
    use super::queue::tests::{enter, queued, set_limit};
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn idle_gates_are_forgotten_busy_ones_kept() {
        let gates = Gates::default();
        let held = gates.gate("held", None);
        for i in 1..FIRST_SWEEP_AT {
            drop(gates.gate(&format!("label-{i}"), Some(i as u64)));
        }
        let long_ago = std::time::Instant::now()
            .checked_sub(IDLE_GATE_EVICTED_AFTER * 2)
            .expect("the clock reaches back");
        for g in lock(&gates.by_label)
            .gates
            .values()
            .flat_map(|k| k.values())
        {
            g.backdate(long_ago);
        }
        drop(gates.gate("fresh", None));
        assert_eq!(gates.len(), 2, "only the held gate and the new one remain");
        assert!(Arc::ptr_eq(&held, &gates.gate("held", None)));
    }

    #[tokio::test]
    async fn a_small_pool_lends_queued_runs_a_quarter_of_itself() {
        assert_eq!(prepare_cap(Some(3)), Some(0));
        assert_eq!(prepare_cap(Some(4)), Some(1));
        assert_eq!(prepare_cap(None), None);
        let gates = Gates::new(Some(4), Warm::None);
        let gate = gates.gate("hot", None);
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
        assert_eq!(gate.told(), 1, "one of six queued runs begins early");
        for w in waiting {
            w.abort();
        }
    }
}
