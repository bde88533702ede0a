//! Handlers with application state and an event context, over real HTTP on
//! loopback: run-time handlers (`on`, async or blocking) and `#[event_listener]`
//! functions take `State<T>`, `EventContext` and the data in any order; an
//! attribute handler asking for state the listener lacks stops `start()`.
//!
//! `#[event_listener]` registrations are process-wide: every listener in this
//! file that includes them is given a `Ledger` state, except the one that
//! checks the start-up error.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use common::events::{config_with_registered, isolated_config, post_event};
use conflictkit::event_listener;
use conflictkit::events::{
    EventContext, EventPoster, Listener, ListenerConfig, ListenerError, State, WEBHOOK_ID,
    WebhookSecret,
};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Deposit {
    txid: String,
    cents: i64,
}

/// The application state of this file's attribute handlers.
#[derive(Clone, Default)]
struct Ledger {
    deposits: Arc<Mutex<Vec<(String, i64, EventContext)>>>,
}

#[event_listener("state_deposit")]
async fn on_deposit(
    ctx: EventContext,
    State(ledger): State<Ledger>,
    deposit: Deposit,
) -> Result<(), std::convert::Infallible> {
    ledger
        .deposits
        .lock()
        .unwrap()
        .push((deposit.txid, deposit.cents, ctx));
    Ok(())
}

static SYNC_SEEN: AtomicU32 = AtomicU32::new(0);

#[event_listener("state_sync")]
fn on_sync_deposit(State(ledger): State<Ledger>, ctx: EventContext) {
    assert_eq!(ctx.event_name(), "state_sync");
    ledger
        .deposits
        .lock()
        .unwrap()
        .push(("sync".into(), 0, ctx));
    SYNC_SEEN.fetch_add(1, Ordering::SeqCst);
}

/// What the run-time handler saw: the state's number plus one, the data, the context.
type Seen = Arc<Mutex<Vec<(u64, Deposit, EventContext)>>>;

#[tokio::test]
async fn a_run_time_handler_gets_state_context_and_data_from_a_signed_delivery() {
    let secret = WebhookSecret::generate();
    let seen: Seen = Arc::default();
    let listener = Listener::new(ListenerConfig {
        secrets: vec![secret.clone()],
        ..isolated_config()
    })
    .with_state((41u64, seen.clone()));
    listener.on(
        "deposit",
        |State((n, seen)): State<(u64, Seen)>, deposit: Deposit, ctx: EventContext| async move {
            seen.lock().unwrap().push((n + 1, deposit, ctx));
        },
    );
    let handle = listener.start().await.unwrap();
    EventPoster::new(&format!("http://{}", handle.local_addr()))
        .unwrap()
        .secret(secret)
        .post("deposit", &json!({"txid": "ab", "cents": 120}))
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (n, deposit, ctx) = &seen[0];
    assert_eq!(*n, 42, "the state came through");
    assert_eq!(
        deposit,
        &Deposit {
            txid: "ab".into(),
            cents: 120
        }
    );
    assert_eq!(ctx.event_name(), "deposit");
    assert!(ctx.is_verified());
    assert!(
        ctx.webhook_id().is_some_and(|id| id.starts_with("msg_")),
        "{ctx:?}"
    );
    let ts = ctx.timestamp().expect("a signed delivery has a timestamp");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - ts).abs() < 300, "timestamp {ts} vs now {now}");
    assert_eq!(ctx.attempt(), Some(1));
    handle.shutdown().await;
}

#[tokio::test]
async fn context_of_an_unsigned_request_carries_what_the_sender_sent() {
    let got: Arc<Mutex<Option<EventContext>>> = Arc::default();
    let listener = Listener::new(isolated_config());
    let g = got.clone();
    listener.on("plain", move |ctx: EventContext| {
        *g.lock().unwrap() = Some(ctx);
    });
    let handle = listener.start().await.unwrap();
    let reply = reqwest::Client::new()
        .post(format!("http://{}/", handle.local_addr()))
        .header("content-type", "application/json")
        .header(WEBHOOK_ID, "msg_plain_1")
        .header("webhook-timestamp", "1700000000")
        .header("webhook-attempt", "3")
        .body(r#"{"event_name": "plain", "data": null}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    let ctx = got.lock().unwrap().clone().expect("the handler ran");
    assert_eq!(
        ctx,
        EventContext::new("plain")
            .with_webhook_id("msg_plain_1")
            .with_timestamp(1_700_000_000)
            .with_attempt(3)
    );
    assert!(!ctx.is_verified());

    // Nothing sent: nothing known but the name.
    let reply = post_event(handle.local_addr(), "plain", "1").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        got.lock().unwrap().clone(),
        Some(EventContext::new("plain"))
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn handlers_without_state_work_on_a_listener_with_state_and_state_is_cloned_per_call() {
    let calls = Arc::new(AtomicU32::new(0));
    let listener = Listener::new(isolated_config());
    // Registered before the state was given: takes only the data.
    let c = calls.clone();
    listener.on("count", move |_: Value| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    let listener = listener.with_state(Arc::new(AtomicU32::new(0)));
    listener.on(
        "count",
        |State(counter): State<Arc<AtomicU32>>, n: u32| async move {
            counter.fetch_add(n, Ordering::SeqCst);
        },
    );
    let handle = listener.start().await.unwrap();
    for _ in 0..3 {
        let reply = post_event(handle.local_addr(), "count", "5").await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.json()["handlers"], 2);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    handle.shutdown().await;
}

#[tokio::test]
async fn undecodable_data_is_400_and_nothing_runs_even_with_state() {
    let calls = Arc::new(AtomicU32::new(0));
    let listener = Listener::new(isolated_config()).with_state(calls.clone());
    listener.on(
        "typed",
        |State(calls): State<Arc<AtomicU32>>, _ctx: EventContext| async move {
            calls.fetch_add(1, Ordering::SeqCst);
        },
    );
    listener.on("typed", |_: EventContext, _: Deposit| async {});
    let handle = listener.start().await.unwrap();
    let reply = post_event(handle.local_addr(), "typed", r#"{"txid": 1}"#).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"], "undecodable_data");
    assert_eq!(calls.load(Ordering::SeqCst), 0, "nothing ran");
    handle.shutdown().await;
}

#[tokio::test]
async fn attribute_handlers_take_the_listeners_state() {
    let ledger = Ledger::default();
    let handle = Listener::new(config_with_registered())
        .with_state(ledger.clone())
        .start()
        .await
        .unwrap();
    let reply = reqwest::Client::new()
        .post(format!("http://{}/", handle.local_addr()))
        .header("content-type", "application/json")
        .header(WEBHOOK_ID, "msg_attr")
        .body(r#"{"event_name": "state_deposit", "data": {"txid": "t1", "cents": 7}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    let reply = post_event(handle.local_addr(), "state_sync", "{}").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let deposits = ledger.deposits.lock().unwrap().clone();
    assert_eq!(
        deposits,
        vec![
            (
                "t1".to_owned(),
                7,
                EventContext::new("state_deposit").with_webhook_id("msg_attr")
            ),
            ("sync".to_owned(), 0, EventContext::new("state_sync")),
        ]
    );
    assert_eq!(SYNC_SEEN.load(Ordering::SeqCst), 1);
    handle.shutdown().await;
}

#[tokio::test]
async fn an_attribute_handler_asking_for_missing_state_stops_start_with_a_typed_error() {
    // No state at all.
    let err = Listener::new(config_with_registered())
        .start()
        .await
        .unwrap_err();
    match &err {
        ListenerError::MissingState {
            handler,
            needed,
            provided,
        } => {
            assert!(
                handler == "events_state::on_deposit" || handler == "events_state::on_sync_deposit",
                "{handler}"
            );
            assert!(needed.ends_with("Ledger"), "{needed}");
            assert_eq!(*provided, "()");
        }
        other => panic!("expected MissingState, got {other:?}"),
    }
    assert!(err.to_string().contains("with_state"), "{err}");

    // State of another type: the same, in every way of starting.
    let err = Listener::new(config_with_registered())
        .with_state(String::from("not a ledger"))
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ListenerError::MissingState { provided, .. } if provided.contains("String")),
        "{err:?}"
    );
    let err = Listener::new(config_with_registered())
        .with_state(5u8)
        .serve(async {})
        .await
        .unwrap_err();
    assert!(matches!(err, ListenerError::MissingState { .. }), "{err:?}");

    // Without the attribute handlers, no state is needed.
    let handle = Listener::new(isolated_config()).start().await.unwrap();
    handle.shutdown().await;
}
