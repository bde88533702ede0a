//! One node of an event-driven service, run as a process of its own by the
//! crash tests (`tests/events_processes.rs`); also a small picture of the
//! transactional inbox and outbox across processes.
//!
//! ```text
//! events_node listen <database-url> <secret>
//!     an event listener whose transactional handler applies `node_apply`
//!     events (data: a sequence number) exactly once: it adds 1 to
//!     `node_applied.n` of that sequence number. Prints `listening on ADDR`.
//! events_node relay <database-url> <listener-url> <secret> [lease-ms]
//!     an outbox relay delivering the database's outbox to the listener,
//!     its claims leased for `lease-ms` (default `OutboxRelay::LEASE`).
//!     Prints `relay running`.
//! ```
//!
//! Both run until killed (or stdin closes), so a test can SIGKILL them at
//! any point.

use std::io::{BufRead as _, Write as _};

use conflictkit::events::{EventPoster, Listener, ListenerConfig, OutboxRelay, WebhookSecret};
use conflictkit::{ConflictResolver, Txn};
use sea_orm::{ConnectionTrait, Statement};

/// Applies one `node_apply` event: its sequence number's counter goes up by
/// one, in the same transaction as the delivery's inbox row.
#[conflictkit::event_listener("node_apply", transactional)]
async fn apply(txn: &Txn, seq: i64) -> Result<(), conflictkit::Error> {
    let backend = txn.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => "UPDATE node_applied SET n = n + 1 WHERE seq = $1",
        _ => "UPDATE node_applied SET n = n + 1 WHERE seq = ?",
    };
    txn.execute_raw(Statement::from_sql_and_values(backend, sql, [seq.into()]))
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: events_node listen <database-url> <secret> | relay <database-url> <listener-url> <secret> [lease-ms]";
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["listen", db, secret] => {
            let db = sea_orm::Database::connect(db).await?;
            let handle = Listener::new(ListenerConfig {
                secrets: vec![secret.parse::<WebhookSecret>()?],
                ..ListenerConfig::new("127.0.0.1:0".parse()?)
            })
            .with_resolver(ConflictResolver::new(db))
            .start()
            .await?;
            announce(&format!("listening on {}", handle.local_addr()))?;
            until_stdin_closes().await;
            handle.shutdown().await;
        }
        ["relay", db, to, secret, ref lease @ ..] if lease.len() <= 1 => {
            let db = sea_orm::Database::connect(db).await?;
            let poster = EventPoster::new(to)?.secret(secret.parse::<WebhookSecret>()?);
            let mut relay = OutboxRelay::new(db, poster);
            if let [lease_ms] = lease {
                relay = relay.lease(std::time::Duration::from_millis(lease_ms.parse()?));
            }
            announce("relay running")?;
            relay.run(until_stdin_closes()).await?;
        }
        _ => return Err(usage.into()),
    }
    Ok(())
}

/// The readiness line a parent process waits for.
fn announce(line: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

/// Resolves when the parent closes our stdin (or goes away).
async fn until_stdin_closes() {
    let _ = tokio::task::spawn_blocking(|| {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            if line.is_err() {
                break;
            }
        }
    })
    .await;
}
