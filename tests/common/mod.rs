//! Shared test harness: an isolated database per test on each backend.
//!
//! The servers are started by `scripts/test.sh`, which exports
//! `CONFLICTKIT_PG_URL` and `CONFLICTKIT_MYSQL_URL` and sets
//! `CONFLICTKIT_REQUIRE_SERVERS=1`. Under that command, and on CI (`CI=true`),
//! a missing URL fails the test loudly; under a bare `cargo test` elsewhere the
//! server tests skip with a printed reason.
#![allow(dead_code, unreachable_pub)]

pub mod events;
pub mod faults;
pub mod galera;
pub mod proxy;
pub mod rounds;
pub mod sql;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend};

/// The database backends the suite runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    MySql,
    Sqlite,
}

impl Backend {
    pub const ALL: [Backend; 3] = [Backend::Postgres, Backend::MySql, Backend::Sqlite];

    pub fn env_var(self) -> Option<&'static str> {
        match self {
            Backend::Postgres => Some("CONFLICTKIT_PG_URL"),
            Backend::MySql => Some("CONFLICTKIT_MYSQL_URL"),
            Backend::Sqlite => None,
        }
    }
}

/// A database of its own for one test. SQLite files live in a temp dir that
/// is removed on drop; server databases are dropped with the throwaway server.
pub struct TestDb {
    pub backend: Backend,
    pub db: DatabaseConnection,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn unique_name(test: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let clean: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(30)
        .collect();
    format!("ck_{}_{}_{}", clean, std::process::id(), n)
}

/// Whether a missing server fails a test instead of skipping it: under
/// `scripts/test.sh` (`CONFLICTKIT_REQUIRE_SERVERS` set) and on CI (`CI` set
/// to anything but `false` / `0`, as CI services set it), where a skipped
/// server test would be reported as passed.
pub fn servers_required() -> bool {
    let set = |var: &str| {
        std::env::var(var)
            .is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
    };
    std::env::var_os("CONFLICTKIT_REQUIRE_SERVERS").is_some() || set("CI")
}

/// The server URL for `backend`, or `None` (with a printed reason) when the
/// test may skip. Panics under `scripts/test.sh` when the URL is missing, so
/// no server test is ever silently skipped there.
pub fn server_url(backend: Backend) -> Option<String> {
    let var = backend.env_var()?;
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if servers_required() {
                panic!(
                    "{var} is not set but CONFLICTKIT_REQUIRE_SERVERS or CI is: the test command must start the server (./scripts/test.sh)"
                );
            }
            eprintln!("skipping: {var} is not set (run ./scripts/test.sh to start the servers)");
            None
        }
    }
}

pub(crate) fn replace_db_in_url(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(base.len());
    let mut out = format!("{}/{}", &base[..path_start], db);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Opens a fresh, empty database for `test` on `backend` with a pool of
/// `max_connections`. `None` only when the server URL is absent outside the
/// test command.
pub async fn open(backend: Backend, test: &str, max_connections: u32) -> Option<TestDb> {
    let name = unique_name(test);
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join(format!("{name}.db"));
            let url = format!("sqlite://{}?mode=rwc", path.display());
            let db = connect(&url, max_connections).await;
            db.execute_unprepared("PRAGMA journal_mode=WAL")
                .await
                .expect("WAL mode");
            Some(TestDb {
                backend,
                db,
                url,
                _dir: Some(dir),
            })
        }
        Backend::Postgres | Backend::MySql => {
            let admin_url = server_url(backend)?;
            let url = create_database(backend, &admin_url, &name).await;
            let db = connect(&url, max_connections).await;
            Some(TestDb {
                backend,
                db,
                url,
                _dir: None,
            })
        }
    }
}

/// Creates the database `name` on the server of `admin_url` (PostgreSQL or
/// MySQL/MariaDB) and returns its URL.
pub async fn create_database(backend: Backend, admin_url: &str, name: &str) -> String {
    let admin = connect(admin_url, 1).await;
    let quoted = if backend == Backend::Postgres {
        format!("\"{name}\"")
    } else {
        format!("`{name}`")
    };
    admin
        .execute_unprepared(&format!("CREATE DATABASE {quoted}"))
        .await
        .unwrap_or_else(|e| panic!("create test database {name} on {admin_url}: {e}"));
    admin.close().await.ok();
    replace_db_in_url(admin_url, name)
}

/// Connects with a pool sized for concurrency tests.
pub async fn connect(url: &str, max_connections: u32) -> DatabaseConnection {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(60))
        .sqlx_logging(false);
    Database::connect(opts)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

impl TestDb {
    pub fn db_backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }
}

/// Runs `body` once for every backend whose server is available.
#[macro_export]
macro_rules! for_each_backend {
    ($test:expr, $max_conn:expr, |$tdb:ident| $body:block) => {
        for backend in $crate::common::Backend::ALL {
            let Some($tdb) = $crate::common::open(backend, $test, $max_conn).await else {
                continue;
            };
            eprintln!("-- {} on {:?}", $test, backend);
            $body
        }
    };
}

/// The table the conflict tests fight over: `accounts (id, balance)`.
pub mod accounts {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "accounts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        pub balance: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Creates `accounts` and inserts `rows` as `(id, balance)`.
pub async fn create_accounts(db: &DatabaseConnection, rows: &[(i32, i64)]) {
    use sea_orm::{ActiveModelTrait, Schema, Set};
    let backend = db.get_database_backend();
    let stmt = Schema::new(backend).create_table_from_entity(accounts::Entity);
    db.execute(&stmt).await.expect("create accounts");
    for &(id, balance) in rows {
        accounts::ActiveModel {
            id: Set(id),
            balance: Set(balance),
        }
        .insert(db)
        .await
        .expect("insert account");
    }
}

/// Reads the balance of account `id`.
pub async fn read_balance<C: ConnectionTrait>(conn: &C, id: i32) -> Result<i64, sea_orm::DbErr> {
    use sea_orm::EntityTrait;
    accounts::Entity::find_by_id(id)
        .one(conn)
        .await?
        .map(|m| m.balance)
        .ok_or_else(|| sea_orm::DbErr::RecordNotFound(format!("account {id}")))
}

/// Writes the balance of account `id` (the second half of a read-modify-write).
pub async fn write_balance<C: ConnectionTrait>(
    conn: &C,
    id: i32,
    balance: i64,
) -> Result<(), sea_orm::DbErr> {
    use sea_orm::{ActiveModelTrait, Set};
    accounts::ActiveModel {
        id: Set(id),
        balance: Set(balance),
    }
    .update(conn)
    .await?;
    Ok(())
}

/// The example binary `name` the test command built next to this test
/// (`target/<profile>/examples/<name>`; `scripts/test.sh` builds them): the
/// wallet, or a harness program of `tests/bin/` (declared as an example in
/// `Cargo.toml`). A binary older than the sources it is built from (`source`,
/// the example's file or folder, and the crates' sources) is refused rather
/// than run stale. A `source` that does not exist is looked up as
/// `tests/bin/<name>.rs` (harness programs lived in `examples/` before).
pub fn example_binary(name: &str, source: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let bin = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| {
            panic!(
                "{} is missing: build it with `cargo build --examples`",
                bin.display()
            )
        });
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let harness = format!("tests/bin/{name}.rs");
    let source = if root.join(source).exists() {
        source
    } else {
        assert!(
            root.join(&harness).is_file(),
            "neither {source} nor {harness} exists: which sources is {name} built from?"
        );
        harness.as_str()
    };
    for dir in [source, "src", "runtime/src", "macros/src"] {
        if let Some(newer) = newest_file(&root.join(dir)).filter(|(t, _)| *t > built) {
            panic!(
                "{} is older than {}: rebuild it with `cargo build --examples`",
                bin.display(),
                newer.1.display()
            );
        }
    }
    bin
}

/// The newest file under `dir` (or `dir` itself when it is a file).
pub fn newest_file(dir: &std::path::Path) -> Option<(std::time::SystemTime, PathBuf)> {
    if dir.is_file() {
        let modified = std::fs::metadata(dir).and_then(|m| m.modified()).ok()?;
        return Some((modified, dir.to_owned()));
    }
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let candidate = if path.is_dir() {
            newest_file(&path)
        } else {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .map(|t| (t, path))
        };
        if let Some(c) = candidate
            && newest.as_ref().is_none_or(|n| c.0 > n.0)
        {
            newest = Some(c);
        }
    }
    newest
}

/// PostgreSQL: makes every COMMIT of a transaction that inserted into the
/// table `item` wait for the advisory lock `key` (a deferred constraint
/// trigger), and takes that lock on a session of its own, which it returns:
/// release it there with `SELECT pg_advisory_unlock(key)`. While it is
/// held, `pg_locks` shows each such COMMIT waiting, so a test can act while
/// COMMITs are under way without guessing how long they take.
pub async fn hold_commits_of_item(
    db: &DatabaseConnection,
    url: &str,
    key: i64,
) -> DatabaseConnection {
    db.execute_unprepared(&format!(
        "CREATE FUNCTION held_commit() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN PERFORM pg_advisory_xact_lock({key}); RETURN NULL; END $$"
    ))
    .await
    .expect("trigger function");
    db.execute_unprepared(
        "CREATE CONSTRAINT TRIGGER held AFTER INSERT ON item \
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION held_commit()",
    )
    .await
    .expect("trigger");
    // one connection: the session lock is taken and released on it
    let holder = connect(url, 1).await;
    holder
        .execute_unprepared(&format!("SELECT pg_advisory_lock({key})"))
        .await
        .expect("take the lock");
    holder
}
