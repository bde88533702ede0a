//! The short version of the soak (`cargo run --release --example bench --
//! soak` runs 10^5 operations per engine): contended transfers through
//! `#[managed_transaction]` with the defaults on PostgreSQL, MariaDB and
//! SQLite; the harness checks the invariant and exits non-zero when it, or
//! any call, fails.

mod common;

use common::Backend;

#[test]
fn soak_short_on_every_engine() {
    let bench = common::example_binary("bench", "examples/bench");
    let mut args = vec!["soak".to_owned(), "--sqlite".to_owned()];
    for (flag, backend) in [("--pg", Backend::Postgres), ("--mysql", Backend::MySql)] {
        if let Some(url) = common::server_url(backend) {
            args.push(flag.to_owned());
            args.push(url);
        }
    }
    args.extend(["--ops", "1500", "--threads", "8"].map(str::to_owned));
    let out = std::process::Command::new(bench)
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
    for row in text
        .lines()
        .filter(|l| l.starts_with("| ") && l.as_bytes()[2].is_ascii_digit())
    {
        let cells: Vec<&str> = row
            .split('|')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(&cells[8..], ["0", "0", "0", "0", "0", "0"], "{row}");
    }
}
