//! `ck-batch` in the contention scenario (issue 29): a short run of the
//! harness with it beside `for-update`, in one process and in two, on
//! PostgreSQL, MariaDB and SQLite (synchronous FULL and NORMAL), and what
//! the report says of it: 0 lost updates (the final counter against the
//! commits of every process), 0 give-ups, 0 errors, and a calls-per-batch
//! number from the resolver's batch stats where the others show none.

mod common;

use common::server_url;

#[test]
fn ck_batch_cells_lose_nothing_and_report_their_batch_size() {
    let mut args: Vec<String> = [
        "contention",
        "--sqlite",
        "--sqlite-synchronous",
        "full,normal",
    ]
    .map(str::to_owned)
    .to_vec();
    let mut engines = 2;
    for (flag, var) in [
        ("--pg", "CONFLICTKIT_PG_URL"),
        ("--mysql", "CONFLICTKIT_MYSQL_URL"),
    ] {
        if let Some(url) = server_url(var) {
            args.push(flag.to_owned());
            args.push(url);
            engines += 1;
        }
    }
    args.extend(
        [
            "--strategies",
            "ck-batch,for-update",
            "--rows",
            "1",
            "--threads",
            "8",
            "--procs",
            "1,2",
            "--ops",
            "400",
            "--repeat",
            "1",
            "--cell-timeout",
            "120",
        ]
        .map(str::to_owned),
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(&args)
        .output()
        .expect("run the bench harness");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}\n{err}");
    // the SQLite settings read back from a pool connection
    assert!(
        err.contains("sqlite-full: journal_mode=wal synchronous=FULL"),
        "{err}"
    );
    assert!(
        err.contains("sqlite-normal: journal_mode=wal synchronous=NORMAL"),
        "{err}"
    );

    // | K | T | P | strategy | ops/s | × FOR UPDATE | att/commit | p50 | p99 | max
    // | give-ups | calls/batch | errors | lost | cut |
    let rows: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| l.starts_with("| ") && l.as_bytes()[2].is_ascii_digit())
        .map(|l| {
            l.split('|')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    // per engine: P = 1 and 2, two strategies
    assert_eq!(rows.len(), engines * 4, "{text}");
    for row in &rows {
        assert_eq!(row[0], "1", "{row:?}");
        assert_eq!(&row[10..11], ["0"], "give-ups: {row:?}");
        assert_eq!(&row[12..], ["0", "0", "0/1"], "errors, lost, cut: {row:?}");
        match row[3] {
            "ck-batch" => {
                let size: f64 = row[11]
                    .parse()
                    .expect("ck-batch reports its calls per batch");
                assert!(size >= 1.0, "{row:?}");
            }
            "for-update" => assert_eq!(row[11], "–", "{row:?}"),
            other => panic!("unexpected strategy {other}: {row:?}"),
        }
    }
    let batch_rows = rows.iter().filter(|r| r[3] == "ck-batch");
    assert_eq!(
        batch_rows.filter(|r| r[2] == "2").count(),
        engines,
        "{text}"
    );
}
