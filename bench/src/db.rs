//! Databases and pools of the benchmarks: a throwaway database per run on
//! each server (dropped at the end), a temp file for SQLite, and the
//! `ck_counter (id, n)` table every scenario increments.

use std::time::Duration;

use sea_orm::sqlx;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, Statement,
    TransactionTrait,
};

/// A database system the harness measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Postgres,
    MySql,
    Sqlite,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Postgres => "pg",
            Kind::MySql => "mariadb",
            Kind::Sqlite => "sqlite",
        }
    }

    /// The kind [`Kind::name`] names.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        [Kind::Postgres, Kind::MySql, Kind::Sqlite]
            .into_iter()
            .find(|k| k.name() == name)
    }
}

/// SQLite's `PRAGMA synchronous` on the benchmark's connections
/// (`--sqlite-synchronous`): FULL syncs the WAL at every COMMIT, NORMAL
/// only at checkpoints (a COMMIT may be lost on power loss, never corrupt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Synchronous {
    Full,
    Normal,
}

impl Synchronous {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Synchronous::Full => "full",
            Synchronous::Normal => "normal",
        }
    }

    /// The mode [`Synchronous::name`] names.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        [Synchronous::Full, Synchronous::Normal]
            .into_iter()
            .find(|s| s.name() == name)
    }

    fn sqlx(self) -> sqlx::sqlite::SqliteSynchronous {
        match self {
            Synchronous::Full => sqlx::sqlite::SqliteSynchronous::Full,
            Synchronous::Normal => sqlx::sqlite::SqliteSynchronous::Normal,
        }
    }
}

/// A benchmark database: created for this run, dropped by [`Target::cleanup`].
pub(crate) struct Target {
    pub(crate) kind: Kind,
    /// SQLite: the `synchronous` every pool connection sets (`None`: the
    /// library's default is left alone).
    sqlite_synchronous: Option<Synchronous>,
    /// URL of the benchmark database itself.
    url: String,
    /// The server URL given on the command line (to drop the database).
    admin_url: Option<String>,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

/// How a pool is set up. The pool is the harness's own: these are the
/// round-trip cuts a user can make without touching conflictkit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PoolOpts {
    /// `test_before_acquire`: a ping round trip on every checkout (sea-orm's default).
    pub(crate) ping: bool,
    /// Make SERIALIZABLE the session default on every new connection, so a
    /// transaction can begin without `SET TRANSACTION` (PG and MariaDB only).
    pub(crate) session_serializable: bool,
    pub(crate) max_connections: u32,
}

impl PoolOpts {
    pub(crate) fn label(self) -> &'static str {
        match (self.ping, self.session_serializable) {
            (true, false) => "ping",
            (false, false) => "no-ping",
            (true, true) => "ping+session-iso",
            (false, true) => "no-ping+session-iso",
        }
    }
}

fn replace_db_in_url(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| i + scheme_end);
    let mut out = format!("{}/{}", &base[..path_start], db);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

impl Target {
    /// Creates `ck_bench_<pid>` on the server at `server_url` (or a SQLite
    /// file in a temp dir when `server_url` is `None`).
    pub(crate) async fn create(kind: Kind, server_url: Option<&str>) -> Result<Self, DbErr> {
        let name = format!("ck_bench_{}", std::process::id());
        match (kind, server_url) {
            (Kind::Sqlite, _) => {
                let dir = tempfile::tempdir().map_err(|e| DbErr::Custom(e.to_string()))?;
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("bench.db").display()
                );
                let db = Database::connect(&url).await?;
                db.execute_unprepared("PRAGMA journal_mode=WAL").await?;
                db.close().await?;
                Ok(Self {
                    kind,
                    sqlite_synchronous: None,
                    url,
                    admin_url: None,
                    name,
                    _dir: Some(dir),
                })
            }
            (_, Some(server)) => {
                let admin = connect_admin(server).await?;
                let q = quote(kind, &name);
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {q}"))
                    .await?;
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {q}"))
                    .await?;
                admin.close().await?;
                Ok(Self {
                    kind,
                    sqlite_synchronous: None,
                    url: replace_db_in_url(server, &name),
                    admin_url: Some(server.to_owned()),
                    name,
                    _dir: None,
                })
            }
            (_, None) => Err(DbErr::Custom(format!("no server URL for {}", kind.name()))),
        }
    }

    /// A database another process created (a worker's view of the parent's
    /// target): never dropped by this one.
    pub(crate) fn existing(kind: Kind, url: String) -> Self {
        Self {
            kind,
            sqlite_synchronous: None,
            url,
            admin_url: None,
            name: String::new(),
            _dir: None,
        }
    }

    /// Sets SQLite's `synchronous` on every connection of this target's
    /// pools (ignored on the other engines).
    pub(crate) fn with_sqlite_synchronous(mut self, mode: Option<Synchronous>) -> Self {
        self.sqlite_synchronous = mode.filter(|_| self.kind == Kind::Sqlite);
        self
    }

    /// The `synchronous` asked for (`None`: the library default).
    pub(crate) fn sqlite_synchronous(&self) -> Option<Synchronous> {
        self.sqlite_synchronous
    }

    /// How results on this target are labelled: the engine, and on SQLite
    /// the `synchronous` asked for (`sqlite-full`, `sqlite-normal`).
    pub(crate) fn label(&self) -> String {
        match self.sqlite_synchronous {
            Some(s) => format!("{}-{}", self.kind.name(), s.name()),
            None => self.kind.name().to_owned(),
        }
    }

    /// SQLite: the `journal_mode` and `synchronous` a connection of `db`
    /// runs with, read back from the connection (`None` elsewhere).
    pub(crate) async fn sqlite_settings(
        &self,
        db: &DatabaseConnection,
    ) -> Result<Option<String>, DbErr> {
        if self.kind != Kind::Sqlite {
            return Ok(None);
        }
        // one connection for both reads
        let txn = db.begin().await?;
        let journal: String = txn
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "PRAGMA journal_mode",
            ))
            .await?
            .ok_or_else(|| DbErr::Custom("PRAGMA journal_mode returned no row".into()))?
            .try_get_by_index(0)?;
        let sync: i64 = txn
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "PRAGMA synchronous",
            ))
            .await?
            .ok_or_else(|| DbErr::Custom("PRAGMA synchronous returned no row".into()))?
            .try_get_by_index(0)?;
        txn.rollback().await?;
        let sync = match sync {
            0 => "OFF".to_owned(),
            1 => "NORMAL".to_owned(),
            2 => "FULL".to_owned(),
            3 => "EXTRA".to_owned(),
            other => other.to_string(),
        };
        Ok(Some(format!("journal_mode={journal} synchronous={sync}")))
    }

    /// The URL of the benchmark database itself.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// A pool on the benchmark database, with every connection opened up front.
    pub(crate) async fn pool(&self, opts: PoolOpts) -> Result<DatabaseConnection, DbErr> {
        let mut o = ConnectOptions::new(self.url.clone());
        o.max_connections(opts.max_connections)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(120))
            .test_before_acquire(opts.ping)
            .sqlx_logging(false);
        if let Some(mode) = self.sqlite_synchronous {
            o.map_sqlx_sqlite_opts(move |c| c.synchronous(mode.sqlx()));
        }
        if opts.session_serializable {
            match self.kind {
                Kind::Postgres => {
                    o.map_sqlx_postgres_pool_opts(|p| {
                        p.after_connect(|conn, _| {
                            Box::pin(async move {
                                sqlx::Executor::execute(
                                    conn,
                                    "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                                )
                                .await
                                .map(|_| ())
                            })
                        })
                    });
                }
                Kind::MySql => {
                    o.map_sqlx_mysql_pool_opts(|p| {
                        p.after_connect(|conn, _| {
                            Box::pin(async move {
                                sqlx::Executor::execute(
                                    conn,
                                    "SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                                )
                                .await
                                .map(|_| ())
                            })
                        })
                    });
                }
                Kind::Sqlite => {}
            }
        }
        let db = Database::connect(o).await?;
        // open every connection now, so no cell pays for connecting
        let mut held = Vec::new();
        for _ in 0..opts.max_connections {
            held.push(db.begin().await?);
        }
        for t in held {
            t.rollback().await?;
        }
        Ok(db)
    }

    /// The same benchmark database seen through another node of a cluster
    /// (the database replicates; only the first target drops it).
    pub(crate) fn on_node(&self, server_url: &str) -> Self {
        Self {
            kind: self.kind,
            sqlite_synchronous: self.sqlite_synchronous,
            url: replace_db_in_url(server_url, &self.name),
            admin_url: None,
            name: self.name.clone(),
            _dir: None,
        }
    }

    /// Drops the benchmark database (the SQLite temp dir goes with `self`).
    pub(crate) async fn cleanup(self) -> Result<(), DbErr> {
        if let Some(admin_url) = &self.admin_url {
            let admin = connect_admin(admin_url).await?;
            admin
                .execute_unprepared(&format!(
                    "DROP DATABASE IF EXISTS {}",
                    quote(self.kind, &self.name)
                ))
                .await?;
            admin.close().await?;
        }
        Ok(())
    }
}

async fn connect_admin(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut o = ConnectOptions::new(url.to_owned());
    o.max_connections(1).sqlx_logging(false);
    Database::connect(o).await
}

fn quote(kind: Kind, name: &str) -> String {
    match kind {
        Kind::MySql => format!("`{name}`"),
        _ => format!("\"{name}\""),
    }
}

/// `(re)creates ck_counter` with rows `0..k`, all at 0.
pub(crate) async fn reset_counter(db: &DatabaseConnection, k: usize) -> Result<(), DbErr> {
    db.execute_unprepared("DROP TABLE IF EXISTS ck_counter")
        .await?;
    db.execute_unprepared("CREATE TABLE ck_counter (id INTEGER PRIMARY KEY, n BIGINT NOT NULL)")
        .await?;
    let values: Vec<String> = (0..k).map(|i| format!("({i}, 0)")).collect();
    db.execute_unprepared(&format!(
        "INSERT INTO ck_counter (id, n) VALUES {}",
        values.join(", ")
    ))
    .await?;
    Ok(())
}

/// The sum of all counters (the final-sum check).
pub(crate) async fn counter_sum(db: &DatabaseConnection) -> Result<i64, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT n FROM ck_counter",
        ))
        .await?;
    let mut sum = 0i64;
    for r in rows {
        sum += r.try_get::<i64>("", "n")?;
    }
    Ok(sum)
}

/// `sql` with `$n` placeholders rewritten to `?` outside PostgreSQL.
pub(crate) fn stmt(
    backend: DbBackend,
    sql: &'static str,
    values: Vec<sea_orm::Value>,
) -> Statement {
    if backend == DbBackend::Postgres {
        Statement::from_sql_and_values(backend, sql, values)
    } else {
        let mut out = String::with_capacity(sql.len());
        let mut chars = sql.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '$' {
                while chars.peek().is_some_and(char::is_ascii_digit) {
                    chars.next();
                }
                out.push('?');
            } else {
                out.push(c);
            }
        }
        Statement::from_sql_and_values(backend, out, values)
    }
}
