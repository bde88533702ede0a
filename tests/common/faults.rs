//! The fault servers `scripts/fault-servers.sh` starts for the fault tests:
//! a PostgreSQL and a MariaDB of their own (`CONFLICTKIT_FAULT_PG_URL`,
//! `CONFLICTKIT_FAULT_MYSQL_URL`), which these tests kill sessions of and
//! restart (`scripts/fault-server.sh`) without disturbing the servers every
//! other test shares.

use sea_orm::{ConnectionTrait, DatabaseConnection};

use super::{Backend, connect, create_database, servers_required, unique_name};

/// The fault server's URL for `backend`, or `None` (with a printed reason)
/// when the test may skip; panics when servers are required
/// ([`servers_required`]) and it is missing.
pub fn fault_url(backend: Backend) -> Option<String> {
    let var = match backend {
        Backend::Postgres => "CONFLICTKIT_FAULT_PG_URL",
        Backend::MySql => "CONFLICTKIT_FAULT_MYSQL_URL",
        Backend::Sqlite => return None,
    };
    match std::env::var(var) {
        Ok(url) if !url.is_empty() && std::env::var_os("CONFLICTKIT_FAULT_DIR").is_some() => {
            Some(url)
        }
        _ => {
            if servers_required() {
                panic!(
                    "{var} or CONFLICTKIT_FAULT_DIR is not set but CONFLICTKIT_REQUIRE_SERVERS or CI is: the test command must start the fault servers (scripts/fault-servers.sh)"
                );
            }
            eprintln!(
                "skipping: {var} is not set (run ./scripts/test.sh to start the fault servers)"
            );
            None
        }
    }
}

/// A database of its own on the fault server of `backend`: its URL, and the
/// server's admin URL (for killing sessions and checking it answers).
pub struct FaultDb {
    pub backend: Backend,
    pub url: String,
    pub admin_url: String,
    pub name: String,
}

/// Creates a fresh database for `test` on the fault server of `backend`.
pub async fn open_fault_db(backend: Backend, test: &str) -> Option<FaultDb> {
    let admin_url = fault_url(backend)?;
    let name = unique_name(test);
    let url = create_database(backend, &admin_url, &name).await;
    Some(FaultDb {
        backend,
        url,
        admin_url,
        name,
    })
}

/// Restarts the fault server of `backend` (`scripts/fault-server.sh restart`:
/// PostgreSQL `pg_ctl restart -m fast`, MariaDB shutdown then start), which
/// returns once the server answers again, then checks that it does with a
/// connection of its own.
pub async fn restart(db: &FaultDb) {
    let which = match db.backend {
        Backend::Postgres => "pg",
        Backend::MySql => "mysql",
        Backend::Sqlite => unreachable!("SQLite has no server"),
    };
    let script = std::env::var("CONFLICTKIT_FAULT_SERVER").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fault-server.sh").to_owned()
    });
    let out = tokio::process::Command::new(&script)
        .args(["restart", which])
        .output()
        .await
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(
        out.status.success(),
        "fault-server.sh restart {which}: {:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let check: DatabaseConnection = connect(&db.admin_url, 1).await;
    check
        .execute_unprepared("SELECT 1")
        .await
        .expect("the restarted server answers");
    check.close().await.ok();
}
