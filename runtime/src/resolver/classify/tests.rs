use super::*;
use crate::resolver::driver_error::{is_lost_connection, is_protocol_error};
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
        "57P01", "57P02", "57P03", "57P04", "57P05", "25P03", "25P04", "08006", "08003", "08000",
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
    let ambiguous =
        crate::resolver::carried::into_db_err(crate::resolver::AmbiguousCommit::new("t", lost()));
    assert_eq!(c.classify(&ambiguous), None);
    let gave_up = crate::resolver::CannotResolveDatabaseConflict::new("t", 4, 3, lost());
    assert_eq!(c.classify(&gave_up), None);
    let says = gave_up.to_string();
    assert!(says.contains("lost its database connection"), "{says}");
    assert!(!says.contains("reduce contention"), "{says}");
}
