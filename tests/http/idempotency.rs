//! `Idempotency-Key` over real HTTP on loopback, on PostgreSQL, MariaDB and
//! SQLite: a repeat is answered with the first response byte for byte and
//! applies nothing again; 409 for a caller that prefers not to wait while
//! the first request runs (one that waits gets the first's response); 422
//! for the key of another request; 400 for no key, a malformed one or
//! several; a handler's 5xx rolls its writes back and is not stored. Every
//! test runs against the warp filter and the tower layer on an axum route.

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::extract::Extension;
use axum::http::StatusCode;
use axum::routing;
use common::Backend;
use common::sql::{bounded, count, exec, server};
use conflictkit::resolver::InjectConflicts;
use conflictkit::resolver::idempotency::http::{Bytes, StoredResponse, idempotent};
use conflictkit::resolver::idempotency::layer::{IdempotencyLayer, RequestTxn};
use conflictkit::resolver::idempotency::migrate_idempotency;
use conflictkit::{ConflictResolver, Error, Txn};
use sea_orm::DbErr;
use tokio::sync::{Semaphore, mpsc, oneshot};
use warp::Filter as _;

/// The two mounted forms of the same endpoint.
#[derive(Debug, Clone, Copy)]
enum Form {
    /// `resolver::idempotency::http::idempotent`, a warp filter.
    Warp,
    /// `resolver::idempotency::layer::IdempotencyLayer` on an axum handler.
    Axum,
}

const FORMS: [Form; 2] = [Form::Warp, Form::Axum];

/// The app: `POST /transfer` with a body of cents; the handler writes a row
/// and answers 201 with a random transfer id (so a replay is told from a
/// second run), or 500 after writing when the body is `fail`. While `gate`
/// has no permits, the handler waits inside its transaction after telling
/// `entered`.
struct App {
    url: String,
    runs: Arc<AtomicU32>,
    _stop: oneshot::Sender<()>,
}

/// What the handler of either form shares.
#[derive(Clone)]
struct Handler {
    runs: Arc<AtomicU32>,
    gate: Arc<Semaphore>,
    entered: mpsc::UnboundedSender<()>,
}

impl Handler {
    /// One run: the status and JSON body to answer.
    async fn transfer(&self, txn: &Txn, body: &[u8]) -> Result<(u16, serde_json::Value), DbErr> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let text = std::str::from_utf8(body).unwrap_or("").trim();
        let cents: i64 = text.parse().unwrap_or(0);
        exec(txn, &format!("INSERT INTO transfer VALUES ({cents})")).await?;
        let _ = self.entered.send(());
        drop(self.gate.acquire().await);
        if text == "fail" {
            return Ok((500, serde_json::json!({"error": "ledger offline"})));
        }
        let id: u64 = rand::random();
        let receipt = serde_json::json!({"transfer": format!("{id:016x}"), "cents": cents});
        Ok((201, receipt))
    }
}

async fn serve(
    form: Form,
    resolver: ConflictResolver,
    gate: Arc<Semaphore>,
    entered: mpsc::UnboundedSender<()>,
) -> App {
    let runs = Arc::new(AtomicU32::new(0));
    let handler = Handler {
        runs: runs.clone(),
        gate,
        entered,
    };
    let (tx, rx) = oneshot::channel::<()>();
    let stop = async {
        let _ = rx.await;
    };
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = socket.local_addr().unwrap();
    match form {
        Form::Warp => {
            let route = warp::path("transfer").and(warp::post()).and(idempotent(
                resolver,
                "api::transfer",
                move |txn: &Txn, body: Bytes| {
                    let handler = handler.clone();
                    Box::pin(async move {
                        let (status, json) = handler.transfer(txn, &body).await?;
                        Ok::<_, Error>(StoredResponse::json(status, &json))
                    })
                },
            ));
            tokio::spawn(warp::serve(route).incoming(socket).graceful(stop).run());
        }
        Form::Axum => {
            let transfer = move |Extension(txn): Extension<RequestTxn>, body: Bytes| async move {
                let (status, json) = match handler.transfer(&txn, &body).await {
                    Ok(answer) => answer,
                    Err(e) => (500, serde_json::json!({"error": e.to_string()})),
                };
                let json_type = [(axum::http::header::CONTENT_TYPE, "application/json")];
                (
                    StatusCode::from_u16(status).unwrap(),
                    json_type,
                    json.to_string(),
                )
            };
            let layer = IdempotencyLayer::new(resolver, "api::transfer").max_body(MAX_BODY);
            let app = axum::Router::new().route("/transfer", routing::post(transfer).layer(layer));
            tokio::spawn(
                async move { axum::serve(socket, app).with_graceful_shutdown(stop).await },
            );
        }
    }
    App {
        url: format!("http://{addr}/transfer"),
        runs,
        _stop: tx,
    }
}

/// The layer's body limit in these tests.
const MAX_BODY: usize = 64;

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

/// Every engine, with each form.
fn cases() -> impl Iterator<Item = (Backend, Form)> {
    Backend::ALL
        .into_iter()
        .flat_map(|b| FORMS.into_iter().map(move |f| (b, f)))
}

fn error_of(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v["error"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_gets_the_first_response_byte_for_byte_and_the_key_of_another_request_422() {
    for (backend, form) in cases() {
        let (tdb, r) = setup(backend, "http_idem_repeat").await;
        let (entered, _) = mpsc::unbounded_channel();
        let app = serve(form, r, Arc::new(Semaphore::new(1_000)), entered).await;
        let first = post(&app.url, &["9b2f-1"], false, "250").await;
        assert_eq!(
            first.0,
            201,
            "{backend:?} {form:?}: {:?}",
            String::from_utf8_lossy(&first.2)
        );
        assert_eq!(first.1.as_deref(), Some("application/json"));
        // quoted, as the draft standard writes it: the same key
        let again = post(&app.url, &["\"9b2f-1\""], false, "250").await;
        assert_eq!(again, first, "{backend:?} {form:?}: replayed byte for byte");
        assert_eq!(app.runs.load(Ordering::SeqCst), 1, "{backend:?} {form:?}");
        assert_eq!(count(&tdb.db, "transfer").await, 1, "{backend:?} {form:?}");
        // the same key with another body
        let other = post(&app.url, &["9b2f-1"], false, "999").await;
        assert_eq!(other.0, 422, "{backend:?} {form:?}");
        assert_eq!(error_of(&other.2), "idempotency_key_reused");
        assert_eq!(app.runs.load(Ordering::SeqCst), 1, "{backend:?} {form:?}");
        // a new key is a new request
        let second = post(&app.url, &["9b2f-2"], false, "250").await;
        assert_eq!(second.0, 201);
        assert_ne!(
            second.2, first.2,
            "{backend:?} {form:?}: another transfer id"
        );
        assert_eq!(count(&tdb.db, "transfer").await, 2, "{backend:?} {form:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_one_well_formed_key_is_400() {
    for form in FORMS {
        let (tdb, r) = setup(Backend::Sqlite, "http_idem_400").await;
        let (entered, _) = mpsc::unbounded_channel();
        let app = serve(form, r, Arc::new(Semaphore::new(1_000)), entered).await;
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
        assert_eq!(app.runs.load(Ordering::SeqCst), 0, "{form:?}");
        assert_eq!(count(&tdb.db, "transfer").await, 0, "{form:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn while_the_first_runs_a_repeat_gets_409_if_it_will_not_wait_or_the_first_response() {
    for (backend, form) in cases() {
        let (tdb, r) = setup(backend, "http_idem_409").await;
        let gate = Arc::new(Semaphore::new(0));
        let (entered_tx, mut entered) = mpsc::unbounded_channel();
        let app = serve(form, r, gate.clone(), entered_tx).await;
        let url = app.url.clone();
        let first = tokio::spawn(async move { post(&url, &["slow"], false, "5").await });
        bounded("the first request runs", entered.recv()).await;
        let busy = post(&app.url, &["slow"], true, "5").await;
        assert_eq!(busy.0, 409, "{backend:?} {form:?}");
        assert_eq!(error_of(&busy.2), "request_in_flight");
        // one that waits: arriving while the first runs (held on the key)
        // or after it committed, it gets the first response
        let url = app.url.clone();
        let waiting = tokio::spawn(async move { post(&url, &["slow"], false, "5").await });
        gate.add_permits(1_000);
        let first = bounded("first", first).await.unwrap();
        let waited = bounded("waiting", waiting).await.unwrap();
        assert_eq!(first.0, 201, "{backend:?} {form:?}");
        assert_eq!(waited, first, "{backend:?} {form:?}");
        assert_eq!(app.runs.load(Ordering::SeqCst), 1, "{backend:?} {form:?}");
        assert_eq!(count(&tdb.db, "transfer").await, 1, "{backend:?} {form:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_answering_5xx_commits_and_stores_nothing_so_a_retry_runs_again() {
    for (backend, form) in cases() {
        let (tdb, r) = setup(backend, "http_idem_5xx").await;
        let (entered, _) = mpsc::unbounded_channel();
        let app = serve(form, r, Arc::new(Semaphore::new(1_000)), entered).await;
        for run in 1..=2 {
            let (status, _, body) = post(&app.url, &["k-5xx"], false, "fail").await;
            assert_eq!(status, 500, "{backend:?} {form:?}");
            assert_eq!(error_of(&body), "ledger offline", "{backend:?} {form:?}");
            assert_eq!(
                app.runs.load(Ordering::SeqCst),
                run,
                "{backend:?} {form:?}: ran again"
            );
            assert_eq!(
                count(&tdb.db, "transfer").await,
                0,
                "{backend:?} {form:?}: rolled back"
            );
            assert_eq!(
                count(&tdb.db, "conflictkit_idempotency").await,
                0,
                "{backend:?} {form:?}"
            );
        }
    }
}

/// Each run but the last is failed with a conflict after the handler ran:
/// the handler gets the same request again, and one transfer commits with
/// the response of the run that committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_replays_the_handler_with_the_same_request() {
    for (backend, form) in cases() {
        let (tdb, _) = setup(backend, "http_idem_replay").await;
        let r = ConflictResolver::builder(tdb.db.clone())
            .retries(3)
            .inject_conflicts(InjectConflicts::rate(1.0))
            .build();
        let (entered, _) = mpsc::unbounded_channel();
        let app = serve(form, r.clone(), Arc::new(Semaphore::new(1_000)), entered).await;
        let first = post(&app.url, &["k-replay"], false, "70").await;
        assert_eq!(first.0, 201, "{backend:?} {form:?}");
        let receipt: serde_json::Value = serde_json::from_slice(&first.2).unwrap();
        assert_eq!(
            receipt["cents"], 70,
            "{backend:?} {form:?}: the same body each run"
        );
        assert_eq!(app.runs.load(Ordering::SeqCst), 4, "{backend:?} {form:?}");
        assert_eq!(r.stats().retries, 3, "{backend:?} {form:?}");
        assert_eq!(count(&tdb.db, "transfer").await, 1, "{backend:?} {form:?}");
        let again = post(&app.url, &["k-replay"], false, "70").await;
        assert_eq!(again, first, "{backend:?} {form:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_concurrent_repeats_run_the_handler_once_and_get_one_response() {
    for (backend, form) in cases() {
        let (tdb, r) = setup(backend, "http_idem_16").await;
        let (entered, _) = mpsc::unbounded_channel();
        let app = serve(form, r, Arc::new(Semaphore::new(1_000)), entered).await;
        let answers =
            futures::future::join_all((0..16).map(|_| post(&app.url, &["k-16"], false, "3"))).await;
        assert!(
            answers.iter().all(|a| *a == answers[0]),
            "{backend:?} {form:?}: {answers:?}"
        );
        assert_eq!(answers[0].0, 201, "{backend:?} {form:?}");
        assert_eq!(app.runs.load(Ordering::SeqCst), 1, "{backend:?} {form:?}");
        assert_eq!(count(&tdb.db, "transfer").await, 1, "{backend:?} {form:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_refuses_a_body_over_its_limit_with_413_and_runs_nothing() {
    let (tdb, r) = setup(Backend::Sqlite, "http_idem_413").await;
    let (entered, _) = mpsc::unbounded_channel();
    let app = serve(Form::Axum, r, Arc::new(Semaphore::new(1_000)), entered).await;
    let (status, _, body) = post(&app.url, &["k-big"], false, &"9".repeat(MAX_BODY + 1)).await;
    assert_eq!((status, error_of(&body).as_str()), (413, "body_too_large"));
    let (status, _, _) = post(&app.url, &["k-big"], false, &"9".repeat(MAX_BODY - 60)).await;
    assert_eq!(status, 201, "a body at the limit is read");
    assert_eq!(app.runs.load(Ordering::SeqCst), 1);
    assert_eq!(count(&tdb.db, "transfer").await, 1);
}
