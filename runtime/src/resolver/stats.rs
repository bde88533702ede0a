//! Counters of a resolver, kept exactly as the original `ConflictResolver.stats`.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a resolver's counters.
///
/// Counting follows the original cryptoassets.core resolver:
/// - `success`: managed calls that committed;
/// - `retries`: every conflict seen by a retryable call, *including* the final
///   one that made it give up (so giving up with `retries = 1` adds 2 here);
/// - `errors`: calls that failed with an error that is not a conflict;
/// - `unresolved`: calls that gave up with [`CannotResolveDatabaseConflict`](super::CannotResolveDatabaseConflict).
///
/// ```
/// # async fn demo(resolver: conflictkit::ConflictResolver) {
/// let stats = resolver.stats();
/// println!("{} ok, {} replays", stats.success, stats.retries);
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Calls that committed.
    pub success: u64,
    /// Conflicts seen (each one caused a replay, except a final give-up).
    pub retries: u64,
    /// Calls that failed with a non-conflict error.
    pub errors: u64,
    /// Calls that gave up on a conflict.
    pub unresolved: u64,
}

impl std::ops::Add for Stats {
    type Output = Stats;
    fn add(self, o: Stats) -> Stats {
        Stats {
            success: self.success + o.success,
            retries: self.retries + o.retries,
            errors: self.errors + o.errors,
            unresolved: self.unresolved + o.unresolved,
        }
    }
}

impl std::iter::Sum for Stats {
    fn sum<I: Iterator<Item = Stats>>(iter: I) -> Stats {
        iter.fold(Stats::default(), |a, b| a + b)
    }
}

#[derive(Debug, Default)]
pub(crate) struct AtomicStats {
    success: AtomicU64,
    retries: AtomicU64,
    errors: AtomicU64,
    unresolved: AtomicU64,
}

impl AtomicStats {
    pub(crate) fn success(&self) {
        self.success.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn unresolved(&self) {
        self.unresolved.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            success: self.success.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            unresolved: self.unresolved.load(Ordering::Relaxed),
        }
    }
}

/// The counters of each label of a resolver (see
/// [`ConflictResolver::stats_by_label`](super::ConflictResolver::stats_by_label)).
/// One entry per label: labels are function paths or call sites, as many
/// as the code has.
#[derive(Debug, Default)]
pub(crate) struct LabelStats {
    by_label: std::sync::Mutex<std::collections::HashMap<String, Stats>>,
}

impl LabelStats {
    fn with(&self, label: &str, f: impl FnOnce(&mut Stats)) {
        let mut map = crate::sync::lock(&self.by_label);
        match map.get_mut(label) {
            Some(stats) => f(stats),
            None => f(map.entry(label.to_owned()).or_default()),
        }
    }

    pub(crate) fn ended(&self, label: &str, outcome: super::metrics::Outcome) {
        use super::metrics::Outcome;
        self.with(label, |s| match outcome {
            Outcome::Committed => s.success += 1,
            Outcome::GaveUp => s.unresolved += 1,
            Outcome::Error | Outcome::Deadline | Outcome::Ambiguous => s.errors += 1,
        });
    }

    pub(crate) fn conflicted(&self, label: &str) {
        self.with(label, |s| s.retries += 1);
    }

    pub(crate) fn snapshot(&self) -> std::collections::BTreeMap<String, Stats> {
        crate::sync::lock(&self.by_label)
            .iter()
            .map(|(label, stats)| (label.clone(), *stats))
            .collect()
    }
}
