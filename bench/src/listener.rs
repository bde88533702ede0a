//! Scenario 3, **listener**: `txupdate` form posts (the original's wire
//! format: `POST /` with form fields `event_name`, `data` as JSON text and
//! `xdata`) from 1 and 32 keep-alive clients over loopback, to
//! `conflictkit::events::Listener` and to a bare warp 0.4 route doing the same
//! work (form → decode the JSON `data` into a small struct → count), with and
//! without Standard Webhooks signatures. The listener runs standalone and
//! mounted in an app with a route of its own: its warp filter under
//! `/events` of a warp server, and its tower service at `/events` of an
//! axum 0.8 router.
//!
//! Each server runs on a tokio runtime of its own (2 workers) on a thread of
//! its own, as a non-async program serves its listener; the clients
//! run on the harness's runtime. Every request is encoded (and signed) before
//! the clock starts, with a unique `webhook-id`. A cell starts a fresh server,
//! warms up every client's connection, then sends its requests; it checks
//! that every reply was 200 and that the handler ran once per request.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use conflictkit::events::{
    EventPoster, Listener, ListenerConfig, Verifier, WEBHOOK_ID, WEBHOOK_SIGNATURE,
    WEBHOOK_TIMESTAMP, WebhookSecret,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use warp::Filter as _;
use warp::http::StatusCode;

use crate::Config;
use crate::report::{JsonSink, Table, median, num};

/// Default measured requests per cell.
pub(crate) const DEFAULT_REQUESTS: usize = 5000;
/// Unmeasured requests per cell before the clock starts (at least one per client).
const WARMUP: usize = 200;
/// Worker threads of each server's runtime.
const SERVER_THREADS: usize = 2;
/// Body limit of the bare route (the listener's default).
const MAX_BODY: u64 = conflictkit::events::ListenerConfig::MAX_BODY as u64;

/// The original's `txupdate` payload, as the wallet example decodes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TxUpdate {
    transaction: i64,
    network_transaction: i64,
    txid: String,
    account: i32,
    address: String,
    #[serde(with = "rust_decimal::serde::str")]
    amount: Decimal,
    confirmations: u32,
}

/// The form fields the bare route reads (`xdata` is ignored, as the listener does).
#[derive(Debug, Deserialize)]
struct Form {
    event_name: String,
    data: String,
}

/// Which server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Server {
    Listener,
    /// `Listener::filter` under `/events` of a warp app.
    WarpMounted,
    /// `Listener::into_service` at `/events` of an axum app.
    AxumMounted,
    Bare,
}

impl Server {
    const ALL: [Server; 4] = [
        Server::Listener,
        Server::WarpMounted,
        Server::AxumMounted,
        Server::Bare,
    ];

    fn name(self) -> &'static str {
        match self {
            Server::Listener => "conflictkit Listener",
            Server::WarpMounted => "Listener in warp app",
            Server::AxumMounted => "Listener in axum app",
            Server::Bare => "bare warp route",
        }
    }

    /// Where events are posted.
    fn path(self) -> &'static str {
        match self {
            Server::Listener | Server::Bare => "/",
            Server::WarpMounted | Server::AxumMounted => "/events",
        }
    }
}

/// One measured cell: server, signatures, clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Variant {
    signed: bool,
    clients: usize,
    server: Server,
}

/// A request, encoded and signed before the clock starts.
struct Prepared {
    body: Vec<u8>,
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    signature: Option<(String, String, String)>,
}

/// What one cell measured.
#[derive(Debug, Default)]
struct CellRun {
    sent: usize,
    ok: usize,
    non_200: usize,
    transport_errors: usize,
    first_error: Option<String>,
    /// Handler invocations minus requests sent (warm-up included): 0 when right.
    count_delta: i64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl CellRun {
    fn events_per_s(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    fn pct_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1].as_secs_f64() * 1000.0
    }

    fn max_ms(&self) -> f64 {
        self.latencies
            .last()
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    }

    fn clean(&self) -> bool {
        self.non_200 == 0 && self.transport_errors == 0 && self.count_delta == 0
    }
}

pub(crate) async fn run(
    cfg: &Config,
    sink: &mut JsonSink,
) -> Result<(), Box<dyn std::error::Error>> {
    let secret = WebhookSecret::generate();
    let mut variants = Vec::new();
    for signed in [false, true] {
        for &clients in &cfg.clients {
            for server in Server::ALL {
                variants.push(Variant {
                    signed,
                    clients,
                    server,
                });
            }
        }
    }
    let requests = cfg.requests;
    let mut runs: BTreeMap<Variant, Vec<CellRun>> = BTreeMap::new();
    let mut cell_id = 0u64;
    for rep in 0..cfg.repeat {
        let mut order = variants.clone();
        let shift = rep % order.len();
        order.rotate_left(shift);
        for v in order {
            cell_id += 1;
            let r = run_cell(v, &secret, cell_id, requests, cfg.cell_timeout).await?;
            eprintln!(
                "  listener {:<20} signed={:<5} clients={:<3} rep {}: {:>7.0} events/s p50 {:.3} ms p99 {:.3} ms{}",
                v.server.name(),
                v.signed,
                v.clients,
                rep + 1,
                r.events_per_s(),
                r.pct_ms(50.0),
                r.pct_ms(99.0),
                if r.clean() {
                    String::new()
                } else {
                    format!(
                        " CHECK FAILED: {} non-200, {} transport errors, handler count off by {} ({})",
                        r.non_200,
                        r.transport_errors,
                        r.count_delta,
                        r.first_error.as_deref().unwrap_or("")
                    )
                }
            );
            sink.write(json!({
                "scenario": "listener", "kind": "run", "server": v.server.name(), "signed": v.signed,
                "clients": v.clients, "rep": rep, "requests": requests, "sent": r.sent, "ok": r.ok,
                "non_200": r.non_200, "transport_errors": r.transport_errors,
                "handler_count_delta": r.count_delta, "elapsed_s": r.elapsed.as_secs_f64(),
                "events_per_s": r.events_per_s(), "p50_ms": r.pct_ms(50.0), "p99_ms": r.pct_ms(99.0),
                "max_ms": r.max_ms(), "first_error": r.first_error,
            }))?;
            runs.entry(v).or_default().push(r);
        }
    }

    let mut table = Table::new(
        format!(
            "listener · txupdate form posts over loopback · {requests} requests per cell after {WARMUP} warm-up · medians of {} runs",
            cfg.repeat
        ),
        vec![
            "signatures",
            "clients",
            "server",
            "events/s",
            "÷ bare",
            "p50 ms",
            "p99 ms",
            "max ms",
            "200s",
            "non-200",
            "handler count",
        ],
    );
    let mut failed = false;
    for v in &variants {
        let rs = &runs[v];
        let eps = median(rs.iter().map(CellRun::events_per_s).collect());
        let bare = Variant {
            server: Server::Bare,
            ..*v
        };
        // paired ratio: each listener run against the bare run of the same repeat
        let ratio = match (v.server, runs.get(&bare)) {
            (Server::Bare, _) | (_, None) => f64::NAN,
            (_, Some(bs)) => median(
                rs.iter()
                    .zip(bs)
                    .map(|(a, b)| a.events_per_s() / b.events_per_s())
                    .collect(),
            ),
        };
        let ok: usize = rs.iter().map(|r| r.ok).sum();
        let sent: usize = rs.iter().map(|r| r.sent).sum();
        let non_200: usize = rs.iter().map(|r| r.non_200 + r.transport_errors).sum();
        let counts_right = rs.iter().all(|r| r.count_delta == 0);
        failed |= !rs.iter().all(CellRun::clean);
        let (p50, p99, max) = (
            median(rs.iter().map(|r| r.pct_ms(50.0)).collect()),
            median(rs.iter().map(|r| r.pct_ms(99.0)).collect()),
            median(rs.iter().map(CellRun::max_ms).collect()),
        );
        table.row(vec![
            if v.signed { "on" } else { "off" }.to_owned(),
            v.clients.to_string(),
            v.server.name().to_owned(),
            num(eps, 0),
            num(ratio, 2),
            num(p50, 3),
            num(p99, 3),
            num(max, 1),
            format!("{ok}/{sent}"),
            non_200.to_string(),
            if counts_right {
                "= requests"
            } else {
                "MISMATCH"
            }
            .to_owned(),
        ]);
        sink.write(json!({
            "scenario": "listener", "kind": "median", "server": v.server.name(), "signed": v.signed,
            "clients": v.clients, "requests": requests, "repeat": rs.len(), "events_per_s": eps,
            "ratio_vs_bare": ratio, "p50_ms": p50, "p99_ms": p99, "max_ms": max,
            "ok": ok, "sent": sent, "non_200_or_errors": non_200, "handler_counts_right": counts_right,
        }))?;
    }
    table.print();
    if failed {
        return Err("listener: some requests were not answered 200 or the handler count did not match (see the progress lines)".into());
    }
    Ok(())
}

/// Starts a fresh server for `v`, warms up, measures, stops the server and checks the count.
async fn run_cell(
    v: Variant,
    secret: &WebhookSecret,
    cell_id: u64,
    requests: usize,
    timeout: Duration,
) -> Result<CellRun, Box<dyn std::error::Error>> {
    let warmup = WARMUP.max(v.clients);
    let prepared = Arc::new(prepare(
        warmup + requests,
        v.signed.then_some(secret),
        cell_id,
    )?);
    let server = RunningServer::start(v.server, v.signed.then(|| secret.clone())).await?;
    let url = format!("http://{}{}", server.addr, v.server.path());
    let clients = (0..v.clients)
        .map(|_| reqwest::Client::builder().no_proxy().build())
        .collect::<Result<Vec<_>, _>>()?;
    let warm = drive(&clients, &url, &prepared, 0..warmup, timeout).await;
    let mut run = drive(
        &clients,
        &url,
        &prepared,
        warmup..warmup + requests,
        timeout,
    )
    .await;
    drop(clients);
    let handled = server.stop().await?;
    run.non_200 += warm.non_200;
    run.transport_errors += warm.transport_errors;
    run.first_error = warm.first_error.or(run.first_error);
    run.count_delta = handled as i64 - (warm.sent + run.sent) as i64;
    Ok(run)
}

/// `n` `txupdate` bodies, as `EventPoster` encodes them, signed when `secret` is given.
fn prepare(
    n: usize,
    secret: Option<&WebhookSecret>,
    cell_id: u64,
) -> Result<Vec<Prepared>, Box<dyn std::error::Error>> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    (0..n)
        .map(|i| {
            let update = TxUpdate {
                transaction: i as i64,
                network_transaction: 1_000_000 + i as i64,
                txid: format!("{:064x}", (cell_id << 32) | i as u64),
                account: (i % 100) as i32,
                address: format!("mzJ9Gi7vvp1NGw4fviWjkZaJxWakk5{:04}", i % 10_000),
                amount: Decimal::new(1 + (i as i64 % 10_000), 4),
                confirmations: (i % 7) as u32,
            };
            let body = EventPoster::encode("txupdate", &update)?.into_bytes();
            let signature = secret.map(|s| {
                let id = format!("msg_{cell_id}_{i}");
                let sig = s.sign(&id, now, &body);
                (id, now.to_string(), sig)
            });
            Ok(Prepared { body, signature })
        })
        .collect()
}

/// Sends `range` of `prepared` from every client concurrently (each client
/// takes the next request as soon as its previous one is answered) until the
/// range is done or `timeout` has passed.
async fn drive(
    clients: &[reqwest::Client],
    url: &str,
    prepared: &Arc<Vec<Prepared>>,
    range: std::ops::Range<usize>,
    timeout: Duration,
) -> CellRun {
    let next = Arc::new(AtomicUsize::new(range.start));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for client in clients {
        let (client, url, prepared, next, end) = (
            client.clone(),
            url.to_owned(),
            prepared.clone(),
            next.clone(),
            range.end,
        );
        tasks.spawn(async move {
            let mut out = CellRun::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end || started.elapsed() > timeout {
                    break;
                }
                let p = &prepared[i];
                let mut request = client
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(p.body.clone());
                if let Some((id, ts, sig)) = &p.signature {
                    request = request
                        .header(WEBHOOK_ID, id)
                        .header(WEBHOOK_TIMESTAMP, ts)
                        .header(WEBHOOK_SIGNATURE, sig);
                }
                let t0 = Instant::now();
                out.sent += 1;
                match request.send().await {
                    Ok(response) => {
                        let status = response.status();
                        let body = response.bytes().await;
                        match body {
                            Ok(_) if status == reqwest::StatusCode::OK => {
                                out.ok += 1;
                                out.latencies.push(t0.elapsed());
                            }
                            Ok(body) => {
                                out.non_200 += 1;
                                out.first_error.get_or_insert_with(|| {
                                    format!("{status}: {}", String::from_utf8_lossy(&body))
                                });
                            }
                            Err(e) => {
                                out.transport_errors += 1;
                                out.first_error.get_or_insert_with(|| e.to_string());
                            }
                        }
                    }
                    Err(e) => {
                        out.transport_errors += 1;
                        out.first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
            out
        });
    }
    let mut total = CellRun::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(r) => {
                total.sent += r.sent;
                total.ok += r.ok;
                total.non_200 += r.non_200;
                total.transport_errors += r.transport_errors;
                total.first_error = total.first_error.or(r.first_error);
                total.latencies.extend(r.latencies);
            }
            Err(e) => {
                total.transport_errors += 1;
                total.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    total.elapsed = started.elapsed();
    total.latencies.sort_unstable();
    total
}

/// A server on a thread and runtime of its own.
struct RunningServer {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<Result<(), String>>,
    handled: Arc<AtomicU64>,
}

impl RunningServer {
    async fn start(
        server: Server,
        secret: Option<WebhookSecret>,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let handled = Arc::new(AtomicU64::new(0));
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let count = handled.clone();
        let bind = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let thread = std::thread::Builder::new()
            .name("bench-server".into())
            .spawn(move || -> Result<(), String> {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(SERVER_THREADS)
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                rt.block_on(async move {
                    let listener = || {
                        let listener = Listener::new(ListenerConfig {
                            bind,
                            secrets: secret.clone().into_iter().collect(),
                            registered_handlers: false,
                            ..ListenerConfig::default()
                        });
                        let count = count.clone();
                        listener.on("txupdate", move |update: TxUpdate| {
                            let count = count.clone();
                            async move {
                                std::hint::black_box(update);
                                count.fetch_add(1, Ordering::Relaxed);
                            }
                        });
                        listener
                    };
                    let stopped = async move {
                        let _ = stop_rx.await;
                    };
                    match server {
                        Server::Listener => {
                            let handle = listener().start().await.map_err(|e| e.to_string())?;
                            let _ = addr_tx.send(handle.local_addr());
                            stopped.await;
                            handle.shutdown().await;
                        }
                        Server::WarpMounted => {
                            let events = listener().filter().map_err(|e| e.to_string())?;
                            let app = warp::path("health")
                                .map(|| "ok")
                                .or(warp::path("events").and(events));
                            let socket = bind_socket(bind, addr_tx).await?;
                            warp::serve(app)
                                .incoming(socket)
                                .graceful(stopped)
                                .run()
                                .await;
                        }
                        Server::AxumMounted => {
                            let events = listener().into_service().map_err(|e| e.to_string())?;
                            let app = axum::Router::new()
                                .route("/health", axum::routing::get(|| async { "ok" }))
                                .route_service("/events", events);
                            let socket = bind_socket(bind, addr_tx).await?;
                            axum::serve(socket, app)
                                .with_graceful_shutdown(stopped)
                                .await
                                .map_err(|e| e.to_string())?;
                        }
                        Server::Bare => {
                            let socket = bind_socket(bind, addr_tx).await?;
                            warp::serve(bare_route(count.clone(), secret.clone()))
                                .incoming(socket)
                                .graceful(stopped)
                                .run()
                                .await;
                        }
                    }
                    Ok(())
                })
            })?;
        match addr_rx.await {
            Ok(addr) => Ok(Self {
                addr,
                stop,
                thread,
                handled,
            }),
            Err(_) => Err(match thread.join() {
                Ok(Err(e)) => format!("the {} did not start: {e}", server.name()).into(),
                _ => format!("the {} did not start", server.name()).into(),
            }),
        }
    }

    /// Stops the server and returns how many events its handler counted.
    async fn stop(self) -> Result<u64, Box<dyn std::error::Error>> {
        let _ = self.stop.send(());
        let thread = self.thread;
        tokio::task::spawn_blocking(move || thread.join())
            .await?
            .map_err(|_| "the server thread panicked")??;
        Ok(self.handled.load(Ordering::SeqCst))
    }
}

/// Binds `bind` and sends the bound address to the harness.
async fn bind_socket(
    bind: SocketAddr,
    addr_tx: tokio::sync::oneshot::Sender<SocketAddr>,
) -> Result<tokio::net::TcpListener, String> {
    let socket = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| e.to_string())?;
    let _ = addr_tx.send(socket.local_addr().map_err(|e| e.to_string())?);
    Ok(socket)
}

/// What a user would write without the listener: one warp route that takes
/// the form, (optionally) checks the signature with the same [`Verifier`],
/// decodes the JSON `data` and counts. No replay protection, no handler
/// registry, no timeouts.
fn bare_route(
    count: Arc<AtomicU64>,
    secret: Option<WebhookSecret>,
) -> impl warp::Filter<Extract = (warp::reply::WithStatus<warp::reply::Json>,), Error = warp::Rejection>
+ Clone
+ Send
+ Sync
+ 'static {
    let verifier: Arc<Option<Verifier>> = Arc::new(secret.and_then(|s| Verifier::new([s]).ok()));
    warp::post()
        .and(warp::path::end())
        .and(warp::body::content_length_limit(MAX_BODY))
        .and(warp::header::headers_cloned())
        .and(warp::body::bytes())
        .map(
            move |headers: warp::http::HeaderMap, body: warp::hyper::body::Bytes| {
                let reply =
                    |status, value| warp::reply::with_status(warp::reply::json(&value), status);
                if let Some(verifier) = verifier.as_ref()
                    && let Err(e) = verifier.verify(&headers, &body)
                {
                    return reply(
                        StatusCode::UNAUTHORIZED,
                        json!({"error": "bad_signature", "message": e.to_string()}),
                    );
                }
                let form: Form = match serde_urlencoded::from_bytes(&body) {
                    Ok(form) => form,
                    Err(e) => {
                        return reply(
                            StatusCode::BAD_REQUEST,
                            json!({"error": "bad_form", "message": e.to_string()}),
                        );
                    }
                };
                if form.event_name != "txupdate" {
                    return reply(StatusCode::OK, json!({"status": "ignored", "handlers": 0}));
                }
                match serde_json::from_str::<TxUpdate>(&form.data) {
                    Ok(update) => {
                        std::hint::black_box(update);
                        count.fetch_add(1, Ordering::Relaxed);
                        reply(StatusCode::OK, json!({"status": "handled", "handlers": 1}))
                    }
                    Err(e) => reply(
                        StatusCode::BAD_REQUEST,
                        json!({"error": "undecodable_data", "message": e.to_string()}),
                    ),
                }
            },
        )
}
