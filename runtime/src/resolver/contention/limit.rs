//! The concurrency limit of one gate: AIMD with slow start and probation,
//! pure arithmetic (no clock, no queue, no async).
//!
//! - A gate seen for the first time starts at [`SLOW_START_FROM`] slots and
//!   gains a slot per commit (TCP's slow start), so a burst of calls on one
//!   hot row does not all collide before a conflict was seen; the first cut
//!   ends it. Above [`UNLIMITED_ABOVE`] the gate runs unlimited.
//! - The limit is cut only while conflicts are frequent: more than
//!   [`CUT_ABOVE`] of the recent runs (an EWMA). Rarer conflicts cost less
//!   to replay than running fewer at a time.
//! - A cut halves the limit, and takes it no higher than the commits since
//!   the previous cut; at most once per window: conflicts of runs admitted
//!   before the last cut were already answered by it. Never below 1.
//! - A clean commit raises it by `1/(damping · limit)`. Each new slot is on
//!   probation: if two or more, and more than a quarter, of the runs admitted
//!   since it opened conflict, the limit goes back one slot and the damping
//!   doubles (up to 256); after twice as many clean commits as there are
//!   slots the slot holds and the damping halves (down to 4).
//!
//! Why these numbers: see "Contention control: the constants" in
//! BENCHMARKS.md.

/// Above this limit a gate runs unlimited again.
pub(crate) const UNLIMITED_ABOVE: f64 = 64.0;
/// The limit of a gate seen for the first time, which then grows by a slot
/// per commit until the first cut (slow start).
pub(crate) const SLOW_START_FROM: f64 = 4.0;
/// The limit is cut only while more than this share of recent runs
/// conflicted.
pub(crate) const CUT_ABOVE: f64 = 0.25;
/// How much slower than TCP's `1/limit` the limit grows per clean commit, at
/// least and at most.
const MIN_DAMPING: f64 = 4.0;
const MAX_DAMPING: f64 = 256.0;
/// A new slot fails its probation when more than this share (and at least
/// two) of the runs admitted since it opened conflict.
const PROBE_FAILS_ABOVE: f64 = 0.25;
/// Weight of the newest outcome in the conflict rate (an EWMA over roughly
/// the last `1/RATE_WEIGHT` runs).
const RATE_WEIGHT: f64 = 1.0 / 8.0;

/// The adjustable concurrency limit of one gate.
#[derive(Debug, Clone, Default)]
pub(crate) struct Limiter {
    /// `None`: unlimited.
    limit: Option<f64>,
    /// Incremented at every cut and every new slot; admissions carry the
    /// value of their time.
    epoch: u64,
    /// The epoch the last cut started.
    cut_at: u64,
    /// The epoch the last new slot (the probe) started.
    rose_at: u64,
    /// How slowly the limit grows (between MIN_DAMPING and MAX_DAMPING).
    damping: f64,
    /// The newest slot is on probation.
    probing: bool,
    probe_commits: u32,
    probe_conflicts: u32,
    /// Commits since the last cut: the next cut goes no higher.
    since_cut: u32,
    /// Recent share of runs that conflicted (EWMA, 0 to 1).
    conflict_rate: f64,
    /// Gaining a slot per commit until the first cut.
    slow_start: bool,
}

impl Limiter {
    /// The limiter of a gate seen for the first time: in slow start.
    pub(crate) fn slow_start() -> Self {
        Self {
            limit: Some(SLOW_START_FROM),
            slow_start: true,
            ..Self::default()
        }
    }

    /// The limit (`None`: unlimited).
    pub(crate) fn limit(&self) -> Option<f64> {
        self.limit
    }

    /// The current epoch: what an admission now carries.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Whole transactions admitted at once (`u32::MAX`: unlimited).
    pub(crate) fn slots(&self) -> u32 {
        // `as` saturates; the limit lives in [1, UNLIMITED_ABOVE]
        self.limit.map_or(u32::MAX, |l| l.max(1.0).floor() as u32)
    }

    fn damping(&self) -> f64 {
        self.damping.clamp(MIN_DAMPING, MAX_DAMPING)
    }

    /// Sets the limit to `limit` (at least 1) and starts a new window.
    fn cut_to(&mut self, limit: f64) {
        self.slow_start = false;
        self.limit = Some(limit.max(1.0));
        self.probing = false;
        self.since_cut = 0;
        self.epoch += 1;
        self.cut_at = self.epoch;
    }

    /// A run admitted at epoch `admitted` conflicted while `in_flight` runs
    /// were admitted: cut the limit when conflicts are frequent or the newest
    /// slot failed its probe, unless it was already cut since that admission.
    ///
    /// Returns whether the conflicts go on at one slot: runs admitted one at
    /// a time since the last cut still conflict, and often, so not with each
    /// other but with transactions this gate does not see (other processes;
    /// the gate then counts as hot, see `hot`).
    pub(crate) fn on_conflict(&mut self, admitted: u64, in_flight: u32) -> bool {
        self.conflict_rate += (1.0 - self.conflict_rate) * RATE_WEIGHT;
        let at_one_slot = self.slots() == 1 && admitted >= self.cut_at && self.conflicts_frequent();
        if admitted < self.cut_at {
            return at_one_slot;
        }
        if self.probing && admitted >= self.rose_at {
            self.probe_conflicts += 1;
            let share = f64::from(self.probe_conflicts)
                / f64::from(self.probe_conflicts + self.probe_commits);
            // one conflict is not a verdict on a new slot (spread-out
            // conflicts come now and then); two at this share are
            if self.probe_conflicts >= 2 && share > PROBE_FAILS_ABOVE {
                let back = f64::from(self.slots().saturating_sub(1).max(1));
                self.damping = self.damping() * 2.0;
                self.cut_to(back);
                return at_one_slot;
            }
        }
        if self.conflict_rate > CUT_ABOVE {
            let current = self.limit.unwrap_or(f64::from(in_flight.max(1)));
            // Halve, but to no more than the commits the current limit let
            // through: a cold start with many runs on one row converges in
            // two cuts instead of log2(runs).
            let cut = (current / 2.0).min(f64::from(self.since_cut));
            self.cut_to(cut);
        }
        at_one_slot
    }

    /// A run committed: grow the limit. Returns whether the gate is
    /// limited (room may have opened for waiters).
    pub(crate) fn on_commit(&mut self) -> bool {
        self.conflict_rate -= self.conflict_rate * RATE_WEIGHT;
        self.since_cut = self.since_cut.saturating_add(1);
        if self.probing {
            self.probe_commits += 1;
            if self.probe_commits >= 2 * self.slots() {
                self.probing = false;
                self.damping = self.damping() / 2.0;
            }
        }
        let Some(l) = self.limit else {
            return false;
        };
        let grown = if self.slow_start {
            l + 1.0
        } else {
            l + 1.0 / (self.damping() * l)
        };
        if !self.slow_start && grown.floor() > l.floor() && grown <= UNLIMITED_ABOVE {
            self.epoch += 1;
            self.rose_at = self.epoch;
            self.probing = true;
            self.probe_commits = 0;
            self.probe_conflicts = 0;
        }
        self.limit = (grown <= UNLIMITED_ABOVE).then_some(grown);
        true
    }

    /// Whether conflicts are frequent now (the rate is above [`CUT_ABOVE`]).
    fn conflicts_frequent(&self) -> bool {
        self.conflict_rate > CUT_ABOVE
    }

    #[cfg(test)]
    pub(crate) fn set_limit(&mut self, limit: f64) {
        self.limit = Some(limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Consecutive conflicts that take a quiet gate's rate above CUT_ABOVE.
    fn conflicts_to_cut() -> usize {
        (1..)
            .find(|&n| 1.0 - (1.0 - RATE_WEIGHT).powi(n) > CUT_ABOVE)
            .unwrap() as usize
    }

    #[test]
    fn a_new_gate_starts_slow_and_gains_a_slot_per_commit() {
        let mut l = Limiter::slow_start();
        assert_eq!(l.limit(), Some(SLOW_START_FROM));
        l.on_commit();
        assert_eq!(l.limit(), Some(SLOW_START_FROM + 1.0));
        while l.limit().is_some_and(|x| x < UNLIMITED_ABOVE) {
            l.on_commit();
        }
        assert_eq!(
            l.limit(),
            Some(UNLIMITED_ABOVE),
            "a slot per commit, no damping"
        );
        l.on_commit();
        assert_eq!(l.limit(), None, "above 64: unlimited");
    }

    #[test]
    fn frequent_conflicts_end_the_slow_start() {
        let mut l = Limiter::slow_start();
        for _ in 0..12 {
            l.on_commit();
        }
        assert_eq!(l.limit(), Some(SLOW_START_FROM + 12.0));
        let admitted = l.epoch();
        for _ in 0..conflicts_to_cut() {
            l.on_conflict(admitted, 8);
        }
        assert!(!l.slow_start);
        assert_eq!(l.limit(), Some(8.0), "16 slots halved");
    }

    #[test]
    fn unlimited_until_a_conflict() {
        let mut l = Limiter::default();
        for _ in 0..1000 {
            assert!(!l.on_commit());
        }
        assert_eq!((l.limit(), l.slots()), (None, u32::MAX));
    }

    #[test]
    fn rare_conflicts_do_not_cut() {
        let mut l = Limiter::default();
        // one conflict in twenty runs, evenly spread: the rate stays low
        for _ in 0..5 {
            for _ in 0..19 {
                l.on_commit();
            }
            l.on_conflict(l.epoch(), 16);
        }
        assert!(!l.conflicts_frequent(), "rate {}", l.conflict_rate);
        assert_eq!(l.limit(), None, "no cut while conflicts are rare");
    }

    #[test]
    fn frequent_conflicts_cut_once_per_window_and_commits_grow_back() {
        let mut l = Limiter::default();
        for _ in 0..100 {
            l.on_commit();
        }
        let admitted = l.epoch();
        let n = conflicts_to_cut();
        for _ in 0..n - 1 {
            l.on_conflict(admitted, 16);
        }
        assert_eq!(l.limit(), None, "the rate is still below CUT_ABOVE");
        l.on_conflict(admitted, 16);
        assert_eq!(l.limit(), Some(8.0), "16 in flight, halved");
        // the others were admitted before that cut: one window, one cut
        for _ in n..16 {
            l.on_conflict(admitted, 16);
        }
        assert_eq!(l.limit(), Some(8.0));
        // two commits, then a conflict of a run admitted after the cut: the
        // limit goes to what got through, not just half
        let admitted = l.epoch();
        l.on_commit();
        l.on_commit();
        l.on_conflict(admitted, 1);
        assert_eq!(l.limit(), Some(2.0));
        l.on_conflict(l.epoch(), 1);
        assert_eq!(l.limit(), Some(1.0), "floor 1");
        l.on_commit();
        assert_eq!(
            l.limit(),
            Some(1.25),
            "damped growth at the floor: 1 + 1/(4·1)"
        );
        for _ in 0..100_000 {
            l.on_commit();
        }
        assert_eq!(l.limit(), None, "recovered: unlimited again");
    }

    #[test]
    fn frequent_conflicts_at_one_slot_are_reported() {
        let mut l = Limiter::default();
        let before = l.epoch();
        let mut reported = false;
        for _ in 0..conflicts_to_cut() + 4 {
            reported |= l.on_conflict(before, 4);
        }
        assert_eq!(
            l.slots(),
            1,
            "cut to one slot by conflicts among its own runs"
        );
        assert!(!reported, "conflicts of runs admitted beside others");
        assert!(
            l.on_conflict(l.epoch(), 0),
            "a run admitted alone conflicted while conflicts are frequent"
        );
    }

    #[test]
    fn a_failed_probe_goes_back_one_slot_and_doubles_the_damping() {
        let mut l = Limiter::default();
        let admitted = l.epoch();
        while l.limit().is_none() {
            l.on_conflict(admitted, 1);
        }
        assert_eq!(l.limit(), Some(1.0));
        // commits at damping 4 raise the limit to two slots: a probe
        let mut commits = 0;
        while l.slots() < 2 {
            l.on_commit();
            commits += 1;
        }
        assert_eq!(commits, 6, "1 → 2 at 1/(4·limit) per commit");
        assert!(l.probing);
        let on_probe = l.epoch();
        for _ in 0..3 {
            l.on_commit();
        }
        l.on_conflict(on_probe, 2);
        assert_eq!(l.slots(), 2, "one conflict in four outcomes: not yet");
        l.on_conflict(on_probe, 2);
        assert_eq!(
            l.limit(),
            Some(1.0),
            "two in five conflicted: back to one slot"
        );
        assert_eq!(l.damping(), 8.0, "the next probe comes twice as late");
        assert!(!l.probing);
    }

    #[test]
    fn a_probe_that_holds_halves_the_damping() {
        let mut l = Limiter {
            limit: Some(2.9),
            damping: 16.0,
            ..Limiter::default()
        };
        let mut commits = 0;
        while !l.probing {
            l.on_commit();
            commits += 1;
        }
        assert_eq!(commits, 5, "2.9 → 3 at 1/(16·limit) per commit");
        for _ in 0..5 {
            l.on_commit();
        }
        assert!(l.probing, "on probation for 2 · 3 commits");
        l.on_commit();
        assert!(!l.probing);
        assert_eq!(l.damping(), 8.0);
    }
}
