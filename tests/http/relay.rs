//! The outbox relay against receivers that are down, slow or gone, on every
//! engine, over real HTTP on loopback: no database transaction is open while
//! a POST waits (the receiver looks, during the POST, with
//! `pg_stat_activity` on PostgreSQL, and for a lock on the outbox's rows on
//! MariaDB or on the database file on SQLite); an outage of several schedule steps ends in one delivery with
//! the same `webhook-id`; a crashed relay's claim is held until its lease
//! ends, then taken over; given-up events are re-queued; `migrate_outbox`
//! brings a table from before claims up to date.

use crate::common;
use crate::durable::{poster, scalar};

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conflictkit::events::{OUTBOX_TABLE, OutboxRelay, Publish, migrate_outbox};
use conflictkit::{ConflictResolver, Txn};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use warp::Filter as _;

/// Counts the transactions open on the database under test by sessions
/// other than its own (on MariaDB and SQLite: 1 when one holds a lock on the
/// outbox), from a connection of its own.
#[derive(Clone)]
struct Probe {
    db: DatabaseConnection,
}

impl Probe {
    async fn new(url: &str) -> Self {
        Self {
            db: common::connect(url, 1).await,
        }
    }

    async fn open_transactions(&self) -> i64 {
        let sql = match self.db.get_database_backend() {
            DbBackend::Postgres => {
                "SELECT COUNT(*)::BIGINT AS n FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid() \
                 AND xact_start IS NOT NULL"
            }
            // `information_schema.innodb_trx` is a cache refreshed at most
            // every 0.1 s, so it can miss a transaction just begun: look for
            // the lock a transaction holding an outbox row has instead.
            DbBackend::MySql => {
                self.db.execute_unprepared("BEGIN").await.unwrap();
                let locked = self
                    .db
                    .execute_unprepared(&format!("SELECT id FROM {OUTBOX_TABLE} FOR UPDATE NOWAIT"))
                    .await
                    .is_err();
                self.db.execute_unprepared("ROLLBACK").await.unwrap();
                return i64::from(locked);
            }
            // SQLite shows no sessions: a writer is seen by the write lock it
            // holds (taking it fails at once while another has it).
            _ => {
                self.db
                    .execute_unprepared("PRAGMA busy_timeout = 0")
                    .await
                    .unwrap();
                return match self.db.execute_unprepared("BEGIN IMMEDIATE").await {
                    Ok(_) => {
                        self.db.execute_unprepared("COMMIT").await.unwrap();
                        0
                    }
                    Err(_) => 1,
                };
            }
        };
        let row = self
            .db
            .query_one_raw(Statement::from_string(self.db.get_database_backend(), sql))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap()
    }
}

/// One request the receiver got, and what the probe saw while it waited.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    attempt: u32,
    open_transactions: Option<i64>,
}

/// A receiver on loopback answering from a script of statuses (200 once it
/// runs out); it can hold its first requests until released, and probe the
/// database during each request.
#[derive(Clone)]
struct Receiver {
    script: Arc<Mutex<VecDeque<u16>>>,
    hold: Arc<Mutex<usize>>,
    release: watch::Receiver<bool>,
    log: Arc<Mutex<Vec<Received>>>,
    arrived: mpsc::UnboundedSender<String>,
    probe: Option<Probe>,
}

struct Running {
    url: String,
    receiver: Receiver,
    arrived: mpsc::UnboundedReceiver<String>,
    release: watch::Sender<bool>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Running {
    fn log(&self) -> Vec<Received> {
        self.receiver.log.lock().unwrap().clone()
    }
}

async fn receiver(script: &[u16], hold: usize, probe: Option<Probe>) -> Running {
    let (release_tx, release) = watch::channel(false);
    let (arrived_tx, arrived) = mpsc::unbounded_channel();
    let this = Receiver {
        script: Arc::new(Mutex::new(script.iter().copied().collect())),
        hold: Arc::new(Mutex::new(hold)),
        release,
        log: Arc::default(),
        arrived: arrived_tx,
        probe,
    };
    let r = this.clone();
    let route = warp::post()
        .and(warp::header::<String>("webhook-id"))
        .and(warp::header::<u32>("webhook-attempt"))
        .then(move |id: String, attempt: u32| {
            let r = r.clone();
            async move { r.receive(id, attempt).await }
        });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(
        warp::serve(route)
            .incoming(socket)
            .graceful(async {
                let _ = stopped.await;
            })
            .run(),
    );
    Running {
        url: format!("http://{addr}"),
        receiver: this,
        arrived,
        release: release_tx,
        _stop: stop,
    }
}

impl Receiver {
    async fn receive(&self, id: String, attempt: u32) -> warp::http::StatusCode {
        let open_transactions = match &self.probe {
            Some(probe) => Some(probe.open_transactions().await),
            None => None,
        };
        self.log.lock().unwrap().push(Received {
            id: id.clone(),
            attempt,
            open_transactions,
        });
        let _ = self.arrived.send(id);
        let held = {
            let mut hold = self.hold.lock().unwrap();
            let held = *hold > 0;
            *hold = hold.saturating_sub(1);
            held
        };
        if held {
            let mut release = self.release.clone();
            let _ = release.wait_for(|released| *released).await;
        }
        let status = self.script.lock().unwrap().pop_front().unwrap_or(200);
        warp::http::StatusCode::from_u16(status).unwrap()
    }
}

async fn publish(db: &DatabaseConnection, stream: &str, seq: i64) -> String {
    ConflictResolver::new(db.clone())
        .managed(|txn: &Txn| {
            Box::pin(async move {
                Ok::<_, conflictkit::Error>(txn.publish_in(stream, "relay_seq", &json!(seq)).await?)
            })
        })
        .await
        .unwrap()
}

fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn the_default_schedule_keeps_trying_for_about_a_day() {
    let total: Duration = OutboxRelay::SCHEDULE.iter().sum();
    assert!(
        (Duration::from_secs(24 * 3600)..=Duration::from_secs(30 * 3600)).contains(&total),
        "{total:?}"
    );
    assert_eq!(
        OutboxRelay::SCHEDULE.len() + 1,
        8,
        "eight attempts, as Svix makes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_transaction_is_open_while_the_relay_posts_through_an_outage() {
    for_each_backend!("relay_no_txn", 4, |tdb| {
        migrate_outbox(&tdb.db).await.unwrap();
        let id = publish(&tdb.db, "s", 1).await;
        let probe = Probe::new(&tdb.url).await;

        // The probe sees a transaction holding the outbox's rows, as the
        // relay's `FOR UPDATE` claim used to across the POST.
        let txn = tdb.db.begin().await.unwrap();
        txn.execute_unprepared(&format!(
            "UPDATE {OUTBOX_TABLE} SET attempts = attempts WHERE id > 0"
        ))
        .await
        .unwrap();
        assert!(probe.open_transactions().await > 0, "{:?}", tdb.backend);
        txn.rollback().await.unwrap();
        assert_eq!(probe.open_transactions().await, 0, "{:?}", tdb.backend);

        // Down for two schedule steps, then up.
        let running = receiver(&[503, 503], 0, Some(probe)).await;
        let relay = OutboxRelay::new(tdb.db.clone(), poster(&running.url)).schedule([
            Duration::ZERO,
            Duration::ZERO,
            Duration::ZERO,
        ]);
        assert_eq!(
            relay.deliver_pending().await.unwrap(),
            1,
            "{:?}",
            tdb.backend
        );

        let log = running.log();
        assert_eq!(log.len(), 3, "{:?}: {log:?}", tdb.backend);
        for r in &log {
            assert_eq!(r.id, id, "{:?}: the same webhook-id", tdb.backend);
            assert_eq!(
                r.open_transactions,
                Some(0),
                "{:?}: a transaction was open during the POST",
                tdb.backend
            );
        }
        let attempts: Vec<u32> = log.iter().map(|r| r.attempt).collect();
        assert_eq!(attempts, [1, 2, 3], "{:?}", tdb.backend);
        let delivered = scalar(
            &tdb.db,
            &format!(
                "SELECT COUNT(*) AS n FROM {OUTBOX_TABLE} WHERE delivered_at IS NOT NULL \
                 AND attempts = 3 AND claim_token IS NULL AND claimed_until IS NULL"
            ),
        )
        .await;
        assert_eq!(delivered, 1, "{:?}", tdb.backend);
        assert_eq!(relay.deliver_pending().await.unwrap(), 0, "delivered once");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_relays_claim_is_held_for_its_lease_then_taken_over() {
    for_each_backend!("relay_takeover", 4, |tdb| {
        migrate_outbox(&tdb.db).await.unwrap();
        let id = publish(&tdb.db, "s", 1).await;
        let mut running = receiver(&[], 1, None).await;
        let hour = Duration::from_secs(3600);

        // Relay A claims the event and posts it; the receiver holds the
        // POST, and A dies mid-delivery.
        let a =
            OutboxRelay::new(common::connect(&tdb.url, 2).await, poster(&running.url)).lease(hour);
        let before = unix_millis();
        let crashed = tokio::spawn(async move { a.deliver_pending().await });
        assert_eq!(running.arrived.recv().await.as_deref(), Some(id.as_str()));
        let after = unix_millis();
        crashed.abort();
        assert!(crashed.await.unwrap_err().is_cancelled());

        let until = scalar(
            &tdb.db,
            &format!("SELECT claimed_until AS n FROM {OUTBOX_TABLE} WHERE claim_token IS NOT NULL"),
        )
        .await;
        let lease = hour.as_millis() as i64;
        assert!(
            (before + lease..=after + lease).contains(&until),
            "{:?}: claimed until {until}, not an hour after the claim",
            tdb.backend
        );

        // While the lease lasts, relay B leaves the event alone.
        let b = OutboxRelay::new(common::connect(&tdb.url, 2).await, poster(&running.url));
        assert_eq!(b.deliver_pending().await.unwrap(), 0, "{:?}", tdb.backend);
        assert_eq!(
            running.log().len(),
            1,
            "{:?}: B posted nothing",
            tdb.backend
        );

        // The hour passes (the claim's deadline is moved, not the clock).
        tdb.db
            .execute_unprepared(&format!(
                "UPDATE {OUTBOX_TABLE} SET claimed_until = claimed_until - {}",
                lease + 1000
            ))
            .await
            .unwrap();
        assert_eq!(b.deliver_pending().await.unwrap(), 1, "{:?}", tdb.backend);
        let log = running.log();
        assert_eq!(log.len(), 2, "{:?}", tdb.backend);
        assert_eq!(log[1].id, id, "{:?}: the same webhook-id", tdb.backend);
        let delivered = scalar(
            &tdb.db,
            &format!(
                "SELECT COUNT(*) AS n FROM {OUTBOX_TABLE} \
                 WHERE delivered_at IS NOT NULL AND claim_token IS NULL"
            ),
        )
        .await;
        assert_eq!(delivered, 1, "{:?}", tdb.backend);
        let _ = running.release.send(true);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_up_events_are_requeued_one_or_all_and_delivered() {
    for_each_backend!("relay_requeue", 4, |tdb| {
        migrate_outbox(&tdb.db).await.unwrap();
        let first = publish(&tdb.db, "a", 1).await;
        let second = publish(&tdb.db, "b", 2).await;
        let running = receiver(&[500, 500], 0, None).await;
        // No retries: given up at the first failure.
        let relay = OutboxRelay::new(tdb.db.clone(), poster(&running.url)).schedule([]);
        let failed_sql = format!(
            "SELECT COUNT(*) AS n FROM {OUTBOX_TABLE} WHERE failed_at IS NOT NULL \
             AND delivered_at IS NULL AND last_error LIKE '%500%'"
        );

        assert_eq!(relay.deliver_pending().await.unwrap(), 0);
        assert_eq!(scalar(&tdb.db, &failed_sql).await, 2, "{:?}", tdb.backend);
        assert_eq!(relay.deliver_pending().await.unwrap(), 0);
        assert_eq!(
            running.log().len(),
            2,
            "{:?}: given up, not retried",
            tdb.backend
        );

        assert!(!relay.requeue("msg_unknown").await.unwrap());
        assert!(relay.requeue(&first).await.unwrap(), "{:?}", tdb.backend);
        assert!(!relay.requeue(&first).await.unwrap(), "no longer given up");
        assert_eq!(
            relay.deliver_pending().await.unwrap(),
            1,
            "{:?}",
            tdb.backend
        );
        assert_eq!(running.log()[2].id, first);

        assert_eq!(
            relay.requeue_failed().await.unwrap(),
            1,
            "{:?}",
            tdb.backend
        );
        assert_eq!(
            relay.deliver_pending().await.unwrap(),
            1,
            "{:?}",
            tdb.backend
        );
        let log = running.log();
        assert_eq!(log[3].id, second);
        assert_eq!(log.len(), 4, "{:?}", tdb.backend);
        assert_eq!(scalar(&tdb.db, &failed_sql).await, 0, "{:?}", tdb.backend);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_outbox_adds_the_claim_columns_to_an_older_table() {
    for_each_backend!("relay_old_table", 2, |tdb| {
        // The table as the relay without claims created it.
        let id = match tdb.db.get_database_backend() {
            DbBackend::Postgres => "id BIGSERIAL PRIMARY KEY",
            DbBackend::MySql => "id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY",
            _ => "id INTEGER PRIMARY KEY AUTOINCREMENT",
        };
        tdb.db
            .execute_unprepared(&format!(
                "CREATE TABLE {OUTBOX_TABLE} ({id}, webhook_id VARCHAR(255) NOT NULL UNIQUE, \
                 stream VARCHAR(255) NOT NULL, event_name VARCHAR(255) NOT NULL, \
                 payload TEXT NOT NULL, created_at BIGINT NOT NULL, \
                 attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at BIGINT NOT NULL, \
                 delivered_at BIGINT NULL, failed_at BIGINT NULL, last_error TEXT NULL)"
            ))
            .await
            .unwrap();
        let old = publish(&tdb.db, "s", 1).await;
        migrate_outbox(&tdb.db).await.unwrap();
        migrate_outbox(&tdb.db).await.unwrap();

        let running = receiver(&[], 0, None).await;
        let relay = OutboxRelay::new(tdb.db.clone(), poster(&running.url));
        assert_eq!(
            relay.deliver_pending().await.unwrap(),
            1,
            "{:?}",
            tdb.backend
        );
        assert_eq!(running.log()[0].id, old, "{:?}", tdb.backend);
    });
}
