//! The transactional outbox and its relay on every engine, over real HTTP on
//! loopback: an event published in a transaction exists if and only if it
//! committed; relays deliver each event once per round with the same
//! `webhook-id`, two relays never deliver one event (every engine),
//! events of one stream arrive in publish order, a failing event is given up
//! after its attempts and its stream moves on, and a relay stops on its
//! shutdown signal. Retention: `purge_inbox`, `purge_outbox`.

use crate::common;
use crate::durable::{poster, scalar};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conflictkit::events::{
    INBOX_TABLE, OUTBOX_TABLE, OutboxRelay, Publish, first_delivery, migrate_inbox, migrate_outbox,
    purge_inbox, purge_outbox,
};
use conflictkit::{ConflictResolver, Txn};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use serde_json::{Value, json};
use tokio::sync::Notify;
use warp::Filter;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    event: String,
    data: Value,
    attempt: u32,
}

/// A receiver on loopback recording every request (no de-duplication, so a
/// double delivery shows); it answers 500 to data listed in `refuse`, and
/// records any `webhook-id` that arrives while the same id is in flight.
#[derive(Clone, Default)]
struct Receiver {
    log: Arc<Mutex<Vec<Received>>>,
    in_flight: Arc<Mutex<HashMap<String, u32>>>,
    overlaps: Arc<Mutex<Vec<String>>>,
    refuse: Arc<Mutex<Vec<Value>>>,
    arrived: Arc<Notify>,
}

impl Receiver {
    async fn start(&self) -> (String, tokio::sync::oneshot::Sender<()>) {
        let this = self.clone();
        let route = warp::post()
            .and(warp::header::<String>("webhook-id"))
            .and(warp::header::<u32>("webhook-attempt"))
            .and(warp::body::form::<HashMap<String, String>>())
            .map(
                move |id: String, attempt: u32, form: HashMap<String, String>| {
                    this.receive(id, attempt, &form)
                },
            );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        tokio::spawn(
            warp::serve(route)
                .incoming(socket)
                .graceful(async {
                    let _ = rx.await;
                })
                .run(),
        );
        (format!("http://{addr}"), tx)
    }

    fn receive(
        &self,
        id: String,
        attempt: u32,
        form: &HashMap<String, String>,
    ) -> warp::http::StatusCode {
        {
            let mut in_flight = self.in_flight.lock().unwrap();
            let n = in_flight.entry(id.clone()).or_default();
            if *n > 0 {
                self.overlaps.lock().unwrap().push(id.clone());
            }
            *n += 1;
        }
        let data: Value = serde_json::from_str(&form["data"]).expect("data is JSON");
        let refused = self.refuse.lock().unwrap().contains(&data);
        self.log.lock().unwrap().push(Received {
            id: id.clone(),
            event: form["event_name"].clone(),
            data,
            attempt,
        });
        *self.in_flight.lock().unwrap().get_mut(&id).unwrap() -= 1;
        self.arrived.notify_waiters();
        if refused {
            warp::http::StatusCode::INTERNAL_SERVER_ERROR
        } else {
            warp::http::StatusCode::NO_CONTENT
        }
    }

    fn log(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }
}

async fn pending(db: &DatabaseConnection) -> i64 {
    scalar(
        db,
        &format!("SELECT COUNT(*) AS n FROM {OUTBOX_TABLE} WHERE delivered_at IS NULL AND failed_at IS NULL"),
    )
    .await
}

/// Publishes `(stream, seq)` events in one transaction each.
async fn publish_all(resolver: &ConflictResolver, events: &[(String, i64)]) -> Vec<String> {
    let mut ids = Vec::new();
    for (stream, seq) in events {
        let id = resolver
            .managed(|txn: &Txn| {
                Box::pin(async move {
                    Ok::<_, conflictkit::Error>(
                        txn.publish_in(stream, "outbox_seq", &json!(seq)).await?,
                    )
                })
            })
            .await
            .unwrap();
        ids.push(id);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_committed_events_are_delivered_once_with_their_id() {
    for_each_backend!("outbox_committed", 4, |tdb| {
        migrate_outbox(&tdb.db).await.unwrap();
        migrate_outbox(&tdb.db)
            .await
            .expect("the migration is idempotent");
        let receiver = Receiver::default();
        let (url, stop) = receiver.start().await;
        let resolver = ConflictResolver::new(tdb.db.clone());

        let committed = resolver
            .managed(|txn: &Txn| {
                Box::pin(async move {
                    Ok::<_, conflictkit::Error>(
                        txn.publish("outbox_ok", &json!({"txid": "ab12"})).await?,
                    )
                })
            })
            .await
            .unwrap();
        let rolled_back: Result<(), conflictkit::Error> = resolver
            .managed(|txn: &Txn| {
                Box::pin(async move {
                    txn.publish("outbox_rolled_back", &1).await?;
                    Err(DbErr::Custom("the transaction fails after publishing".into()).into())
                })
            })
            .await;
        assert!(rolled_back.is_err());

        let relay = OutboxRelay::new(tdb.db.clone(), poster(&url));
        assert_eq!(
            relay.deliver_pending().await.unwrap(),
            1,
            "{:?}",
            tdb.backend
        );
        assert_eq!(relay.deliver_pending().await.unwrap(), 0, "delivered once");
        let log = receiver.log();
        assert_eq!(log.len(), 1, "{:?}: {log:?}", tdb.backend);
        assert_eq!(
            log[0].id, committed,
            "the id returned by publish is the webhook-id"
        );
        assert_eq!(log[0].event, "outbox_ok");
        assert_eq!(log[0].data, json!({"txid": "ab12"}));
        assert_eq!(pending(&tdb.db).await, 0);
        let _ = stop.send(());
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_never_deliver_one_event_and_keep_each_stream_in_order() {
    for backend in common::Backend::ALL {
        let Some(tdb) = common::open(backend, "outbox_two_relays", 6).await else {
            continue;
        };
        migrate_outbox(&tdb.db).await.unwrap();
        let receiver = Receiver::default();
        let (url, stop) = receiver.start().await;
        let resolver = ConflictResolver::new(tdb.db.clone());
        let events: Vec<(String, i64)> = (0..160).map(|i| (format!("s{}", i % 8), i)).collect();
        let ids = publish_all(&resolver, &events).await;

        // Two relays, each with its own pool (two processes' worth), each
        // claiming two of the eight streams' heads at a time, so neither
        // can hold every stream.
        let a = OutboxRelay::new(common::connect(&tdb.url, 2).await, poster(&url)).batch(2);
        let b = OutboxRelay::new(common::connect(&tdb.url, 2).await, poster(&url)).batch(2);
        let (da, db) = tokio::join!(a.deliver_pending(), b.deliver_pending());
        let (da, db) = (da.unwrap(), db.unwrap());
        // What one relay left behind while the other held a stream's head.
        let rest = a.deliver_pending().await.unwrap();
        assert_eq!(da + db + rest, 160, "{backend:?}: {da} + {db} + {rest}");
        assert!(
            da > 0 && db > 0,
            "{backend:?}: both relays delivered ({da}, {db})"
        );

        let log = receiver.log();
        assert!(
            receiver.overlaps.lock().unwrap().is_empty(),
            "{backend:?}: concurrent deliveries"
        );
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for r in &log {
            *seen.entry(r.id.as_str()).or_default() += 1;
        }
        for id in &ids {
            assert_eq!(
                seen.get(id.as_str()),
                Some(&1),
                "{backend:?}: {id} delivered once"
            );
        }
        // Per stream, the sequence numbers arrive in publish order.
        let mut last: HashMap<i64, i64> = HashMap::new();
        for r in &log {
            let seq = r.data.as_i64().unwrap();
            if let Some(prev) = last.insert(seq % 8, seq) {
                assert!(
                    prev < seq,
                    "{backend:?}: stream s{} got {seq} after {prev}",
                    seq % 8
                );
            }
        }
        assert_eq!(pending(&tdb.db).await, 0);
        let _ = stop.send(());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_event_holds_up_its_stream_until_given_up_and_no_other() {
    for_each_backend!("outbox_give_up", 4, |tdb| {
        migrate_outbox(&tdb.db).await.unwrap();
        let receiver = Receiver::default();
        receiver.refuse.lock().unwrap().push(json!(-1));
        let (url, stop) = receiver.start().await;
        let resolver = ConflictResolver::new(tdb.db.clone());
        let events = [
            ("s".to_owned(), -1),
            ("s".to_owned(), 1),
            ("t".to_owned(), 2),
        ];
        let ids = publish_all(&resolver, &events).await;

        // Two attempts, an hour apart.
        let relay =
            OutboxRelay::new(tdb.db.clone(), poster(&url)).schedule([Duration::from_secs(3600)]);
        // Round 1: the poison fails and waits its hour; `s` is held up
        // behind it, `t` is not.
        assert_eq!(relay.deliver_pending().await.unwrap(), 1);
        // One batch, posted concurrently: in either order.
        let mut seen: Vec<i64> = receiver
            .log()
            .iter()
            .map(|r| r.data.as_i64().unwrap())
            .collect();
        seen.sort();
        assert_eq!(seen, [-1, 2], "{:?}", tdb.backend);

        // Its hour has passed: round 2 fails too, it is given up, and its
        // stream moves on.
        tdb.db
            .execute_unprepared(&format!("UPDATE {OUTBOX_TABLE} SET next_attempt_at = 0"))
            .await
            .unwrap();
        assert_eq!(relay.deliver_pending().await.unwrap(), 1);
        let log = receiver.log();
        let seen: Vec<Value> = log[2..].iter().map(|r| r.data.clone()).collect();
        assert_eq!(seen, [json!(-1), json!(1)], "{:?}", tdb.backend);
        let first = log.iter().position(|r| r.data == json!(-1)).unwrap();
        assert_eq!(log[first].id, ids[0]);
        assert_eq!(log[2].id, ids[0], "the same webhook-id on every round");
        assert!(
            log[2].attempt > log[first].attempt,
            "attempt numbers go on: {log:?}"
        );
        let failed = scalar(
            &tdb.db,
            &format!(
                "SELECT COUNT(*) AS n FROM {OUTBOX_TABLE} WHERE failed_at IS NOT NULL \
                 AND attempts = 2 AND last_error LIKE '%500%'"
            ),
        )
        .await;
        assert_eq!(
            failed, 1,
            "{:?}: the poison is given up with its error",
            tdb.backend
        );
        assert_eq!(pending(&tdb.db).await, 0);
        let _ = stop.send(());
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_relay_delivers_new_events_and_stops_on_its_signal() {
    let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
    migrate_outbox(&db).await.unwrap();
    let receiver = Receiver::default();
    let (url, stop) = receiver.start().await;
    let relay = OutboxRelay::new(db.clone(), poster(&url)).poll_interval(Duration::from_millis(20));
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        relay
            .run(async {
                let _ = shutdown_rx.await;
            })
            .await
    });
    let arrived = receiver.arrived.notified();
    tokio::pin!(arrived);
    arrived.as_mut().enable();
    publish_all(&ConflictResolver::new(db.clone()), &[("s".into(), 7)]).await;
    arrived.await;
    assert_eq!(receiver.log()[0].data, json!(7));
    shutdown_tx.send(()).unwrap();
    running.await.unwrap().expect("a clean stop");
    let _ = stop.send(());
}

#[tokio::test]
async fn purging_removes_old_inbox_rows_and_delivered_outbox_rows_only() {
    for_each_backend!("outbox_purge", 2, |tdb| {
        migrate_inbox(&tdb.db).await.unwrap();
        migrate_outbox(&tdb.db).await.unwrap();
        let resolver = ConflictResolver::new(tdb.db.clone());
        resolver
            .managed(|txn: &Txn| {
                Box::pin(async move {
                    first_delivery(txn, "msg_old", "e", "test").await?;
                    first_delivery(txn, "msg_new", "e", "test").await?;
                    txn.publish("old_delivered", &1).await?;
                    txn.publish("new_delivered", &2).await?;
                    txn.publish("pending", &3).await?;
                    Ok::<_, conflictkit::Error>(())
                })
            })
            .await
            .unwrap();
        let hour_ago_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            - 3600;
        let ms = hour_ago_s * 1000;
        for sql in [
            format!("UPDATE {INBOX_TABLE} SET received_at = {ms} WHERE webhook_id = 'msg_old'"),
            format!(
                "UPDATE {OUTBOX_TABLE} SET delivered_at = {ms} WHERE event_name = 'old_delivered'"
            ),
            format!(
                "UPDATE {OUTBOX_TABLE} SET delivered_at = {} WHERE event_name = 'new_delivered'",
                ms + 3_590_000
            ),
            format!("UPDATE {OUTBOX_TABLE} SET created_at = {ms} WHERE event_name = 'pending'"),
        ] {
            tdb.db.execute_unprepared(&sql).await.unwrap();
        }
        let window = Duration::from_secs(60);
        assert_eq!(
            purge_inbox(&tdb.db, window).await.unwrap(),
            1,
            "{:?}",
            tdb.backend
        );
        assert_eq!(
            purge_outbox(&tdb.db, window).await.unwrap(),
            1,
            "{:?}",
            tdb.backend
        );
        let inbox = scalar(
            &tdb.db,
            &format!("SELECT COUNT(*) AS n FROM {INBOX_TABLE} WHERE webhook_id = 'msg_new'"),
        )
        .await;
        assert_eq!(inbox, 1);
        let left = scalar(
            &tdb.db,
            &format!("SELECT COUNT(*) AS n FROM {OUTBOX_TABLE} WHERE event_name IN ('new_delivered', 'pending')"),
        )
        .await;
        assert_eq!(left, 2, "{:?}: recent and pending rows stay", tdb.backend);
        assert_eq!(
            purge_inbox(&tdb.db, window).await.unwrap(),
            0,
            "nothing more"
        );
    });
}

/// A receiver on loopback that answers every request 503 with
/// `Retry-After: <retry_after>`, counting the requests.
async fn busy_receiver(
    retry_after: &'static str,
) -> (
    String,
    Arc<std::sync::atomic::AtomicUsize>,
    tokio::sync::oneshot::Sender<()>,
) {
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = count.clone();
    let route = warp::post().map(move || {
        c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        warp::reply::with_header(
            warp::reply::with_status("busy", warp::http::StatusCode::SERVICE_UNAVAILABLE),
            "retry-after",
            retry_after,
        )
    });
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(
        warp::serve(route)
            .incoming(socket)
            .graceful(async {
                let _ = rx.await;
            })
            .run(),
    );
    (format!("http://{addr}"), count, tx)
}

fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Runs one round of `relay` on the single pending event and returns the
/// clock before and after it and the event's `next_attempt_at`.
async fn one_failed_round(db: &DatabaseConnection, relay: &OutboxRelay) -> (i64, i64, i64) {
    db.execute_unprepared(&format!("UPDATE {OUTBOX_TABLE} SET next_attempt_at = 0"))
        .await
        .unwrap();
    let before = unix_millis();
    assert_eq!(
        relay.deliver_pending().await.unwrap(),
        0,
        "the event failed"
    );
    let after = unix_millis();
    let next = scalar(
        db,
        &format!("SELECT next_attempt_at AS n FROM {OUTBOX_TABLE}"),
    )
    .await;
    (before, after, next)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_waits_what_retry_after_asks_bounded_by_its_longest_step() {
    let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
    migrate_outbox(&db).await.unwrap();
    let (url, requests, stop) = busy_receiver("1800").await;
    publish_all(&ConflictResolver::new(db.clone()), &[("s".to_owned(), 1)]).await;

    // A step of 1 ms on its own: the half hour comes from the listener's
    // `Retry-After`.
    let ms = Duration::from_millis(1);
    let relay =
        OutboxRelay::new(db.clone(), poster(&url)).schedule([ms, ms, Duration::from_secs(3600)]);
    let (before, after, next) = one_failed_round(&db, &relay).await;
    let asked = 1_800_000;
    assert!(
        (before + asked..=after + asked).contains(&next),
        "next attempt {} ms after the round, not the asked {asked}",
        next - after
    );

    // A `Retry-After` longer than the schedule's longest step is cut to it.
    let relay =
        OutboxRelay::new(db.clone(), poster(&url)).schedule([ms, ms, Duration::from_secs(10)]);
    let (before, after, next) = one_failed_round(&db, &relay).await;
    assert!(
        (before + 10_000..=after + 10_000).contains(&next),
        "next attempt {} ms after the round, not the 10 s longest step",
        next - after
    );
    assert_eq!(
        requests.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "one request per round (the poster makes no retries here)"
    );
    let errors = scalar(
        &db,
        &format!("SELECT COUNT(*) AS n FROM {OUTBOX_TABLE} WHERE last_error LIKE '%503%'"),
    )
    .await;
    assert_eq!(errors, 1, "the round's error is recorded");
    let _ = stop.send(());
}
