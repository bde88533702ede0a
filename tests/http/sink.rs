//! The relay delivering to a sink of its own (not HTTP), on every engine:
//! it follows the sink's outcomes — delivered, retry later (no sooner than
//! the sink's `Retry-After`), failed for good (given up at once, whatever is
//! left of the schedule, then requeued) — with the same `webhook-id` and
//! attempt numbers that go on.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conflictkit::events::{
    OUTBOX_TABLE, OutboxEvent, OutboxRelay, Publish, Sink, SinkFuture, SinkOutcome, migrate_outbox,
};
use conflictkit::{ConflictResolver, Txn};
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::durable::scalar;

/// Answers each event (by its data) from a script (then `Delivered`),
/// logging what it was handed.
#[derive(Default)]
struct Scripted {
    script: Mutex<HashMap<String, VecDeque<SinkOutcome>>>,
    log: Arc<Mutex<Vec<OutboxEvent>>>,
}

impl Sink for Scripted {
    fn deliver<'a>(&'a self, event: &'a OutboxEvent) -> SinkFuture<'a> {
        Box::pin(async move {
            self.log.lock().unwrap().push(event.clone());
            let key = event.data().unwrap().as_str().unwrap().to_owned();
            self.script
                .lock()
                .unwrap()
                .get_mut(&key)
                .and_then(VecDeque::pop_front)
                .unwrap_or(SinkOutcome::Delivered)
        })
    }
}

fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_follows_its_sinks_outcomes() {
    for_each_backend!("relay_sink", 4, |tdb| {
        migrate_outbox(&tdb.db).await.unwrap();
        let resolver = ConflictResolver::new(tdb.db.clone());
        let mut ids = HashMap::new();
        for name in ["ok", "busy", "refused"] {
            let id = resolver
                .managed(|txn: &Txn| {
                    Box::pin(async move {
                        Ok::<_, conflictkit::Error>(
                            txn.publish_in(name, "sink_test", &json!(name)).await?,
                        )
                    })
                })
                .await
                .unwrap();
            ids.insert(name, id);
        }
        let hour = Duration::from_secs(3600);
        let sink = Scripted::default();
        let log = sink.log.clone();
        sink.script.lock().unwrap().extend([
            (
                "busy".to_owned(),
                VecDeque::from([SinkOutcome::RetryLater {
                    error: "busy".into(),
                    retry_after: Some(hour),
                }]),
            ),
            (
                "refused".to_owned(),
                VecDeque::from([SinkOutcome::Failed {
                    error: "refused for good".into(),
                }]),
            ),
        ]);
        // Steps of 1 ms: an hour's wait can only come from the sink.
        let ms = Duration::from_millis(1);
        let relay = OutboxRelay::with_sink(tdb.db.clone(), sink).schedule([ms, ms, 2 * hour]);
        let state = |name: &str| format!("FROM {OUTBOX_TABLE} WHERE webhook_id = '{}'", ids[name]);

        let before = unix_millis();
        assert_eq!(
            relay.deliver_pending().await.unwrap(),
            1,
            "{:?}",
            tdb.backend
        );
        let after = unix_millis();
        assert_eq!(log.lock().unwrap().len(), 3, "{:?}", tdb.backend);
        let next = scalar(
            &tdb.db,
            &format!("SELECT next_attempt_at AS n {}", state("busy")),
        )
        .await;
        let asked = hour.as_millis() as i64;
        assert!(
            (before + asked..=after + asked).contains(&next),
            "{:?}: retried {} ms after the round, not the hour the sink asked",
            tdb.backend,
            next - after
        );
        let given_up = scalar(
            &tdb.db,
            &format!(
                "SELECT COUNT(*) AS n {} AND failed_at IS NOT NULL AND attempts = 1 \
                 AND last_error = 'refused for good'",
                state("refused")
            ),
        )
        .await;
        assert_eq!(given_up, 1, "{:?}: given up after one attempt", tdb.backend);
        assert_eq!(
            relay.deliver_pending().await.unwrap(),
            0,
            "{:?}",
            tdb.backend
        );

        // The hour passes (the deadline is moved, not the clock).
        tdb.db
            .execute_unprepared(&format!("UPDATE {OUTBOX_TABLE} SET next_attempt_at = 0"))
            .await
            .unwrap();
        assert_eq!(
            relay.deliver_pending().await.unwrap(),
            1,
            "{:?}",
            tdb.backend
        );
        assert!(relay.requeue(&ids["refused"]).await.unwrap());
        assert_eq!(
            relay.deliver_pending().await.unwrap(),
            1,
            "{:?}",
            tdb.backend
        );

        let log = log.lock().unwrap().clone();
        let seen: Vec<(&str, u32)> = log
            .iter()
            .map(|e| {
                let name = ids.iter().find(|(_, id)| **id == e.webhook_id).unwrap().0;
                (*name, e.attempt)
            })
            .collect();
        let mut first_round = seen[..3].to_vec();
        first_round.sort();
        assert_eq!(
            first_round,
            [("busy", 1), ("ok", 1), ("refused", 1)],
            "{:?}",
            tdb.backend
        );
        assert_eq!(
            seen[3..],
            [("busy", 2), ("refused", 1)],
            "{:?}: the retry is attempt 2; a requeued event starts again",
            tdb.backend
        );
        assert!(log.iter().all(|e| e.event_name == "sink_test"));
        let delivered = scalar(
            &tdb.db,
            &format!("SELECT COUNT(*) AS n FROM {OUTBOX_TABLE} WHERE delivered_at IS NOT NULL"),
        )
        .await;
        assert_eq!(delivered, 3, "{:?}", tdb.backend);
    });
}
