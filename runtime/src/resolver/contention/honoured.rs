//! Whether the database honours the lock across processes at all.
//!
//! CockroachDB speaks PostgreSQL's wire protocol and answers
//! `pg_advisory_xact_lock` and `pg_try_advisory_xact_lock`, but as stubs
//! that grant every request at once (cockroachdb/cockroach#13546): the lock
//! would seem held by every process together, and its leases would order
//! nothing. So the first run that would take it asks the server what it is
//! (`SELECT version()`), once per resolver; on CockroachDB the lock is off,
//! with one warning, and runs go on with the gate alone (replays still
//! resolve the conflicts between processes). CockroachDB cannot run in the
//! suite (its licence and the package registries it uses rule it out), so
//! the detection is pinned on its version strings.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use tokio::sync::OnceCell;

/// The answer, asked once.
#[derive(Default)]
pub(super) struct Honoured(OnceCell<bool>);

impl Honoured {
    /// Whether `db` honours the lock (see the [module](self)).
    pub(super) async fn ask(&self, db: &DatabaseConnection) -> bool {
        *self
            .0
            .get_or_init(|| async {
                if db.get_database_backend() != DbBackend::Postgres {
                    return true;
                }
                let version = Statement::from_string(DbBackend::Postgres, "SELECT version()");
                let answer = match db.query_one_raw(version).await {
                    Ok(Some(row)) => row.try_get::<String>("", "version"),
                    Ok(None) => return true,
                    Err(e) => Err(e),
                };
                match answer {
                    Ok(version) if is_cockroach(&version) => {
                        tracing::warn!(%version, "CockroachDB's advisory locks grant every request (cockroachdb/cockroach#13546): the contention lock across processes is off on this database; processes on one hot key contend as without it, and replays resolve their conflicts");
                        false
                    }
                    Ok(_) => true,
                    Err(e) => {
                        tracing::debug!(error = %e, "could not ask the server's version; taking the lock across processes as honoured");
                        true
                    }
                }
            })
            .await
    }
}

/// Whether `version` (what `SELECT version()` answers) is CockroachDB's.
fn is_cockroach(version: &str) -> bool {
    version.trim_start().starts_with("CockroachDB")
}

#[cfg(test)]
mod tests {
    use super::is_cockroach;

    #[test]
    fn cockroach_is_told_from_postgres_and_its_other_wire_kin() {
        // as the servers answer `SELECT version()`
        assert!(is_cockroach(
            "CockroachDB CCL v23.1.11 (x86_64-pc-linux-gnu, built 2023/09/27 01:53:43, go1.19.10)"
        ));
        assert!(is_cockroach(
            "CockroachDB OSS v21.2.17 (aarch64-unknown-linux-gnu, built 2022/10/17 17:53:07, go1.16.6)"
        ));
        assert!(!is_cockroach(
            "PostgreSQL 15.14 (Debian 15.14-0+deb12u1) on x86_64-pc-linux-gnu, compiled by gcc (Debian 12.2.0-14) 12.2.0, 64-bit"
        ));
        assert!(!is_cockroach(
            "PostgreSQL 11.2-YB-2.18.0.0-b0 on x86_64-pc-linux-gnu, compiled by clang version 15.0.3, 64-bit"
        ));
    }
}
