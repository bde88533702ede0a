//! Scenario **relay**: the outbox relay's throughput, batch claims against
//! one event per claim, on PostgreSQL. N events (`--ops`, default 2000) are
//! published in 64 streams (a claim takes the head of each stream, so a
//! batch needs streams to fill it), then one relay delivers them all to a
//! loopback receiver that answers 200 at once; the clock runs from the
//! first claim to the last recorded outcome (publishing is not timed).
//!
//! - `batch 16` ([`OutboxRelay::BATCH`], the default): a round claims up to
//!   16 events in one `UPDATE` and posts them concurrently;
//! - `batch 1`: a round claims one event and posts it.
//!
//! Each round's statements are the same per event (one claim read and
//! `UPDATE`, one look-up of what was won, one outcome `UPDATE` per event), so
//! the difference is what batching saves: claim round trips per event and
//! the posts' waits, overlapped.

use std::time::Instant;

use conflictkit::events::{EventPoster, OUTBOX_TABLE, OutboxRelay, Publish, migrate_outbox};
use conflictkit::{ConflictResolver, Txn};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::json;
use warp::Filter as _;

use crate::Config;
use crate::db::{PoolOpts, Target};
use crate::report::{JsonSink, Table, median, num};

/// Default events per run.
const DEFAULT_OPS: usize = 2000;
/// Streams the events are published in.
const STREAMS: usize = 64;
/// Events published per transaction (publishing is set-up, not measured).
const PER_TXN: usize = 100;

/// A receiver on loopback answering every POST 200 at once; its URL.
async fn receiver() -> Result<(String, tokio::sync::oneshot::Sender<()>), std::io::Error> {
    let route = warp::post().map(|| warp::http::StatusCode::OK);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = socket.local_addr()?;
    tokio::spawn(
        warp::serve(route)
            .incoming(socket)
            .graceful(async {
                let _ = stopped.await;
            })
            .run(),
    );
    Ok((format!("http://{addr}"), stop))
}

/// Empties the outbox and publishes `n` events over [`STREAMS`] streams.
async fn publish(db: &DatabaseConnection, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    db.execute_unprepared(&format!("DELETE FROM {OUTBOX_TABLE}"))
        .await?;
    let resolver = ConflictResolver::new(db.clone());
    for first in (0..n).step_by(PER_TXN) {
        let last = (first + PER_TXN).min(n);
        resolver
            .managed(|txn: &Txn| {
                Box::pin(async move {
                    for i in first..last {
                        let stream = format!("s{}", i % STREAMS);
                        txn.publish_in(&stream, "bench_relay", &json!({ "seq": i }))
                            .await?;
                    }
                    Ok::<_, conflictkit::Error>(())
                })
            })
            .await?;
    }
    // Fresh statistics, as autovacuum keeps them on a long-lived outbox: a
    // table just refilled would otherwise be planned from the last run's
    // (the first runs measured 5x slower without this).
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        db.execute_unprepared(&format!("ANALYZE {OUTBOX_TABLE}"))
            .await?;
    }
    Ok(())
}

/// Delivers everything pending with a relay claiming `batch` at a time;
/// events per second.
async fn deliver(
    db: &DatabaseConnection,
    url: &str,
    batch: usize,
    n: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    let relay = OutboxRelay::new(db.clone(), EventPoster::new(url)?.retries(0)).batch(batch);
    let started = Instant::now();
    let delivered = relay.deliver_pending().await?;
    let secs = started.elapsed().as_secs_f64();
    if delivered != n {
        return Err(format!("batch {batch}: delivered {delivered} of {n} events").into());
    }
    Ok(n as f64 / secs)
}

pub(crate) async fn run(
    target: &Target,
    cfg: &Config,
    sink: &mut JsonSink,
) -> Result<(), Box<dyn std::error::Error>> {
    let label = target.label();
    let backend = label.as_str();
    let n = cfg.ops.unwrap_or(DEFAULT_OPS);
    let db = target
        .pool(PoolOpts {
            ping: false,
            session_serializable: false,
            max_connections: 8,
        })
        .await?;
    migrate_outbox(&db).await?;
    let (url, stop) = receiver().await?;
    let batches = [OutboxRelay::BATCH, 1];
    // warm-up: connections, the receiver, the plans
    for batch in batches {
        publish(&db, 100).await?;
        deliver(&db, &url, batch, 100).await?;
    }
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); batches.len()];
    for rep in 0..cfg.repeat {
        // alternate which goes first, so neither always runs on a warmer cache
        let mut order: Vec<usize> = (0..batches.len()).collect();
        order.rotate_left(rep % batches.len());
        for i in order {
            let batch = batches[i];
            publish(&db, n).await?;
            let rate = deliver(&db, &url, batch, n).await?;
            eprintln!(
                "  relay {backend} batch {batch:>2} rep {}: {rate:>8.0} events/s",
                rep + 1
            );
            sink.write(json!({
                "scenario": "relay", "kind": "run", "backend": backend, "batch": batch,
                "rep": rep, "events": n, "streams": STREAMS, "events_per_s": rate,
            }))?;
            rates[i].push(rate);
        }
    }
    let medians: Vec<f64> = rates.into_iter().map(median).collect();
    let mut table = Table::new(
        format!(
            "outbox relay on {backend}: {n} events in {STREAMS} streams to a loopback receiver \
             answering 200, one relay, x {} runs (medians)",
            cfg.repeat
        ),
        vec!["claim", "events/s", "vs batch 1"],
    );
    let one = medians[batches.len() - 1];
    for (i, batch) in batches.iter().enumerate() {
        table.row(vec![
            format!("batch {batch}"),
            num(medians[i], 0),
            format!("{}x", num(medians[i] / one, 2)),
        ]);
        sink.write(json!({
            "scenario": "relay", "kind": "median", "backend": backend, "batch": batch,
            "events": n, "streams": STREAMS, "events_per_s": medians[i],
        }))?;
    }
    table.print();
    let _ = stop.send(());
    db.close().await?;
    Ok(())
}
