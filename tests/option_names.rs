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

#[tokio::test]
async fn sqlite_mode_names_are_the_same_in_the_macro_and_the_runtime() {
    let (names, run) = accepted_by_the_macro!(sqlite_mode:
        "immediate" => immediate,
        "deferred" => deferred,
        "exclusive" => exclusive,
    );
    let runtime: Vec<&str> = SqliteMode::ALL.iter().map(|m| m.name()).collect();
    assert_eq!(names, runtime);
    for name in &names {
        assert_eq!(name.parse::<SqliteMode>().map(SqliteMode::name), Ok(*name));
    }
    // Each mode begins a real SQLite transaction.
    assert_eq!(run(sqlite().await).await.unwrap(), names);
}

/// The names the macro lists when it rejects one, as its UI test pins them.
fn listed_by_the_macro(option: &str) -> Vec<String> {
    let pinned = include_str!("ui/managed_transaction/bad_values.stderr");
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
