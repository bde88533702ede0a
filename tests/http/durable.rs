//! What the outbox, relay and sink tests share: the relay's poster and one
//! number read back from the database.

use conflictkit::events::EventPoster;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

/// A poster that leaves retrying to the relay's schedule.
pub(crate) fn poster(url: &str) -> EventPoster {
    EventPoster::new(url).unwrap().retries(0)
}

/// The `n` column of the one row `sql` returns.
pub(crate) async fn scalar(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}
