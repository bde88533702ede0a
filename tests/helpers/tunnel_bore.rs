//! A real tunnel end to end on loopback: a bore server, a bore tunnel to a
//! conflictkit event listener, and an event posted to the public URL reaching
//! its handler (the original's webhook test, without a third-party service).
//!
//! bore's control port is fixed (7835), so every test that may touch it takes
//! the `BORE` lock: they run one at a time within this binary.
#![cfg(feature = "tunnel")]

use std::ops::RangeInclusive;

use conflictkit::events::{EventPoster, Listener, ListenerConfig, ListenerHandle};
use conflictkit::tunnel::testing::BoreServer;
use conflictkit::tunnel::{BORE_CONTROL_PORT, Bore, TunnelError};
use tokio::sync::{Mutex, mpsc};

static BORE: Mutex<()> = Mutex::const_new(());

/// Public ports on loopback that the test server hands out.
const PUBLIC_PORTS: RangeInclusive<u16> = 42_000..=42_999;
const SECRET: &str = "conflictkit-test-secret";

/// The `txupdate` payload the handler decodes.
#[derive(Debug, PartialEq, serde::Deserialize)]
struct TxUpdate {
    txid: String,
    confirmations: u32,
}

/// The local service behind the tunnel: a conflictkit event listener on
/// loopback whose `txupdate` handler hands what it decoded to the test.
struct LocalService {
    port: u16,
    received: mpsc::UnboundedReceiver<TxUpdate>,
    _handle: ListenerHandle,
}

impl LocalService {
    async fn start() -> Self {
        let (tx, received) = mpsc::unbounded_channel();
        let listener = Listener::new(ListenerConfig::new("127.0.0.1:0".parse().expect("addr")));
        listener.on("txupdate", move |update: TxUpdate| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(update);
            }
        });
        let handle = listener.start().await.expect("event listener");
        Self {
            port: handle.local_addr().port(),
            received,
            _handle: handle,
        }
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

    // The original's sender, aimed at the public URL.
    let txid = format!("{:016x}", rand::random::<u64>());
    EventPoster::new(tunnel.public_url())
        .expect("poster")
        .post(
            "txupdate",
            &serde_json::json!({ "txid": txid, "confirmations": 3 }),
        )
        .await
        .expect("POST through the tunnel answered 200");
    let received = service
        .received
        .recv()
        .await
        .expect("the handler got the event");
    assert_eq!(
        received,
        TxUpdate {
            txid,
            confirmations: 3
        }
    );

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
