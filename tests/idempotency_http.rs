//! `Idempotency-Key` over real HTTP on loopback, on PostgreSQL, MariaDB and
//! SQLite: a repeat is answered with the first response byte for byte and
//! applies nothing again; 409 for a caller that prefers not to wait while
//! the first request runs (one that waits gets the first's response); 422
//! for the key of another request; 400 for no key, a malformed one or
//! several.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use common::Backend;
use common::sql::{bounded, count, exec, server};
use conflictkit::resolver::idempotency::http::{Bytes, StoredResponse, idempotent};
use conflictkit::resolver::idempotency::migrate_idempotency;
use conflictkit::{ConflictResolver, Error, Txn};
use tokio::sync::{Semaphore, mpsc, oneshot};
use warp::Filter as _;

/// The app: `POST /transfer` with a body of cents; the handler writes a row
/// and answers 201 with a random transfer id (so a replay is told from a
/// second run). While `gate` has no permits, the handler waits inside its
/// transaction after telling `entered`.
struct App {
    url: String,
    runs: Arc<AtomicU32>,
    _stop: oneshot::Sender<()>,
}

async fn serve(
    resolver: ConflictResolver,
    gate: Arc<Semaphore>,
    entered: mpsc::UnboundedSender<()>,
) -> App {
    let runs = Arc::new(AtomicU32::new(0));
    let counted = runs.clone();
    let route = warp::path("transfer").and(warp::post()).and(idempotent(
        resolver,
        "api::transfer",
        move |txn: &Txn, body: Bytes| {
            let (runs, gate, entered) = (counted.clone(), gate.clone(), entered.clone());
            Box::pin(async move {
                runs.fetch_add(1, Ordering::SeqCst);
                let cents: i64 = std::str::from_utf8(&body)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0);
                exec(txn, &format!("INSERT INTO transfer VALUES ({cents})")).await?;
                let _ = entered.send(());
                drop(gate.acquire().await);
                let id: u64 = rand::random();
                Ok::<_, Error>(StoredResponse::json(
                    201,
                    &serde_json::json!({"transfer": format!("{id:016x}"), "cents": cents}),
                ))
            })
        },
    ));
    let (tx, rx) = oneshot::channel::<()>();
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = socket.local_addr().unwrap();
    tokio::spawn(
        warp::serve(route)
            .incoming(socket)
            .graceful(async {
                let _ = rx.await;
            })
            .run(),
    );
    App {
        url: format!("http://{addr}/transfer"),
        runs,
        _stop: tx,
    }
}

async fn post(
    url: &str,
    keys: &[&str],
    prefer_no_wait: bool,
    body: &str,
) -> (u16, Option<String>, Vec<u8>) {
    let mut req = reqwest::Client::new().post(url).body(body.to_owned());
    for k in keys {
        req = req.header("Idempotency-Key", *k);
    }
    if prefer_no_wait {
        req = req.header("Prefer", "wait=0");
    }
    let resp = bounded("request", req.send()).await.unwrap();
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, content_type, resp.bytes().await.unwrap().to_vec())
}

async fn setup(backend: Backend, test: &str) -> (common::TestDb, ConflictResolver) {
    let tdb = server(backend, test, 8).await;
    migrate_idempotency(&tdb.db).await.unwrap();
    exec(&tdb.db, "CREATE TABLE transfer (cents BIGINT NOT NULL)")
        .await
        .unwrap();
    let r = ConflictResolver::new(tdb.db.clone());
    (tdb, r)
}

fn error_of(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v["error"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_gets_the_first_response_byte_for_byte_and_the_key_of_another_request_422() {
    for backend in Backend::ALL {
        let (tdb, r) = setup(backend, "http_idem_repeat").await;
        let (entered, _) = mpsc::unbounded_channel();
        let app = serve(r, Arc::new(Semaphore::new(1_000)), entered).await;
        let first = post(&app.url, &["9b2f-1"], false, "250").await;
        assert_eq!(
            first.0,
            201,
            "{backend:?}: {:?}",
            String::from_utf8_lossy(&first.2)
        );
        assert_eq!(first.1.as_deref(), Some("application/json"));
        // quoted, as the draft standard writes it: the same key
        let again = post(&app.url, &["\"9b2f-1\""], false, "250").await;
        assert_eq!(again, first, "{backend:?}: replayed byte for byte");
        assert_eq!(app.runs.load(Ordering::SeqCst), 1, "{backend:?}");
        assert_eq!(count(&tdb.db, "transfer").await, 1, "{backend:?}");
        // the same key with another body
        let other = post(&app.url, &["9b2f-1"], false, "999").await;
        assert_eq!(other.0, 422, "{backend:?}");
        assert_eq!(error_of(&other.2), "idempotency_key_reused");
        assert_eq!(app.runs.load(Ordering::SeqCst), 1, "{backend:?}");
        // a new key is a new request
        let second = post(&app.url, &["9b2f-2"], false, "250").await;
        assert_eq!(second.0, 201);
        assert_ne!(second.2, first.2, "{backend:?}: another transfer id");
        assert_eq!(count(&tdb.db, "transfer").await, 2, "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_one_well_formed_key_is_400() {
    let (tdb, r) = setup(Backend::Sqlite, "http_idem_400").await;
    let (entered, _) = mpsc::unbounded_channel();
    let app = serve(r, Arc::new(Semaphore::new(1_000)), entered).await;
    for (keys, error) in [
        (&[][..], "missing_idempotency_key"),
        (&["a", "b"][..], "several_idempotency_keys"),
        (&["a", "a"][..], "several_idempotency_keys"),
        (&[""][..], "invalid_idempotency_key"),
        (&["\"\""][..], "invalid_idempotency_key"),
        (&["has space"][..], "invalid_idempotency_key"),
    ] {
        let (status, _, body) = post(&app.url, keys, false, "1").await;
        assert_eq!((status, error_of(&body).as_str()), (400, error), "{keys:?}");
    }
    let long = "k".repeat(256);
    let (status, _, body) = post(&app.url, &[&long], false, "1").await;
    assert_eq!(
        (status, error_of(&body).as_str()),
        (400, "invalid_idempotency_key")
    );
    assert_eq!(app.runs.load(Ordering::SeqCst), 0);
    assert_eq!(count(&tdb.db, "transfer").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn while_the_first_runs_a_repeat_gets_409_if_it_will_not_wait_or_the_first_response() {
    for backend in Backend::ALL {
        let (tdb, r) = setup(backend, "http_idem_409").await;
        let gate = Arc::new(Semaphore::new(0));
        let (entered_tx, mut entered) = mpsc::unbounded_channel();
        let app = serve(r, gate.clone(), entered_tx).await;
        let url = app.url.clone();
        let first = tokio::spawn(async move { post(&url, &["slow"], false, "5").await });
        bounded("the first request runs", entered.recv()).await;
        let busy = post(&app.url, &["slow"], true, "5").await;
        assert_eq!(busy.0, 409, "{backend:?}");
        assert_eq!(error_of(&busy.2), "request_in_flight");
        // one that waits: arriving while the first runs (held on the key)
        // or after it committed, it gets the first response
        let url = app.url.clone();
        let waiting = tokio::spawn(async move { post(&url, &["slow"], false, "5").await });
        gate.add_permits(1_000);
        let first = bounded("first", first).await.unwrap();
        let waited = bounded("waiting", waiting).await.unwrap();
        assert_eq!(first.0, 201, "{backend:?}");
        assert_eq!(waited, first, "{backend:?}");
        assert_eq!(app.runs.load(Ordering::SeqCst), 1, "{backend:?}");
        assert_eq!(count(&tdb.db, "transfer").await, 1, "{backend:?}");
    }
}
