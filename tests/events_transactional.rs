//! Transactional handlers (`#[event_listener("…", transactional)]`) on every
//! engine, over real HTTP on loopback: the delivery's `webhook-id` goes into
//! the inbox in the handler's managed transaction, so two listeners with
//! pools of their own (two processes' worth: no shared in-memory
//! de-duplication) and a restarted one apply each delivery once; a failing
//! handler leaves no inbox row; a listener without a resolver does not start.

mod common;

use common::events::{config_with_registered, deliver_signed};
use conflictkit::events::{
    INBOX_TABLE, Listener, ListenerError, ListenerHandle, WebhookSecret, migrate_inbox,
};
use conflictkit::{ConflictResolver, Txn};
use sea_orm::{ConnectionTrait, DbErr, Statement};
use serde_json::json;

const EVENT: &str = "tx_handler_deposit";

/// Adds `cents` to account 1; a negative amount fails after writing (the
/// transaction rolls back).
#[conflictkit::event_listener("tx_handler_deposit", transactional)]
async fn on_deposit(txn: &Txn, cents: i64) -> Result<(), conflictkit::Error> {
    let balance = common::read_balance(txn, 1).await?;
    common::write_balance(txn, 1, balance + cents).await?;
    if cents < 0 {
        return Err(DbErr::Custom("negative deposits are refused".into()).into());
    }
    Ok(())
}

/// A "process": its own pool, resolver and listener.
async fn process(url: &str, secret: &WebhookSecret) -> (ListenerHandle, ConflictResolver) {
    let resolver = ConflictResolver::new(common::connect(url, 4).await);
    let handle = Listener::new(conflictkit::events::ListenerConfig {
        secrets: vec![secret.clone()],
        ..config_with_registered()
    })
    .with_resolver(resolver.clone())
    .start()
    .await
    .expect("a listener with a resolver starts");
    (handle, resolver)
}

async fn count(db: &impl ConnectionTrait, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("count")
        .expect("a row");
    row.try_get::<i64>("", "n").expect("n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_to_two_processes_and_after_a_restart_is_applied_once() {
    for_each_backend!("tx_handler_two_processes", 8, |tdb| {
        migrate_inbox(&tdb.db).await.unwrap();
        common::create_accounts(&tdb.db, &[(1, 0)]).await;
        let secret = WebhookSecret::generate();
        let (a, ra) = process(&tdb.url, &secret).await;
        let (b, rb) = process(&tdb.url, &secret).await;

        // Eight deliveries, each reaching both processes at once, all at once:
        // the same id conflicts in the inbox, different ids on the account.
        let sends = (0..8i64).flat_map(|i| {
            let id = format!("msg_tx_{i}");
            [a.local_addr(), b.local_addr()].map(|addr| {
                let (secret, id) = (secret.clone(), id.clone());
                async move { deliver_signed(addr, &secret, &id, EVENT, &json!(100 + i)).await }
            })
        });
        let replies = futures::future::join_all(sends).await;
        for pair in replies.chunks(2) {
            assert_eq!((pair[0].status, pair[1].status), (200, 200), "{pair:?}");
            // One process applied the delivery; the other found it in the
            // inbox and says it was a duplicate.
            let mut said: Vec<String> = pair
                .iter()
                .map(|r| r.json()["status"].as_str().unwrap_or_default().to_owned())
                .collect();
            said.sort();
            assert_eq!(said, ["duplicate", "handled"], "{pair:?}");
        }
        let expected: i64 = (0..8).map(|i| 100 + i).sum();
        assert_eq!(
            common::read_balance(&tdb.db, 1).await.unwrap(),
            expected,
            "{:?}: each delivery applied once",
            tdb.backend
        );
        let inbox = format!("SELECT COUNT(*) AS n FROM {INBOX_TABLE}");
        assert_eq!(count(&tdb.db, &inbox).await, 8);
        let (sa, sb) = (ra.stats(), rb.stats());
        assert_eq!(
            sa.success + sb.success,
            16,
            "{:?}: every delivery ran in a managed transaction in each process ({sa:?} {sb:?})",
            tdb.backend
        );

        // A restart: a new process with an empty memory gets replays.
        a.shutdown().await;
        let (c, _) = process(&tdb.url, &secret).await;
        for i in [0i64, 7] {
            let reply = deliver_signed(
                c.local_addr(),
                &secret,
                &format!("msg_tx_{i}"),
                EVENT,
                &json!(100 + i),
            )
            .await;
            assert_eq!(
                (reply.status, reply.json()["status"].clone()),
                (200, json!("duplicate")),
                "{reply:?}"
            );
        }
        assert_eq!(
            common::read_balance(&tdb.db, 1).await.unwrap(),
            expected,
            "{:?}: replays after a restart change nothing",
            tdb.backend
        );

        // A failing handler rolls back its writes and its inbox row.
        let reply = deliver_signed(c.local_addr(), &secret, "msg_tx_neg", EVENT, &json!(-5)).await;
        assert_eq!(reply.status, 500, "{reply:?}");
        assert!(
            reply.body.contains("negative deposits are refused"),
            "{reply:?}"
        );
        assert_eq!(common::read_balance(&tdb.db, 1).await.unwrap(), expected);
        assert_eq!(count(&tdb.db, &inbox).await, 8, "{:?}", tdb.backend);

        // A new delivery still applies.
        let reply = deliver_signed(c.local_addr(), &secret, "msg_tx_new", EVENT, &json!(1)).await;
        assert_eq!(
            (reply.status, reply.json()["status"].clone()),
            (200, json!("handled")),
            "{reply:?}"
        );
        assert_eq!(
            common::read_balance(&tdb.db, 1).await.unwrap(),
            expected + 1
        );
        b.shutdown().await;
        c.shutdown().await;
    });
}

#[tokio::test]
async fn a_delivery_without_a_webhook_id_is_refused_and_changes_nothing() {
    let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
    migrate_inbox(&db).await.unwrap();
    common::create_accounts(&db, &[(1, 0)]).await;
    let handle = Listener::new(config_with_registered())
        .with_resolver(ConflictResolver::new(db.clone()))
        .start()
        .await
        .unwrap();
    let reply = common::events::post(
        handle.local_addr(),
        "application/json",
        json!({"event_name": EVENT, "data": 5}).to_string(),
    )
    .await;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(reply.json()["error"], "missing_webhook_id", "{reply:?}");
    assert_eq!(common::read_balance(&db, 1).await.unwrap(), 0);
    handle.shutdown().await;
}

#[tokio::test]
async fn a_listener_with_a_transactional_handler_needs_a_resolver_to_start() {
    let err = Listener::new(config_with_registered())
        .start()
        .await
        .expect_err("no resolver for the transactional handler");
    match &err {
        ListenerError::MissingResolver { handler } => {
            assert!(handler.ends_with("::on_deposit"), "{handler}")
        }
        other => panic!("expected MissingResolver, got {other:?}"),
    }
    assert!(err.to_string().contains("Listener::with_resolver"), "{err}");
}
