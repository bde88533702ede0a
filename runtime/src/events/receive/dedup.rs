//! De-duplication of messages by `webhook-id` within the replay window
//! (verified ids when signatures are checked, ids as sent otherwise).
//!
//! A sender retries with the same `webhook-id`. The first request claims the
//! id; a duplicate arriving while it runs waits for the outcome: after a
//! success it is answered 200 without dispatching, after a failure the claim
//! is released and the duplicate takes over (so a retry after a 500 runs the
//! handlers again). Each id keeps the latest valid timestamp it was seen
//! with, and is forgotten once that is older than the tolerance, since a
//! request that old is rejected by the timestamp check anyway. An id still in
//! flight is never forgotten, but does not hold up forgetting the others.

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
    entries: Arc<Mutex<Entries>>,
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
pub(crate) enum Claim {
    /// This request owns the id: dispatch, then report through the guard.
    Owner(ClaimGuard),
    /// Already handled successfully.
    Duplicate,
}

/// Releases the claim on drop unless [`ClaimGuard::succeeded`] was called.
/// It owns its share of the set, so it can move into the task that runs the
/// handlers and outlive the request.
#[derive(Debug)]
pub(crate) struct ClaimGuard {
    entries: Arc<Mutex<Entries>>,
    id: Arc<str>,
    tx: Option<watch::Sender<Option<bool>>>,
}

impl ClaimGuard {
    /// Marks the id as handled: later duplicates get 200 without dispatch.
    pub(crate) fn succeeded(mut self) {
        if let Some(tx) = self.tx.take() {
            if let Some(entry) = lock(&self.entries).by_id.get_mut(&self.id) {
                entry.state = State::Done;
            }
            let _ = tx.send(Some(true));
        }
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            lock(&self.entries).by_id.remove(&self.id);
            let _ = tx.send(Some(false));
        }
    }
}

fn lock(entries: &Mutex<Entries>) -> std::sync::MutexGuard<'_, Entries> {
    // A panic while holding this lock cannot leave the map inconsistent.
    entries.lock().unwrap_or_else(|e| e.into_inner())
}

impl Dedup {
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            window,
            entries: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        lock(&self.entries)
    }

    /// Claims `id` (sent at `timestamp`), waiting while another request holds it.
    pub(crate) async fn claim(&self, id: &str, timestamp: i64, now: i64) -> Claim {
        loop {
            let mut waiting = {
                let mut entries = self.lock();
                self.purge(&mut entries, now);
                // Keep the latest timestamp: a later-signed retry is
                // remembered for a window from its own timestamp.
                if let Some(entry) = entries.by_id.get_mut(id)
                    && timestamp > entry.timestamp
                {
                    entry.timestamp = timestamp;
                    if let Some((key, _)) = entries.by_id.get_key_value(id) {
                        let key = key.clone();
                        entries.arrivals.push_back((timestamp, key));
                    }
                }
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
                            entries: self.entries.clone(),
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

    /// Forgets the ids whose latest timestamp is older than the window,
    /// oldest arrivals first. An expired id still in flight is kept and its
    /// arrival moved to the back (it is looked at again on a later sweep), so
    /// a hung request never stops the others from being forgotten. Arrivals
    /// are in arrival order, not timestamp order, so an expired id may wait
    /// behind a younger one for a later sweep: memory stays bounded by what
    /// arrives within about two windows, plus the requests in flight.
    fn purge(&self, entries: &mut Entries, now: i64) {
        let window = i64::try_from(self.window.as_secs()).unwrap_or(i64::MAX);
        // Each arrival is looked at once per sweep at most.
        let mut budget = entries.arrivals.len();
        while budget > 0 {
            budget -= 1;
            let Some((timestamp, id)) = entries.arrivals.front() else {
                break;
            };
            if now.saturating_sub(*timestamp) <= window {
                break;
            }
            match entries.by_id.get(id) {
                Some(e) if e.timestamp == *timestamp && matches!(e.state, State::InFlight(_)) => {
                    if let Some(arrival) = entries.arrivals.pop_front() {
                        entries.arrivals.push_back(arrival);
                    }
                    continue;
                }
                // The same id may have been claimed again later (after a
                // failure released it) or seen with a later timestamp: only
                // forget the entry of this arrival.
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
        let d = Dedup::new(Duration::from_secs(300));
        let Claim::Owner(g) = d.claim("c", 100, 100).await else {
            panic!("first claim must own")
        };
        let mut duplicate = std::pin::pin!(d.claim("c", 100, 100));
        // A duplicate that did not wait would be ready at once.
        assert!(
            futures::poll!(duplicate.as_mut()).is_pending(),
            "the duplicate waits"
        );
        assert!(
            futures::poll!(duplicate.as_mut()).is_pending(),
            "still waiting"
        );
        g.succeeded();
        assert!(matches!(duplicate.await, Claim::Duplicate));
    }

    #[tokio::test]
    async fn when_the_owner_fails_the_waiting_duplicate_takes_over() {
        let d = Dedup::new(Duration::from_secs(300));
        let Claim::Owner(g) = d.claim("f", 100, 100).await else {
            panic!("first claim must own")
        };
        let mut duplicate = std::pin::pin!(d.claim("f", 100, 100));
        assert!(
            futures::poll!(duplicate.as_mut()).is_pending(),
            "the duplicate waits"
        );
        drop(g); // the owner's handlers failed
        let Claim::Owner(second) = duplicate.await else {
            panic!("the waiting duplicate must take the claim over")
        };
        // It now owns the id: another duplicate waits for it in turn.
        let mut third = std::pin::pin!(d.claim("f", 100, 100));
        assert!(futures::poll!(third.as_mut()).is_pending());
        second.succeeded();
        assert!(matches!(third.await, Claim::Duplicate));
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
    async fn a_hung_request_does_not_stop_forgetting_the_others() {
        let d = Dedup::new(Duration::from_secs(10));
        // Claimed and never finished.
        let Claim::Owner(_hung) = d.claim("hung", 0, 0).await else {
            panic!("first claim must own")
        };
        for i in 1..1_000i64 {
            if let Claim::Owner(g) = d.claim(&format!("m{i}"), i, i).await {
                g.succeeded();
            }
            assert!(d.len() <= 13, "{} ids remembered at {i}", d.len());
        }
        // The hung id is still claimed: a duplicate must not own it.
        let d = Arc::new(d);
        let d2 = d.clone();
        let waiter = tokio::spawn(async move { d2.claim("hung", 999, 999).await });
        tokio::task::yield_now().await;
        assert!(
            !waiter.is_finished(),
            "a duplicate waits for the hung claim"
        );
        waiter.abort();
    }

    #[tokio::test]
    async fn the_latest_timestamp_of_an_id_is_kept() {
        let d = Dedup::new(Duration::from_secs(10));
        if let Claim::Owner(g) = d.claim("a", 100, 100).await {
            g.succeeded();
        }
        // The same id re-signed later, still a duplicate.
        assert!(matches!(d.claim("a", 108, 108).await, Claim::Duplicate));
        // At 115 the first timestamp is out of the window, the second is not:
        // a replay of the re-signed request (accepted by the timestamp check)
        // is still caught.
        assert!(matches!(d.claim("a", 108, 115).await, Claim::Duplicate));
        // Once the latest timestamp is out of the window too, it is forgotten.
        let _other = d.claim("b", 130, 130).await;
        assert_eq!(d.len(), 1);
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
