//! The event listener over real HTTP on loopback: the original's test, the
//! original sender's bytes, every reply code, handler failures, concurrency,
//! graceful and forced shutdown, bind failure.
//!
//! `#[event_listener]` registrations are process-wide, so each test uses its
//! own event names, and tests that need to control the handler set use
//! `registered_handlers: false`.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::events::{config_with_registered, isolated_config, post, post_event, raw};
use conflictkit::event_listener;
use conflictkit::events::{
    EventContext, EventPoster, IntoHandler, Listener, ListenerConfig, ListenerConfigError,
    ListenerError, Shutdown, registered_handlers,
};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};

// ---------------------------------------------------------------------------
// SEED §6.3 test_decorate: a decorated callback receives myfoobar / {"foo":"bar"}.

static CAPTURED: Mutex<Option<Value>> = Mutex::new(None);

#[event_listener]
fn myfunc(event: &str, data: Value) {
    if event == "myfoobar" {
        *CAPTURED.lock().unwrap() = Some(json!({"event_name": event, "data": data}));
    }
}

#[tokio::test]
async fn original_decorated_callback_receives_the_event() {
    let config = json!({"events": {"test_script": {
        "class": "cryptoassets.core.event.http.HTTPEventHandler",
        "url": "http://localhost:0",
    }}});
    let handle = Listener::from_config(&config)
        .unwrap()
        .start()
        .await
        .unwrap();
    assert!(handle.local_addr().ip().is_loopback());
    assert_ne!(
        handle.local_addr().port(),
        0,
        "local_addr reports the real port"
    );

    let reply = post_event(handle.local_addr(), "myfoobar", r#"{"foo":"bar"}"#).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        CAPTURED.lock().unwrap().clone(),
        Some(json!({"event_name": "myfoobar", "data": {"foo": "bar"}}))
    );
    assert_eq!(handle.shutdown().await, Shutdown::Graceful);
}

#[test]
fn attribute_handlers_are_registered_process_wide() {
    let all = registered_handlers();
    assert!(all.contains(&(None, "events_listener::myfunc")), "{all:?}");
    assert!(
        all.contains(&(
            Some("txupdate_original"),
            "events_listener::on_txupdate_original"
        )),
        "{all:?}"
    );
}

// ---------------------------------------------------------------------------
// The original sender's exact bytes (captured from CPython's urlencode of
// event_json_dumps output): xdata present, Decimal as a string, non-ASCII escaped.

const ORIGINAL_BODY: &str = "event_name=txupdate_original&data=%7B%22transaction%22%3A+7%2C+%22network_transaction%22%3A+3%2C+%22txid%22%3A+%22ab+cd%22%2C+%22account%22%3A+1%2C+%22address%22%3A+%22mkd~%2A%22%2C+%22amount%22%3A+%220.00010000%22%2C+%22credited%22%3A+null%2C+%22confirmations%22%3A+3%2C+%22note%22%3A+%22p%5Cu00e4%5Cu20ac%22%7D&xdata=%7B%22transaction%22%3A+7%2C+%22network_transaction%22%3A+3%2C+%22txid%22%3A+%22ab+cd%22%2C+%22account%22%3A+1%2C+%22address%22%3A+%22mkd~%2A%22%2C+%22amount%22%3A+%220.00010000%22%2C+%22credited%22%3A+null%2C+%22confirmations%22%3A+3%2C+%22note%22%3A+%22p%5Cu00e4%5Cu20ac%22%7D";

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct TxUpdate {
    transaction: i64,
    network_transaction: i64,
    txid: String,
    account: i64,
    address: String,
    amount: Decimal,
    credited: Option<bool>,
    confirmations: u32,
    note: String,
}

static ORIGINAL: Mutex<Vec<TxUpdate>> = Mutex::new(Vec::new());

#[event_listener("txupdate_original")]
async fn on_txupdate_original(update: TxUpdate) -> Result<(), std::convert::Infallible> {
    ORIGINAL.lock().unwrap().push(update);
    Ok(())
}

#[tokio::test]
async fn the_original_senders_bytes_are_accepted() {
    let handle = Listener::new(config_with_registered())
        .start()
        .await
        .unwrap();
    let reply = post(
        handle.local_addr(),
        "application/x-www-form-urlencoded",
        ORIGINAL_BODY,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let got = ORIGINAL.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].amount, "0.00010000".parse::<Decimal>().unwrap());
    assert_eq!(got[0].amount.to_string(), "0.00010000", "scale kept");
    assert_eq!(got[0].txid, "ab cd");
    assert_eq!(got[0].address, "mkd~*");
    assert_eq!(got[0].note, "p\u{e4}\u{20ac}");
    assert_eq!(got[0].credited, None);
    assert_eq!(
        (
            got[0].transaction,
            got[0].network_transaction,
            got[0].account,
            got[0].confirmations
        ),
        (7, 3, 1, 3)
    );
}

// ---------------------------------------------------------------------------
// Reply codes.

#[derive(Debug, Deserialize)]
struct Amount {
    #[allow(dead_code)]
    amount: Decimal,
}

async fn codes_listener(
    config: ListenerConfig,
) -> (conflictkit::events::ListenerHandle, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let listener = Listener::new(config);
    let c = calls.clone();
    listener.on("typed", move |_: Amount| {
        c.fetch_add(1, Ordering::SeqCst);
        async {}
    });
    listener.on("fails", |_: Value| async {
        Err::<(), _>("ledger is closed")
    });
    (listener.start().await.unwrap(), calls)
}

#[tokio::test]
async fn json_bodies_are_accepted() {
    let (handle, calls) = codes_listener(isolated_config()).await;
    let reply = post(
        handle.local_addr(),
        "application/json",
        r#"{"event_name": "typed", "data": {"amount": "1.5"}, "extra": true}"#,
    )
    .await;
    assert_eq!(
        (reply.status, reply.json()["status"].clone()),
        (200, json!("handled"))
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn bad_requests_get_400_with_a_json_body_naming_the_problem() {
    let (handle, calls) = codes_listener(isolated_config()).await;
    let addr = handle.local_addr();
    let form = "application/x-www-form-urlencoded";

    let missing = post(addr, form, "event_name=typed").await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.json()["error"], "missing_field");
    assert!(
        missing.json()["message"]
            .as_str()
            .unwrap()
            .contains("`data`")
    );

    let missing_name = post(addr, "application/json", r#"{"data": 1}"#).await;
    assert_eq!(
        (missing_name.status, missing_name.json()["error"].clone()),
        (400, json!("missing_field"))
    );

    let bad_json = post_event(addr, "typed", "{not json").await;
    assert_eq!(
        (bad_json.status, bad_json.json()["error"].clone()),
        (400, json!("invalid_data_json"))
    );

    let bad_body = post(addr, "application/json", "{").await;
    assert_eq!(
        (bad_body.status, bad_body.json()["error"].clone()),
        (400, json!("invalid_json_body"))
    );

    let undecodable = post_event(addr, "typed", r#"{"amount": "lots"}"#).await;
    assert_eq!(undecodable.status, 400);
    let body = undecodable.json();
    assert_eq!(body["error"], "undecodable_data");
    assert!(
        body["handler"].as_str().unwrap().contains("codes_listener"),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("Amount"),
        "{body}"
    );

    assert_eq!(calls.load(Ordering::SeqCst), 0, "nothing ran");
}

#[tokio::test]
async fn wrong_path_method_length_size_and_type_get_their_codes() {
    let config = ListenerConfig {
        max_body: 64,
        ..isolated_config()
    };
    let (handle, calls) = codes_listener(config).await;
    let addr = handle.local_addr();

    let path = reqwest::Client::new()
        .post(format!("http://{addr}/hook"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("event_name=typed&data=1")
        .send()
        .await
        .unwrap();
    assert_eq!(path.status().as_u16(), 404);

    let get = reqwest::get(format!("http://{addr}/")).await.unwrap();
    assert_eq!(get.status().as_u16(), 405);
    assert_eq!(get.headers()["allow"], "POST");

    let no_length = raw(
        addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(no_length.status, 411, "{}", no_length.body);

    let big = format!(r#"{{"amount": "{}"}}"#, "9".repeat(100));
    let too_large = post_event(addr, "typed", &big).await;
    assert_eq!(
        (too_large.status, too_large.json()["error"].clone()),
        (413, json!("body_too_large"))
    );

    let text = post(addr, "text/plain", "event_name=typed&data=1").await;
    assert_eq!(
        (text.status, text.json()["error"].clone()),
        (415, json!("unsupported_media_type"))
    );

    let no_type = raw(
        addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx",
    )
    .await;
    assert_eq!(no_type.status, 415);

    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn unknown_events_get_200_by_default_and_404_when_strict() {
    let (lenient, _) = codes_listener(isolated_config()).await;
    let reply = post_event(lenient.local_addr(), "nobody_listens", "{}").await;
    assert_eq!(
        (reply.status, reply.json()["status"].clone()),
        (200, json!("ignored"))
    );

    let (strict, _) = codes_listener(ListenerConfig {
        strict: true,
        ..isolated_config()
    })
    .await;
    let reply = post_event(strict.local_addr(), "nobody_listens", "{}").await;
    assert_eq!(
        (reply.status, reply.json()["error"].clone()),
        (404, json!("unknown_event"))
    );
}

#[tokio::test]
async fn a_failing_handler_gets_500_naming_it() {
    let (handle, _) = codes_listener(isolated_config()).await;
    let reply = post_event(handle.local_addr(), "fails", "{}").await;
    assert_eq!(reply.status, 500);
    let body = reply.json();
    assert_eq!(body["error"], "handler_failed");
    assert!(
        body["failures"][0]["handler"]
            .as_str()
            .unwrap()
            .contains("codes_listener"),
        "{body}"
    );
    assert!(
        body["failures"][0]["message"]
            .as_str()
            .unwrap()
            .contains("ledger is closed"),
        "{body}"
    );
}

#[tokio::test]
async fn a_panicking_handler_gets_500_and_the_server_keeps_serving() {
    let listener = Listener::new(isolated_config());
    let after_panic = Arc::new(AtomicUsize::new(0));
    listener.on("panics_sync", |_: Value| -> () {
        panic!("sync handler exploded")
    });
    listener.on("panics_async", |data: Value| async move {
        assert!(data.is_null(), "async handler exploded");
    });
    let a = after_panic.clone();
    listener.on("panics_async", move |_: Value| {
        a.fetch_add(1, Ordering::SeqCst);
        async {}
    });
    let handle = listener.start().await.unwrap();
    let addr = handle.local_addr();

    let reply = post_event(addr, "panics_sync", "{}").await;
    assert_eq!(reply.status, 500);
    assert!(
        reply.body.contains("sync handler exploded"),
        "{}",
        reply.body
    );

    let reply = post_event(addr, "panics_async", "{}").await; // not null: the assert panics
    assert_eq!(reply.status, 500);
    let body = reply.json();
    assert_eq!(
        body["failures"].as_array().unwrap().len(),
        1,
        "only the panicking handler failed: {body}"
    );
    assert!(
        body["failures"][0]["message"]
            .as_str()
            .unwrap()
            .contains("async handler exploded")
    );
    assert_eq!(
        after_panic.load(Ordering::SeqCst),
        1,
        "the next handler of the event still ran"
    );

    // The server is still there.
    let reply = post_event(addr, "unknown_after_panic", "{}").await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn a_handler_over_its_timeout_gets_500() {
    let listener = Listener::new(ListenerConfig {
        handler_timeout: Some(Duration::from_millis(50)),
        ..isolated_config()
    });
    listener.on("never_finishes", |_: Value| std::future::pending::<()>());
    let handle = listener.start().await.unwrap();
    let reply = post_event(handle.local_addr(), "never_finishes", "{}").await;
    assert_eq!(reply.status, 500);
    assert!(
        reply.body.contains("did not finish within 50 ms"),
        "{}",
        reply.body
    );
}

#[event_listener("attr_timeout", timeout_ms = 20)]
async fn attr_timeout(_: Value) {
    std::future::pending::<()>().await
}

#[tokio::test]
async fn the_attribute_timeout_applies() {
    let handle = Listener::new(config_with_registered())
        .start()
        .await
        .unwrap();
    let reply = post_event(handle.local_addr(), "attr_timeout", "{}").await;
    assert_eq!(reply.status, 500);
    assert!(reply.body.contains("attr_timeout"), "{}", reply.body);
    assert!(reply.body.contains("20 ms"), "{}", reply.body);
}

#[tokio::test]
async fn runtime_handlers_run_in_registration_order() {
    let order = Arc::new(Mutex::new(Vec::new()));
    let listener = Listener::new(isolated_config());
    for i in 0..3 {
        let order = order.clone();
        listener.on("ordered", move |_: Value| order.lock().unwrap().push(i));
    }
    let o = order.clone();
    listener.on_any(move |ctx: EventContext| {
        o.lock().unwrap().push(if ctx.event_name() == "ordered" {
            10
        } else {
            99
        });
        async {}
    });
    let handle = listener.start().await.unwrap();
    assert_eq!(
        post_event(handle.local_addr(), "ordered", "{}")
            .await
            .status,
        200
    );
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 10]);
}

/// Which kind of handler `on` takes `handler` for: the `IntoHandler` impl
/// trait selection picked, read from its (inferred) marker type.
fn handler_kind<M, H: IntoHandler<M, ()>>(_: &H) -> &'static str {
    let marker = std::any::type_name::<M>();
    if marker.contains("Blocking<") {
        "blocking"
    } else if marker.contains("Async<") {
        "async"
    } else {
        panic!("unknown handler marker {marker}")
    }
}

// `#[tokio::test]` runs a current-thread runtime: its one async worker is
// this test's thread, and the blocking pool is every other thread.
#[tokio::test]
async fn one_on_runs_a_closure_returning_unit_or_result_on_the_blocking_pool() {
    let worker = std::thread::current().id();
    let (tx, rx) = std::sync::mpsc::channel();
    let t = tx.clone();
    let returns_unit = move |_: Value| {
        let _ = t.send(("unit", std::thread::current().id()));
    };
    let returns_result = move |_: EventContext| -> Result<(), String> {
        let _ = tx.send(("result", std::thread::current().id()));
        Ok(())
    };
    assert_eq!(handler_kind(&returns_unit), "blocking");
    assert_eq!(handler_kind(&returns_result), "blocking");
    let listener = Listener::new(isolated_config());
    listener.on("kind_blocking", returns_unit);
    listener.on("kind_blocking", returns_result);
    let handle = listener.start().await.unwrap();
    let reply = post_event(handle.local_addr(), "kind_blocking", "{}").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let ran: Vec<_> = rx.try_iter().collect();
    assert_eq!(ran.len(), 2, "{ran:?}");
    for (which, thread) in ran {
        assert_ne!(
            thread, worker,
            "the {which} handler ran on the async worker"
        );
    }
    handle.shutdown().await;
}

#[tokio::test]
async fn one_on_runs_a_closure_returning_a_future_as_a_future_on_the_worker() {
    let worker = std::thread::current().id();
    let (tx, rx) = std::sync::mpsc::channel();
    let t = tx.clone();
    let async_unit = move |_: Value| {
        let t = t.clone();
        async move {
            // Suspends: only a future polled by the runtime gets past this.
            tokio::task::yield_now().await;
            let _ = t.send(("unit", std::thread::current().id()));
        }
    };
    let async_result = move |_: EventContext| {
        let tx = tx.clone();
        async move {
            tokio::task::yield_now().await;
            let _ = tx.send(("result", std::thread::current().id()));
            Ok::<(), String>(())
        }
    };
    assert_eq!(handler_kind(&async_unit), "async");
    assert_eq!(handler_kind(&async_result), "async");
    let listener = Listener::new(isolated_config());
    listener.on("kind_async", async_unit);
    listener.on("kind_async", async_result);
    let handle = listener.start().await.unwrap();
    let reply = post_event(handle.local_addr(), "kind_async", "{}").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let ran: Vec<_> = rx.try_iter().collect();
    assert_eq!(ran.len(), 2, "{ran:?}");
    for (which, thread) in ran {
        assert_eq!(
            thread, worker,
            "the {which} handler ran off the async worker"
        );
    }
    handle.shutdown().await;
}

#[tokio::test]
async fn on_any_takes_extractors_sync_or_async() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener = Listener::new(isolated_config());
    let s = seen.clone();
    listener.on_any(move |ctx: EventContext, data: Value| {
        s.lock()
            .unwrap()
            .push(("sync", ctx.event_name().to_owned(), data));
    });
    let s = seen.clone();
    listener.on_any(move |data: Value, ctx: EventContext| {
        let s = s.clone();
        async move {
            s.lock()
                .unwrap()
                .push(("async", ctx.event_name().to_owned(), data));
        }
    });
    let handle = listener.start().await.unwrap();
    for (name, data) in [("any_one", "1"), ("any_two", "[2]")] {
        let reply = post_event(handle.local_addr(), name, data).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.json()["handlers"], 2);
    }
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("sync", "any_one".to_owned(), json!(1)),
            ("async", "any_one".to_owned(), json!(1)),
            ("sync", "any_two".to_owned(), json!([2])),
            ("async", "any_two".to_owned(), json!([2])),
        ]
    );
    handle.shutdown().await;
}

// ---------------------------------------------------------------------------
// Concurrency.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_handler_does_not_block_other_requests() {
    let release = Arc::new(Notify::new());
    let started = Arc::new(Notify::new());
    let listener = Listener::new(isolated_config());
    let (r, s) = (release.clone(), started.clone());
    listener.on("slow", move |_: Value| {
        let (r, s) = (r.clone(), s.clone());
        async move {
            s.notify_one();
            r.notified().await;
        }
    });
    listener.on("fast", |_: Value| async {});
    let handle = listener.start().await.unwrap();
    let addr = handle.local_addr();

    let slow = tokio::spawn(async move { post_event(addr, "slow", "{}").await });
    started.notified().await;
    // The slow handler is running; a fast event still completes.
    assert_eq!(post_event(addr, "fast", "{}").await.status, 200);
    assert!(!slow.is_finished());
    release.notify_one();
    assert_eq!(slow.await.unwrap().status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_posts_are_each_delivered_exactly_once() {
    let seen: Arc<Mutex<HashMap<u64, usize>>> = Arc::default();
    let listener = Listener::new(isolated_config());
    let s = seen.clone();
    listener.on("counted", move |data: Value| {
        let n = data["n"].as_u64().unwrap();
        *s.lock().unwrap().entry(n).or_default() += 1;
        async {}
    });
    let handle = listener.start().await.unwrap();
    let poster = EventPoster::new(&format!("http://{}", handle.local_addr())).unwrap();
    let posts = (0..100u64).map(|n| {
        let poster = poster.clone();
        async move { poster.post("counted", &json!({"n": n})).await }
    });
    for result in futures::future::join_all(posts).await {
        result.unwrap();
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 100);
    assert!(seen.values().all(|&count| count == 1), "{seen:?}");
}

// ---------------------------------------------------------------------------
// Shutdown.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_lets_a_slow_handler_finish_and_refuses_new_connections() {
    let (started_tx, started_rx) = oneshot::channel::<()>();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let finished = Arc::new(AtomicUsize::new(0));
    let slots = Arc::new(Mutex::new((Some(started_tx), Some(release_rx))));
    let listener = Listener::new(isolated_config());
    let f = finished.clone();
    listener.on("slow_shutdown", move |_: Value| {
        let (started, release) = {
            let mut slots = slots.lock().unwrap();
            (slots.0.take().unwrap(), slots.1.take().unwrap())
        };
        let f = f.clone();
        async move {
            started.send(()).unwrap();
            release.await.unwrap();
            f.fetch_add(1, Ordering::SeqCst);
        }
    });
    let handle = listener.start().await.unwrap();
    let addr = handle.local_addr();
    let request = tokio::spawn(async move { post_event(addr, "slow_shutdown", "{}").await });
    started_rx.await.unwrap();

    let closed = handle.closed();
    let shutdown = tokio::spawn(handle.shutdown());
    closed.await;
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert!(
        refused.is_err(),
        "new connections are refused once shutdown began"
    );
    assert!(
        !shutdown.is_finished(),
        "shutdown waits for the in-flight request"
    );

    release_tx.send(()).unwrap();
    let reply = request.await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(finished.load(Ordering::SeqCst), 1, "the handler completed");
    assert_eq!(shutdown.await.unwrap(), Shutdown::Graceful);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_aborts_what_is_left_after_the_timeout() {
    let started = Arc::new(Notify::new());
    let listener = Listener::new(ListenerConfig {
        shutdown_timeout: Duration::from_millis(100),
        ..isolated_config()
    });
    let s = started.clone();
    listener.on("stuck", move |_: Value| {
        let s = s.clone();
        async move {
            s.notify_one();
            std::future::pending::<()>().await
        }
    });
    let handle = listener.start().await.unwrap();
    let addr = handle.local_addr();
    let request = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("http://{addr}/"))
            .header("content-type", "application/json")
            .body(r#"{"event_name": "stuck", "data": {}}"#)
            .send()
            .await
    });
    started.notified().await;
    assert_eq!(handle.shutdown().await, Shutdown::Forced { aborted: 1 });
    assert!(
        request.await.unwrap().is_err(),
        "the aborted request gets no reply"
    );
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn dropping_the_handle_stops_the_listener() {
    let handle = Listener::new(isolated_config()).start().await.unwrap();
    let addr = handle.local_addr();
    let closed = handle.closed();
    drop(handle);
    closed.await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn serve_runs_in_the_foreground_until_its_signal() {
    // Bind a port, free it, and serve there in the foreground.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let listener = Listener::new(ListenerConfig::new(addr));
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (serving_tx, serving_rx) = oneshot::channel::<()>();
    // The shutdown signal is first polled by the accept loop, after binding.
    let server = tokio::spawn(listener.serve(async move {
        let _ = serving_tx.send(());
        let _ = stop_rx.await;
    }));
    serving_rx.await.unwrap();
    let reply = post_event(addr, "foreground", "{}").await;
    assert_eq!(reply.status, 200);
    assert!(!server.is_finished(), "serve returned before its signal");
    stop_tx.send(()).unwrap();
    assert_eq!(server.await.unwrap().unwrap(), Shutdown::Graceful);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[test]
fn a_non_async_program_serves_on_a_runtime_of_its_own() {
    // What a program without async code does (the original's daemon
    // thread): a runtime of its own, `block_on` only to start and stop.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = Listener::new(isolated_config());
    let got = Arc::new(Mutex::new(None));
    let g = got.clone();
    listener.on_any(move |ctx: EventContext, data: Value| {
        *g.lock().unwrap() = Some((ctx.event_name().to_owned(), data));
    });
    let handle = runtime.block_on(listener.start()).unwrap();
    // Served by the runtime's worker threads while this thread, outside
    // any runtime, does blocking I/O.
    let body = "event_name=blocking&data=%5B1%5D";
    let request = format!(
        "POST / HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = std::net::TcpStream::connect(handle.local_addr()).unwrap();
    std::io::Write::write_all(&mut stream, request.as_bytes()).unwrap();
    let mut reply = String::new();
    std::io::Read::read_to_string(&mut stream, &mut reply).unwrap();
    assert!(
        reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200"),
        "{reply}"
    );
    assert_eq!(
        *got.lock().unwrap(),
        Some(("blocking".to_owned(), json!([1])))
    );
    assert_eq!(runtime.block_on(handle.shutdown()), Shutdown::Graceful);
}

// ---------------------------------------------------------------------------
// Errors.

#[tokio::test]
async fn a_bind_failure_is_an_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = Listener::new(ListenerConfig::new(addr))
        .start()
        .await
        .unwrap_err();
    match &err {
        ListenerError::Bind { addr: a, source } => {
            assert_eq!(*a, addr);
            assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse);
        }
        other => panic!("expected a bind error, got {other:?}"),
    }
    assert!(std::error::Error::source(&err).is_some());
    assert!(err.to_string().contains(&addr.to_string()));
}

#[test]
fn start_outside_a_runtime_is_an_error() {
    let err = futures::executor::block_on(Listener::new(isolated_config()).start()).unwrap_err();
    assert!(matches!(err, ListenerError::NoRuntime), "{err:?}");
}

#[test]
fn config_errors_are_typed() {
    let with_path = json!({"events": {"h": {
        "class": "cryptoassets.core.event.http.HTTPEventHandler",
        "url": "http://127.0.0.1:10000/events",
    }}});
    let err = Listener::from_config(&with_path).unwrap_err();
    assert!(
        matches!(&err, ListenerConfigError::UrlHasPath { path, .. } if path == "/events"),
        "{err:?}"
    );
    assert!(err.to_string().contains("remove the path"));
    assert!(matches!(
        Listener::from_config(&json!({"events": {}})),
        Err(ListenerConfigError::MissingEvents)
    ));
}
