//! De-duplication of signed messages by `webhook-id` within the replay window.
//!
//! A sender retries with the same `webhook-id`. The first request claims the
//! id; a duplicate arriving while it runs waits for the outcome: after a
//! success it is answered 200 without dispatching, after a failure the claim
//! is released and the duplicate takes over (so a retry after a 500 runs the
//! handlers again). Ids older than the tolerance are forgotten, since such
//! requests are rejected by the timestamp check anyway.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

#[derive(Debug)]
enum State {
    /// Being handled; the channel reports `Some(success)` when done.
    InFlight(watch::Receiver<Option<bool>>),
    Done,
}

#[derive(Debug)]
struct Entry {
    timestamp: i64,
    state: State,
}

/// The set of recently seen message ids.
#[derive(Debug)]
pub(crate) struct Dedup {
    window: Duration,
    entries: Mutex<Entries>,
}

/// The ids by name, and the order they came in, so that forgetting old ids
/// costs amortised O(1) per request instead of a scan of every id. Both hold
/// (and the claim guard) share one allocation of each id.
#[derive(Debug, Default)]
struct Entries {
    by_id: HashMap<Arc<str>, Entry>,
    /// `(message timestamp, id)` in arrival order.
    arrivals: VecDeque<(i64, Arc<str>)>,
}

/// The outcome of [`Dedup::claim`].
#[derive(Debug)]
pub(crate) enum Claim<'a> {
    /// This request owns the id: dispatch, then report through the guard.
    Owner(ClaimGuard<'a>),
    /// Already handled successfully.
    Duplicate,
}

/// Releases the claim on drop unless [`ClaimGuard::succeeded`] was called.
#[derive(Debug)]
pub(crate) struct ClaimGuard<'a> {
    dedup: &'a Dedup,
    id: Arc<str>,
    tx: Option<watch::Sender<Option<bool>>>,
}

impl ClaimGuard<'_> {
    /// Marks the id as handled: later duplicates get 200 without dispatch.
    pub(crate) fn succeeded(mut self) {
        if let Some(tx) = self.tx.take() {
            if let Some(entry) = self.dedup.lock().by_id.get_mut(&self.id) {
                entry.state = State::Done;
            }
            let _ = tx.send(Some(true));
        }
    }
}

impl Drop for ClaimGuard<'_> {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            self.dedup.lock().by_id.remove(&self.id);
            let _ = tx.send(Some(false));
        }
    }
}

impl Dedup {
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            window,
            entries: Mutex::new(Entries::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims `id` (sent at `timestamp`), waiting while another request holds it.
    pub(crate) async fn claim(&self, id: &str, timestamp: i64, now: i64) -> Claim<'_> {
        loop {
            let mut waiting = {
                let mut entries = self.lock();
                self.purge(&mut entries, now);
                match entries.by_id.get(id) {
                    Some(Entry {
                        state: State::Done, ..
                    }) => return Claim::Duplicate,
                    Some(Entry {
                        state: State::InFlight(rx),
                        ..
                    }) => rx.clone(),
                    None => {
                        let (tx, rx) = watch::channel(None);
                        let id: Arc<str> = Arc::from(id);
                        entries.by_id.insert(
                            id.clone(),
                            Entry {
                                timestamp,
                                state: State::InFlight(rx),
                            },
                        );
                        entries.arrivals.push_back((timestamp, id.clone()));
                        return Claim::Owner(ClaimGuard {
                            dedup: self,
                            id,
                            tx: Some(tx),
                        });
                    }
                }
            };
            // Wait for the owner's outcome, then look again.
            let _ = waiting.wait_for(Option::is_some).await;
        }
    }

    /// Forgets the ids whose messages are older than the window, oldest
    /// arrivals first; an id still in flight stops the sweep until it is done.
    /// Arrivals are in arrival order, not timestamp order, so an expired id
    /// may wait behind a younger one for a later sweep: memory stays bounded
    /// by what arrives within about two windows.
    fn purge(&self, entries: &mut Entries, now: i64) {
        let window = i64::try_from(self.window.as_secs()).unwrap_or(i64::MAX);
        while let Some((timestamp, id)) = entries.arrivals.front() {
            if now.saturating_sub(*timestamp) <= window {
                break;
            }
            match entries.by_id.get(id) {
                Some(e) if matches!(e.state, State::InFlight(_)) => break,
                // the same id may have been claimed again later (after a
                // failure released it): only forget the entry of this arrival
                Some(e) if e.timestamp == *timestamp => {
                    entries.by_id.remove(id);
                }
                _ => {}
            }
            entries.arrivals.pop_front();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn success_makes_duplicates_and_failure_releases() {
        let d = Dedup::new(Duration::from_secs(300));
        let Claim::Owner(g) = d.claim("a", 100, 100).await else {
            panic!("first claim must own")
        };
        g.succeeded();
        assert!(matches!(d.claim("a", 100, 101).await, Claim::Duplicate));

        let Claim::Owner(g) = d.claim("b", 100, 100).await else {
            panic!("first claim must own")
        };
        drop(g); // failure
        assert!(matches!(d.claim("b", 100, 100).await, Claim::Owner(_)));
    }

    #[tokio::test]
    async fn in_flight_duplicate_waits_for_the_outcome() {
        let d = std::sync::Arc::new(Dedup::new(Duration::from_secs(300)));
        let Claim::Owner(g) = d.claim("c", 100, 100).await else {
            panic!("first claim must own")
        };
        let d2 = d.clone();
        let waiter =
            tokio::spawn(async move { matches!(d2.claim("c", 100, 100).await, Claim::Duplicate) });
        tokio::task::yield_now().await;
        g.succeeded();
        assert!(waiter.await.unwrap());
    }

    #[tokio::test]
    async fn forgetting_is_amortised_and_bounded() {
        let d = Dedup::new(Duration::from_secs(10));
        for i in 0..10_000i64 {
            if let Claim::Owner(g) = d.claim(&format!("m{i}"), i, i).await {
                g.succeeded();
            }
            // ids older than the window are gone: at most ~window ids remain
            assert!(d.len() <= 12, "{} ids remembered at {i}", d.len());
        }
        let arrivals = d.lock().arrivals.len();
        assert_eq!(arrivals, d.len());
        // a duplicate inside the window is still caught
        assert!(matches!(
            d.claim("m9995", 9995, 9999).await,
            Claim::Duplicate
        ));
    }

    #[tokio::test]
    async fn old_ids_are_forgotten() {
        let d = Dedup::new(Duration::from_secs(300));
        if let Claim::Owner(g) = d.claim("old", 100, 100).await {
            g.succeeded();
        }
        assert_eq!(d.len(), 1);
        let _guard = d.claim("new", 1000, 1000).await;
        assert_eq!(d.len(), 1, "only the new id remains");
    }
}
