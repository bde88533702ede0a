//! `wallet --serve ADDR`: the wallet's HTTP API on warp, with idempotent
//! requests. `POST /transfer` takes `{"from": 1, "to": 2, "cents": 500}`
//! and an `Idempotency-Key` header: the transfer, the key and the response
//! commit in one transaction, and a retried request (same key, same body)
//! is answered byte for byte from the stored response, without moving the
//! money again.
//!
//! The wallet's event listener (deposits as signed `txupdate` events, see
//! `events`) is mounted in the same server under `/events`: one port, one
//! server that owns connections and shutdown. The default run (no
//! `--serve`) starts the same API on an ephemeral loopback port and posts
//! its deposit demo there ([`start`]): there is one way the wallet serves
//! its listener.
//!
//! ```text
//! curl -i -X POST http://127.0.0.1:8080/transfer \
//!      -H 'Idempotency-Key: 5f0c…' -d '{"from":1,"to":2,"cents":500}'
//! ```

use std::net::{Ipv4Addr, SocketAddr};

use conflictkit::events::{Listener, ListenerConfig};
use conflictkit::resolver::idempotency::http::{Bytes, StoredResponse, idempotent};
use conflictkit::resolver::idempotency::migrate_idempotency;
use conflictkit::{ConflictResolver, Txn};
use tokio::sync::oneshot;
use warp::Filter;

use crate::bank::{self, WalletError};
use crate::events::DepositState;
use crate::settings::Settings;

/// The body of `POST /transfer`.
#[derive(Debug, serde::Deserialize)]
struct TransferRequest {
    from: i32,
    to: i32,
    cents: i64,
}

/// The API's routes: `POST /transfer`, and the deposit listener configured
/// in `settings` mounted under `/events` (its `bind` address is not used)
/// with `deposits` as its state and `resolver` for its transactional handler.
async fn routes(
    resolver: ConflictResolver,
    deposits: DepositState,
    settings: &Settings,
) -> Result<
    impl Filter<Extract = (impl warp::Reply,), Error = warp::Rejection> + Clone + Send + Sync + 'static,
    crate::BoxError,
> {
    migrate_idempotency(resolver.connection()).await?;
    let events = Listener::new(ListenerConfig::from_config(&settings.raw)?)
        .with_state(deposits)
        .with_resolver(resolver.clone())
        .filter()?;
    let events = warp::path("events").and(events);
    let transfer = warp::path("transfer")
        .and(warp::path::end())
        .and(warp::post())
        .and(idempotent(
            resolver,
            "wallet::api::transfer",
            |txn: &Txn, body: Bytes| Box::pin(async move { transfer(txn, &body).await }),
        ));
    Ok(transfer.or(events))
}

/// Serves the API on `addr` (a loopback address) until the process is
/// stopped; prints `listening on http://ADDR` once it accepts requests.
pub async fn serve(
    resolver: ConflictResolver,
    addr: SocketAddr,
    settings: &Settings,
) -> Result<(), crate::BoxError> {
    if !addr.ip().is_loopback() {
        return Err(format!(
            "--serve takes a loopback address (127.0.0.1:PORT or [::1]:PORT), not {addr}: \
             the demo API has no authentication"
        )
        .into());
    }
    let routes = routes(resolver.clone(), DepositState::new(resolver), settings).await?;
    let socket = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", socket.local_addr()?);
    warp::serve(routes).incoming(socket).run().await;
    Ok(())
}

/// The API running in the background on an ephemeral loopback port.
pub struct Running {
    /// Where it listens; the deposit listener is at `http://{addr}/events`.
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, then returns.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
    }
}

/// Starts the API (as [`serve`] does, deposits counted in `deposits`) on
/// an ephemeral loopback port, in the background.
pub async fn start(
    resolver: ConflictResolver,
    deposits: DepositState,
    settings: &Settings,
) -> Result<Running, crate::BoxError> {
    let routes = routes(resolver, deposits, settings).await?;
    let socket = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = socket.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(
        warp::serve(routes)
            .incoming(socket)
            .graceful(async {
                let _ = stopped.await;
            })
            .run(),
    );
    Ok(Running { addr, stop, server })
}

/// One transfer, as the response to store: 200 with the transfer's
/// receipt, 400 for a body that is no transfer, 404 / 409 for a transfer
/// the bank refuses (stored too: a retry gets the same refusal).
async fn transfer(txn: &Txn, body: &[u8]) -> Result<StoredResponse, WalletError> {
    let request: TransferRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return Ok(StoredResponse::json(
                400,
                &serde_json::json!({"error": "bad_request", "message": e.to_string()}),
            ));
        }
    };
    if request.cents <= 0 || request.from == request.to {
        return Ok(StoredResponse::json(
            400,
            &serde_json::json!({"error": "bad_request",
                "message": "cents must be positive and the accounts different"}),
        ));
    }
    // the managed `transfer`, as a savepoint of this request's transaction
    match bank::transfer(txn, request.from, request.to, request.cents).await {
        Ok(()) => {
            let receipt = bank::receipt(txn, request.from, request.to).await?;
            Ok(StoredResponse::json(200, &receipt))
        }
        Err(e @ WalletError::NoSuchAccount(_)) => Ok(StoredResponse::json(
            404,
            &serde_json::json!({"error": "no_such_account", "message": e.to_string()}),
        )),
        Err(e @ WalletError::InsufficientFunds { .. }) => Ok(StoredResponse::json(
            409,
            &serde_json::json!({"error": "insufficient_funds", "message": e.to_string()}),
        )),
        Err(e) => Err(e),
    }
}
