//! Serving the standalone listener: connections accepted from our own tokio
//! `TcpListener` (up to the connection cap), each served by hyper with the
//! warp filter of [`route::standalone`], graceful shutdown with a timeout.
//!
//! The cap bounds work, not only sockets: a connection's place ([`Slot`]) is
//! also held by the handlers of its request until they end, so a client that
//! disconnects mid-handler (its handlers go on in a task of their own) does
//! not free a place for the next one while they run.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use warp::hyper::service::Service as _;

use super::accept::Shared;
use super::handle::Shutdown;
use super::route;
use super::slot::Slot;

/// Time a client gets to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts connections until `signal`, then closes the socket, lets in-flight
/// requests finish for the shutdown timeout and aborts what is left.
pub(crate) async fn serve_on(
    socket: TcpListener,
    shared: Arc<Shared>,
    signal: impl Future<Output = ()> + Send,
    closed: watch::Sender<bool>,
) -> Shutdown {
    let timeout = shared.config.shutdown_timeout;
    // At the cap, stop accepting: waiting clients stay in the kernel's queue.
    let slots = Arc::new(Semaphore::new(shared.config.max_connections.max(1)));
    let service = warp::service(route::standalone(shared));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut signal = std::pin::pin!(signal);
    loop {
        let slot = tokio::select! {
            () = &mut signal => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        tokio::select! {
            () = &mut signal => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = socket.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::trace!(%peer, "connection accepted");
                    let slot = Slot::new(slot);
                    let inner = TowerToHyperService::new(service.clone());
                    // The connection holds its place (this closure, dropped
                    // with it), and so does each request's handlers' run.
                    let service = warp::hyper::service::service_fn(
                        move |mut request: http::Request<warp::hyper::body::Incoming>| {
                            request.extensions_mut().insert(slot.clone());
                            inner.call(request)
                        },
                    );
                    let conn = warp::hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(HEADER_READ_TIMEOUT)
                        .serve_connection(TokioIo::new(stream), service);
                    let conn = graceful.watch(conn);
                    connections.spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                    });
                }
                // Per-connection failures (reset before accept) and resource
                // exhaustion: log and keep serving.
                Err(e) => tracing::warn!(error = %e, "accepting a connection failed"),
            },
        }
    }
    drop(socket);
    let _ = closed.send(true);
    tracing::info!(
        in_flight = connections.len(),
        "event listener stopped accepting; draining"
    );
    let outcome = tokio::select! {
        () = graceful.shutdown() => Shutdown::Graceful,
        () = tokio::time::sleep(timeout) => {
            let aborted = connections.len();
            tracing::warn!(aborted, "event listener shutdown timed out; aborting connections");
            connections.abort_all();
            Shutdown::Forced { aborted }
        }
    };
    while connections.join_next().await.is_some() {}
    outcome
}
