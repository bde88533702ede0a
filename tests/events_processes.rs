//! Exactly-once effects across real processes (the `events_node` example
//! binary, built by `cargo build --examples`) on one PostgreSQL database:
//! two listener processes receive the same signed delivery concurrently, and
//! again after one is killed and restarted; a relay process is killed with
//! SIGKILL in the middle of delivering 200 outbox events, at the moment an
//! event is applied but its reply held back (so not marked delivered), then
//! restarted towards another receiver (taking the killed relay's claim over
//! when its lease ends), whose inbox finds that event applied:
//! every event is applied exactly once.

mod common;

use std::process::Stdio;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};

use common::proxy::Proxy;
use conflictkit::events::{
    Listener, ListenerConfig, OUTBOX_TABLE, Publish, State, WebhookSecret, migrate_inbox,
    migrate_outbox,
};
use conflictkit::{ConflictResolver, Txn};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

const EVENTS: i64 = 200;

/// A child `events_node` and the readiness line it printed.
struct Node {
    child: Child,
    ready: String,
}

/// Starts `events_node <args>` and waits for its readiness line (its first
/// line on stdout).
async fn node(args: &[&str]) -> Node {
    let mut child = Command::new(common::example_binary(
        "events_node",
        "examples/events_node.rs",
    ))
    .args(args)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .kill_on_drop(true)
    .spawn()
    .expect("events_node starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let ready = BufReader::new(stdout)
        .lines()
        .next_line()
        .await
        .expect("read events_node's stdout")
        .unwrap_or_else(|| panic!("events_node {args:?} exited before it was ready"));
    Node { child, ready }
}

impl Node {
    /// SIGKILL, and reap it.
    async fn kill(mut self) {
        self.child.kill().await.expect("SIGKILL");
    }

    /// Closes its stdin (it stops cleanly) and waits for it to exit.
    async fn stop(mut self) {
        drop(self.child.stdin.take());
        let status = self.child.wait().await.expect("wait");
        assert!(status.success(), "events_node exited with {status}");
    }
}

async fn create_counters(db: &DatabaseConnection) {
    db.execute_unprepared("CREATE TABLE node_applied (seq BIGINT PRIMARY KEY, n BIGINT NOT NULL)")
        .await
        .unwrap();
    let values: Vec<String> = (0..=EVENTS).map(|i| format!("({i}, 0)")).collect();
    db.execute_unprepared(&format!(
        "INSERT INTO node_applied (seq, n) VALUES {}",
        values.join(", ")
    ))
    .await
    .unwrap();
}

/// `(applied at least once, applied more than once)` over all counters.
async fn applied(db: &DatabaseConnection) -> (i64, i64) {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COALESCE(SUM(CASE WHEN n >= 1 THEN 1 ELSE 0 END), 0) AS once, \
             COALESCE(SUM(CASE WHEN n > 1 THEN 1 ELSE 0 END), 0) AS more FROM node_applied",
        ))
        .await
        .unwrap()
        .unwrap();
    (
        row.try_get("", "once").unwrap(),
        row.try_get("", "more").unwrap(),
    )
}

async fn pg() -> Option<common::TestDb> {
    common::open(common::Backend::Postgres, "events_processes", 8).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_listener_processes_and_a_restart_apply_a_delivery_once() {
    let Some(tdb) = pg().await else { return };
    migrate_inbox(&tdb.db).await.unwrap();
    create_counters(&tdb.db).await;
    let secret = WebhookSecret::generate();
    let whsec = secret.to_whsec();
    let a = node(&["listen", &tdb.url, &whsec]).await;
    let b = node(&["listen", &tdb.url, &whsec]).await;
    let addr = |n: &Node| {
        n.ready
            .trim_start_matches("listening on ")
            .parse()
            .expect("an address")
    };
    let (addr_a, addr_b) = (addr(&a), addr(&b));

    for seq in 0..10i64 {
        let (id, data) = (format!("msg_node_{seq}"), json!(seq));
        let (ra, rb) = tokio::join!(
            common::events::deliver_signed(addr_a, &secret, &id, "node_apply", &data),
            common::events::deliver_signed(addr_b, &secret, &id, "node_apply", &data),
        );
        assert_eq!((ra.status, rb.status), (200, 200), "{ra:?} {rb:?}");
    }
    assert_eq!(
        applied(&tdb.db).await,
        (10, 0),
        "each delivery applied once"
    );

    // Process A dies and comes back with an empty memory; the sender retries.
    a.kill().await;
    let a = node(&["listen", &tdb.url, &whsec]).await;
    let addr_a = addr(&a);
    for seq in 0..10i64 {
        let reply = common::events::deliver_signed(
            addr_a,
            &secret,
            &format!("msg_node_{seq}"),
            "node_apply",
            &json!(seq),
        )
        .await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    assert_eq!(
        applied(&tdb.db).await,
        (10, 0),
        "retries after a restart change nothing"
    );
    let reply =
        common::events::deliver_signed(addr_a, &secret, "msg_node_new", "node_apply", &json!(10))
            .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(applied(&tdb.db).await, (11, 0));
    a.stop().await;
    b.stop().await;
}

/// What the receiver's handler reports: first-time applies, counted after
/// their commit. At the `hold_at`-th, before its reply is written, the proxy
/// in front of the receiver starts holding replies.
#[derive(Clone)]
struct Progress {
    applied: Arc<AtomicI64>,
    tx: Arc<watch::Sender<i64>>,
    hold_at: i64,
    proxy: Arc<OnceLock<Proxy>>,
}

/// The receiver: applies `node_apply` in a managed transaction with its
/// inbox row, and reports each commit.
#[conflictkit::event_listener("node_apply", transactional)]
async fn apply(
    txn: &Txn,
    State(progress): State<Progress>,
    seq: i64,
) -> Result<(), conflictkit::Error> {
    txn.execute_raw(Statement::from_sql_and_values(
        txn.get_database_backend(),
        "UPDATE node_applied SET n = n + 1 WHERE seq = $1",
        [seq.into()],
    ))
    .await?;
    txn.after_commit(move || {
        let n = progress.applied.fetch_add(1, Ordering::SeqCst) + 1;
        if n == progress.hold_at
            && let Some(proxy) = progress.proxy.get()
        {
            // Hooks run before the handler returns: this event's reply is held.
            proxy.hold_replies(true);
        }
        progress.tx.send_replace(n);
    });
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_mid_delivery_and_restarted_delivers_every_event_once() {
    let Some(tdb) = pg().await else { return };
    migrate_inbox(&tdb.db).await.unwrap();
    migrate_outbox(&tdb.db).await.unwrap();
    create_counters(&tdb.db).await;
    ConflictResolver::new(tdb.db.clone())
        .managed(|txn: &Txn| {
            Box::pin(async move {
                for seq in 0..EVENTS {
                    txn.publish("node_apply", &seq).await?;
                }
                Ok::<_, conflictkit::Error>(())
            })
        })
        .await
        .unwrap();

    let secret = WebhookSecret::generate();
    let (tx, mut progress) = watch::channel(0);
    let hold_at = EVENTS / 3;
    let proxy = Arc::new(OnceLock::new());
    let progress_state = Progress {
        applied: Arc::new(AtomicI64::new(0)),
        tx: Arc::new(tx),
        hold_at,
        proxy: proxy.clone(),
    };
    // Two receivers on the database, pools and memories of their own: the
    // first relay delivers to A through a proxy that can hold A's replies,
    // the restarted one to B.
    let receiver = |resolver: ConflictResolver| {
        Listener::new(ListenerConfig {
            secrets: vec![secret.clone()],
            ..common::events::config_with_registered()
        })
        .with_state(progress_state.clone())
        .with_resolver(resolver)
        .start()
    };
    let a = receiver(ConflictResolver::new(common::connect(&tdb.url, 4).await))
        .await
        .unwrap();
    let resolver_b = ConflictResolver::new(common::connect(&tdb.url, 4).await);
    let b = receiver(resolver_b.clone()).await.unwrap();
    let (to_a, via_proxy) = Proxy::for_url(&format!("http://{}", a.local_addr())).await;
    assert!(proxy.set(to_a).is_ok());

    // A lease of one second on its claims: the restarted relay takes the
    // killed one's claim over once it ends.
    let relay = node(&["relay", &tdb.url, &via_proxy, &secret.to_whsec(), "1000"]).await;
    // The `hold_at`-th event is applied and its reply held: the relay waits
    // for it and has not marked the event delivered. Kill the relay then.
    progress.wait_for(|n| *n >= hold_at).await.unwrap();
    relay.kill().await;
    let applied_by_a = *progress.borrow();
    assert_eq!(applied_by_a, hold_at, "the relay waited for the held reply");
    let pending_sql = format!(
        "SELECT COUNT(*) AS n FROM {OUTBOX_TABLE} WHERE delivered_at IS NULL AND failed_at IS NULL"
    );
    let pending = |db: DatabaseConnection, sql: String| async move {
        let row = db
            .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap()
    };
    assert_eq!(
        pending(tdb.db.clone(), pending_sql.clone()).await,
        EVENTS - applied_by_a + 1,
        "the event whose reply was held is still pending"
    );
    if let Some(proxy) = proxy.get() {
        proxy.hold_replies(false);
    }

    let to_b = format!("http://{}", b.local_addr());
    let relay = node(&["relay", &tdb.url, &to_b, &secret.to_whsec()]).await;
    progress.wait_for(|n| *n >= EVENTS).await.unwrap();
    relay.stop().await;

    assert_eq!(
        applied(&tdb.db).await,
        (EVENTS, 0),
        "every event applied, none twice"
    );
    assert_eq!(*progress.borrow(), EVENTS, "no event applied twice");
    assert_eq!(
        pending(tdb.db.clone(), pending_sql).await,
        0,
        "every event marked delivered"
    );
    // B committed a managed call for every delivery it got: the events it
    // applied, and the redelivered one its inbox found applied by A.
    let found_applied = resolver_b.stats().success as i64 - (EVENTS - applied_by_a);
    assert!(
        found_applied >= 1,
        "the event applied by A was redelivered to B and found in the inbox ({found_applied})"
    );
    a.shutdown().await;
    b.shutdown().await;
}
