//! Which errors are serialization conflicts worth replaying.
//!
//! Recognised out of the box:
//!
//! | database | codes | meaning |
//! |---|---|---|
//! | PostgreSQL (and CockroachDB, YugabyteDB) | SQLSTATE `40001`, `40P01` | serialization failure, deadlock detected |
//! | MySQL / MariaDB | error numbers `1213`, `1205`, `1020` | deadlock, lock wait timeout, record changed since the snapshot (`ER_CHECKREAD`: MariaDB ≥ 11.6 REPEATABLE READ) |
//! | SQLite | primary codes `5` (`SQLITE_BUSY`) and `6` (`SQLITE_LOCKED`), with every extended code (`261`, `517`, `773`, `262`, …) | database busy or locked, stale snapshot |
//!
//! Opt in to more with [`ConflictResolverBuilder::retry_on_sqlstate`](super::ConflictResolverBuilder::retry_on_sqlstate)
//! (e.g. `23505` unique violation, `23P01` exclusion violation, `55P03` lock not available),
//! [`retry_on_mysql_error`](super::ConflictResolverBuilder::retry_on_mysql_error),
//! [`retry_on_sqlite_code`](super::ConflictResolverBuilder::retry_on_sqlite_code) or a
//! predicate of your own ([`retry_if`](super::ConflictResolverBuilder::retry_if)).
//!
//! The database error is searched for along the whole [`source()`](std::error::Error::source)
//! chain: a [`DbErr`](sea_orm::DbErr), a [`RuntimeErr`](sea_orm::RuntimeErr) or a `sqlx::Error`, so user error enums built
//! with thiserror `#[from]` or `#[error(transparent)]` are classified too.
//!
//! # Lost connections
//!
//! A connection that dies under a transaction (the server restarted or shut
//! down, an administrator killed the session, the network cut it) is
//! replayed too, where that is provably safe. What happens depends on where
//! the run was ([`Phase`](super::Phase)):
//!
//! | phase | what happens |
//! |---|---|
//! | `begin`, `body` | replayed like a conflict, with code [`ConflictCode::ConnectionLost`]: `COMMIT` was never sent, and a server rolls back the open transaction of a session that ends |
//! | `commit` | [`AmbiguousCommit`](super::AmbiguousCommit), **never replayed**: the server may have committed before the connection went |
//! | acquiring a pooled connection | passed through unchanged: the pool itself already waited for the server (`sqlx` retries refused connections and a starting server until `acquire_timeout`), so `ConnectionAcquire(Timeout)` means it did not come back in time, and `ConnectionAcquire(ConnectionClosed)` means the application closed the pool |
//!
//! A connection counts as lost on a transport error (`sqlx::Error::Io`,
//! `Tls`, `WorkerCrashed`), on PostgreSQL SQLSTATE class `08`
//! (connection exception), `57P01` (admin shutdown, also what
//! `pg_terminate_backend` sends), `57P02` (crash shutdown), `57P03`
//! (cannot connect now), `57P04` (database dropped), `57P05`
//! (`idle_session_timeout`), `25P03` (`idle_in_transaction_session_timeout`)
//! and `25P04` (`transaction_timeout`, PostgreSQL 17), and on MySQL / MariaDB
//! errors `1053` (server shutdown), `1927` (connection killed), `2006`
//! (server gone), `2013` (lost connection) and `4031` (MySQL 8.0.24+: the
//! server closed an idle session). Every one of these ends the session on
//! the server, which rolls its open transaction back.
//!
//! A `sqlx::Error::Protocol` is **not** a lost connection: sqlx raises it
//! for client-side mistakes too (more than 65535 bind parameters on
//! PostgreSQL, a wrong bind count on MySQL), which a replay would only
//! repeat. It reaches the caller unchanged. A replay begins on another pooled connection; with
//! sea-orm's default `test_before_acquire`, the pool pings an idle
//! connection before handing it out and drops the dead ones, so calls made
//! after a restart succeed without restarting the application.
//!
//! ```
//! use conflictkit::ConflictResolver;
//! use sea_orm::{DbErr, RuntimeErr};
//! use std::sync::Arc;
//!
//! let io = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
//! let lost = DbErr::Query(RuntimeErr::SqlxError(Arc::new(sea_orm::sqlx::Error::Io(io))));
//! assert!(ConflictResolver::is_retryable(&lost));
//! let timeout = DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout);
//! assert!(!ConflictResolver::is_retryable(&timeout));
//! ```

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use super::driver_error::lost_connection_at;
use super::driver_error::{RawCode, database_code};

/// SQLSTATEs that are conflicts by default.
pub const DEFAULT_SQLSTATES: &[&str] = &["40001", "40P01"];
/// MySQL / MariaDB error numbers that are conflicts by default.
pub const DEFAULT_MYSQL_ERRORS: &[u16] = &[1213, 1205, 1020];
/// SQLite primary result codes that are conflicts by default (`SQLITE_BUSY`, `SQLITE_LOCKED`).
pub const DEFAULT_SQLITE_PRIMARY_CODES: &[i32] = &[5, 6];

/// A conflict found in an error: where it came from and its code.
///
/// ```
/// use conflictkit::resolver::{Conflict, ConflictCode};
/// let c = Conflict { code: ConflictCode::Sqlstate("40001".into()) };
/// assert_eq!(c.to_string(), "SQLSTATE 40001");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The database's code for it.
    pub code: ConflictCode,
}

/// The code a database gave a conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConflictCode {
    /// A PostgreSQL (or other SQL-standard) SQLSTATE such as `40001`.
    Sqlstate(String),
    /// A MySQL / MariaDB error number such as `1213`.
    MySql(u16),
    /// A SQLite extended result code such as `517` (`SQLITE_BUSY_SNAPSHOT`).
    Sqlite(i32),
    /// Matched by a predicate added with `retry_if`.
    Custom,
    /// A synthetic conflict of conflict injection
    /// ([`InjectConflicts`](super::InjectConflicts)).
    Injected,
    /// The connection was lost before `COMMIT` was sent (see
    /// [Lost connections](self#lost-connections)): the server rolled the
    /// transaction back, so it is replayed on another connection.
    ConnectionLost,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.code, f)
    }
}

impl fmt::Display for ConflictCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConflictCode::Sqlstate(s) => write!(f, "SQLSTATE {s}"),
            ConflictCode::MySql(n) => write!(f, "MySQL error {n}"),
            ConflictCode::Sqlite(c) => write!(f, "SQLite code {c}"),
            ConflictCode::Custom => f.write_str("custom predicate"),
            ConflictCode::Injected => f.write_str("injected conflict"),
            ConflictCode::ConnectionLost => f.write_str("connection lost before COMMIT"),
        }
    }
}

/// A user predicate deciding whether an error is a conflict.
pub type RetryPredicate = Arc<dyn Fn(&(dyn StdError + 'static)) -> bool + Send + Sync>;

/// The set of codes and predicates a resolver treats as conflicts.
#[derive(Clone)]
pub struct Classifier {
    sqlstates: Vec<String>,
    mysql: Vec<u16>,
    sqlite_primary: Vec<i32>,
    sqlite_extended: Vec<i32>,
    predicates: Vec<RetryPredicate>,
}

impl Default for Classifier {
    fn default() -> Self {
        Self {
            sqlstates: DEFAULT_SQLSTATES.iter().map(|s| (*s).to_owned()).collect(),
            mysql: DEFAULT_MYSQL_ERRORS.to_vec(),
            sqlite_primary: DEFAULT_SQLITE_PRIMARY_CODES.to_vec(),
            sqlite_extended: Vec::new(),
            predicates: Vec::new(),
        }
    }
}

impl fmt::Debug for Classifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Classifier")
            .field("sqlstates", &self.sqlstates)
            .field("mysql", &self.mysql)
            .field("sqlite_primary", &self.sqlite_primary)
            .field("sqlite_extended", &self.sqlite_extended)
            .field("predicates", &self.predicates.len())
            .finish()
    }
}

impl Classifier {
    pub(crate) fn add_sqlstate(&mut self, code: &str) {
        self.sqlstates.push(code.to_ascii_uppercase());
    }
    pub(crate) fn add_mysql(&mut self, number: u16) {
        self.mysql.push(number);
    }
    pub(crate) fn add_sqlite(&mut self, code: i32) {
        if code <= 0xff {
            self.sqlite_primary.push(code);
        } else {
            self.sqlite_extended.push(code);
        }
    }
    pub(crate) fn add_predicate(&mut self, p: RetryPredicate) {
        self.predicates.push(p);
    }

    /// Is this code a conflict?
    pub(crate) fn matches_code(&self, code: RawCode<'_>) -> Option<ConflictCode> {
        let hit = match code {
            RawCode::Sqlstate(s) => self.sqlstates.iter().any(|c| c.eq_ignore_ascii_case(s)),
            RawCode::MySql(n) => self.mysql.contains(&n),
            RawCode::Sqlite(c) => {
                self.sqlite_primary.contains(&(c & 0xff)) || self.sqlite_extended.contains(&c)
            }
        };
        hit.then(|| match code {
            RawCode::Sqlstate(s) => ConflictCode::Sqlstate(s.to_owned()),
            RawCode::MySql(n) => ConflictCode::MySql(n),
            RawCode::Sqlite(c) => ConflictCode::Sqlite(c),
        })
    }

    /// Finds a conflict anywhere in `err`'s source chain, or a connection
    /// lost before `COMMIT` ([`ConflictCode::ConnectionLost`]).
    ///
    /// A give-up ([`CannotResolveDatabaseConflict`](super::CannotResolveDatabaseConflict))
    /// and an ambiguous commit ([`AmbiguousCommit`](super::AmbiguousCommit)) are
    /// never conflicts, whatever they carry: replaying them again would
    /// multiply the replays, or repeat a commit that may have happened. A
    /// connection lost during `COMMIT` always reaches this as an
    /// `AmbiguousCommit`, so a lost connection found here was lost before
    /// `COMMIT` was sent.
    ///
    /// ```
    /// use conflictkit::resolver::classify::Classifier;
    /// use conflictkit::resolver::ConflictCode;
    /// use sea_orm::{DbErr, RuntimeErr};
    /// use std::sync::Arc;
    ///
    /// let eof = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
    /// let lost = DbErr::Exec(RuntimeErr::SqlxError(Arc::new(sea_orm::sqlx::Error::Io(eof))));
    /// let found = Classifier::default().classify(&lost).map(|c| c.code);
    /// assert_eq!(found, Some(ConflictCode::ConnectionLost));
    /// ```
    pub fn classify(&self, err: &(dyn StdError + 'static)) -> Option<Conflict> {
        if super::carried::find::<super::AmbiguousCommit>(err).is_some()
            || super::carried::find::<super::DeadlineExceeded>(err).is_some()
        {
            return None;
        }
        if super::carried::find::<super::InjectedConflict>(err).is_some() {
            return Some(Conflict {
                code: ConflictCode::Injected,
            });
        }
        let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
        while let Some(e) = cur {
            if e.is::<super::error::GaveUp>() {
                return None;
            }
            if let Some(code) = database_code(e).and_then(|c| self.matches_code(c)) {
                return Some(Conflict { code });
            }
            if lost_connection_at(e) {
                return Some(Conflict {
                    code: ConflictCode::ConnectionLost,
                });
            }
            cur = e.source();
        }
        if self.predicates.iter().any(|p| p(err)) {
            return Some(Conflict {
                code: ConflictCode::Custom,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests;
