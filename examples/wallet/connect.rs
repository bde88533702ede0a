//! Opening the wallet's databases: the primary (or an embedded SQLite
//! file), and the replica of `--replica`.

use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};

use crate::BoxError;

/// Opens the database: the URL given, or an embedded SQLite file (WAL).
pub async fn connect(
    url: Option<String>,
    max_connections: u32,
) -> Result<(DatabaseConnection, String, Option<tempfile::TempDir>), BoxError> {
    let (url, dir) = match url {
        Some(url) => (url, None),
        None => {
            let dir = tempfile::Builder::new()
                .prefix("conflictkit-wallet-")
                .tempdir()?;
            let path = dir.path().join("wallet.db");
            (format!("sqlite://{}?mode=rwc", path.display()), Some(dir))
        }
    };
    let mut options = ConnectOptions::new(url.clone());
    options
        .max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(60))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
        });
    let db = Database::connect(options).await?;
    let mut location = redact_password(&url);
    if db.get_database_backend() == sea_orm::DbBackend::Sqlite {
        db.execute_unprepared("PRAGMA journal_mode=WAL").await?;
        location.push_str(" (WAL)");
    }
    Ok((db, location, dir))
}

pub fn redact_password(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A pool on the replica of `--replica`, and where it is (password hidden).
/// Its connections give up after 2 s, as the resolver's builder advises: a
/// replica that goes down sends its reads to the primary soon. The pool
/// connects lazily: a replica that does not answer is reported by the
/// resolver's checked build, with the builder's error.
pub async fn connect_replica(
    url: &str,
    max_connections: u32,
) -> Result<(DatabaseConnection, String), BoxError> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(2))
        .connect_lazy(true)
        .sqlx_logging(false);
    let db = Database::connect(options)
        .await
        .map_err(|e| format!("--replica {}: {e}", redact_password(url)))?;
    Ok((db, redact_password(url)))
}
