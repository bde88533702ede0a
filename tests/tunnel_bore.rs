//! A real tunnel end to end on loopback: a bore server, a bore tunnel to a
//! local HTTP service, and an event posted to the public URL reaching that
//! service (the original's webhook test, without a third-party service).
//!
//! bore's control port is fixed (7835), so every test that may touch it takes
//! the `BORE` lock: they run one at a time within this binary.
#![cfg(feature = "tunnel")]

use std::ops::RangeInclusive;

use conflictkit::tunnel::{BORE_CONTROL_PORT, Bore, BoreServer, TunnelError};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc};

static BORE: Mutex<()> = Mutex::const_new(());

/// Public ports on loopback that the test server hands out.
const PUBLIC_PORTS: RangeInclusive<u16> = 42_000..=42_999;
const SECRET: &str = "conflictkit-test-secret";

/// A request the local service received.
#[derive(Debug)]
struct Received {
    method: String,
    path: String,
    body: serde_json::Value,
}

/// The local service behind the tunnel: a minimal HTTP server on loopback that
/// answers each request `200 OK` and hands it to the test.
///
/// When the event listener (issue 6) is merged, this is where it goes:
/// `conflictkit::events::Listener` on 127.0.0.1:0 with a `txupdate` handler
/// that sends what it decodes on the same channel.
struct LocalService {
    port: u16,
    received: mpsc::UnboundedReceiver<Received>,
}

impl LocalService {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (tx, received) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut read = BufReader::new(read);
                    let mut request_line = String::new();
                    read.read_line(&mut request_line)
                        .await
                        .expect("request line");
                    let mut parts = request_line.split_whitespace();
                    let method = parts.next().unwrap_or_default().to_owned();
                    let path = parts.next().unwrap_or_default().to_owned();
                    let mut length = 0;
                    loop {
                        let mut header = String::new();
                        read.read_line(&mut header).await.expect("header");
                        let header = header.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().expect("content length");
                        }
                    }
                    let mut body = vec![0; length];
                    read.read_exact(&mut body).await.expect("body");
                    write
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nOK",
                        )
                        .await
                        .expect("reply");
                    let body = serde_json::from_slice(&body).expect("a JSON body");
                    let _ = tx.send(Received { method, path, body });
                });
            }
        });
        Self { port, received }
    }
}

#[tokio::test]
async fn an_event_posted_to_the_public_url_reaches_the_local_service() {
    let _serial = BORE.lock().await;
    let mut service = LocalService::start().await;
    let server = BoreServer::start(PUBLIC_PORTS, Some(SECRET))
        .await
        .expect("bore server");
    assert_eq!(
        server.control_addr(),
        ([127, 0, 0, 1], BORE_CONTROL_PORT).into()
    );

    let tunnel = Bore::to("127.0.0.1")
        .secret(SECRET)
        .local_port(service.port)
        .start()
        .await
        .expect("bore tunnel");
    let public_port = tunnel.remote_port();
    assert!(PUBLIC_PORTS.contains(&public_port), "{public_port}");
    assert_eq!(
        tunnel.public_url(),
        format!("http://127.0.0.1:{public_port}")
    );

    let txid = format!("{:016x}", rand::random::<u64>());
    let event = serde_json::json!({
        "event_name": "txupdate",
        "data": { "txid": txid, "confirmations": 3 },
    });
    let response = reqwest::Client::new()
        .post(tunnel.public_url())
        .json(&event)
        .send()
        .await
        .expect("POST through the tunnel");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), "OK");

    let received = service
        .received
        .recv()
        .await
        .expect("the service got the request");
    assert_eq!(received.method, "POST");
    assert_eq!(received.path, "/");
    assert_eq!(received.body, event);

    tunnel.stop().await;
    server.stop().await;
    // Stopping the server closed its tunnel ports too.
    let refused = tokio::net::TcpStream::connect(("127.0.0.1", public_port)).await;
    assert!(refused.is_err(), "port {public_port} still open after stop");
}

#[tokio::test]
async fn a_wrong_or_missing_secret_is_refused() {
    let _serial = BORE.lock().await;
    let server = BoreServer::start(PUBLIC_PORTS, Some(SECRET))
        .await
        .expect("bore server");

    let err = Bore::to("127.0.0.1")
        .secret("not the secret")
        .local_port(9)
        .start()
        .await
        .expect_err("wrong secret");
    assert!(
        matches!(&err, TunnelError::BoreConnect { local_port: 9, .. }),
        "{err:?}"
    );
    let source = std::error::Error::source(&err)
        .expect("bore's error as source")
        .to_string();
    assert!(source.contains("server error"), "{source}");

    let err = Bore::to("127.0.0.1")
        .local_port(9)
        .start()
        .await
        .expect_err("no secret");
    let source = std::error::Error::source(&err).expect("source").to_string();
    assert!(source.contains("requires authentication"), "{source}");

    server.stop().await;
}

#[tokio::test]
async fn one_server_per_control_port_and_stop_frees_it() {
    let _serial = BORE.lock().await;
    let first = BoreServer::start(PUBLIC_PORTS, None)
        .await
        .expect("first server");
    let err = BoreServer::start(PUBLIC_PORTS, None)
        .await
        .expect_err("the control port is taken");
    assert!(matches!(&err, TunnelError::BoreServer { .. }), "{err:?}");
    assert!(err.to_string().contains("is another one running?"), "{err}");
    first.stop().await;

    let again = BoreServer::start(PUBLIC_PORTS, None)
        .await
        .expect("port free after stop");
    again.stop().await;
}

#[tokio::test]
async fn no_server_is_a_connect_error() {
    let _serial = BORE.lock().await;
    let err = Bore::to("127.0.0.1")
        .local_port(9)
        .start()
        .await
        .expect_err("no server");
    match &err {
        TunnelError::BoreConnect { server, .. } => assert_eq!(server, "127.0.0.1"),
        other => panic!("expected BoreConnect, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_settings_are_typed_errors() {
    let err = Bore::to("127.0.0.1")
        .start()
        .await
        .expect_err("no local port");
    assert!(matches!(err, TunnelError::MissingLocalPort), "{err:?}");

    #[allow(clippy::reversed_empty_ranges)]
    let empty = 5000..=4999;
    let err = BoreServer::start(empty, None)
        .await
        .expect_err("empty range");
    assert!(
        matches!(
            err,
            TunnelError::EmptyPortRange {
                start: 5000,
                end: 4999
            }
        ),
        "{err:?}"
    );
}
