//! The 3-node MariaDB Galera cluster `scripts/galera.sh` starts for the
//! suite: its URLs (`CONFLICTKIT_GALERA_URLS`), a database of its own per test
//! with one pool per node, causal reads on every node, and killing / starting
//! a node (`scripts/galera-node.sh`).

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use super::{connect, replace_db_in_url, unique_name};

const URLS_VAR: &str = "CONFLICTKIT_GALERA_URLS";

/// The three node URLs, or `None` (with a printed reason) when the test may
/// skip. Panics under `scripts/test.sh` (`CONFLICTKIT_REQUIRE_SERVERS`) and on
/// CI when the cluster is missing, like [`super::server_url`].
pub fn galera_urls() -> Option<Vec<String>> {
    match std::env::var(URLS_VAR) {
        Ok(urls) if !urls.is_empty() => {
            let urls: Vec<String> = urls.split(',').map(|u| u.trim().to_owned()).collect();
            assert_eq!(urls.len(), 3, "{URLS_VAR} must list three node URLs");
            Some(urls)
        }
        _ => {
            if super::servers_required() {
                panic!(
                    "{URLS_VAR} is not set but CONFLICTKIT_REQUIRE_SERVERS or CI is: the test command must start the Galera cluster (scripts/galera.sh)"
                );
            }
            eprintln!(
                "skipping: {URLS_VAR} is not set (run ./scripts/test.sh to start the Galera cluster)"
            );
            None
        }
    }
}

/// A database of its own on the cluster, with one pool per node.
pub struct Cluster {
    pub name: String,
    /// Node URLs with the test's database, node 1 first.
    pub urls: Vec<String>,
    /// One pool per node.
    pub nodes: Vec<DatabaseConnection>,
}

/// Creates a fresh database for `test` (on node 1; DDL replicates to every
/// node in total order) and opens a pool of `max_connections` on each node.
pub async fn open_cluster(test: &str, max_connections: u32) -> Option<Cluster> {
    let admin_urls = galera_urls()?;
    let name = unique_name(test);
    let admin = connect(&admin_urls[0], 1).await;
    admin
        .execute_unprepared(&format!("CREATE DATABASE `{name}`"))
        .await
        .expect("create test database on node 1");
    admin.close().await.ok();
    let urls: Vec<String> = admin_urls
        .iter()
        .map(|u| replace_db_in_url(u, &name))
        .collect();
    let mut nodes = Vec::new();
    for url in &urls {
        // a node applies the CREATE DATABASE of another one a moment later:
        // a causal read first, on a connection to the server's own schema
        let admin = causal(&replace_db_in_url(url, "mysql")).await;
        admin.close().await.ok();
        nodes.push(connect(url, max_connections).await);
    }
    Some(Cluster { name, urls, nodes })
}

/// A single connection to `url` whose reads wait until the node applied
/// everything committed anywhere before them (`wsrep_sync_wait = 1`).
pub async fn causal(url: &str) -> DatabaseConnection {
    let db = connect(url, 1).await;
    db.execute_unprepared("SET SESSION wsrep_sync_wait = 1")
        .await
        .expect("causal reads");
    db.execute_unprepared("SELECT 1")
        .await
        .expect("node answers");
    db
}

/// A global status value of the node at `url` (`None` when it does not answer).
pub async fn status(db: &DatabaseConnection, var: &str) -> Option<String> {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SHOW GLOBAL STATUS LIKE '{var}'"),
        ))
        .await
        .ok()??;
    row.try_get_by_index::<String>(1).ok()
}

/// Whether the node at `url` is Synced in a primary cluster of `size` nodes.
pub async fn is_synced(url: &str, size: u32) -> bool {
    let mut opts = sea_orm::ConnectOptions::new(url.to_owned());
    opts.max_connections(1)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(2))
        .sqlx_logging(false);
    let Ok(db) = sea_orm::Database::connect(opts).await else {
        return false;
    };
    let ok = status(&db, "wsrep_local_state_comment").await.as_deref() == Some("Synced")
        && status(&db, "wsrep_ready").await.as_deref() == Some("ON")
        && status(&db, "wsrep_cluster_status").await.as_deref() == Some("Primary")
        && status(&db, "wsrep_cluster_size").await.as_deref() == Some(&size.to_string());
    db.close().await.ok();
    ok
}

/// Polls until every node in `urls` is synced in a cluster of `size`, or
/// the deadline passes (then panics with what it saw).
pub async fn wait_synced(urls: &[&str], size: u32, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let mut all = true;
        for url in urls {
            all &= is_synced(url, size).await;
        }
        if all {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nodes {urls:?} not synced in a cluster of {size} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs `scripts/galera-node.sh CMD N` (`kill`, `start`, `wait`, `stop`).
pub async fn node_script(cmd: &str, node: usize) {
    let script = std::env::var("CONFLICTKIT_GALERA_NODE").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/galera-node.sh").to_owned()
    });
    let out = tokio::process::Command::new(&script)
        .arg(cmd)
        .arg(node.to_string())
        .output()
        .await
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(
        out.status.success(),
        "galera-node.sh {cmd} {node}: {:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
