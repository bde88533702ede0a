//! The transactional inbox on every engine, over real HTTP on loopback: two
//! listeners with pools of their own (two processes' worth: no shared
//! in-memory de-duplication) receive the same signed delivery concurrently,
//! and a third started later (a restart) receives a replay; each delivery's
//! effect is applied exactly once. Two transactional handlers of one event
//! each apply a delivery once (the inbox is keyed per consumer); an inbox
//! from before consumers is migrated, its deliveries staying applied; a
//! `webhook-id` longer than the inbox holds is refused with 400.

mod common;

use common::events::{config_with_registered, deliver_signed, isolated_config};
use conflictkit::events::{
    EventContext, INBOX_TABLE, LEGACY_CONSUMER, Listener, ListenerHandle, MAX_WEBHOOK_ID_CHARS,
    State, WebhookSecret, first_delivery, migrate_inbox, purge_inbox,
};
use conflictkit::{ConflictResolver, Txn};
use sea_orm::{ConnectionTrait, DbErr, Statement};
use serde_json::json;

/// The event two transactional handlers below both handle.
const TWO: &str = "inbox_two_consumers";

/// One of the two transactional handlers of [`TWO`]: records its effect.
#[conflictkit::event_listener("inbox_two_consumers", transactional)]
async fn ledger(txn: &Txn, ctx: EventContext, cents: i64) -> Result<(), conflictkit::Error> {
    Ok(record_effect(txn, "ledger", &ctx, cents).await?)
}

/// The other one.
#[conflictkit::event_listener("inbox_two_consumers", transactional)]
async fn audit(txn: &Txn, ctx: EventContext, cents: i64) -> Result<(), conflictkit::Error> {
    Ok(record_effect(txn, "audit", &ctx, cents).await?)
}

/// One row per application of a delivery by a handler (no key: applying it
/// twice shows as two rows).
async fn record_effect(txn: &Txn, who: &str, ctx: &EventContext, cents: i64) -> Result<(), DbErr> {
    let id = ctx.webhook_id().unwrap_or_default();
    txn.execute_unprepared(&format!(
        "INSERT INTO inbox_effects (who, webhook_id, cents) VALUES ('{who}', '{id}', {cents})"
    ))
    .await?;
    Ok(())
}

async fn create_effects(db: &impl ConnectionTrait) {
    db.execute_unprepared(
        "CREATE TABLE inbox_effects (who VARCHAR(16) NOT NULL, webhook_id VARCHAR(255) NOT NULL, cents BIGINT NOT NULL)",
    )
    .await
    .expect("create inbox_effects");
}

/// How many times `who` applied the delivery `id`.
async fn effects(db: &impl ConnectionTrait, who: &str, id: &str) -> i64 {
    count(
        db,
        &format!(
            "SELECT COUNT(*) AS n FROM inbox_effects WHERE who = '{who}' AND webhook_id = '{id}'"
        ),
    )
    .await
}

async fn count(db: &impl ConnectionTrait, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .expect("a row");
    row.try_get::<i64>("", "n").expect("n")
}

/// A "process" running the `#[event_listener]` handlers of this file (the
/// two transactional handlers of [`TWO`]): its own pool, resolver and
/// listener.
async fn two_handler_process(url: &str, secret: &WebhookSecret) -> ListenerHandle {
    Listener::new(conflictkit::events::ListenerConfig {
        secrets: vec![secret.clone()],
        ..config_with_registered()
    })
    .with_resolver(ConflictResolver::new(common::connect(url, 4).await))
    .start()
    .await
    .expect("a listener with a resolver starts")
}

/// Delivers `id` of [`TWO`]; the status and the reply's `status` field.
async fn deliver_two(handle: &ListenerHandle, secret: &WebhookSecret, id: &str) -> (u16, String) {
    let reply = deliver_signed(handle.local_addr(), secret, id, TWO, &json!(5)).await;
    let said = serde_json::from_str::<serde_json::Value>(&reply.body)
        .ok()
        .and_then(|v| v["status"].as_str().map(str::to_owned))
        .unwrap_or_else(|| reply.body.clone());
    (reply.status, said)
}

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
                        if first_delivery(txn, &id, "inbox_deposit", "balance").await? {
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
    count(db, &format!("SELECT COUNT(*) AS n FROM {INBOX_TABLE}")).await
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
                    assert!(first_delivery(txn, "msg_rb", "e", "test").await?);
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
                    Ok::<_, conflictkit::Error>(first_delivery(txn, "msg_rb", "e", "test").await?)
                })
            })
            .await
            .unwrap();
        assert!(first);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_transactional_handlers_of_one_event_each_apply_a_delivery_once() {
    for_each_backend!("inbox_two_consumers", 8, |tdb| {
        migrate_inbox(&tdb.db).await.unwrap();
        create_effects(&tdb.db).await;
        let secret = WebhookSecret::generate();
        let a = two_handler_process(&tdb.url, &secret).await;
        let b = two_handler_process(&tdb.url, &secret).await;

        // One delivery: both handlers apply it.
        assert_eq!(
            deliver_two(&a, &secret, "msg_two_1").await,
            (200, "handled".into())
        );
        for who in ["ledger", "audit"] {
            assert_eq!(
                effects(&tdb.db, who, "msg_two_1").await,
                1,
                "{:?}: {who} applied the delivery",
                tdb.backend
            );
        }
        let rows_of =
            |id: &str| format!("SELECT COUNT(*) AS n FROM {INBOX_TABLE} WHERE webhook_id = '{id}'");
        assert_eq!(
            count(&tdb.db, &rows_of("msg_two_1")).await,
            2,
            "one inbox row per handler"
        );

        // Redeliveries, to the same process and to another one (no shared
        // memory: the inbox decides): neither handler applies it again.
        assert_eq!(
            deliver_two(&a, &secret, "msg_two_1").await,
            (200, "duplicate".into())
        );
        assert_eq!(
            deliver_two(&b, &secret, "msg_two_1").await,
            (200, "duplicate".into()),
            "{:?}: every handler found the delivery in the inbox",
            tdb.backend
        );
        for who in ["ledger", "audit"] {
            assert_eq!(
                effects(&tdb.db, who, "msg_two_1").await,
                1,
                "{:?}: {who}",
                tdb.backend
            );
        }

        // One delivery reaching both processes at once: each handler applies
        // it once, whichever process wins each one.
        let (ra, rb) = tokio::join!(
            deliver_two(&a, &secret, "msg_two_2"),
            deliver_two(&b, &secret, "msg_two_2")
        );
        assert_eq!((ra.0, rb.0), (200, 200), "{ra:?} {rb:?}");
        assert!(
            ra.1 == "handled" || rb.1 == "handled",
            "one of them applied something: {ra:?} {rb:?}"
        );
        for who in ["ledger", "audit"] {
            assert_eq!(
                effects(&tdb.db, who, "msg_two_2").await,
                1,
                "{:?}: {who} applied the concurrent delivery once",
                tdb.backend
            );
        }
        assert_eq!(count(&tdb.db, &rows_of("msg_two_2")).await, 2);
        a.shutdown().await;
        b.shutdown().await;
    });
}

/// The inbox table as the build before consumers created it.
const OLD_INBOX: &str = "CREATE TABLE conflictkit_inbox (\
    webhook_id VARCHAR(255) NOT NULL PRIMARY KEY, \
    event_name VARCHAR(255) NOT NULL, \
    received_at BIGINT NOT NULL)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbox_from_before_consumers_is_migrated_and_its_deliveries_stay_applied() {
    for_each_backend!("inbox_legacy_migration", 8, |tdb| {
        tdb.db.execute_unprepared(OLD_INBOX).await.unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        tdb.db
            .execute_unprepared(&format!(
                "INSERT INTO {INBOX_TABLE} (webhook_id, event_name, received_at) VALUES \
                 ('msg_legacy', '{TWO}', {now}), ('msg_legacy_old', '{TWO}', {})",
                now - 3600
            ))
            .await
            .unwrap();
        create_effects(&tdb.db).await;

        // Two processes starting at once both migrate: one does it, the
        // other finds it done.
        let other = common::connect(&tdb.url, 2).await;
        let (first, second) = tokio::join!(migrate_inbox(&tdb.db), migrate_inbox(&other));
        first.unwrap_or_else(|e| panic!("{:?}: {e}", tdb.backend));
        second.unwrap_or_else(|e| panic!("{:?}: {e}", tdb.backend));
        migrate_inbox(&tdb.db)
            .await
            .expect("idempotent after the migration");

        // The old rows are kept, with the legacy consumer.
        assert_eq!(inbox_rows(&tdb.db).await, 2, "{:?}", tdb.backend);
        assert_eq!(
            count(
                &tdb.db,
                &format!(
                    "SELECT COUNT(*) AS n FROM {INBOX_TABLE} WHERE consumer = '{LEGACY_CONSUMER}'"
                )
            )
            .await,
            2
        );

        // An old row's delivery counts as applied for every handler.
        let secret = WebhookSecret::generate();
        let a = two_handler_process(&tdb.url, &secret).await;
        assert_eq!(
            deliver_two(&a, &secret, "msg_legacy").await,
            (200, "duplicate".into()),
            "{:?}: a delivery an earlier build recorded is not applied again",
            tdb.backend
        );
        for who in ["ledger", "audit"] {
            assert_eq!(
                effects(&tdb.db, who, "msg_legacy").await,
                0,
                "{:?}: {who}",
                tdb.backend
            );
        }
        // Also for a consumer of your own.
        let resolver = ConflictResolver::new(tdb.db.clone());
        let first = resolver
            .managed(|txn: &Txn| {
                Box::pin(async move {
                    Ok::<_, conflictkit::Error>(
                        first_delivery(txn, "msg_legacy", TWO, "mine").await?,
                    )
                })
            })
            .await
            .unwrap();
        assert!(!first, "{:?}", tdb.backend);

        // New deliveries are per handler: both apply them, once.
        assert_eq!(
            deliver_two(&a, &secret, "msg_after").await,
            (200, "handled".into()),
            "{:?}",
            tdb.backend
        );
        let b = two_handler_process(&tdb.url, &secret).await;
        assert_eq!(
            deliver_two(&b, &secret, "msg_after").await,
            (200, "duplicate".into()),
            "{:?}",
            tdb.backend
        );
        for who in ["ledger", "audit"] {
            assert_eq!(
                effects(&tdb.db, who, "msg_after").await,
                1,
                "{:?}: {who}",
                tdb.backend
            );
        }

        // Old rows are purged like the others.
        assert_eq!(
            purge_inbox(&tdb.db, std::time::Duration::from_secs(1800))
                .await
                .unwrap(),
            1
        );
        a.shutdown().await;
        b.shutdown().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_id_longer_than_the_inbox_holds_is_refused_with_400() {
    for_each_backend!("inbox_long_id", 4, |tdb| {
        migrate_inbox(&tdb.db).await.unwrap();
        create_effects(&tdb.db).await;
        let secret = WebhookSecret::generate();
        let a = two_handler_process(&tdb.url, &secret).await;

        let too_long = format!("msg_{}", "x".repeat(MAX_WEBHOOK_ID_CHARS - 3));
        let reply = deliver_signed(a.local_addr(), &secret, &too_long, TWO, &json!(5)).await;
        assert_eq!(reply.status, 400, "{:?}: {reply:?}", tdb.backend);
        let body = reply.json();
        assert_eq!(body["error"], "webhook_id_too_long", "{reply:?}");
        assert_eq!(body["limit"], MAX_WEBHOOK_ID_CHARS, "{reply:?}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains("at most 255 characters"), "{message}");
        assert!(message.contains("this one has 256"), "{message}");
        assert_eq!(
            inbox_rows(&tdb.db).await,
            0,
            "{:?}: nothing recorded",
            tdb.backend
        );
        assert_eq!(
            count(&tdb.db, "SELECT COUNT(*) AS n FROM inbox_effects").await,
            0,
            "{:?}: nothing ran",
            tdb.backend
        );

        // At the limit, the id is recorded whole: another process sees the
        // same id as a redelivery.
        let longest = format!("msg_{}", "x".repeat(MAX_WEBHOOK_ID_CHARS - 4));
        assert_eq!(
            deliver_two(&a, &secret, &longest).await,
            (200, "handled".into()),
            "{:?}",
            tdb.backend
        );
        let b = two_handler_process(&tdb.url, &secret).await;
        assert_eq!(
            deliver_two(&b, &secret, &longest).await,
            (200, "duplicate".into()),
            "{:?}",
            tdb.backend
        );
        for who in ["ledger", "audit"] {
            assert_eq!(
                effects(&tdb.db, who, &longest).await,
                1,
                "{:?}: {who}",
                tdb.backend
            );
        }
        a.shutdown().await;
        b.shutdown().await;
    });
}

#[tokio::test]
async fn first_delivery_refuses_keys_the_inbox_would_not_hold() {
    let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
    migrate_inbox(&db).await.unwrap();
    let resolver = ConflictResolver::new(db.clone());
    let attempt = |id: String, consumer: String| {
        let resolver = resolver.clone();
        async move {
            resolver
                .managed(|txn: &Txn| {
                    let (id, consumer) = (id.clone(), consumer.clone());
                    Box::pin(async move {
                        Ok::<_, conflictkit::Error>(first_delivery(txn, &id, "e", &consumer).await?)
                    })
                })
                .await
        }
    };
    let long = "x".repeat(MAX_WEBHOOK_ID_CHARS + 1);
    let err = attempt(long.clone(), "c".into()).await.unwrap_err();
    assert!(
        err.to_string().contains("webhook-id is 256 characters"),
        "{err}"
    );
    let err = attempt("msg_1".into(), long).await.unwrap_err();
    assert!(
        err.to_string().contains("consumer is 256 characters"),
        "{err}"
    );
    let err = attempt("msg_1".into(), LEGACY_CONSUMER.into())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("must not be empty"), "{err}");
    assert_eq!(inbox_rows(&db).await, 0);
    // A long event name is recorded cut (it is not part of the key).
    let first = resolver
        .managed(|txn: &Txn| {
            Box::pin(async move {
                let name = "e".repeat(300);
                Ok::<_, conflictkit::Error>(first_delivery(txn, "msg_1", &name, "c").await?)
            })
        })
        .await
        .unwrap();
    assert!(first);
    assert_eq!(
        count(
            &db,
            &format!("SELECT LENGTH(event_name) AS n FROM {INBOX_TABLE}")
        )
        .await,
        255
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbox_that_recorded_seconds_is_converted_to_milliseconds_once() {
    for_each_backend!("inbox_seconds", 4, |tdb| {
        // The table as the build that recorded seconds created it (this
        // shape, seconds in `received_at`), and one row recorded since.
        tdb.db
            .execute_unprepared(&format!(
                "CREATE TABLE {INBOX_TABLE} (webhook_id VARCHAR(255) NOT NULL, \
                 consumer VARCHAR(255) NOT NULL, event_name VARCHAR(255) NOT NULL, \
                 received_at BIGINT NOT NULL, PRIMARY KEY (webhook_id, consumer))"
            ))
            .await
            .unwrap();
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let (recent_s, old_s, new_ms) = (now_s - 60, now_s - 7200, now_s * 1000 - 5);
        tdb.db
            .execute_unprepared(&format!(
                "INSERT INTO {INBOX_TABLE} (webhook_id, consumer, event_name, received_at) VALUES \
                 ('msg_s_recent', 'mine', 'e', {recent_s}), ('msg_s_old', 'mine', 'e', {old_s}), \
                 ('msg_ms', 'mine', 'e', {new_ms})"
            ))
            .await
            .unwrap();

        // Two processes at once, then once more: each row converted once.
        let other = common::connect(&tdb.url, 2).await;
        let (a, b) = tokio::join!(migrate_inbox(&tdb.db), migrate_inbox(&other));
        a.unwrap_or_else(|e| panic!("{:?}: {e}", tdb.backend));
        b.unwrap_or_else(|e| panic!("{:?}: {e}", tdb.backend));
        migrate_inbox(&tdb.db).await.unwrap();
        let received = |id: &'static str| {
            let db = tdb.db.clone();
            async move {
                count(
                    &db,
                    &format!(
                        "SELECT received_at AS n FROM {INBOX_TABLE} WHERE webhook_id = '{id}'"
                    ),
                )
                .await
            }
        };
        assert_eq!(
            received("msg_s_recent").await,
            recent_s * 1000,
            "{:?}",
            tdb.backend
        );
        assert_eq!(
            received("msg_s_old").await,
            old_s * 1000,
            "{:?}",
            tdb.backend
        );
        assert_eq!(
            received("msg_ms").await,
            new_ms,
            "{:?}: left alone",
            tdb.backend
        );

        // De-duplication still holds on the converted rows; a new delivery
        // is recorded in milliseconds.
        let resolver = ConflictResolver::new(tdb.db.clone());
        let first = |id: &'static str| {
            let resolver = resolver.clone();
            async move {
                resolver
                    .managed(|txn: &Txn| {
                        Box::pin(async move {
                            Ok::<_, conflictkit::Error>(first_delivery(txn, id, "e", "mine").await?)
                        })
                    })
                    .await
                    .unwrap()
            }
        };
        assert!(!first("msg_s_recent").await, "{:?}", tdb.backend);
        assert!(!first("msg_ms").await, "{:?}", tdb.backend);
        let before_ms = now_s * 1000;
        assert!(first("msg_new").await, "{:?}", tdb.backend);
        assert!(received("msg_new").await >= before_ms, "{:?}", tdb.backend);

        // Purging reads them as milliseconds: the two-hour-old row goes,
        // the others stay.
        assert_eq!(
            purge_inbox(&tdb.db, std::time::Duration::from_secs(3600))
                .await
                .unwrap(),
            1,
            "{:?}",
            tdb.backend
        );
        assert_eq!(inbox_rows(&tdb.db).await, 3, "{:?}", tdb.backend);
    });
}

#[tokio::test]
async fn purging_reads_a_row_still_in_seconds_as_seconds() {
    let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
    migrate_inbox(&db).await.unwrap();
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Rows an earlier build's process records after the migration ran.
    db.execute_unprepared(&format!(
        "INSERT INTO {INBOX_TABLE} (webhook_id, consumer, event_name, received_at) VALUES \
         ('msg_recent', 'c', 'e', {}), ('msg_old', 'c', 'e', {})",
        now_s - 60,
        now_s - 7200
    ))
    .await
    .unwrap();
    let purged = purge_inbox(&db, std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(purged, 1, "only the two-hour-old row");
    assert_eq!(
        count(
            &db,
            &format!("SELECT COUNT(*) AS n FROM {INBOX_TABLE} WHERE webhook_id = 'msg_recent'")
        )
        .await,
        1
    );
}
