//! What the database engine behind a resolver is, in named facts: the one
//! place that looks at [`DbBackend`] (apart from the SQL builders of the
//! lock across processes and of the identity query), computed once when the
//! resolver is built. The plan, the replay loop, contention control and
//! [`Txn`](super::Txn) read these facts instead of comparing backends, as
//! sea-orm's `DbBackend::support_returning` does for its own code.

use std::error::Error as StdError;

use sea_orm::{AccessMode, ConnectionTrait, DatabaseConnection, DbBackend, TransactionOptions};

use super::driver_error::{
    RawCode, first_code, is_database_error, is_lost_connection, is_protocol_error,
};
use super::options::{Isolation, SqliteMode};
use super::replica::Dialect;

/// The lock across processes an engine offers (see `contention::db_lock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DbLock {
    /// None: SQLite (its write lock already serialises every process), mock
    /// connections, engines sea-orm may add.
    None,
    /// PostgreSQL's `pg_advisory_xact_lock`, on a lock session of its own.
    Advisory,
    /// A row of `conflictkit_locks` locked `FOR UPDATE` (MySQL/MariaDB).
    LockRow,
}

/// Whether `err` (anywhere in its chain) is a server-side timeout of the
/// kind a call's deadline pushes to the server: PostgreSQL `57014`
/// (`statement_timeout`) and `55P03` (`lock_timeout`); MariaDB `1969`
/// (`max_statement_time`), MySQL `3024` (`max_execution_time`), and `1205`
/// (`innodb_lock_wait_timeout`); SQLite `SQLITE_BUSY` (`busy_timeout`).
pub(crate) fn is_server_timeout(err: &(dyn StdError + 'static)) -> bool {
    matches!(
        first_code(err),
        Some(RawCode::Sqlstate("57014" | "55P03"))
            | Some(RawCode::MySql(1205 | 1969 | 3024))
            | Some(RawCode::Sqlite(SQLITE_BUSY | SQLITE_BUSY_TIMEOUT))
    )
}

/// SQLite's busy handler gave up (`busy_timeout`), and its extended code.
const SQLITE_BUSY: i32 = 5;
const SQLITE_BUSY_TIMEOUT: i32 = 5 | (3 << 8);

/// Whether `err` (anywhere in its chain) is the server refusing a write in
/// a read-only transaction: PostgreSQL `25006` (`read_only_sql_transaction`,
/// which a hot standby also raises for every write); MariaDB / MySQL `1792`
/// (a write in a `READ ONLY` transaction) and `1290` (a server running
/// `--read-only`, as replicas do; the code of every `--option` that
/// prevents a statement, so asked only of calls routed to a replica).
pub(crate) fn is_write_in_read_only(err: &(dyn StdError + 'static)) -> bool {
    matches!(
        first_code(err),
        Some(RawCode::Sqlstate("25006")) | Some(RawCode::MySql(1290 | 1792))
    )
}

/// The statements that push a call's remaining budget to the server, and
/// put the session back as it was (`None`: nothing to put back, the setting
/// ends with the transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerBudget {
    pub(crate) set: String,
    pub(crate) restore: Restore,
}

/// How a session's pushed budget is put back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Restore {
    /// Nothing to do: it ends with the transaction (PostgreSQL's `SET LOCAL`).
    Nothing,
    /// This statement.
    Sql(&'static str),
    /// SQLite's busy timeout, a setting of the connection: read before it
    /// is set (`PRAGMA busy_timeout`), then set back to what it was.
    SqliteBusyTimeout,
}

/// The facts about one resolver's engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Engine {
    backend: DbBackend,
    /// A `MockDatabase`: no real pool, no lock across processes, no files.
    mock: bool,
}

/// SQLite primary result codes after which SQLite may have rolled the
/// whole transaction back by itself (sqlite.org/lang_transaction.html,
/// "Response To Errors Within A Transaction"): `SQLITE_NOMEM` (7),
/// `SQLITE_INTERRUPT` (9), `SQLITE_IOERR` (10) and `SQLITE_FULL` (13).
/// (`SQLITE_BUSY` is a conflict and replayed anyway.)
const SQLITE_AUTOMATIC_ROLLBACK: &[i32] = &[7, 9, 10, 13];

/// InnoDB's deadlock error, after which the whole transaction is rolled back.
const MYSQL_DEADLOCK: u16 = 1213;

impl Engine {
    /// The engine of `db`.
    pub(crate) fn of(db: &DatabaseConnection) -> Self {
        Self {
            backend: db.get_database_backend(),
            mock: db.is_mock_connection(),
        }
    }

    /// The engine of a connection to `backend` (a real one).
    pub(crate) fn new(backend: DbBackend) -> Self {
        Self {
            backend,
            mock: false,
        }
    }

    /// The engine's name as OpenTelemetry's `db.system.name` attribute
    /// spells it.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn system_name(self) -> &'static str {
        match self.backend {
            DbBackend::Postgres => "postgresql",
            DbBackend::MySql => "mysql",
            DbBackend::Sqlite => "sqlite",
            _ => "other_sql",
        }
    }

    /// Whether the server can abort a transaction between its statements
    /// and tell only at its next statement: MariaDB Galera's brute-force
    /// abort of a local transaction whose rows a replicated write set
    /// needs (the victim's next statement fails with 1213; a statement
    /// under way when it happens has been seen to answer as if it found
    /// nothing: `INSERT … RETURNING` with no row). Before the resolver
    /// believes a body's error that is no conflict, it asks such a
    /// transaction once more (`DO 0`): a 1213 there means the error was the
    /// conflict's doing, and the call is replayed.
    pub(crate) fn may_abort_between_statements(self) -> bool {
        self.backend == DbBackend::MySql && !self.mock
    }

    /// Whether `BEGIN` itself waits for other transactions: SQLite's
    /// `BEGIN IMMEDIATE` takes the write lock. On PostgreSQL and
    /// MySQL/MariaDB `BEGIN` takes no snapshot and no lock (the first
    /// statement does), so a queued run may begin while it waits for
    /// admission, off the serialised path.
    pub(crate) fn begin_waits(self) -> bool {
        self.backend == DbBackend::Sqlite
    }

    /// Whether the next run of a gate may be admitted while this one sends
    /// `COMMIT`: under InnoDB's SERIALIZABLE every read is a locking read of
    /// the latest committed rows, so the next run's reads wait for the
    /// commit inside the server, as `SELECT … FOR UPDATE` would.
    pub(crate) fn admits_next_before_commit(self, isolation: Isolation) -> bool {
        self.backend == DbBackend::MySql && isolation == Isolation::Serializable
    }

    /// Whether two runs that read then write the same row fail one of them
    /// as a deadlock victim (InnoDB: SERIALIZABLE reads take shared locks),
    /// so a conflict may be the doing of a run of the same gate even when no
    /// other run committed (see `contention::hot::counts_from_outside`).
    pub(crate) fn lockers_deadlock(self) -> bool {
        self.backend == DbBackend::MySql
    }

    /// The lock across processes this engine offers.
    pub(crate) fn db_lock(self) -> DbLock {
        match self.backend {
            _ if self.mock => DbLock::None,
            DbBackend::Postgres => DbLock::Advisory,
            DbBackend::MySql => DbLock::LockRow,
            _ => DbLock::None,
        }
    }

    /// Whether any statement the server rejects aborts the whole
    /// transaction (PostgreSQL: every later statement fails with 25P02 and
    /// `COMMIT` answers `ROLLBACK`), so that the resolver's own statements
    /// inside a caller's transaction run in a savepoint.
    pub(crate) fn statement_error_aborts(self) -> bool {
        self.backend == DbBackend::Postgres
    }

    /// How to push `budget` to the server for the rest of the transaction:
    /// PostgreSQL `SET LOCAL statement_timeout` and `lock_timeout` (they end
    /// with the transaction); MySQL / MariaDB the session's
    /// `max_statement_time` and `innodb_lock_wait_timeout`, saved in user
    /// variables first and put back by `restore` (a pooled connection must
    /// not keep them). `None` on SQLite (the resolver bounds the write slot
    /// wait itself) and mock connections.
    pub(crate) fn server_budget(self, budget: std::time::Duration) -> Option<ServerBudget> {
        if self.mock {
            return None;
        }
        match self.backend {
            DbBackend::Postgres => {
                let ms = budget.as_millis().max(1);
                Some(ServerBudget {
                    set: format!(
                        "SELECT set_config('statement_timeout', '{ms}ms', true), \
                         set_config('lock_timeout', '{ms}ms', true)"
                    ),
                    restore: Restore::Nothing,
                })
            }
            DbBackend::MySql => {
                let secs = budget.as_secs_f64().max(0.001);
                let whole = budget.as_secs_f64().ceil().max(1.0) as u64;
                Some(ServerBudget {
                    set: format!(
                        "SET @conflictkit_lwt = @@SESSION.innodb_lock_wait_timeout, \
                         @conflictkit_mst = @@SESSION.max_statement_time, \
                         SESSION innodb_lock_wait_timeout = {whole}, \
                         SESSION max_statement_time = {secs:.3}"
                    ),
                    restore: Restore::Sql(
                        "SET SESSION innodb_lock_wait_timeout = @conflictkit_lwt, \
                         SESSION max_statement_time = @conflictkit_mst, \
                         @conflictkit_lwt = NULL, @conflictkit_mst = NULL",
                    ),
                })
            }
            // How long a statement waits in SQLite's busy handler for a
            // lock another connection holds (a deferred transaction's first
            // write; another process's writer). BEGIN IMMEDIATE's own wait
            // comes before any statement of the call can set it: the
            // connection's busy timeout bounds it, the call's deadline the
            // caller's wait.
            DbBackend::Sqlite => Some(ServerBudget {
                set: format!("PRAGMA busy_timeout = {}", budget.as_millis().max(1)),
                restore: Restore::SqliteBusyTimeout,
            }),
            _ => None,
        }
    }

    /// Whether write transactions queue for the database's write slot in
    /// this process (SQLite, see `sqlite_writer`).
    pub(crate) fn writer_queue(self) -> bool {
        self.backend == DbBackend::Sqlite && !self.mock
    }

    /// Whether the database aborted the whole transaction when a statement
    /// returned `err`, so that nothing the transaction wrote can commit
    /// (conflicts are dealt with before this is asked: they are replayed).
    ///
    /// - any engine: a lost connection (the server rolls back a session that ends);
    /// - PostgreSQL: any statement the server rejected (see
    ///   [`statement_error_aborts`](Self::statement_error_aborts));
    /// - MySQL / MariaDB: a protocol error (the connection is unusable), a
    ///   deadlock;
    /// - SQLite: the codes after which SQLite may roll back by itself
    ///   (`SQLITE_FULL`, `SQLITE_IOERR`, `SQLITE_NOMEM`, `SQLITE_INTERRUPT`):
    ///   the connection is then back in autocommit and later statements of
    ///   the body would commit one by one.
    pub(crate) fn aborts_transaction(self, err: &(dyn StdError + 'static)) -> bool {
        is_lost_connection(err)
            || self.statement_error_aborts() && is_database_error(err)
            || self.leaves_the_connection_outside_the_transaction(err)
    }

    /// Whether, after `err`, a later statement on the same connection would
    /// no longer run inside the transaction: SQLite rolled it back by itself
    /// (see [`aborts_transaction`](Self::aborts_transaction)) and would
    /// commit each later statement on its own; InnoDB rolled the whole
    /// transaction back for a deadlock (`1213`), after which the session's
    /// later statements run outside any transaction and commit on their own
    /// (MariaDB 10.11 and MySQL 8 alike; a replay would then repeat them);
    /// or MySQL's driver is left waiting for a reply that never comes and
    /// would hang. A `Txn` refuses every later statement after such an error.
    pub(crate) fn leaves_the_connection_outside_the_transaction(
        self,
        err: &(dyn StdError + 'static),
    ) -> bool {
        match self.backend {
            DbBackend::MySql => {
                is_protocol_error(err) || first_code(err) == Some(RawCode::MySql(MYSQL_DEADLOCK))
            }
            DbBackend::Sqlite => matches!(
                first_code(err),
                Some(RawCode::Sqlite(code)) if SQLITE_AUTOMATIC_ROLLBACK.contains(&(code & 0xff))
            ),
            _ => false,
        }
    }

    /// How a transaction begins: SQLite by its mode; the others by
    /// isolation level and access mode.
    pub(crate) fn transaction_options(
        self,
        isolation: Isolation,
        read_only: bool,
        sqlite_mode: SqliteMode,
    ) -> TransactionOptions {
        let mut t = TransactionOptions::default();
        if self.backend == DbBackend::Sqlite {
            t.sqlite_transaction_mode = Some(sqlite_mode.mode());
        } else {
            t.isolation_level = Some(isolation.level());
            if read_only {
                t.access_mode = Some(AccessMode::ReadOnly);
            }
        }
        t
    }

    /// How to watch replicas of this engine: `None` where the resolver
    /// cannot route reads to replicas (SQLite, mock connections). MySQL
    /// shares sea-orm's backend with MariaDB: the replica check refuses it.
    pub(crate) fn replica_dialect(self) -> Option<Dialect> {
        match self.backend {
            _ if self.mock => None,
            DbBackend::Postgres => Some(Dialect::Postgres),
            DbBackend::MySql => Some(Dialect::MariaDb),
            _ => None,
        }
    }

    /// The statement that makes a just-begun read-only transaction a
    /// `deferrable` one (PostgreSQL: `SERIALIZABLE READ ONLY DEFERRABLE`, a
    /// snapshot taken when it can no longer be part of a serialization
    /// anomaly, so it never conflicts and is never a victim); `None` where
    /// the engine has no such mode (the call is a plain read-only one).
    pub(crate) fn deferrable(self) -> Option<&'static str> {
        match self.backend {
            _ if self.mock => None,
            DbBackend::Postgres => {
                Some("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE")
            }
            _ => None,
        }
    }

    /// The query naming the database a connection is on, as one text column
    /// `id` (server and database, or the SQLite file; no row for an
    /// in-memory SQLite database); `None` where it cannot be told.
    pub(crate) fn identity_query(self) -> Option<&'static str> {
        match self.backend {
            _ if self.mock => None,
            DbBackend::Postgres => Some(
                "SELECT current_database() || '@' || (SELECT system_identifier::text FROM pg_control_system()) AS id",
            ),
            DbBackend::MySql => {
                Some("SELECT CONCAT(COALESCE(DATABASE(), ''), '@', @@hostname, ':', @@port) AS id")
            }
            DbBackend::Sqlite => Some(
                "SELECT file AS id FROM pragma_database_list WHERE name = 'main' AND file <> ''",
            ),
            _ => None,
        }
    }

    /// Whether the identity names a file, to be made canonical.
    pub(crate) fn identity_is_a_file(self) -> bool {
        self.backend == DbBackend::Sqlite
    }

    /// The statements that open, release and roll back to savepoint `name`
    /// (the same words on the three engines).
    pub(crate) fn savepoint(self, name: &str) -> Savepoint {
        Savepoint {
            open: format!("SAVEPOINT {name}"),
            release: format!("RELEASE SAVEPOINT {name}"),
            rollback: format!("ROLLBACK TO SAVEPOINT {name}"),
        }
    }

    /// The most connections `db`'s pool opens, where it can be told.
    pub(crate) fn pool_size(self, db: &DatabaseConnection) -> Option<u32> {
        if self.mock {
            return None;
        }
        match self.backend {
            #[cfg(feature = "sqlx-postgres")]
            DbBackend::Postgres => Some(
                db.get_postgres_connection_pool()
                    .options()
                    .get_max_connections(),
            ),
            #[cfg(feature = "sqlx-mysql")]
            DbBackend::MySql => Some(
                db.get_mysql_connection_pool()
                    .options()
                    .get_max_connections(),
            ),
            _ => {
                let _ = db;
                None
            }
        }
    }
}

/// The statements of one savepoint (see [`Engine::savepoint`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Savepoint {
    pub(crate) open: String,
    pub(crate) release: String,
    pub(crate) rollback: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_engine_states_its_facts() {
        let [pg, my, lite] =
            [DbBackend::Postgres, DbBackend::MySql, DbBackend::Sqlite].map(Engine::new);
        assert_eq!(
            [pg, my, lite].map(Engine::begin_waits),
            [false, false, true]
        );
        assert_eq!(
            [pg, my, lite].map(|e| e.admits_next_before_commit(Isolation::Serializable)),
            [false, true, false]
        );
        assert!(!my.admits_next_before_commit(Isolation::RepeatableRead));
        assert_eq!(
            [pg, my, lite].map(Engine::db_lock),
            [DbLock::Advisory, DbLock::LockRow, DbLock::None]
        );
        assert_eq!(
            [pg, my, lite].map(Engine::lockers_deadlock),
            [false, true, false]
        );
        assert_eq!(
            [pg, my, lite].map(Engine::writer_queue),
            [false, false, true]
        );
        let mock = Engine::of(&sea_orm::MockDatabase::new(DbBackend::Postgres).into_connection());
        assert_eq!(
            mock.db_lock(),
            DbLock::None,
            "a mock has no lock across processes"
        );
        assert_eq!(mock.identity_query(), None);
    }

    #[test]
    fn transactions_begin_by_mode_on_sqlite_and_by_level_elsewhere() {
        use sea_orm::{IsolationLevel, SqliteTransactionMode};
        let lite = Engine::new(DbBackend::Sqlite).transaction_options(
            Isolation::Serializable,
            true,
            SqliteMode::Deferred,
        );
        assert_eq!(
            lite.sqlite_transaction_mode,
            Some(SqliteTransactionMode::Deferred)
        );
        assert_eq!((lite.isolation_level, lite.access_mode), (None, None));
        let pg = Engine::new(DbBackend::Postgres).transaction_options(
            Isolation::RepeatableRead,
            true,
            SqliteMode::Immediate,
        );
        assert_eq!(pg.isolation_level, Some(IsolationLevel::RepeatableRead));
        assert_eq!(pg.access_mode, Some(AccessMode::ReadOnly));
        assert_eq!(pg.sqlite_transaction_mode, None);
    }
}
