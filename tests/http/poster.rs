//! The event poster over real HTTP on loopback: the original's bytes on the
//! wire, round trips to the listener, retries and typed errors.

use crate::common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::events::isolated_config;
use conflictkit::events::{EventPoster, Listener, ListenerConfig, PostError, WebhookSecret};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request as it arrived on the socket.
#[derive(Debug)]
struct Captured {
    head: String,
    body: Vec<u8>,
    at: Instant,
}

impl Captured {
    /// The value of header `name` (case-insensitive).
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// A bare HTTP server that records each request and answers `status`, like
/// the original's `HTTPNotificationTestCase` server.
async fn capture_server(status: u16) -> (SocketAddr, Arc<Mutex<Vec<Captured>>>) {
    scripted_server(vec![format!(
        "HTTP/1.1 {status} X\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope"
    )])
    .await
}

/// A bare HTTP server that records each request and answers the n-th one
/// with the n-th raw reply (the last one again after that). A reply without
/// `Connection: close` is written and the connection then held open.
async fn scripted_server(replies: Vec<String>) -> (SocketAddr, Arc<Mutex<Vec<Captured>>>) {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let captured: Arc<Mutex<Vec<Captured>>> = Arc::default();
    let c = captured.clone();
    let replies = Arc::new(replies);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = socket.accept().await {
            let c = c.clone();
            let replies = replies.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, body) = loop {
                    let n = stream.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "connection closed before a full request");
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8(buf[..end].to_vec()).unwrap();
                        let length: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap();
                        while buf.len() < end + 4 + length {
                            let n = stream.read(&mut chunk).await.unwrap();
                            buf.extend_from_slice(&chunk[..n]);
                        }
                        break (head, buf[end + 4..end + 4 + length].to_vec());
                    }
                };
                let reply = {
                    let mut c = c.lock().unwrap();
                    c.push(Captured {
                        head,
                        body,
                        at: Instant::now(),
                    });
                    replies[(c.len() - 1).min(replies.len() - 1)].clone()
                };
                stream.write_all(reply.as_bytes()).await.unwrap();
                if !reply.contains("Connection: close") {
                    std::future::pending::<()>().await;
                }
            });
        }
    });
    (addr, captured)
}

#[derive(Serialize)]
struct Original {
    test: &'static str,
    test2: Decimal,
}

#[tokio::test]
async fn the_body_on_the_wire_is_the_originals_byte_for_byte() {
    // SEED §6.3 HTTPNotificationTestCase: trigger("foobar", {"test": "abc", "test2": Decimal("1.0")}).
    let (addr, captured) = capture_server(200).await;
    let poster = EventPoster::new(&format!("http://{addr}")).unwrap();
    poster
        .post(
            "foobar",
            &Original {
                test: "abc",
                test2: "1.0".parse().unwrap(),
            },
        )
        .await
        .unwrap();
    let captured = captured.lock().unwrap();
    assert_eq!(captured.len(), 1, "exactly one POST arrived");
    // What CPython's requests.post(url, data={...}) sent for this event.
    assert_eq!(
        String::from_utf8(captured[0].body.clone()).unwrap(),
        "event_name=foobar&data=%7B%22test%22%3A+%22abc%22%2C+%22test2%22%3A+%221.0%22%7D&xdata=%7B%22test%22%3A+%22abc%22%2C+%22test2%22%3A+%221.0%22%7D"
    );
    let head = captured[0].head.to_ascii_lowercase();
    assert!(head.starts_with("post / http/1.1"), "{head}");
    assert!(
        head.contains("content-type: application/x-www-form-urlencoded"),
        "{head}"
    );
    assert!(
        !head.contains("webhook-signature"),
        "unsigned without a secret"
    );
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Payment {
    txid: String,
    amount: Decimal,
}

async fn payments_listener(
    config: ListenerConfig,
) -> (
    conflictkit::events::ListenerHandle,
    Arc<Mutex<Vec<Payment>>>,
) {
    let got: Arc<Mutex<Vec<Payment>>> = Arc::default();
    let listener = Listener::new(config);
    let g = got.clone();
    listener.on("payment", move |p: Payment| g.lock().unwrap().push(p));
    (listener.start().await.unwrap(), got)
}

#[tokio::test]
async fn round_trip_without_a_signature() {
    let (handle, got) = payments_listener(isolated_config()).await;
    let payment = Payment {
        txid: "t1".into(),
        amount: "12.340".parse().unwrap(),
    };
    EventPoster::new(&format!("http://{}", handle.local_addr()))
        .unwrap()
        .post("payment", &payment)
        .await
        .unwrap();
    assert_eq!(*got.lock().unwrap(), vec![payment]);
}

#[tokio::test]
async fn round_trip_with_a_signature() {
    let secret = WebhookSecret::generate();
    let (handle, got) = payments_listener(ListenerConfig {
        secrets: vec![secret.clone()],
        ..isolated_config()
    })
    .await;
    let url = format!("http://{}", handle.local_addr());
    let payment = Payment {
        txid: "t2".into(),
        amount: "0.1".parse().unwrap(),
    };

    EventPoster::new(&url)
        .unwrap()
        .secret(secret)
        .post("payment", &payment)
        .await
        .unwrap();
    assert_eq!(*got.lock().unwrap(), vec![payment.clone()]);

    // Unsigned, or signed with another secret: 401, never retried, not dispatched.
    let unsigned = EventPoster::new(&url)
        .unwrap()
        .post("payment", &payment)
        .await
        .unwrap_err();
    assert!(
        matches!(
            unsigned,
            PostError::Status {
                status: 401,
                attempts: 1,
                ..
            }
        ),
        "{unsigned:?}"
    );
    let wrong = EventPoster::new(&url)
        .unwrap()
        .secret(WebhookSecret::generate())
        .post("payment", &payment)
        .await
        .unwrap_err();
    assert_eq!(wrong.status(), Some(401));
    assert_eq!(got.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_with_the_same_webhook_id_until_handled() {
    let secret = WebhookSecret::generate();
    let listener = Listener::new(ListenerConfig {
        secrets: vec![secret.clone()],
        ..isolated_config()
    });
    let calls = Arc::new(AtomicUsize::new(0));
    let ids = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (c, seen) = (calls.clone(), ids.clone());
    listener.on(
        "flaky",
        move |ctx: conflictkit::events::EventContext, _: Value| {
            let attempt = c.fetch_add(1, Ordering::SeqCst) + 1;
            seen.lock()
                .unwrap()
                .push((ctx.webhook_id().map(str::to_owned), ctx.attempt()));
            async move {
                if attempt < 3 {
                    Err(format!("attempt {attempt} failed"))
                } else {
                    Ok(())
                }
            }
        },
    );
    let handle = listener.start().await.unwrap();
    EventPoster::new(&format!("http://{}", handle.local_addr()))
        .unwrap()
        .secret(secret)
        .backoff(Duration::ZERO, Duration::ZERO)
        .retries(3)
        .post("flaky", &json!({}))
        .await
        .unwrap();
    // Two 500s released the webhook-id, so the retries were dispatched again.
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // Every attempt carried the same webhook-id (a poster making a fresh id
    // per retry would defeat de-duplication), numbered 1, 2, 3.
    let ids = ids.lock().unwrap().clone();
    let first = ids[0].0.clone().expect("a webhook-id");
    assert!(
        ids.iter()
            .all(|(id, _)| id.as_deref() == Some(first.as_str())),
        "{ids:?}"
    );
    let attempts: Vec<_> = ids.iter().map(|(_, a)| *a).collect();
    assert_eq!(attempts, [Some(1), Some(2), Some(3)]);
}

#[tokio::test]
async fn retries_are_bounded_and_the_error_carries_status_and_body() {
    let (addr, captured) = capture_server(503).await;
    let err = EventPoster::new(&format!("http://{addr}"))
        .unwrap()
        .backoff(Duration::ZERO, Duration::ZERO)
        .retries(2)
        .post("x", &json!(1))
        .await
        .unwrap_err();
    match &err {
        PostError::Status {
            status,
            body,
            retry_after,
            attempts,
        } => {
            assert_eq!((*status, body.as_str(), *attempts), (503, "nope", 3));
            assert_eq!(*retry_after, None, "the reply had no Retry-After");
        }
        other => panic!("expected a status error, got {other:?}"),
    }
    assert_eq!(captured.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn too_many_requests_is_retried_but_other_4xx_are_not() {
    let (busy, busy_seen) = capture_server(429).await;
    let err = EventPoster::new(&format!("http://{busy}"))
        .unwrap()
        .backoff(Duration::ZERO, Duration::ZERO)
        .retries(1)
        .post("x", &json!(1))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(429));
    assert_eq!(busy_seen.lock().unwrap().len(), 2);

    let (gone, gone_seen) = capture_server(404).await;
    let err = EventPoster::new(&format!("http://{gone}"))
        .unwrap()
        .retries(5)
        .post("x", &json!(1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            PostError::Status {
                status: 404,
                attempts: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(gone_seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn any_2xx_is_success() {
    for status in [200, 201, 202, 204, 299] {
        let (addr, seen) = capture_server(status).await;
        EventPoster::new(&format!("http://{addr}"))
            .unwrap()
            .retries(3)
            .post("x", &json!(1))
            .await
            .unwrap_or_else(|e| panic!("{status} must be success: {e}"));
        assert_eq!(seen.lock().unwrap().len(), 1, "{status} is not retried");
    }
}

#[tokio::test]
async fn every_post_has_a_webhook_id_kept_across_retries_signed_or_not() {
    for secret in [None, Some(WebhookSecret::generate())] {
        let (addr, seen) = capture_server(503).await;
        let mut poster = EventPoster::new(&format!("http://{addr}"))
            .unwrap()
            .backoff(Duration::ZERO, Duration::ZERO)
            .retries(2);
        if let Some(secret) = secret.clone() {
            poster = poster.secret(secret);
        }
        poster.post("x", &json!(1)).await.unwrap_err();
        let seen = std::mem::take(&mut *seen.lock().unwrap());
        assert_eq!(seen.len(), 3);
        let id = seen[0].header("webhook-id").expect("a webhook-id");
        assert!(id.starts_with("msg_") && id.len() == 28, "{id}");
        for (i, c) in seen.iter().enumerate() {
            assert_eq!(c.header("webhook-id").as_deref(), Some(id.as_str()));
            assert_eq!(c.header("webhook-attempt"), Some((i + 1).to_string()));
            assert_eq!(
                c.header("webhook-signature").is_some(),
                secret.is_some(),
                "signed only with a secret"
            );
        }

        // The next event gets another id.
        let (addr, next) = capture_server(200).await;
        EventPoster::new(&format!("http://{addr}"))
            .unwrap()
            .post("x", &json!(1))
            .await
            .unwrap();
        assert_ne!(next.lock().unwrap()[0].header("webhook-id"), Some(id));
    }
}

#[tokio::test]
async fn a_redirect_is_a_failure_and_nothing_reaches_the_other_host() {
    let (elsewhere, elsewhere_seen) = capture_server(200).await;
    for status in [301, 302, 307, 308] {
        let (addr, seen) = scripted_server(vec![format!(
            "HTTP/1.1 {status} Moved\r\nLocation: http://{elsewhere}/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )])
        .await;
        let err = EventPoster::new(&format!("http://{addr}"))
            .unwrap()
            .secret(WebhookSecret::generate())
            .retries(3)
            .post("x", &json!(1))
            .await
            .unwrap_err();
        match &err {
            PostError::Redirect {
                status: s,
                location,
                attempts,
            } => {
                assert_eq!((*s, *attempts), (status, 1));
                assert_eq!(location.as_deref(), Some(&*format!("http://{elsewhere}/")));
            }
            other => panic!("expected a redirect error, got {other:?}"),
        }
        assert!(err.to_string().contains("not followed"), "{err}");
        assert_eq!(err.status(), Some(status));
        assert_eq!(seen.lock().unwrap().len(), 1, "not retried");
    }
    assert!(
        elsewhere_seen.lock().unwrap().is_empty(),
        "nothing (and no signature) went to the redirect target"
    );
}

#[tokio::test]
async fn retry_after_in_seconds_is_waited_for() {
    let (addr, seen) = scripted_server(vec![
        "HTTP/1.1 503 Busy\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .into(),
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
    ])
    .await;
    EventPoster::new(&format!("http://{addr}"))
        .unwrap()
        // Without Retry-After the retry would be immediate.
        .backoff(Duration::ZERO, Duration::ZERO)
        .retries(1)
        .post("x", &json!(1))
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    let waited = seen[1].at - seen[0].at;
    assert!(
        waited >= Duration::from_millis(900),
        "retried after {waited:?}"
    );
}

#[tokio::test]
async fn retry_after_is_capped_by_the_posters_limit() {
    let (addr, seen) = scripted_server(vec![
        "HTTP/1.1 429 Slow down\r\nRetry-After: Tue, 31 Dec 2999 23:59:59 GMT\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
        "HTTP/1.1 503 Busy\r\nRetry-After: 3600\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
        "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n".into(),
    ])
    .await;
    let poster = EventPoster::new(&format!("http://{addr}"))
        .unwrap()
        .max_retry_after(Duration::from_millis(10))
        .retries(2);
    // Guard: an uncapped wait would be hours; fail instead of hanging.
    tokio::time::timeout(Duration::from_secs(60), poster.post("x", &json!(1)))
        .await
        .expect("Retry-After must be capped")
        .unwrap();
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn the_error_carries_the_last_replys_retry_after() {
    // Seconds: the first reply asks no wait, the last one two minutes (the
    // poster gives up then, so it does not wait them).
    let (addr, seen) = scripted_server(vec![
        "HTTP/1.1 503 Busy\r\nRetry-After: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
        "HTTP/1.1 429 Slow down\r\nRetry-After: 120\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
    ])
    .await;
    let err = EventPoster::new(&format!("http://{addr}"))
        .unwrap()
        .retries(1)
        .post("x", &json!(1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            PostError::Status {
                status: 429,
                retry_after: Some(d),
                attempts: 2,
                ..
            } if d == Duration::from_secs(120)
        ),
        "{err:?}"
    );
    assert_eq!(seen.lock().unwrap().len(), 2);

    // An HTTP date: the time until it, as asked (not cut to the poster's
    // limit, which bounds only its own waits).
    let (addr, _) = scripted_server(vec![
        "HTTP/1.1 503 Busy\r\nRetry-After: Tue, 31 Dec 2999 23:59:59 GMT\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
    ])
    .await;
    let err = EventPoster::new(&format!("http://{addr}"))
        .unwrap()
        .retries(0)
        .max_retry_after(Duration::from_secs(1))
        .post("x", &json!(1))
        .await
        .unwrap_err();
    let asked = err.retry_after().expect("an HTTP date is a Retry-After");
    assert!(asked > Duration::from_secs(900 * 365 * 86_400), "{asked:?}");

    // Unparseable: none.
    let (addr, _) = scripted_server(vec![
        "HTTP/1.1 503 Busy\r\nRetry-After: soon\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .into(),
    ])
    .await;
    let err = EventPoster::new(&format!("http://{addr}"))
        .unwrap()
        .retries(0)
        .post("x", &json!(1))
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.retry_after()), (Some(503), None));
}

#[tokio::test]
async fn the_error_body_read_is_bounded() {
    // A 400 whose chunked body never ends: only the first 4 KiB are read.
    let chunk = format!("1000\r\n{}\r\n", "x".repeat(4096));
    let (addr, _) = scripted_server(vec![format!(
        "HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}{chunk}"
    )])
    .await;
    let poster = EventPoster::new(&format!("http://{addr}"))
        .unwrap()
        .timeout(Duration::from_secs(600));
    let err = tokio::time::timeout(Duration::from_secs(60), poster.post("x", &json!(1)))
        .await
        .expect("the poster must not wait for the end of an endless body")
        .unwrap_err();
    match err {
        PostError::Status { status, body, .. } => {
            assert_eq!(status, 400);
            assert_eq!(body.len(), 4096);
            assert!(body.bytes().all(|b| b == b'x'));
        }
        other => panic!("expected a status error, got {other:?}"),
    }
}

#[tokio::test]
async fn connection_errors_are_retried_then_reported() {
    // A port that was just free: connections are refused.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let err = EventPoster::new(&format!("http://{addr}"))
        .unwrap()
        .backoff(Duration::ZERO, Duration::ZERO)
        .retries(2)
        .post("x", &json!(1))
        .await
        .unwrap_err();
    match &err {
        PostError::Request { attempts, source } => {
            assert_eq!(*attempts, 3);
            assert!(source.is_connect(), "{source:?}");
        }
        other => panic!("expected a request error, got {other:?}"),
    }
    assert!(std::error::Error::source(&err).is_some());
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let (accepted_tx, mut accepted_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        // Accept and hold connections without ever answering.
        while let Ok((stream, _)) = socket.accept().await {
            let _ = accepted_tx.send(stream);
        }
    });
    let err = EventPoster::new(&format!("http://{addr}"))
        .unwrap()
        .timeout(Duration::from_millis(100))
        .retries(0)
        .post("x", &json!(1))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PostError::Request { attempts: 1, source } if source.is_timeout()),
        "{err:?}"
    );
    assert!(
        accepted_rx.recv().await.is_some(),
        "the request reached the server"
    );
}

#[test]
fn invalid_input_is_a_typed_error() {
    assert!(matches!(
        EventPoster::new("not a url"),
        Err(PostError::InvalidUrl { .. })
    ));
    assert!(matches!(
        EventPoster::new("ftp://host/"),
        Err(PostError::InvalidUrl { .. })
    ));
    assert!(matches!(
        EventPoster::encode("", &json!({})),
        Err(PostError::EmptyEventName)
    ));
    let mut not_json = std::collections::HashMap::new();
    not_json.insert((1, 2), 3);
    assert!(matches!(
        EventPoster::encode("x", &not_json),
        Err(PostError::Serialize(_))
    ));
}
