//! Small SQL and setup helpers the resolver tests share: a hang guard,
//! statements without a result, one integer, a test database that must exist.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement};

use super::{Backend, TestDb};

/// Fails the test instead of hanging (a hang guard, not a time bound on
/// the feature: every wait it guards ends in well under a second when it
/// works).
pub async fn bounded<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(120), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within 120 s"))
}

/// Runs `sql`, which returns no rows.
pub async fn exec(db: &impl ConnectionTrait, sql: &str) -> Result<(), DbErr> {
    db.execute_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .map(|_| ())
}

/// The integer in the first column of the one row `sql` returns.
pub async fn scalar(db: &impl ConnectionTrait, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .expect("one row");
    row.try_get_by_index::<i64>(0).expect("an integer")
}

/// The number of rows in `table`.
pub async fn count(db: &impl ConnectionTrait, table: &str) -> i64 {
    scalar(db, &format!("SELECT COUNT(*) FROM {table}")).await
}

/// A fresh database `test` on `backend` with a pool of `pool` connections;
/// the test command starts the servers, so a missing one fails the test.
pub async fn server(backend: Backend, test: &str, pool: u32) -> TestDb {
    super::open(backend, test, pool)
        .await
        .expect("the test command starts the servers")
}

/// The name of a test database, from its URL.
pub fn database_name(url: &str) -> String {
    let path = url.rsplit('/').next().unwrap_or_default();
    path.split('?').next().unwrap_or_default().to_owned()
}

/// A PostgreSQL connection to the test database without the idle timeout.
pub async fn admin_db(url: &str) -> DatabaseConnection {
    let db = super::connect(url, 1).await;
    exec(&db, "SET idle_session_timeout = 0").await.unwrap();
    db
}
