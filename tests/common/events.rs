//! Helpers shared by the `events_*` integration tests: real HTTP on loopback.

use std::net::SocketAddr;

use conflictkit::events::ListenerConfig;
use conflictkit::events::compat::form_encode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Loopback, port 0, only the handlers the test adds with `on`.
pub fn isolated_config() -> ListenerConfig {
    ListenerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        registered_handlers: false,
        ..Default::default()
    }
}

/// Loopback, port 0, including the `#[event_listener]` functions.
pub fn config_with_registered() -> ListenerConfig {
    ListenerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    }
}

/// A reply: status and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// Sends raw bytes and reads the whole reply (the request should say
/// `Connection: close`).
pub async fn raw(addr: SocketAddr, request: &[u8]) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Reply { status, body }
}

/// Posts `body` with `content_type` through reqwest.
pub async fn post(addr: SocketAddr, content_type: &str, body: impl Into<reqwest::Body>) -> Reply {
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    Reply {
        status: response.status().as_u16(),
        body: response.text().await.unwrap(),
    }
}

/// Posts a form with `event_name` and `data` (JSON text).
pub async fn post_event(addr: SocketAddr, event_name: &str, data: &str) -> Reply {
    post(
        addr,
        "application/x-www-form-urlencoded",
        form_encode(&[("event_name", event_name), ("data", data)]),
    )
    .await
}

/// Posts the event `event_name` with `data` as the signed delivery `id`
/// (a fresh timestamp), as a sender retrying one event does; the status and
/// the body of the reply.
pub async fn deliver_signed(
    addr: SocketAddr,
    secret: &conflictkit::events::WebhookSecret,
    id: &str,
    event_name: &str,
    data: &serde_json::Value,
) -> Reply {
    let body = serde_json::json!({"event_name": event_name, "data": data}).to_string();
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/"))
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", secret.sign(id, ts, body.as_bytes()))
        .body(body)
        .send()
        .await
        .expect("the listener answers");
    let status = response.status().as_u16();
    let body = response.text().await.expect("a reply body");
    Reply { status, body }
}
