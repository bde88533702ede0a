//! Hotness: whether a gate's (label, key) is fought over by other processes,
//! and **the rule for which runs take the database lock across processes**.
//!
//! # The lock rule
//!
//! A run holds its process's lease of the database lock of its (label, key)
//! (see [`super::lease`] and [`super::db_lock`]) when
//! - it is a call's last replay ([`Turn::Last`]), so that it can only lose
//!   to a run that did not ask for the lock; or
//! - its gate is hot: a conflict that may have come from outside the
//!   process came among the gate's last [`HOT_FOR`] commits (see
//!   [`counts_from_outside`] for which conflicts), or the gate is warm (new,
//!   on an engine where the lock is cheap, see [`Warm`]) and has not had
//!   [`WARM_FOR`] commits yet.
//!
//! A run of a cold gate takes nothing. Only engines with a lock across
//! processes take it at all (see `Engine::db_lock`). This is implemented by
//! [`takes_db_lock`]; every other place links here.

use super::Turn;
use crate::resolver::engine::DbLock;

/// Commits after the last conflict that may have come from another
/// process during which a gate stays hot.
pub(crate) const HOT_FOR: u32 = 1024;

/// A warm gate seen for the first time is hot for its first this many
/// commits: a process that joins a fight over a key already going on takes
/// the lock across processes from its first run, instead of beating other
/// processes' last replays until it lost once. Its first lock costs no wait:
/// it is taken while the run begins.
pub(crate) const WARM_FOR: u32 = 32;

/// Which new gates start warm: where the lock across processes costs
/// nothing but a round trip taken while the run begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Warm {
    /// No gate (SQLite, mock connections: no lock across processes).
    Never,
    /// Gates without a key (MySQL/MariaDB: each lock is a row of the lock
    /// table, so one per function is fine, one per key ever written is not).
    Labels,
    /// Every gate (PostgreSQL's advisory locks cost no row).
    All,
}

impl Warm {
    /// The warm start where the lock across processes is `lock`: every
    /// gate where a lock costs no row, gates without a key where it costs
    /// one, none where there is no lock.
    pub(crate) fn for_lock(lock: DbLock) -> Self {
        match lock {
            DbLock::None => Warm::Never,
            DbLock::Advisory => Warm::All,
            DbLock::LockRow => Warm::Labels,
        }
    }

    /// Whether a new gate with `key` starts warm.
    pub(crate) fn starts_warm(self, key: Option<u64>) -> bool {
        match self {
            Warm::Never => false,
            Warm::Labels => key.is_none(),
            Warm::All => true,
        }
    }
}

/// Whether a run of `turn` in a gate that is `hot` takes the database lock
/// across processes (see [the lock rule](self#the-lock-rule)).
pub(crate) fn takes_db_lock(turn: Turn, hot: bool) -> bool {
    turn == Turn::Last || hot
}

/// Whether a conflict makes its gate hot, on an engine where
/// `lockers_deadlock` (see `Engine::lockers_deadlock`).
///
/// Where lockers deadlock (MySQL/MariaDB: two runs that read a row under
/// SERIALIZABLE take shared locks, and one of them fails as a deadlock
/// victim when both write it), a conflict counts only when the run was
/// `alone` in its gate (none in flight when it was admitted, none admitted
/// since) and no other run of the gate sent `COMMIT` meanwhile
/// (`other_commits`, counted when sent, before another run can see them):
/// then it came from another process (or another function writing the same
/// rows). Elsewhere (PostgreSQL) every conflict counts: telling a conflict
/// with another process apart from one with a run of the same gate by
/// commits alone let a process stay cold while others fought over the row,
/// and its runs then beat the others' last replays (see BENCHMARKS.md,
/// "Contention control across processes"). The price is a lock round trip
/// per run for a process alone on a hot row there.
pub(crate) fn counts_from_outside(lockers_deadlock: bool, other_commits: u64, alone: bool) -> bool {
    !lockers_deadlock || (other_commits == 0 && alone)
}

/// How recently a gate met a conflict that may have come from outside.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hotness {
    /// Commits since that conflict (`None`: none ever).
    since_conflict: Option<u32>,
}

impl Hotness {
    /// A new gate's: hot for its first [`WARM_FOR`] commits when `warm`.
    pub(crate) fn new(warm: bool) -> Self {
        Self {
            since_conflict: warm.then_some(HOT_FOR - WARM_FOR),
        }
    }

    /// A conflict that may have come from outside: hot for the next
    /// [`HOT_FOR`] commits.
    pub(crate) fn mark(&mut self) {
        self.since_conflict = Some(0);
    }

    /// A run of the gate committed.
    pub(crate) fn on_commit(&mut self) {
        self.since_conflict = self.since_conflict.map(|n| n.saturating_add(1));
    }

    /// Whether such a conflict came among the last [`HOT_FOR`] commits.
    pub(crate) fn hot(&self) -> bool {
        self.since_conflict.is_some_and(|n| n < HOT_FOR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warm_gate_is_hot_for_its_first_commits() {
        let mut h = Hotness::new(true);
        for _ in 0..WARM_FOR {
            assert!(h.hot());
            h.on_commit();
        }
        assert!(
            !h.hot(),
            "no conflict in its first {WARM_FOR} commits: cold"
        );
    }

    #[test]
    fn a_gate_is_hot_from_a_conflict_from_outside_until_hot_for_commits_without_one() {
        let mut h = Hotness::new(false);
        for _ in 0..10_000 {
            h.on_commit();
        }
        assert!(!h.hot(), "never a conflict: cold, however many commits");
        h.mark();
        assert!(h.hot(), "one conflict is enough");
        for _ in 1..HOT_FOR {
            h.on_commit();
        }
        assert!(h.hot(), "still hot one commit short");
        h.mark();
        for _ in 1..HOT_FOR {
            h.on_commit();
        }
        assert!(h.hot(), "a conflict restarts the count");
        h.on_commit();
        assert!(!h.hot());
    }

    #[test]
    fn which_runs_take_the_lock_and_which_conflicts_count() {
        assert!(takes_db_lock(Turn::Last, false), "a last replay always");
        assert!(takes_db_lock(Turn::First, true));
        assert!(
            !takes_db_lock(Turn::Replay, false),
            "a cold gate's runs never"
        );
        assert!(
            counts_from_outside(false, 3, false),
            "PostgreSQL: every conflict"
        );
        assert!(counts_from_outside(true, 0, true));
        assert!(
            !counts_from_outside(true, 1, true),
            "another run of the gate committed"
        );
        assert!(
            !counts_from_outside(true, 0, false),
            "not alone in the gate"
        );
        assert_eq!(
            [Warm::Never, Warm::Labels, Warm::All]
                .map(|w| (w.starts_warm(None), w.starts_warm(Some(1)))),
            [(false, false), (true, false), (true, true)]
        );
        assert_eq!(
            [DbLock::None, DbLock::LockRow, DbLock::Advisory].map(Warm::for_lock),
            [Warm::Never, Warm::Labels, Warm::All]
        );
    }
}
