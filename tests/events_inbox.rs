//! The transactional inbox on every engine, over real HTTP on loopback: two
//! listeners with pools of their own (two processes' worth: no shared
//! in-memory de-duplication) receive the same signed delivery concurrently,
//! and a third started later (a restart) receives a replay; each delivery's
//! effect is applied exactly once.

mod common;
mod events_common;

use conflictkit::events::{
    EventContext, INBOX_TABLE, Listener, ListenerHandle, State, WebhookSecret, first_delivery,
    migrate_inbox,
};
use conflictkit::{ConflictResolver, Txn};
use events_common::{deliver_signed, isolated_config};
use sea_orm::{ConnectionTrait, Statement};

/// A "process": its own pool, resolver and listener.
async fn process(url: &str, secret: &WebhookSecret) -> ListenerHandle {
    let resolver = ConflictResolver::new(common::connect(url, 4).await);
    let listener = Listener::new(conflictkit::events::ListenerConfig {
        secrets: vec![secret.clone()],
        ..isolated_config()
    })
    .with_state(resolver);
    listener.on(
        "inbox_deposit",
        |State(resolver): State<ConflictResolver>, ctx: EventContext, cents: i64| async move {
            let id = ctx
                .webhook_id()
                .expect("signed deliveries have an id")
                .to_owned();
            resolver
                .managed(|txn: &Txn| {
                    let id = id.clone();
                    Box::pin(async move {
                        if first_delivery(txn, &id, "inbox_deposit").await? {
                            let balance = common::read_balance(txn, 1).await?;
                            common::write_balance(txn, 1, balance + cents).await?;
                        }
                        Ok::<_, conflictkit::Error>(())
                    })
                })
                .await
        },
    );
    listener.start().await.unwrap()
}

async fn deliver(handle: &ListenerHandle, secret: &WebhookSecret, id: &str, cents: i64) -> String {
    let reply = deliver_signed(
        handle.local_addr(),
        secret,
        id,
        "inbox_deposit",
        &serde_json::json!(cents),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

async fn inbox_rows(db: &impl ConnectionTrait) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {INBOX_TABLE}"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_to_two_processes_and_after_a_restart_is_applied_once() {
    for_each_backend!("inbox_two_processes", 4, |tdb| {
        migrate_inbox(&tdb.db).await.unwrap();
        migrate_inbox(&tdb.db)
            .await
            .expect("the migration is idempotent");
        common::create_accounts(&tdb.db, &[(1, 0)]).await;
        let secret = WebhookSecret::generate();
        let a = process(&tdb.url, &secret).await;
        let b = process(&tdb.url, &secret).await;

        let mut expected = 0;
        for i in 0..8i64 {
            let id = format!("msg_inbox_{i}");
            let cents = 100 + i;
            // The same delivery reaches both processes at once.
            let (ra, rb) = tokio::join!(
                deliver(&a, &secret, &id, cents),
                deliver(&b, &secret, &id, cents)
            );
            assert!(
                ra.contains("handled") && rb.contains("handled"),
                "{ra} {rb}"
            );
            expected += cents;
        }
        assert_eq!(
            common::read_balance(&tdb.db, 1).await.unwrap(),
            expected,
            "{:?}: each delivery applied once",
            tdb.backend
        );
        assert_eq!(inbox_rows(&tdb.db).await, 8);

        // A restart: a new process with an empty memory gets replays.
        a.shutdown().await;
        let c = process(&tdb.url, &secret).await;
        for i in [0i64, 7] {
            deliver(&c, &secret, &format!("msg_inbox_{i}"), 100 + i).await;
        }
        assert_eq!(
            common::read_balance(&tdb.db, 1).await.unwrap(),
            expected,
            "{:?}: replays after a restart change nothing",
            tdb.backend
        );
        // A new delivery still applies.
        deliver(&c, &secret, "msg_inbox_new", 1).await;
        assert_eq!(
            common::read_balance(&tdb.db, 1).await.unwrap(),
            expected + 1
        );
        assert_eq!(inbox_rows(&tdb.db).await, 9);
        b.shutdown().await;
        c.shutdown().await;
    });
}

#[tokio::test]
async fn a_rolled_back_transaction_leaves_no_inbox_row() {
    for_each_backend!("inbox_rollback", 2, |tdb| {
        migrate_inbox(&tdb.db).await.unwrap();
        let resolver = ConflictResolver::new(tdb.db.clone());
        let failed: Result<(), conflictkit::Error> = resolver
            .managed(|txn: &Txn| {
                Box::pin(async move {
                    assert!(first_delivery(txn, "msg_rb", "e").await?);
                    // The handler's own write fails: everything rolls back.
                    txn.execute_unprepared("UPDATE no_such_table SET x = 1")
                        .await?;
                    Ok(())
                })
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(inbox_rows(&tdb.db).await, 0, "{:?}", tdb.backend);
        // So the retry of that delivery is a first delivery.
        let first = resolver
            .managed(|txn: &Txn| {
                Box::pin(async move {
                    Ok::<_, conflictkit::Error>(first_delivery(txn, "msg_rb", "e").await?)
                })
            })
            .await
            .unwrap();
        assert!(first);
    });
}
