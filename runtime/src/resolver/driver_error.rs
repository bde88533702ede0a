//! Driver errors: reading what the driver says (codes, a lost
//! connection, a protocol failure) out of any error chain, and the
//! [`Carrier`] that makes a resolver error travel as one.
//!
//! What the codes *mean* to the resolver is decided elsewhere: conflicts in
//! [`classify`](super::classify), what aborts a transaction in `engine`.

use std::error::Error as StdError;
use std::fmt;

use sea_orm::DbErr;

/// A resolver error wrapped so that it can travel as a driver error: the
/// one hand-written `sqlx::error::DatabaseError` of the crate (sqlx offers
/// no public constructor for a database error of its own drivers).
/// `sqlite_code` makes it read as a SQLite result code, so that a
/// synthetic conflict classifies as the driver's would.
pub(crate) struct Carrier {
    err: Box<dyn StdError + Send + Sync>,
    sqlite_code: Option<i32>,
}

impl Carrier {
    /// `err`, standing for SQLite result code `sqlite_code` if given.
    pub(crate) fn new(err: Box<dyn StdError + Send + Sync>, sqlite_code: Option<i32>) -> Self {
        Self { err, sqlite_code }
    }

    /// The error carried.
    pub(crate) fn error(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.err
    }

    /// The SQLite result code this carrier stands for, if any.
    #[cfg_attr(not(feature = "sqlx-sqlite"), allow(dead_code))]
    pub(crate) fn sqlite_code(&self) -> Option<i32> {
        self.sqlite_code
    }
}

impl fmt::Debug for Carrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.err, f)
    }
}

impl fmt::Display for Carrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.err, f)
    }
}

impl StdError for Carrier {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.err)
    }
}

#[cfg(any(
    feature = "sqlx-postgres",
    feature = "sqlx-mysql",
    feature = "sqlx-sqlite"
))]
mod with_sqlx {
    use super::*;
    use sea_orm::RuntimeErr;
    use sea_orm::sqlx;

    impl sqlx::error::DatabaseError for Carrier {
        fn message(&self) -> &str {
            "an error of the conflictkit resolver"
        }
        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            self.sqlite_code
                .map(|c| std::borrow::Cow::Owned(c.to_string()))
        }
        fn as_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn StdError + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn StdError + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    /// `carrier` as a `DbErr`.
    pub(crate) fn wrap(carrier: Carrier) -> DbErr {
        DbErr::Exec(RuntimeErr::SqlxError(std::sync::Arc::new(
            sqlx::Error::Database(Box::new(carrier)),
        )))
    }

    /// The carrier one link of an error chain holds, if any.
    pub(crate) fn carrier<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a Carrier> {
        let sqlx::Error::Database(dbe) = sqlx_error(e)? else {
            return None;
        };
        dbe.try_downcast_ref::<Carrier>()
    }

    /// The sqlx error one error of a chain is or wraps directly: a `DbErr`
    /// (`Exec`, `Query`, `Conn`), a `RuntimeErr` or a `sqlx::Error` itself.
    pub(crate) fn sqlx_error<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a sqlx::Error> {
        let rt = match e.downcast_ref::<DbErr>() {
            Some(DbErr::Exec(rt) | DbErr::Query(rt) | DbErr::Conn(rt)) => Some(rt),
            Some(_) => None,
            None => e.downcast_ref::<RuntimeErr>(),
        };
        match rt {
            Some(RuntimeErr::SqlxError(x)) => Some(&**x),
            Some(_) => None,
            None => e.downcast_ref::<sqlx::Error>(),
        }
    }
}

#[cfg(not(any(
    feature = "sqlx-postgres",
    feature = "sqlx-mysql",
    feature = "sqlx-sqlite"
)))]
mod with_sqlx {
    use super::*;

    /// Without a driver no resolver error is ever made; the text survives.
    pub(crate) fn wrap(carrier: Carrier) -> DbErr {
        DbErr::Custom(carrier.to_string())
    }

    pub(crate) fn carrier<'a>(_: &'a (dyn StdError + 'static)) -> Option<&'a Carrier> {
        None
    }
}

#[cfg(any(
    feature = "sqlx-postgres",
    feature = "sqlx-mysql",
    feature = "sqlx-sqlite"
))]
pub(crate) use with_sqlx::sqlx_error;
pub(crate) use with_sqlx::{carrier, wrap};

/// A database error code, as read from the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawCode<'a> {
    Sqlstate(&'a str),
    MySql(u16),
    // read from SQLite's errors only; matched by the classifier on every build
    #[cfg_attr(not(feature = "sqlx-sqlite"), allow(dead_code))]
    Sqlite(i32),
}

/// Whether `err` says the connection itself is gone (closed by the server:
/// a restart, an idle timeout, an administrator's kill), rather than that a
/// statement failed. Checked only on `BEGIN`, where nothing ran yet, so
/// beginning again on another pooled connection is always safe.
pub(crate) fn is_lost_connection(err: &(dyn StdError + 'static)) -> bool {
    chain(err).any(lost_connection_at)
}

/// Whether `err` says the server could not be reached or was lost: a lost
/// connection (see [`is_lost_connection`]), or a pool that could give no
/// connection in time or is closed. What makes a read-only call that began
/// on a replica run again on the primary.
pub(crate) fn is_unreachable(err: &(dyn StdError + 'static)) -> bool {
    is_lost_connection(err) || chain(err).any(pool_unavailable)
}

#[cfg(any(
    feature = "sqlx-postgres",
    feature = "sqlx-mysql",
    feature = "sqlx-sqlite"
))]
fn pool_unavailable(e: &(dyn StdError + 'static)) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    // the `DbErr` itself, or its source when an error type shows a `DbErr`
    // transparently (`conflictkit::Error`, `#[error(transparent)]`)
    matches!(sqlx_error(e), Some(Sqlx::PoolTimedOut | Sqlx::PoolClosed))
        || matches!(e.downcast_ref::<DbErr>(), Some(DbErr::ConnectionAcquire(_)))
        || e.downcast_ref::<sea_orm::ConnAcquireErr>().is_some()
}

#[cfg(not(any(
    feature = "sqlx-postgres",
    feature = "sqlx-mysql",
    feature = "sqlx-sqlite"
)))]
fn pool_unavailable(_: &(dyn StdError + 'static)) -> bool {
    false
}

/// `err` and its sources, outermost first.
fn chain<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |&e| e.source())
}

/// Whether one error of a chain (not its sources) says the connection is gone.
pub(crate) fn lost_connection_at(e: &(dyn StdError + 'static)) -> bool {
    if lost_connection_kind(e) {
        return true;
    }
    match database_code(e) {
        // connection_exception, admin_shutdown, crash_shutdown, cannot_connect_now
        // database_dropped, idle_session_timeout,
        // idle_in_transaction_session_timeout, transaction_timeout (all FATAL:
        // the server ends the session)
        Some(RawCode::Sqlstate(s)) => {
            s.starts_with("08")
                || matches!(
                    s,
                    "57P01" | "57P02" | "57P03" | "57P04" | "57P05" | "25P03" | "25P04"
                )
        }
        // ER_SERVER_SHUTDOWN, ER_CONNECTION_KILLED, CR_SERVER_GONE_ERROR,
        // CR_SERVER_LOST, ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8.0.24+)
        Some(RawCode::MySql(n)) => matches!(n, 1053 | 1927 | 2006 | 2013 | 4031),
        _ => false,
    }
}

/// Whether the database itself rejected a statement with `err` (a driver
/// database error with a code), as opposed to a client-side or transport
/// failure.
pub(crate) fn is_database_error(err: &(dyn StdError + 'static)) -> bool {
    first_code(err).is_some()
}

/// Whether one error of a chain is a transport failure of the connection.
#[cfg(any(
    feature = "sqlx-postgres",
    feature = "sqlx-mysql",
    feature = "sqlx-sqlite"
))]
fn lost_connection_kind(e: &(dyn StdError + 'static)) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    matches!(
        sqlx_error(e),
        Some(Sqlx::Io(_) | Sqlx::Tls(_) | Sqlx::WorkerCrashed)
    )
}

/// Whether `err` (anywhere in its chain) is a `sqlx::Error::Protocol`: the
/// driver refused or could not follow the wire protocol. On PostgreSQL
/// sqlx raises it before sending anything (too many bind parameters), so
/// the transaction is intact; on MySQL a wrong bind count leaves the
/// connection waiting for a reply that never comes, so it is unusable.
#[cfg(any(
    feature = "sqlx-postgres",
    feature = "sqlx-mysql",
    feature = "sqlx-sqlite"
))]
pub(crate) fn is_protocol_error(err: &(dyn StdError + 'static)) -> bool {
    chain(err).any(|e| matches!(sqlx_error(e), Some(sea_orm::sqlx::Error::Protocol(_))))
}

#[cfg(not(any(
    feature = "sqlx-postgres",
    feature = "sqlx-mysql",
    feature = "sqlx-sqlite"
)))]
pub(crate) fn is_protocol_error(_: &(dyn StdError + 'static)) -> bool {
    false
}

/// The first database error code along `err`'s source chain.
pub(crate) fn first_code<'a>(err: &'a (dyn StdError + 'static)) -> Option<RawCode<'a>> {
    chain(err).find_map(database_code)
}

#[cfg(not(any(
    feature = "sqlx-postgres",
    feature = "sqlx-mysql",
    feature = "sqlx-sqlite"
)))]
fn lost_connection_kind(_: &(dyn StdError + 'static)) -> bool {
    false
}

/// The driver's code carried by one error of a chain, if it is a database error.
#[cfg(any(
    feature = "sqlx-postgres",
    feature = "sqlx-mysql",
    feature = "sqlx-sqlite"
))]
pub(crate) fn database_code<'a>(e: &'a (dyn StdError + 'static)) -> Option<RawCode<'a>> {
    sqlx_error(e).and_then(sqlx_error_code)
}

#[cfg(not(any(
    feature = "sqlx-postgres",
    feature = "sqlx-mysql",
    feature = "sqlx-sqlite"
)))]
pub(crate) fn database_code<'a>(_: &'a (dyn StdError + 'static)) -> Option<RawCode<'a>> {
    None
}

#[cfg(any(
    feature = "sqlx-postgres",
    feature = "sqlx-mysql",
    feature = "sqlx-sqlite"
))]
fn sqlx_error_code(e: &sea_orm::sqlx::Error) -> Option<RawCode<'_>> {
    let sea_orm::sqlx::Error::Database(dbe) = e else {
        return None;
    };
    #[cfg(feature = "sqlx-mysql")]
    if let Some(my) = dbe.try_downcast_ref::<sea_orm::sqlx::mysql::MySqlDatabaseError>() {
        return Some(RawCode::MySql(my.number()));
    }
    #[cfg(feature = "sqlx-sqlite")]
    if let Some(code) = dbe
        .try_downcast_ref::<Carrier>()
        .and_then(Carrier::sqlite_code)
    {
        return Some(RawCode::Sqlite(code));
    }
    #[cfg(feature = "sqlx-sqlite")]
    if let Some(lite) = dbe.try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>() {
        return sea_orm::sqlx::error::DatabaseError::code(lite)
            .and_then(|c| c.parse::<i32>().ok())
            .map(RawCode::Sqlite);
    }
    // PostgreSQL and any other driver: the SQLSTATE.
    match dbe.code()? {
        std::borrow::Cow::Borrowed(s) => Some(RawCode::Sqlstate(s)),
        // An owned code cannot be borrowed from here; only SQLSTATE-shaped
        // codes are compared, and those are always borrowed by sqlx's drivers.
        std::borrow::Cow::Owned(_) => None,
    }
}
