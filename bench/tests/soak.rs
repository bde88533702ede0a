//! The short version of the soak (`cargo run --release -p conflictkit-bench --
//! soak` runs 10^5 operations per engine): contended transfers through
//! `#[managed_transaction]` with the defaults on PostgreSQL, MariaDB and
//! SQLite; the harness checks the invariant and exits non-zero when it, or
//! any call, fails.
//!
//! The servers come from `CONFLICTKIT_PG_URL` and `CONFLICTKIT_MYSQL_URL`
//! (`scripts/test.sh` starts them); under that script
//! (`CONFLICTKIT_REQUIRE_SERVERS`) and on CI (`CI=true`) a missing URL fails
//! the test, elsewhere that engine is left out with a printed reason.

mod common;

use common::server_url;

#[test]
fn soak_short_on_every_engine() {
    let mut args = vec!["soak".to_owned(), "--sqlite".to_owned()];
    for (flag, var) in [
        ("--pg", "CONFLICTKIT_PG_URL"),
        ("--mysql", "CONFLICTKIT_MYSQL_URL"),
    ] {
        if let Some(url) = server_url(var) {
            args.push(flag.to_owned());
            args.push(url);
        }
    }
    args.extend(["--ops", "1500", "--threads", "8"].map(str::to_owned));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(&args)
        .output()
        .expect("run the bench harness");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}\n{err}");
    let engines = args
        .iter()
        .filter(|a| a.starts_with("--") && *a != "--ops" && *a != "--threads")
        .count();
    assert_eq!(text.matches(": OK").count(), engines, "{text}");
    // every table row: 0 give-ups, errors, bad checks, lost, mismatches, double-applied
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("| ") && l.as_bytes()[2].is_ascii_digit())
        .collect();
    assert_eq!(rows.len(), engines, "one table row per engine:\n{text}");
    for row in rows {
        let cells: Vec<&str> = row
            .split('|')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(&cells[8..], ["0", "0", "0", "0", "0", "0"], "{row}");
    }
}
