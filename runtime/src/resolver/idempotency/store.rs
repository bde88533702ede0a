//! The table of idempotency keys, `conflictkit_idempotency`, and the
//! statements on it, built with sea-query for each engine.
//!
//! One row per (label, key): the request's fingerprint, the state
//! (`pending` while its transaction runs, `ok` or `err` once stored), the
//! outcome as JSON, the claim of the call that wrote it, and timestamps.
//! A row is only ever committed together with the call's own writes, so a
//! committed row always holds an outcome.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sea_orm::sea_query::{ColumnDef, Expr, ExprTrait, Index, OnConflict, Query, Table};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult};

/// The table's name.
pub const IDEMPOTENCY_TABLE: &str = "conflictkit_idempotency";

/// The longest key (and label) the table holds, in characters: the columns
/// are `VARCHAR(255)`.
pub const MAX_KEY_CHARS: usize = 255;

const LABEL: &str = "label";
const KEY: &str = "idempotency_key";
const FINGERPRINT: &str = "fingerprint";
const STATE: &str = "state";
const OUTCOME: &str = "outcome";
const CLAIM: &str = "claim";
const CREATED_AT: &str = "created_at";
const COMPLETED_AT: &str = "completed_at";

/// What a stored row says of its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Claimed by a transaction still running (never seen committed).
    Pending,
    /// The request returned `Ok`; the outcome is its value.
    Ok,
    /// The request returned an `Err` that was stored; the outcome is it.
    Err,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Ok => "ok",
            State::Err => "err",
        }
    }

    fn parse(s: &str) -> Option<State> {
        [State::Pending, State::Ok, State::Err]
            .into_iter()
            .find(|st| st.name() == s)
    }
}

/// A row of the table.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) fingerprint: String,
    pub(crate) state: Option<State>,
    pub(crate) outcome: Option<String>,
    pub(crate) claim: String,
}

/// Creates the table of idempotency keys if it does not exist (run it once
/// at start-up; it is idempotent), on PostgreSQL, MySQL/MariaDB and SQLite:
///
/// ```sql
/// CREATE TABLE IF NOT EXISTS conflictkit_idempotency (
///     label           VARCHAR(255) NOT NULL,  -- the call's label
///     idempotency_key VARCHAR(255) NOT NULL,
///     fingerprint     VARCHAR(64)  NOT NULL,  -- SHA-256 of the request, hex
///     state           VARCHAR(16)  NOT NULL,  -- pending, ok, err
///     outcome         TEXT,                   -- JSON (LONGTEXT on MySQL)
///     claim           VARCHAR(32)  NOT NULL,  -- which call wrote the row
///     created_at      BIGINT       NOT NULL,  -- Unix milliseconds
///     completed_at    BIGINT,
///     PRIMARY KEY (label, idempotency_key)
/// )
/// ```
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let db = sea_orm::Database::connect("sqlite::memory:").await?;
/// conflictkit::resolver::idempotency::migrate_idempotency(&db).await?;
/// conflictkit::resolver::idempotency::migrate_idempotency(&db).await?; // idempotent
/// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
/// ```
pub async fn migrate_idempotency<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let mut outcome = ColumnDef::new(OUTCOME);
    match backend {
        // TEXT holds 64 KiB there; an outcome may be larger
        DbBackend::MySql => outcome.custom("LONGTEXT"),
        _ => outcome.text(),
    };
    let create = Table::create()
        .table(IDEMPOTENCY_TABLE)
        .if_not_exists()
        .col(ColumnDef::new(LABEL).string_len(255).not_null())
        .col(ColumnDef::new(KEY).string_len(255).not_null())
        .col(ColumnDef::new(FINGERPRINT).string_len(64).not_null())
        .col(ColumnDef::new(STATE).string_len(16).not_null())
        .col(outcome.null())
        .col(ColumnDef::new(CLAIM).string_len(32).not_null())
        .col(ColumnDef::new(CREATED_AT).big_integer().not_null())
        .col(ColumnDef::new(COMPLETED_AT).big_integer().null())
        .primary_key(Index::create().col(LABEL).col(KEY))
        .to_owned();
    db.execute(&create).await?;
    Ok(())
}

/// Deletes the keys recorded more than `older_than` ago, and returns how
/// many. A request repeated after its key was purged runs again: keep keys
/// longer than clients retry (the draft standard suggests at least 24 h).
///
/// ```
/// use std::time::Duration;
/// use conflictkit::resolver::idempotency::{migrate_idempotency, purge_idempotency};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let db = sea_orm::Database::connect("sqlite::memory:").await?;
/// migrate_idempotency(&db).await?;
/// assert_eq!(purge_idempotency(&db, Duration::from_secs(24 * 3600)).await?, 0);
/// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
/// ```
pub async fn purge_idempotency<C: ConnectionTrait>(
    db: &C,
    older_than: Duration,
) -> Result<u64, DbErr> {
    let cutoff = now_ms().saturating_sub(i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX));
    let delete = Query::delete()
        .from_table(IDEMPOTENCY_TABLE)
        .and_where(Expr::col(CREATED_AT).lt(cutoff))
        .to_owned();
    Ok(db.execute(&delete).await?.rows_affected())
}

/// Unix time in milliseconds.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The row of (`label`, `key`), if committed (read on a plain connection),
/// or as the transaction `db` sees it. On MySQL/MariaDB a locking read, so
/// that inside a transaction it sees the latest committed row, not the
/// snapshot.
pub(crate) async fn read<C: ConnectionTrait>(
    db: &C,
    label: &str,
    key: &str,
    locking: bool,
) -> Result<Option<Row>, DbErr> {
    let mut select = Query::select();
    select
        .columns([FINGERPRINT, STATE, OUTCOME, CLAIM])
        .from(IDEMPOTENCY_TABLE)
        .and_where(Expr::col(LABEL).eq(label))
        .and_where(Expr::col(KEY).eq(key));
    if locking && db.get_database_backend() == DbBackend::MySql {
        select.lock_shared();
    }
    db.query_one(&select).await?.map(row).transpose()
}

fn row(r: QueryResult) -> Result<Row, DbErr> {
    Ok(Row {
        fingerprint: r.try_get("", FINGERPRINT)?,
        state: State::parse(&r.try_get::<String>("", STATE)?),
        outcome: r.try_get("", OUTCOME)?,
        claim: r.try_get("", CLAIM)?,
    })
}

/// What one call writes: its key, the request's fingerprint, and the claim
/// that tells its row from another call's.
#[derive(Debug, Clone)]
pub(crate) struct Claim {
    pub(crate) label: String,
    pub(crate) key: String,
    pub(crate) fingerprint: String,
    pub(crate) token: String,
}

impl Claim {
    pub(crate) fn new(label: &str, key: &str, fingerprint: &str) -> Self {
        Self {
            label: label.to_owned(),
            key: key.to_owned(),
            fingerprint: fingerprint.to_owned(),
            token: format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
        }
    }
}

/// Who holds the key after [`claim`].
pub(crate) enum Claimed {
    /// This call: run the body.
    Ours,
    /// Another call committed it first: its row.
    Theirs(Row),
}

/// Claims the key inside the call's transaction `txn`: an insert that does
/// nothing on a duplicate key (a failing insert would abort the whole
/// transaction on PostgreSQL), then the row read back. A concurrent claim
/// of the same key still running makes the insert wait on the primary key
/// (every engine) until that transaction ends: then the row is its (it
/// committed; on PostgreSQL at SERIALIZABLE or REPEATABLE READ the insert
/// fails with a serialization conflict instead, and the replay sees the
/// row), or this call's (it rolled back).
pub(crate) async fn claim<C: ConnectionTrait>(txn: &C, claim: &Claim) -> Result<Claimed, DbErr> {
    let insert = Query::insert()
        .into_table(IDEMPOTENCY_TABLE)
        .columns([LABEL, KEY, FINGERPRINT, STATE, CLAIM, CREATED_AT])
        .values_panic([
            claim.label.as_str().into(),
            claim.key.as_str().into(),
            claim.fingerprint.as_str().into(),
            State::Pending.name().into(),
            claim.token.as_str().into(),
            now_ms().into(),
        ])
        // MySQL has no DO NOTHING: `ON DUPLICATE KEY UPDATE label = label`
        .on_conflict(
            OnConflict::columns([LABEL, KEY])
                .do_nothing_on([LABEL])
                .to_owned(),
        )
        .to_owned();
    txn.execute(&insert).await?;
    match read(txn, &claim.label, &claim.key, true).await? {
        Some(row) if row.claim == claim.token => Ok(Claimed::Ours),
        Some(row) => Ok(Claimed::Theirs(row)),
        None => Err(DbErr::Custom(format!(
            "the idempotency key `{}` of `{}` was neither claimed nor found in {IDEMPOTENCY_TABLE}",
            claim.key, claim.label
        ))),
    }
}

/// Stores the outcome under this call's claim, in its transaction.
pub(crate) async fn finish<C: ConnectionTrait>(
    txn: &C,
    claim: &Claim,
    state: State,
    outcome: &str,
) -> Result<(), DbErr> {
    let update = Query::update()
        .table(IDEMPOTENCY_TABLE)
        .value(STATE, state.name())
        .value(OUTCOME, outcome)
        .value(COMPLETED_AT, now_ms())
        .and_where(Expr::col(LABEL).eq(claim.label.as_str()))
        .and_where(Expr::col(KEY).eq(claim.key.as_str()))
        .and_where(Expr::col(CLAIM).eq(claim.token.as_str()))
        .to_owned();
    let updated = txn.execute(&update).await?.rows_affected();
    if updated != 1 {
        return Err(DbErr::Custom(format!(
            "storing the outcome of the idempotency key `{}` of `{}` updated {updated} rows, not 1",
            claim.key, claim.label
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_name_parses_back() {
        for s in [State::Pending, State::Ok, State::Err] {
            assert_eq!(State::parse(s.name()), Some(s));
        }
        assert_eq!(State::parse("done"), None);
    }
}
