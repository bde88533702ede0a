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

#[cfg(any(
    feature = "sqlx-postgres",
    feature = "sqlx-mysql",
    feature = "sqlx-sqlite"
))]
pub(crate) use super::carried::sqlx_error;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

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

/// A database error code, as read from the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawCode<'a> {
    Sqlstate(&'a str),
    MySql(u16),
    Sqlite(i32),
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
        if super::carried::find::<super::AmbiguousCommit>(err).is_some() {
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

/// Whether `err` says the connection itself is gone (closed by the server:
/// a restart, an idle timeout, an administrator's kill), rather than that a
/// statement failed. Checked only on `BEGIN`, where nothing ran yet, so
/// beginning again on another pooled connection is always safe.
pub(crate) fn is_lost_connection(err: &(dyn StdError + 'static)) -> bool {
    chain(err).any(lost_connection_at)
}

/// `err` and its sources, outermost first.
fn chain<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(err), |&e| e.source())
}

/// Whether one error of a chain (not its sources) says the connection is gone.
fn lost_connection_at(e: &(dyn StdError + 'static)) -> bool {
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
fn database_code<'a>(e: &'a (dyn StdError + 'static)) -> Option<RawCode<'a>> {
    sqlx_error(e).and_then(sqlx_error_code)
}

#[cfg(not(any(
    feature = "sqlx-postgres",
    feature = "sqlx-mysql",
    feature = "sqlx-sqlite"
)))]
fn database_code<'a>(_: &'a (dyn StdError + 'static)) -> Option<RawCode<'a>> {
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
        .try_downcast_ref::<super::carried::Carrier>()
        .and_then(super::carried::Carrier::sqlite_code)
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

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::sqlx;
    use sea_orm::{DbErr, RuntimeErr};
    use std::borrow::Cow;

    /// A database error of a driver we don't know: only its SQLSTATE is read.
    #[derive(Debug)]
    struct FakeDbError(&'static str);
    impl fmt::Display for FakeDbError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "fake {}", self.0)
        }
    }
    impl StdError for FakeDbError {}
    impl sqlx::error::DatabaseError for FakeDbError {
        fn message(&self) -> &str {
            "fake"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
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

    fn sqlx_err(code: &'static str) -> sqlx::Error {
        sqlx::Error::Database(Box::new(FakeDbError(code)))
    }
    fn db_err(code: &'static str) -> DbErr {
        DbErr::Query(RuntimeErr::SqlxError(Arc::new(sqlx_err(code))))
    }

    #[test]
    fn default_codes() {
        let c = Classifier::default();
        for s in ["40001", "40P01", "40p01"] {
            assert!(c.matches_code(RawCode::Sqlstate(s)).is_some(), "{s}");
        }
        for s in ["40000", "40002", "23505", "23P01", "55P03", "XX000"] {
            assert!(c.matches_code(RawCode::Sqlstate(s)).is_none(), "{s}");
        }
        for n in [1213, 1205] {
            assert_eq!(
                c.matches_code(RawCode::MySql(n)),
                Some(ConflictCode::MySql(n))
            );
        }
        for n in [1062, 1146, 2013] {
            assert!(c.matches_code(RawCode::MySql(n)).is_none(), "{n}");
        }
        // SQLITE_BUSY (5), SQLITE_LOCKED (6) and their extended codes.
        for code in [5, 6, 261, 517, 773, 262] {
            assert_eq!(
                c.matches_code(RawCode::Sqlite(code)),
                Some(ConflictCode::Sqlite(code))
            );
        }
        // SQLITE_CONSTRAINT_UNIQUE (2067), SQLITE_ERROR (1), SQLITE_READONLY (8).
        for code in [2067, 1, 8, 19] {
            assert!(c.matches_code(RawCode::Sqlite(code)).is_none(), "{code}");
        }
    }

    #[test]
    fn opt_in_codes() {
        let mut c = Classifier::default();
        assert!(c.matches_code(RawCode::Sqlstate("23505")).is_none());
        c.add_sqlstate("23505");
        c.add_sqlstate("23p01");
        c.add_sqlstate("55P03");
        c.add_mysql(1062);
        c.add_sqlite(2067);
        for s in ["23505", "23P01", "55P03"] {
            assert!(c.matches_code(RawCode::Sqlstate(s)).is_some(), "{s}");
        }
        assert!(c.matches_code(RawCode::MySql(1062)).is_some());
        assert!(c.matches_code(RawCode::Sqlite(2067)).is_some());
        // an extended code added alone does not widen to its primary family
        assert!(c.matches_code(RawCode::Sqlite(1555)).is_none());
    }

    #[test]
    fn finds_code_in_each_wrapper() {
        let c = Classifier::default();
        let direct = sqlx_err("40001");
        assert!(c.classify(&direct).is_some());
        for wrap in [
            DbErr::Exec as fn(RuntimeErr) -> DbErr,
            DbErr::Query,
            DbErr::Conn,
        ] {
            let e = wrap(RuntimeErr::SqlxError(Arc::new(sqlx_err("40P01"))));
            assert_eq!(
                c.classify(&e),
                Some(Conflict {
                    code: ConflictCode::Sqlstate("40P01".into())
                })
            );
        }
        let rt = RuntimeErr::SqlxError(Arc::new(sqlx_err("40001")));
        assert!(c.classify(&rt).is_some());
        assert!(c.classify(&db_err("23505")).is_none());
        assert!(c.classify(&DbErr::RecordNotFound("x".into())).is_none());
        assert!(c.classify(&DbErr::Custom("40001".into())).is_none());
    }

    #[derive(Debug, thiserror::Error)]
    enum UserError {
        #[error("database: {0}")]
        Db(#[from] DbErr),
        #[error(transparent)]
        Transparent(DbErr),
        #[error("wrapped: {0}")]
        Nested(#[source] Box<UserError>),
        #[error("insufficient funds")]
        Funds,
    }

    #[test]
    fn walks_the_source_chain() {
        let c = Classifier::default();
        assert!(c.classify(&UserError::Db(db_err("40001"))).is_some());
        // transparent forwards source() to DbErr's source: the RuntimeErr
        assert!(
            c.classify(&UserError::Transparent(db_err("40001")))
                .is_some()
        );
        let nested = UserError::Nested(Box::new(UserError::Nested(Box::new(UserError::Db(
            db_err("40P01"),
        )))));
        assert!(c.classify(&nested).is_some());
        assert!(c.classify(&UserError::Funds).is_none());
        assert!(c.classify(&UserError::Db(db_err("22012"))).is_none());
        let io = std::io::Error::other(sqlx_err("40001"));
        assert!(
            c.classify(&io).is_none(),
            "io::Error::other does not expose its payload as source"
        );
    }

    #[test]
    fn user_predicates() {
        let mut c = Classifier::default();
        assert!(c.classify(&UserError::Funds).is_none());
        c.add_predicate(Arc::new(|e| {
            matches!(e.downcast_ref::<UserError>(), Some(UserError::Funds))
        }));
        assert_eq!(
            c.classify(&UserError::Funds),
            Some(Conflict {
                code: ConflictCode::Custom
            })
        );
    }

    #[test]
    fn lost_connections() {
        assert!(is_lost_connection(&db_err("57P01")), "admin_shutdown");
        assert!(is_lost_connection(&db_err("08006")), "connection_failure");
        assert!(
            !is_lost_connection(&db_err("40001")),
            "a conflict is not a lost connection"
        );
        let io = DbErr::Query(RuntimeErr::SqlxError(std::sync::Arc::new(sqlx::Error::Io(
            std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
        ))));
        assert!(is_lost_connection(&io));
        let timeout = DbErr::Conn(RuntimeErr::SqlxError(std::sync::Arc::new(
            sqlx::Error::PoolTimedOut,
        )));
        assert!(
            !is_lost_connection(&timeout),
            "an exhausted pool is not a dead connection"
        );
    }

    fn io_err(kind: std::io::ErrorKind) -> DbErr {
        DbErr::Exec(RuntimeErr::SqlxError(Arc::new(sqlx::Error::Io(
            std::io::Error::from(kind),
        ))))
    }

    #[test]
    fn lost_connections_are_replayed() {
        let c = Classifier::default();
        let lost = Some(Conflict {
            code: ConflictCode::ConnectionLost,
        });
        // what pg_terminate_backend, a fast shutdown, a crash and a starting
        // server answer, and every connection_exception
        for code in [
            "57P01", "57P02", "57P03", "57P04", "57P05", "25P03", "25P04", "08006", "08003",
            "08000",
        ] {
            assert_eq!(c.classify(&db_err(code)), lost, "SQLSTATE {code}");
        }
        // a statement cancelled (57014) or a constraint (23505) is no lost connection
        for code in ["57014", "23505", "22012"] {
            assert_eq!(c.classify(&db_err(code)), None, "SQLSTATE {code}");
        }
        for kind in [
            std::io::ErrorKind::UnexpectedEof,
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::ConnectionRefused,
            std::io::ErrorKind::BrokenPipe,
        ] {
            assert_eq!(c.classify(&io_err(kind)), lost, "{kind:?}");
        }
        // a client-side refusal (PostgreSQL's 65535-bind limit, a MySQL bind
        // count mismatch) would only fail again: it is passed through
        let protocol = DbErr::Query(RuntimeErr::SqlxError(Arc::new(sqlx::Error::Protocol(
            "too many arguments for query: 70000 (sqlx)".into(),
        ))));
        assert_eq!(c.classify(&protocol), None);
        assert!(is_protocol_error(&UserError::Db(protocol.clone())));
        assert!(!is_lost_connection(&protocol));
        // found through a user's error enum too
        assert_eq!(
            c.classify(&UserError::Db(io_err(std::io::ErrorKind::UnexpectedEof))),
            lost
        );
    }

    #[test]
    fn which_errors_abort_the_transaction() {
        use sea_orm::DatabaseBackend::{MySql, Postgres, Sqlite};
        let protocol = DbErr::Query(RuntimeErr::SqlxError(Arc::new(sqlx::Error::Protocol(
            "prepared statement expected 2 parameters".into(),
        ))));
        // PostgreSQL: any rejected statement; a client-side refusal is not
        let aborts = |backend, err: &DbErr| {
            crate::resolver::engine::Engine::new(backend).aborts_transaction(err)
        };
        assert!(aborts(Postgres, &db_err("23505")));
        assert!(!aborts(Postgres, &protocol));
        // MySQL: a protocol error leaves the connection unusable; a
        // duplicate key fails its statement alone
        assert!(aborts(MySql, &protocol));
        assert!(!aborts(MySql, &db_err("23000")));
        // a lost connection, anywhere
        for backend in [Postgres, MySql, Sqlite] {
            assert!(aborts(backend, &io_err(std::io::ErrorKind::UnexpectedEof)));
            assert!(!aborts(backend, &DbErr::RecordNotFound("x".into())));
        }
    }

    #[test]
    fn pool_errors_pass_through() {
        let c = Classifier::default();
        for acquire in [
            sea_orm::ConnAcquireErr::Timeout,
            sea_orm::ConnAcquireErr::ConnectionClosed,
        ] {
            let err = DbErr::ConnectionAcquire(acquire);
            assert_eq!(c.classify(&err), None, "{err}");
        }
        for sqlx_err in [sqlx::Error::PoolTimedOut, sqlx::Error::PoolClosed] {
            let err = DbErr::Conn(RuntimeErr::SqlxError(Arc::new(sqlx_err)));
            assert_eq!(c.classify(&err), None, "{err}");
        }
    }

    #[test]
    fn a_connection_lost_at_commit_or_given_up_on_is_not_replayed() {
        let c = Classifier::default();
        let lost = || io_err(std::io::ErrorKind::UnexpectedEof);
        let ambiguous = crate::resolver::carried::into_db_err(
            crate::resolver::AmbiguousCommit::new("t", lost()),
        );
        assert_eq!(c.classify(&ambiguous), None);
        let gave_up = crate::resolver::CannotResolveDatabaseConflict::new("t", 4, 3, lost());
        assert_eq!(c.classify(&gave_up), None);
        let says = gave_up.to_string();
        assert!(says.contains("lost its database connection"), "{says}");
        assert!(!says.contains("reduce contention"), "{says}");
    }
}
