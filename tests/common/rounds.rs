//! The rounds of a conflict scenario, shared by the conflict tests of every
//! engine (single servers and the Galera cluster).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use conflictkit::resolver::CallOptions;
use conflictkit::{ConflictResolver, Error, Txn};
use tokio::sync::{Barrier, watch};

use super::{read_balance, write_balance};

/// Coordinates the rounds of a conflict scenario: every task reads, waits at
/// the barrier of its attempt so all of them hold the same snapshot, then
/// writes. A replay (attempt k) first waits until k-1 increments committed,
/// so it reads the winner's value and the rounds cannot overlap.
#[derive(Clone)]
pub struct Rounds {
    label: &'static str,
    barriers: Arc<Vec<Arc<Barrier>>>,
    committed: Arc<watch::Sender<u32>>,
    pub bodies: Arc<AtomicU32>,
    pub hooks_run: Arc<AtomicU32>,
}

impl Rounds {
    /// Rounds of `sizes[k]` tasks in attempt `k + 1`, calls labelled `label`.
    pub fn new(label: &'static str, sizes: &[usize]) -> Self {
        Self {
            label,
            barriers: Arc::new(sizes.iter().map(|&n| Arc::new(Barrier::new(n))).collect()),
            committed: Arc::new(watch::channel(0).0),
            bodies: Arc::new(AtomicU32::new(0)),
            hooks_run: Arc::new(AtomicU32::new(0)),
        }
    }

    /// One managed increment of account 1 by `resolver`.
    pub async fn increment(&self, resolver: &ConflictResolver) -> Result<i64, Error> {
        let rounds = self.clone();
        resolver
            .run(CallOptions::new(self.label), move |txn: &Txn| {
                let rounds = rounds.clone();
                Box::pin(async move {
                    let attempt = txn.attempt();
                    rounds.bodies.fetch_add(1, Ordering::SeqCst);
                    if attempt > 1 {
                        let mut rx = rounds.committed.subscribe();
                        rx.wait_for(|&c| c >= attempt - 1)
                            .await
                            .expect("sender alive");
                    }
                    let balance = read_balance(txn, 1).await?;
                    if let Some(barrier) = rounds.barriers.get(attempt as usize - 1) {
                        barrier.wait().await;
                    }
                    write_balance(txn, 1, balance + 1).await?;
                    let committed = rounds.committed.clone();
                    let hooks_run = rounds.hooks_run.clone();
                    txn.after_commit(move || {
                        hooks_run.fetch_add(1, Ordering::SeqCst);
                        committed.send_modify(|c| *c += 1);
                    });
                    Ok(balance + 1)
                })
            })
            .await
    }

    /// Runs one increment per resolver, all at once; the results in order
    /// and the resolvers' stats summed.
    pub async fn run_all(
        &self,
        resolvers: Vec<ConflictResolver>,
    ) -> (Vec<Result<i64, Error>>, conflictkit::resolver::Stats) {
        let handles: Vec<_> = resolvers
            .iter()
            .cloned()
            .map(|r| {
                let rounds = self.clone();
                tokio::spawn(async move { rounds.increment(&r).await })
            })
            .collect();
        let mut results = Vec::new();
        for h in handles {
            results.push(h.await.expect("task did not panic"));
        }
        let stats = resolvers.iter().map(ConflictResolver::stats).sum();
        (results, stats)
    }
}

/// The original's test_give_up, checked: of three calls with one replay each
/// in rounds of 3 then 2 (`Rounds::new(label, &[3, 2])`), exactly one gave up
/// after 2 runs, naming `label` and keeping its last (retryable) database
/// error as its source; the two others committed; the stats say so.
/// `context` names the engine or cluster in the messages.
pub fn assert_one_gave_up(
    results: &[Result<i64, Error>],
    stats: conflictkit::resolver::Stats,
    label: &str,
    context: &str,
) {
    let unresolved: Vec<&conflictkit::CannotResolveDatabaseConflict> = results
        .iter()
        .filter_map(|r| match r {
            Err(Error::Unresolved(e)) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(unresolved.len(), 1, "{context}: {results:?}");
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        2,
        "{context}: {results:?}"
    );
    let e = unresolved[0];
    assert_eq!(e.attempts(), 2, "{context}");
    assert!(e.to_string().contains(label), "{context}: {e}");
    assert!(
        ConflictResolver::is_retryable(e.last_error()),
        "{context}: last error kept as source: {e:?}"
    );
    assert_eq!(
        stats,
        conflictkit::resolver::Stats {
            success: 2,
            retries: 3,
            errors: 0,
            unresolved: 1
        },
        "{context}"
    );
}
