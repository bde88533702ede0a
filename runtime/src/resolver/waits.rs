//! How long each label's runs waited before they ran, by what they waited
//! for: totals since the resolver was built (the `conflictkit.wait.duration`
//! metric has their distribution). Recorded where each wait ends, with its
//! metric.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use super::inner::ConflictResolver;
use super::metrics::{self, Wait};
use super::plan::Plan;
use crate::sync::lock;

/// Time one label's runs spent waiting before they ran (see
/// [`ConflictResolver::waits_by_label`]).
///
/// ```
/// let waits = conflictkit::resolver::Waits::default();
/// assert_eq!(waits.total(), std::time::Duration::ZERO);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Waits {
    /// In the contention gate's queue of (label, key), or in its lane of
    /// batched calls (see [`batch`](super::batch)).
    pub queue: Duration,
    /// For this process's lease of the lock across processes.
    pub lease: Duration,
    /// For SQLite's write slot of the database file.
    pub sqlite_slot: Duration,
}

impl Waits {
    /// Every wait together.
    pub fn total(&self) -> Duration {
        self.queue + self.lease + self.sqlite_slot
    }
}

/// The waits of each label of a resolver.
#[derive(Debug, Default)]
pub(crate) struct LabelWaits(Mutex<HashMap<String, Waits>>);

impl ConflictResolver {
    /// A run of `plan`'s call waited `took` for `wait`: its label's total,
    /// and the metric.
    pub(crate) fn waited(&self, plan: &Plan, wait: Wait, took: Duration) {
        metrics::waited(plan, wait, took);
        let mut map = lock(&self.inner.waits.0);
        let waits = match map.get_mut(plan.label()) {
            Some(waits) => waits,
            None => map.entry(plan.label().to_owned()).or_default(),
        };
        match wait {
            Wait::Queue => waits.queue += took,
            Wait::Lease => waits.lease += took,
            Wait::SqliteSlot => waits.sqlite_slot += took,
        }
    }

    /// How long each label's runs waited before they ran, in total, by what
    /// they waited for: the contention queue, the lease of the lock across
    /// processes, SQLite's write slot. With
    /// [`stats_by_label`](Self::stats_by_label), what a label's calls cost
    /// beyond their own work.
    ///
    /// ```
    /// use conflictkit::{ConflictResolver, Txn};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let resolver = ConflictResolver::connect("sqlite::memory:").await?;
    /// resolver.managed(|_txn: &Txn| Box::pin(async { Ok::<_, conflictkit::Error>(()) })).await?;
    /// let waits = resolver.waits_by_label();
    /// assert!(waits.values().all(|w| w.total() < std::time::Duration::from_secs(5)));
    /// # Ok::<(), conflictkit::Error>(()) }).unwrap();
    /// ```
    pub fn waits_by_label(&self) -> BTreeMap<String, Waits> {
        lock(&self.inner.waits.0)
            .iter()
            .map(|(label, waits)| (label.clone(), *waits))
            .collect()
    }
}
