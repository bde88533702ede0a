//! The listener mounted in a warp app and in an axum app of the user's own,
//! over real HTTP on loopback: one suite of listener behaviours runs against
//! the standalone server, the mounted warp filter and the tower service
//! mounted in axum, and the app's own routes keep answering beside it (the
//! filter rejects what is not an event, so the app's routes are tried; in
//! axum the router gives the service only its own route).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use conflictkit::events::compat::form_encode;
use conflictkit::events::{EventPoster, Listener, ListenerConfig, ListenerHandle, WebhookSecret};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use warp::Filter as _;

/// Where a listener under test serves, and what keeps it serving.
struct Served {
    /// The URL events are posted to.
    url: String,
    addr: SocketAddr,
    _keep: Keep,
}

/// Dropped with the test: stops the listener or the app's server.
enum Keep {
    Standalone { _handle: ListenerHandle },
    Mounted { _stop: oneshot::Sender<()> },
}

#[derive(Debug, Clone, Copy)]
enum Form {
    Standalone,
    /// Under `/hooks/events` of a warp app with routes of its own.
    Mounted,
    /// `Listener::into_service` at `/hooks/events` of an axum app with
    /// routes of its own (`route_service`).
    Axum,
}

fn config(secret: &WebhookSecret) -> ListenerConfig {
    ListenerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        registered_handlers: false,
        secrets: vec![secret.clone()],
        max_body: 1024,
        ..Default::default()
    }
}

/// The user's own routes: `GET /health` and `GET /hooks/events` (a page at
/// the very path the events are posted to).
fn own_routes() -> impl warp::Filter<Extract = (&'static str,), Error = warp::Rejection> + Clone {
    let health = warp::path("health").and(warp::get()).map(|| "ok");
    let page = warp::path!("hooks" / "events")
        .and(warp::get())
        .map(|| "the events page");
    health.or(page).unify()
}

async fn serve(listener: Listener, form: Form) -> Served {
    match form {
        Form::Standalone => {
            let handle = listener.start().await.unwrap();
            let addr = handle.local_addr();
            Served {
                url: format!("http://{addr}/"),
                addr,
                _keep: Keep::Standalone { _handle: handle },
            }
        }
        Form::Mounted => {
            let events = warp::path!("hooks" / "events").and(listener.filter().unwrap());
            let app = own_routes().or(events);
            let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = socket.local_addr().unwrap();
            let (stop, stopped) = oneshot::channel::<()>();
            tokio::spawn(
                warp::serve(app)
                    .incoming(socket)
                    .graceful(async {
                        let _ = stopped.await;
                    })
                    .run(),
            );
            Served {
                url: format!("http://{addr}/hooks/events"),
                addr,
                _keep: Keep::Mounted { _stop: stop },
            }
        }
        Form::Axum => {
            let app = axum::Router::new()
                .route("/health", axum::routing::get(|| async { "ok" }))
                .route_service("/hooks/events", listener.into_service().unwrap());
            serve_axum(app, "/hooks/events").await
        }
    }
}

/// Serves an axum `app` on a loopback port until the test ends; events are
/// posted to `path`.
async fn serve_axum(app: axum::Router, path: &str) -> Served {
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(socket, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    Served {
        url: format!("http://{addr}{path}"),
        addr,
        _keep: Keep::Mounted { _stop: stop },
    }
}

/// A reply's status and JSON body.
async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"));
    (status, body)
}

/// A signed form post of `event_name` / `data` as delivery `id`.
fn signed(
    url: &str,
    secret: &WebhookSecret,
    id: &str,
    event_name: &str,
    data: &str,
) -> reqwest::RequestBuilder {
    let body = form_encode(&[("event_name", event_name), ("data", data)]);
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", secret.sign(id, ts, body.as_bytes()))
        .body(body)
}

/// The listener behaviours a mount must not change: handled, duplicate,
/// bad signature, undecodable data, too large, wrong type, failing handler.
async fn the_listener_suite(form: Form) {
    let secret = WebhookSecret::generate();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener = Listener::new(config(&secret));
    let log = seen.clone();
    listener.on("credited", move |cents: i64| {
        log.lock().unwrap().push(cents);
        async {}
    });
    listener.on("fails", |_: Value| async {
        Err::<(), _>("ledger is closed")
    });
    let served = serve(listener, form).await;
    let url = served.url.as_str();

    let (status, body) = send(signed(url, &secret, "msg_1", "credited", "250")).await;
    assert_eq!(
        (status, &body["status"]),
        (200, &json!("handled")),
        "{form:?}"
    );
    assert_eq!(*seen.lock().unwrap(), [250], "{form:?}: the handler ran");

    let (status, body) = send(signed(url, &secret, "msg_1", "credited", "250")).await;
    assert_eq!(
        (status, &body["status"]),
        (200, &json!("duplicate")),
        "{form:?}"
    );
    assert_eq!(*seen.lock().unwrap(), [250], "{form:?}: not run again");

    let other = WebhookSecret::generate();
    let (status, body) = send(signed(url, &other, "msg_2", "credited", "1")).await;
    assert_eq!(
        (status, &body["error"]),
        (401, &json!("bad_signature")),
        "{form:?}"
    );

    let (status, body) = send(signed(url, &secret, "msg_3", "credited", r#""lots""#)).await;
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("undecodable_data")),
        "{form:?}"
    );

    let big = "9".repeat(2000);
    let (status, body) = send(signed(url, &secret, "msg_4", "credited", &big)).await;
    assert_eq!(
        (status, &body["error"]),
        (413, &json!("body_too_large")),
        "{form:?}"
    );

    let text = reqwest::Client::new()
        .post(url)
        .header("content-type", "text/plain")
        .body("event_name=credited&data=1");
    let (status, body) = send(text).await;
    assert_eq!(
        (status, &body["error"]),
        (415, &json!("unsupported_media_type")),
        "{form:?}"
    );

    let (status, body) = send(signed(url, &secret, "msg_5", "fails", "{}")).await;
    assert_eq!(
        (status, &body["error"]),
        (500, &json!("handler_failed")),
        "{form:?}"
    );
    assert_eq!(*seen.lock().unwrap(), [250], "{form:?}: nothing else ran");
}

#[tokio::test]
async fn the_suite_passes_against_the_standalone_listener() {
    the_listener_suite(Form::Standalone).await;
}

#[tokio::test]
async fn the_suite_passes_against_the_listener_mounted_in_a_warp_app() {
    the_listener_suite(Form::Mounted).await;
}

#[tokio::test]
async fn the_suite_passes_against_the_listener_mounted_in_an_axum_app() {
    the_listener_suite(Form::Axum).await;
}

#[tokio::test]
async fn the_apps_own_routes_answer_beside_the_mounted_listener() {
    let (listener, seen) = recording_listener();
    let served = serve(listener, Form::Mounted).await;
    let base = delivered_beside_the_apps_health(&served, &seen).await;
    // `GET` at the event path is the app's page: the filter rejected it.
    let page = reqwest::get(&served.url).await.unwrap();
    assert_eq!(
        (page.status().as_u16(), page.text().await.unwrap()),
        (200, "the events page".to_owned())
    );
    // Under the event path and elsewhere, the app's own 404 (not the
    // listener's JSON one): the filter answers only at the end of its path.
    for path in ["/hooks/events/more", "/", "/elsewhere"] {
        let (status, text) = post_to(&format!("{base}{path}")).await;
        assert_eq!(status, 404, "{path}");
        assert!(!text.contains("not_found"), "{path}: {text}");
    }
    assert_eq!(seen.lock().unwrap().len(), 1, "nothing else was dispatched");
}

/// A listener that records the `txupdate`s it handles.
fn recording_listener() -> (Listener, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener = Listener::new(ListenerConfig {
        registered_handlers: false,
        ..Default::default()
    });
    let log = seen.clone();
    listener.on("txupdate", move |update: Value| {
        log.lock().unwrap().push(update);
        async {}
    });
    (listener, seen)
}

/// The poster, unchanged, posts one `txupdate` to the mounted path and the
/// listener sees it; the app's own `/health` answers beside it. Returns the
/// app's base URL.
async fn delivered_beside_the_apps_health(served: &Served, seen: &Mutex<Vec<Value>>) -> String {
    EventPoster::new(&served.url)
        .unwrap()
        .post("txupdate", &json!({"txid": "ab12"}))
        .await
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), [json!({"txid": "ab12"})]);
    let base = format!("http://{}", served.addr);
    let health = reqwest::get(format!("{base}/health")).await.unwrap();
    assert_eq!(health.text().await.unwrap(), "ok");
    base
}

/// A JSON `txupdate` posted to `url`: the status and the body.
async fn post_to(url: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(r#"{"event_name":"txupdate","data":1}"#)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn the_axum_apps_own_routes_answer_beside_the_mounted_service() {
    let (listener, seen) = recording_listener();
    let served = serve(listener, Form::Axum).await;
    let base = delivered_beside_the_apps_health(&served, &seen).await;
    // The route is the service's for every method: other methods get the
    // listener's JSON 405.
    let get = reqwest::get(&served.url).await.unwrap();
    assert_eq!(get.status().as_u16(), 405);
    assert_eq!(get.headers()["allow"], "POST");
    let body: Value = serde_json::from_str(&get.text().await.unwrap()).unwrap();
    assert_eq!(body["error"], "method_not_allowed");
    // Other paths are axum's 404, not the listener's: the router matched
    // `/hooks/events` exactly.
    for path in ["/hooks/events/more", "/hooks", "/", "/elsewhere"] {
        let (status, text) = post_to(&format!("{base}{path}")).await;
        assert_eq!(status, 404, "{path}");
        assert!(!text.contains("not_found"), "{path}: {text}");
    }
    assert_eq!(seen.lock().unwrap().len(), 1, "nothing else was dispatched");
}

/// `nest_service` strips its prefix: the service sees `/` and answers; a
/// page of the app's own at the same path as `post_service` keeps its GET.
#[tokio::test]
async fn the_service_answers_nested_and_for_post_only_beside_a_page() {
    use axum::routing::get;
    let (nested, seen_nested) = recording_listener();
    let app = axum::Router::new()
        .route("/health", get(|| async { "ok" }))
        .nest_service("/hooks/events", nested.into_service().unwrap());
    let served = serve_axum(app, "/hooks/events").await;
    let (status, text) = post_to(&served.url).await;
    assert_eq!((status, text.contains("handled")), (200, true), "{text}");
    assert_eq!(*seen_nested.lock().unwrap(), [json!(1)]);
    let base = format!("http://{}", served.addr);
    assert_eq!(post_to(&format!("{base}/hooks")).await.0, 404);

    let (page_and_post, seen) = recording_listener();
    let app = axum::Router::new().route(
        "/hooks/events",
        get(|| async { "the events page" }).post_service(page_and_post.into_service().unwrap()),
    );
    let served = serve_axum(app, "/hooks/events").await;
    let page = reqwest::get(&served.url).await.unwrap();
    assert_eq!(
        (page.status().as_u16(), page.text().await.unwrap()),
        (200, "the events page".to_owned())
    );
    let (status, text) = post_to(&served.url).await;
    assert_eq!((status, text.contains("handled")), (200, true), "{text}");
    assert_eq!(*seen.lock().unwrap(), [json!(1)]);
}
