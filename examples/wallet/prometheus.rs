//! `--metrics-addr`: the metrics conflictkit records (its `metrics`
//! feature: calls by outcome, attempts, waits, COMMIT time, contention, the
//! events wing) as Prometheus text at `GET /metrics`, through
//! `metrics-exporter-prometheus`, served with warp beside the wallet.

use std::net::SocketAddr;

use metrics_exporter_prometheus::PrometheusBuilder;
use warp::Filter as _;

/// Installs the Prometheus recorder and serves `GET /metrics` on `addr`
/// (loopback only) in the background; returns the bound address.
pub async fn serve(addr: SocketAddr) -> Result<SocketAddr, crate::BoxError> {
    if !addr.ip().is_loopback() {
        return Err(format!(
            "--metrics-addr takes a loopback address (127.0.0.1:PORT or [::1]:PORT), not {addr}"
        )
        .into());
    }
    let handle = PrometheusBuilder::new().install_recorder()?;
    let route = warp::path("metrics")
        .and(warp::path::end())
        .and(warp::get())
        .map(move || handle.render());
    let socket = tokio::net::TcpListener::bind(addr).await?;
    let bound = socket.local_addr()?;
    tokio::spawn(warp::serve(route).incoming(socket).run());
    println!("metrics on http://{bound}/metrics");
    Ok(bound)
}
