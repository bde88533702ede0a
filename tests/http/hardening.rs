//! The listener under hostile or broken clients, over real TCP on loopback:
//! a sender that disconnects mid-handler, a client that never finishes its
//! body, more clients than the connection cap, bodies beyond the memory
//! budget, and a sync handler that never returns when a non-async program
//! shuts its listener down.

use crate::common;

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::events::isolated_config;
use conflictkit::events::{EventPoster, Listener, ListenerConfig, Shutdown, WebhookSecret};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};

/// Fails the test instead of hanging it when `fut` never completes.
async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within 30 s"))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A signed raw request for `event` with message `id`, signed now.
fn signed_request(secret: &WebhookSecret, id: &str, event: &str) -> String {
    let body = EventPoster::encode(event, &serde_json::json!({"n": 1})).unwrap();
    let ts = unix_now();
    format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nwebhook-id: {id}\r\nwebhook-timestamp: {ts}\r\n\
         webhook-signature: {}\r\nConnection: close\r\n\r\n{body}",
        body.len(),
        secret.sign(id, ts, body.as_bytes()),
    )
}

async fn send_raw(addr: SocketAddr, request: String) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_disconnecting_mid_handler_neither_cancels_it_nor_gets_it_run_twice() {
    let secret = WebhookSecret::generate();
    let entered = Arc::new(AtomicUsize::new(0));
    let completed = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(Notify::new());
    let (entered_tx, mut entered_rx) = mpsc::unbounded_channel();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let listener = Listener::new(ListenerConfig {
        secrets: vec![secret.clone()],
        ..isolated_config()
    });
    {
        let (entered, completed, release) = (entered.clone(), completed.clone(), release.clone());
        listener.on("slow_credit", move |_: Value| {
            let (entered, completed, release) =
                (entered.clone(), completed.clone(), release.clone());
            let (entered_tx, done_tx) = (entered_tx.clone(), done_tx.clone());
            async move {
                entered.fetch_add(1, Ordering::SeqCst);
                let _ = entered_tx.send(());
                release.notified().await;
                completed.fetch_add(1, Ordering::SeqCst);
                let _ = done_tx.send(());
            }
        });
    }
    let handle = listener.start().await.unwrap();
    let addr = handle.local_addr();

    // The sender posts, waits until the handler runs, then gives up.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(signed_request(&secret, "msg_disconnect", "slow_credit").as_bytes())
        .await
        .unwrap();
    within("the handler starting", entered_rx.recv()).await;
    drop(stream);

    // The handler is not cancelled: released, it completes.
    release.notify_one();
    within("the handler completing", done_rx.recv()).await;

    // The sender's retry (same id, signed again) is a duplicate.
    let reply = within(
        "the retry's reply",
        send_raw(
            addr,
            signed_request(&secret, "msg_disconnect", "slow_credit"),
        ),
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains(r#""status":"duplicate""#), "{reply}");
    assert_eq!(entered.load(Ordering::SeqCst), 1, "ran once");
    assert_eq!(completed.load(Ordering::SeqCst), 1, "completed once");
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_handler_after_a_disconnect_releases_the_claim_for_the_retry() {
    let secret = WebhookSecret::generate();
    let calls = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(Notify::new());
    let (entered_tx, mut entered_rx) = mpsc::unbounded_channel();
    let listener = Listener::new(ListenerConfig {
        secrets: vec![secret.clone()],
        ..isolated_config()
    });
    {
        let (calls, release) = (calls.clone(), release.clone());
        listener.on("fails_first", move |_: Value| {
            let (calls, release, entered_tx) = (calls.clone(), release.clone(), entered_tx.clone());
            async move {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                let _ = entered_tx.send(n);
                if n == 1 {
                    release.notified().await;
                    Err("the ledger was locked")
                } else {
                    Ok(())
                }
            }
        });
    }
    let handle = listener.start().await.unwrap();
    let addr = handle.local_addr();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(signed_request(&secret, "msg_fails", "fails_first").as_bytes())
        .await
        .unwrap();
    assert_eq!(within("the first run", entered_rx.recv()).await, Some(1));
    drop(stream);
    // The retry arrives while the first run is still going: it waits for the
    // outcome, and the failure hands the delivery over to it.
    let retry = tokio::spawn(send_raw(
        addr,
        signed_request(&secret, "msg_fails", "fails_first"),
    ));
    release.notify_one();
    assert_eq!(within("the second run", entered_rx.recv()).await, Some(2));
    let reply = within("the retry's reply", retry).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains(r#""status":"handled""#), "{reply}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    handle.shutdown().await;
}

#[tokio::test]
async fn a_client_that_does_not_finish_its_body_is_cut_at_the_read_timeout() {
    let calls = Arc::new(AtomicUsize::new(0));
    let listener = Listener::new(ListenerConfig {
        body_read_timeout: Duration::from_millis(200),
        ..isolated_config()
    });
    let c = calls.clone();
    listener.on("slowloris", move |_: Value| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    let handle = listener.start().await.unwrap();
    let mut stream = TcpStream::connect(handle.local_addr()).await.unwrap();
    // 100 bytes announced, 10 sent, the rest never.
    stream
        .write_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 100\r\n\r\nevent_name",
        )
        .await
        .unwrap();
    let mut out = Vec::new();
    // The listener answers and closes: read_to_end ends.
    within(
        "the listener closing the connection",
        stream.read_to_end(&mut out),
    )
    .await
    .unwrap();
    let reply = String::from_utf8_lossy(&out);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("body_read_timeout"), "{reply}");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_holds() {
    let in_handler = Arc::new(AtomicUsize::new(0));
    let most_at_once = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(Notify::new());
    let (entered_tx, mut entered_rx) = mpsc::unbounded_channel();
    let listener = Listener::new(ListenerConfig {
        max_connections: 1,
        ..isolated_config()
    });
    {
        let (in_handler, most, release) =
            (in_handler.clone(), most_at_once.clone(), release.clone());
        listener.on("capped", move |n: u32| {
            let (in_handler, most, release, entered_tx) = (
                in_handler.clone(),
                most.clone(),
                release.clone(),
                entered_tx.clone(),
            );
            async move {
                let now = in_handler.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let _ = entered_tx.send(n);
                if n == 1 {
                    release.notified().await;
                }
                in_handler.fetch_sub(1, Ordering::SeqCst);
            }
        });
    }
    let handle = listener.start().await.unwrap();
    let addr = handle.local_addr();
    let request = |n: u32| {
        let body = format!("event_name=capped&data={n}");
        format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let first = tokio::spawn(send_raw(addr, request(1)));
    assert_eq!(
        within("the first request", entered_rx.recv()).await,
        Some(1)
    );
    // The second client connects and sends (the kernel queues it) ...
    let second = tokio::spawn(send_raw(addr, request(2)));
    // ... but is not served while the first holds the only connection. (A
    // bounded wait for something that must not happen.)
    assert!(
        tokio::time::timeout(Duration::from_millis(300), entered_rx.recv())
            .await
            .is_err(),
        "a second connection was served beyond the cap"
    );
    release.notify_one();
    assert!(
        within("the first reply", first)
            .await
            .unwrap()
            .starts_with("HTTP/1.1 200")
    );
    assert_eq!(
        within("the second request", entered_rx.recv()).await,
        Some(2)
    );
    assert!(
        within("the second reply", second)
            .await
            .unwrap()
            .starts_with("HTTP/1.1 200")
    );
    assert_eq!(most_at_once.load(Ordering::SeqCst), 1);
    handle.shutdown().await;
}

#[test]
fn a_non_async_program_shuts_down_in_bounded_time_despite_a_hung_sync_handler() {
    // A non-async program serves on a runtime of its own (`Listener::start`).
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (entered_tx, entered_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = std::sync::Mutex::new(release_rx);
    let listener = Listener::new(ListenerConfig {
        shutdown_timeout: Duration::from_millis(100),
        ..isolated_config()
    });
    listener.on("hangs", move |_: Value| {
        let _ = entered_tx.send(());
        // Never returns while the test runs (released at its end).
        let _ = release_rx.lock().unwrap().recv();
    });
    let handle = runtime.block_on(listener.start()).unwrap();
    let addr = handle.local_addr();
    let client = std::thread::spawn(move || {
        let body = "event_name=hangs&data=1";
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        let _ = write!(
            stream,
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut out = String::new();
        let _ = stream.read_to_string(&mut out);
        out
    });
    entered_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the handler started");

    let (dropped_tx, dropped_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let outcome = runtime.block_on(handle.shutdown());
        // The hung handler holds a blocking-pool thread: the runtime is
        // left behind after a bound rather than waited for.
        runtime.shutdown_timeout(Duration::from_millis(100));
        let _ = dropped_tx.send(outcome);
    });
    let outcome = dropped_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("shutdown must return in bounded time despite the hung handler");
    assert!(
        matches!(outcome, Shutdown::Forced { .. }),
        "{outcome:?}: the hung request was cut"
    );
    // The client saw its connection closed without a success.
    let reply = client.join().unwrap();
    assert!(!reply.contains("200 OK"), "{reply}");
    let _ = release_tx.send(());
}

#[tokio::test]
async fn unsigned_retries_with_the_same_webhook_id_are_dispatched_once() {
    let calls = Arc::new(AtomicUsize::new(0));
    let listener = Listener::new(isolated_config());
    let c = calls.clone();
    listener.on("unsigned_once", move |_: Value| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    let handle = listener.start().await.unwrap();
    let send = |id: &'static str| {
        reqwest::Client::new()
            .post(format!("http://{}/", handle.local_addr()))
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .body(r#"{"event_name": "unsigned_once", "data": 1}"#)
            .send()
    };
    let first = send("msg_u1").await.unwrap().text().await.unwrap();
    assert!(first.contains("handled"), "{first}");
    let again = send("msg_u1").await.unwrap().text().await.unwrap();
    assert!(again.contains("duplicate"), "{again}");
    let other = send("msg_u2").await.unwrap().text().await.unwrap();
    assert!(other.contains("handled"), "{other}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    handle.shutdown().await;
}

/// Concurrent runs of a handler: how many now, the most at once, how many ended.
#[derive(Default)]
struct Runs {
    now: AtomicUsize,
    most: AtomicUsize,
    ended: AtomicUsize,
}

impl Runs {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
        self.ended.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_left_running_by_disconnected_clients_count_against_the_connection_cap() {
    const CAP: usize = 2;
    const POSTS: u32 = 10;
    let runs = Arc::new(Runs::default());
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let (entered_tx, mut entered_rx) = mpsc::unbounded_channel();
    let (ended_tx, mut ended_rx) = mpsc::unbounded_channel();
    // Each client waits until its own handler runs, then disconnects.
    let (started_tx, _) = tokio::sync::broadcast::channel::<u32>(64);
    let listener = Listener::new(ListenerConfig {
        max_connections: CAP,
        ..isolated_config()
    });
    {
        let (runs, release, started_tx) = (runs.clone(), release.clone(), started_tx.clone());
        listener.on("detached", move |n: u32| {
            let (runs, release, entered_tx, ended_tx, started_tx) = (
                runs.clone(),
                release.clone(),
                entered_tx.clone(),
                ended_tx.clone(),
                started_tx.clone(),
            );
            async move {
                runs.enter();
                let _ = entered_tx.send(n);
                let _ = started_tx.send(n);
                release.acquire().await.expect("never closed").forget();
                runs.leave();
                let _ = ended_tx.send(n);
            }
        });
    }
    let handle = listener.start().await.unwrap();
    let addr = handle.local_addr();
    let clients: Vec<_> = (0..POSTS)
        .map(|n| {
            let mut started = started_tx.subscribe();
            tokio::spawn(async move {
                let body = format!("event_name=detached&data={n}");
                let request = format!(
                    "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                     Content-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let mut stream = TcpStream::connect(addr).await.unwrap();
                stream.write_all(request.as_bytes()).await.unwrap();
                while started.recv().await.expect("the listener lives") != n {}
                drop(stream);
            })
        })
        .collect();

    for _ in 0..CAP {
        within("a handler starting", entered_rx.recv()).await;
    }
    // Their clients are gone, their handlers still run: no other request is
    // served meanwhile. (A bounded wait for something that must not happen.)
    assert!(
        tokio::time::timeout(Duration::from_millis(300), entered_rx.recv())
            .await
            .is_err(),
        "a request was served while {CAP} detached handlers held the {CAP} connections"
    );
    // One handler ends: one more request is served.
    for _ in CAP..POSTS as usize {
        release.add_permits(1);
        within("the next handler starting", entered_rx.recv()).await;
    }
    release.add_permits(CAP);
    for client in clients {
        within("a client", client).await.unwrap();
    }
    for _ in 0..POSTS {
        within("a handler ending", ended_rx.recv()).await;
    }
    assert_eq!(
        runs.ended.load(Ordering::SeqCst),
        POSTS as usize,
        "every handler ended"
    );
    assert_eq!(
        runs.most.load(Ordering::SeqCst),
        CAP,
        "at most {CAP} handlers at once"
    );
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_handler_past_its_timeout_keeps_its_delivery_claimed_until_it_returns() {
    let runs = Arc::new(Runs::default());
    let (entered_tx, mut entered_rx) = mpsc::unbounded_channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = Arc::new(std::sync::Mutex::new(release_rx));
    let listener = Listener::new(ListenerConfig {
        handler_timeout: Some(Duration::from_secs(1)),
        ..isolated_config()
    });
    {
        let runs = runs.clone();
        listener.on("stuck", move |_: Value| {
            runs.enter();
            let _ = entered_tx.send(());
            // Blocks its thread until the test releases it; a timeout
            // cannot stop it.
            let _ = release_rx.lock().unwrap().recv();
            runs.leave();
        });
    }
    let handle = listener.start().await.unwrap();
    let addr = handle.local_addr();
    let body = "event_name=stuck&data=1";
    let request = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nwebhook-id: msg_stuck\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );

    // The first delivery times out: 500, while its handler goes on.
    let first = within("the first reply", send_raw(addr, request.clone())).await;
    assert!(first.starts_with("HTTP/1.1 500"), "{first}");
    assert!(first.contains("did not finish within 1000 ms"), "{first}");
    within("the first run", entered_rx.recv()).await;

    // The sender's retry of that delivery waits for the first run to end
    // instead of running the handler beside it. (A bounded wait for
    // something that must not happen.)
    let retry = tokio::spawn(send_raw(addr, request));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), entered_rx.recv())
            .await
            .is_err(),
        "the retry ran the handler while its first run still went on"
    );
    assert!(!retry.is_finished(), "the retry waits for the first run");

    // The first run returns; the retry then runs the handler (the failure
    // released the delivery) and it returns at once.
    release_tx.send(()).unwrap();
    release_tx.send(()).unwrap();
    within("the retry's run", entered_rx.recv()).await;
    let reply = within("the retry's reply", retry).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains(r#""status":"handled""#), "{reply}");
    assert_eq!(
        runs.most.load(Ordering::SeqCst),
        1,
        "never two runs at once"
    );
    assert_eq!(runs.ended.load(Ordering::SeqCst), 2);
    handle.shutdown().await;
}

/// Two clients announce a body as large as the whole budget and send a few
/// bytes of it: whichever the listener takes first holds the budget, the
/// other is answered 503 with `Retry-After` at once, without its body being
/// read. The holder then finishes and is handled; the refused one, sent
/// again, fits and is handled too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_beyond_the_memory_budget_get_503_and_retry_after() {
    let body = EventPoster::encode("budgeted", &serde_json::json!({"n": 1})).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let listener = Listener::new(ListenerConfig {
        max_body: body.len(),
        body_budget: body.len(),
        ..isolated_config()
    });
    let c = calls.clone();
    listener.on("budgeted", move |_: Value| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    let handle = listener.start().await.unwrap();
    let addr = handle.local_addr();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let (split, rest) = body.split_at(5);
    let (replies_tx, mut replies) = mpsc::unbounded_channel();
    let mut writers = Vec::new();
    for client in 0..2 {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut read, mut write) = stream.into_split();
        write
            .write_all(format!("{head}{split}").as_bytes())
            .await
            .unwrap();
        writers.push(write);
        let replies_tx = replies_tx.clone();
        tokio::spawn(async move {
            let mut out = Vec::new();
            let _ = read.read_to_end(&mut out).await;
            let _ = replies_tx.send((client, String::from_utf8_lossy(&out).into_owned()));
        });
    }
    let (refused, reply) = within("the first reply", replies.recv()).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(reply.to_lowercase().contains("retry-after: 1"), "{reply}");
    assert!(reply.contains("body_budget_spent"), "{reply}");
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    let holder = 1 - refused;
    writers[holder].write_all(rest.as_bytes()).await.unwrap();
    let (client, reply) = within("the holder's reply", replies.recv()).await.unwrap();
    assert_eq!(client, holder);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // the budget came back: the refused request, sent again, is handled
    let again = send_raw(addr, format!("{head}{body}")).await;
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    handle.shutdown().await;
}
