//! The isolation and SQLite-mode names `#[managed_transaction]` accepts are
//! the names the runtime parses. The macro crate keeps its own compile-time
//! table (it cannot depend on the runtime); this file ties the two: every
//! name below must compile as a macro option, and the list must be exactly
//! the runtime's.

use conflictkit::resolver::{Isolation, SqliteMode};
use conflictkit::{ConflictResolver, Txn, managed_transaction};

/// Defines one managed function per name with `$option = "<name>"` and
/// evaluates to the names, so the list checked is the list compiled.
macro_rules! accepted_by_the_macro {
    ($option:ident: $($name:tt => $function:ident),* $(,)?) => {{
        $(
            #[managed_transaction($option = $name)]
            async fn $function(_txn: &Txn) -> Result<&'static str, conflictkit::Error> {
                Ok($name)
            }
        )*
        (vec![$($name),*], |resolver: ConflictResolver| async move {
            let mut ran = Vec::new();
            $( ran.push($function(&resolver).await?); )*
            Ok::<_, conflictkit::Error>(ran)
        })
    }};
}

async fn sqlite() -> ConflictResolver {
    ConflictResolver::new(sea_orm::Database::connect("sqlite::memory:").await.unwrap())
}

#[tokio::test]
async fn isolation_names_are_the_same_in_the_macro_and_the_runtime() {
    let (names, run) = accepted_by_the_macro!(isolation:
        "serializable" => serializable,
        "repeatable_read" => repeatable_read,
        "read_committed" => read_committed,
    );
    let runtime: Vec<&str> = Isolation::ALL.iter().map(|i| i.name()).collect();
    assert_eq!(names, runtime);
    for name in &names {
        assert_eq!(name.parse::<Isolation>().map(Isolation::name), Ok(*name));
    }
    // The expansions run (on SQLite the isolation level is not used).
    assert_eq!(run(sqlite().await).await.unwrap(), names);
}

/// What a second connection of the same SQLite file could do while a
/// managed body had begun its transaction and done nothing else yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Beside {
    /// `BEGIN IMMEDIATE` succeeded: the body holds no write lock (deferred).
    could_begin_a_writer: bool,
    /// A read succeeded: the body holds no exclusive lock.
    could_read: bool,
}

/// A connection of its own to the file, outside the resolver (no writer
/// queue), which never waits for a lock (`busy_timeout` 0): SQLITE_BUSY
/// tells at once that another connection holds a lock that excludes it.
struct Probe(tokio::sync::Mutex<sea_orm::sqlx::SqliteConnection>);

impl Probe {
    async fn open(file: &std::path::Path) -> Probe {
        use sea_orm::sqlx::Connection as _;
        use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
        let options = SqliteConnectOptions::new()
            .filename(file)
            .journal_mode(SqliteJournalMode::Delete)
            .busy_timeout(std::time::Duration::ZERO);
        Probe(tokio::sync::Mutex::new(
            sea_orm::sqlx::SqliteConnection::connect_with(&options)
                .await
                .expect("open the probe connection"),
        ))
    }

    async fn look(&self) -> Beside {
        let mut conn = self.0.lock().await;
        let could_begin_a_writer = match sea_orm::sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *conn)
            .await
        {
            Ok(_) => {
                sea_orm::sqlx::query("ROLLBACK")
                    .execute(&mut *conn)
                    .await
                    .expect("roll the probe back");
                true
            }
            Err(e) if is_busy(&e) => false,
            Err(e) => panic!("BEGIN IMMEDIATE beside the body: {e}"),
        };
        let could_read = match sea_orm::sqlx::query("SELECT COUNT(*) FROM probed")
            .execute(&mut *conn)
            .await
        {
            Ok(_) => true,
            Err(e) if is_busy(&e) => false,
            Err(e) => panic!("a read beside the body: {e}"),
        };
        Beside {
            could_begin_a_writer,
            could_read,
        }
    }
}

fn is_busy(e: &sea_orm::sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .and_then(|code| code.parse::<i32>().ok())
        // SQLITE_BUSY (5) and its extended codes
        .is_some_and(|code| code & 0xff == 5)
}

/// Defines one managed function per SQLite mode with `sqlite_mode =
/// "<name>"`, whose body only asks a second connection what it can do
/// beside the transaction just begun; evaluates to the names and a runner.
macro_rules! sqlite_modes_of_the_macro {
    ($($name:tt => $function:ident),* $(,)?) => {{
        $(
            #[managed_transaction(sqlite_mode = $name)]
            async fn $function(_txn: &Txn, probe: &Probe) -> Result<Beside, conflictkit::Error> {
                Ok(probe.look().await)
            }
        )*
        (vec![$($name),*], |resolver: ConflictResolver, probe: Probe| async move {
            let mut seen = Vec::new();
            $( seen.push(($name, $function(&resolver, &probe).await?)); )*
            Ok::<_, conflictkit::Error>(seen)
        })
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_mode_names_are_the_same_in_the_macro_and_the_runtime() {
    let (names, run) = sqlite_modes_of_the_macro!(
        "immediate" => immediate,
        "deferred" => deferred,
        "exclusive" => exclusive,
    );
    let runtime: Vec<&str> = SqliteMode::ALL.iter().map(|m| m.name()).collect();
    assert_eq!(names, runtime);
    for name in &names {
        assert_eq!(name.parse::<SqliteMode>().map(SqliteMode::name), Ok(*name));
    }
    // Each mode begins the SQLite transaction it names. In rollback-journal
    // mode (not WAL, where a writer never keeps readers out) a second
    // connection tells them apart: BEGIN DEFERRED takes no lock, BEGIN
    // IMMEDIATE a RESERVED lock (no other writer, readers still read),
    // BEGIN EXCLUSIVE an EXCLUSIVE lock (no reader either).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("modes.db");
    let mut options = sea_orm::ConnectOptions::new(format!("sqlite://{}?mode=rwc", file.display()));
    options
        .max_connections(2)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Delete));
    let db = sea_orm::Database::connect(options).await.unwrap();
    sea_orm::ConnectionTrait::execute_unprepared(
        &db,
        "CREATE TABLE probed (id INTEGER PRIMARY KEY)",
    )
    .await
    .unwrap();
    let probe = Probe::open(&file).await;
    let seen = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        run(ConflictResolver::new(db), probe),
    )
    .await
    .expect("the three calls end")
    .unwrap();
    let beside = |could_begin_a_writer, could_read| Beside {
        could_begin_a_writer,
        could_read,
    };
    assert_eq!(
        seen,
        vec![
            ("immediate", beside(false, true)),
            ("deferred", beside(true, true)),
            ("exclusive", beside(false, false)),
        ]
    );
    // and with no transaction open, the probe can do both
    let probe = Probe::open(&file).await;
    assert_eq!(probe.look().await, beside(true, true));
}

/// The names the macro lists when it rejects one, as its UI test pins them.
fn listed_by_the_macro(option: &str) -> Vec<String> {
    let pinned = include_str!("../../ui-tests/tests/ui/managed_transaction/bad_values.stderr");
    let needle = format!("unknown {option} `");
    let line = pinned
        .lines()
        .find(|l| l.starts_with("error: ") && l.contains(&needle))
        .unwrap_or_else(|| panic!("bad_values.stderr pins no unknown {option}"));
    // The names are the double-quoted words of the message.
    line.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_macros_error_lists_the_runtimes_names() {
    let isolations: Vec<&str> = Isolation::ALL.iter().map(|i| i.name()).collect();
    assert_eq!(listed_by_the_macro("isolation"), isolations);
    let modes: Vec<&str> = SqliteMode::ALL.iter().map(|m| m.name()).collect();
    assert_eq!(listed_by_the_macro("sqlite_mode"), modes);
}
