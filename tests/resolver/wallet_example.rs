//! The main job, `cargo run --example wallet`, run as a program against SQLite
//! and the test servers: its invariant line and exit code.

use crate::common;
use std::process::{Command, Output};

use common::Backend;

fn run_wallet(database_url: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(common::example_binary("wallet", "examples/wallet"));
    cmd.args(args).env_remove("DATABASE_URL");
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    cmd.output().expect("run the wallet example")
}

/// [`run_wallet`] on `url` with `SMALL` and then `args`, off the async
/// runtime's threads.
async fn run_wallet_small(url: &str, args: &[&str]) -> Output {
    let url = url.to_owned();
    let args: Vec<String> = SMALL.iter().chain(args).map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_wallet(Some(&url), &args)
    })
    .await
    .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The line of `text` that starts with `prefix` (after any indentation).
fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find(|l| l.trim_start().starts_with(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{text}"))
}

/// The numbers of a report line, in order; an amount of money (`12.34`)
/// in cents.
fn numbers(line: &str) -> Vec<i64> {
    line.split(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|n| n.trim_matches('.'))
        .filter(|n| !n.is_empty())
        .map(|n| n.replace('.', "").parse().unwrap())
        .collect()
}

const SMALL: &[&str] = &[
    "--set",
    "wallet.tasks=12",
    "--set",
    "wallet.operations_per_task=15",
    "--set",
    "demo.txupdates=5",
];

fn assert_healthy(out: &Output, what: &str) {
    let text = stdout(out);
    assert!(
        out.status.success(),
        "{what}: exit {:?}\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("invariant: OK"), "{what}:\n{text}");
    assert!(text.contains("unresolved 0"), "{what}:\n{text}");
    assert!(text.contains("committed operations in"), "{what}:\n{text}");
    assert!(
        text.contains("5 txupdate events posted and credited"),
        "{what}:\n{text}"
    );
    assert!(
        text.contains("handled 1 time(s) and credited 0 times"),
        "{what}:\n{text}"
    );
    assert!(
        text.contains("outbox: 5 deposit_credited notifications relayed, 5 received"),
        "{what}:\n{text}"
    );
}

#[test]
fn wallet_on_embedded_sqlite() {
    let out = run_wallet(None, SMALL);
    assert_healthy(&out, "sqlite");
    let text = stdout(&out);
    assert!(text.contains("(WAL)"), "{text}");
    // every operation is accounted for: committed + refused = 12 * 15
    let ops = numbers(line(&text, "operations:"));
    assert_eq!(ops[0] + ops[1] + ops[2] + ops[3], 180, "{text}");
    // the first screen tells the story: the contention was resolved, by
    // what, and where the comparison is
    let first: Vec<&str> = text.lines().take(6).collect();
    let headline = numbers(first[3]);
    assert!(
        first[3].starts_with("conflictkit: ") && first[3].contains("no update lost"),
        "{text}"
    );
    assert_eq!(headline[..2], [ops[0] + ops[1], 180], "{text}");
    assert!(first[4].contains("contention resolved: "), "{text}");
    assert!(
        first[5].contains("cargo run --example wallet -- --without-conflictkit"),
        "{text}"
    );
    // the group commits it names are the resolver's batches
    let resolved = numbers(first[4]);
    let batches = numbers(line(&text, "group commit (batch):"));
    assert_eq!(resolved[2..4], batches[..2], "{text}");
    // the balance checks ran, each in one snapshot, on the primary
    let checks = line(&text, "balance checks (read-only):");
    assert!(checks.contains("all on the primary"), "{text}");
    assert_eq!(
        numbers(checks)[..2],
        [36, 36],
        "12 tasks x 3 checks\n{text}"
    );
}

/// Every account's balance and its opening + ledger, read from `db`
/// (the wallet opens accounts with 1000.00, the fee account 0 with none).
async fn books(db: &impl sea_orm::ConnectionTrait) -> Vec<(i32, i64, i64)> {
    use sea_orm::Statement;
    let rows = |sql: &str| db.query_all_raw(Statement::from_string(db.get_database_backend(), sql));
    let entries: Vec<(i32, i64)> = rows("SELECT account, amount FROM wallet_ledger")
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.try_get_by_index(0).unwrap(),
                r.try_get_by_index(1).unwrap(),
            )
        })
        .collect();
    rows("SELECT id, balance FROM wallet_accounts ORDER BY id")
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let (id, balance): (i32, i64) = (
                r.try_get_by_index(0).unwrap(),
                r.try_get_by_index(1).unwrap(),
            );
            let opening = if id == 0 { 0 } else { 100_000 };
            let ledger: i64 = entries.iter().filter(|e| e.0 == id).map(|e| e.1).sum();
            (id, balance, opening + ledger)
        })
        .collect()
}

/// `--without-conflictkit` on `tdb`: the report's books, lost updates and
/// operation counts are the database's rows, and the exit status is the
/// one its verdict names. Returns (accounts that lost updates, failed
/// operations, the report).
async fn plain_run_matches_the_database(tdb: &common::TestDb, args: &[&str]) -> (i64, i64, String) {
    let mut all = vec!["--without-conflictkit"];
    all.extend_from_slice(args);
    let out = run_wallet_small(&tdb.url, &all).await;
    let text = stdout(&out);
    let what = format!(
        "{:?}\n{text}\n{}",
        tdb.backend,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("WITHOUT conflictkit: plain SeaORM"), "{what}");
    let books = books(&tdb.db).await;
    // each balance and what its ledger says, as the report prints them
    let mut lost_accounts = 0;
    let mut lost_cents = 0;
    for &(id, balance, ledger_says) in &books {
        let name = if id == 0 {
            "fee account:".to_owned()
        } else {
            format!("account {id}:")
        };
        let printed = numbers(line(&text, &name));
        let lost = (ledger_says - balance).abs();
        let want: Vec<i64> = match lost {
            0 => vec![balance, ledger_says],
            _ => vec![balance, ledger_says, lost],
        };
        // the account's number comes first, except for the fee account
        assert_eq!(
            printed[printed.len() - want.len()..],
            want[..],
            "{name} {what}"
        );
        lost_accounts += i64::from(lost != 0);
        lost_cents += lost;
    }
    let lost = numbers(line(&text, "lost updates:"));
    assert_eq!(
        lost[..3],
        [lost_accounts, books.len() as i64, lost_cents],
        "{what}"
    );
    let sum: i64 = books.iter().map(|b| b.1).sum();
    assert_eq!(lost[3], sum, "{what}");
    // committed operations are the ledger's rows; the rest failed or were refused
    let kinds = |kind: i64| {
        let sql = format!("SELECT COUNT(*) FROM wallet_ledger WHERE kind = {kind}");
        async move { common::sql::scalar(&tdb.db, &sql).await }
    };
    let ops = numbers(line(&text, "operations:"));
    let (top_ups, transfers, refused, failed, total) = (ops[0], ops[1], ops[2], ops[3], ops[4]);
    assert_eq!(
        (kinds(1).await, kinds(2).await),
        (top_ups, transfers),
        "{what}"
    );
    assert_eq!(top_ups + transfers + refused + failed, total, "{what}");
    let failures: i64 = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("failed "))
        .map(|l| numbers(l)[0])
        .sum();
    assert_eq!(failures, failed, "{what}");
    let status = match (lost_accounts, failed) {
        (0, 0) => 0,
        (0, _) => 3,
        _ => 2,
    };
    assert_eq!(out.status.code(), Some(status), "{what}");
    assert!(
        line(&text, "verdict:").contains(&format!("exit status {status}")),
        "{what}"
    );
    (lost_accounts, failed, text)
}

/// `--without-conflictkit` on PostgreSQL (READ COMMITTED) and MariaDB
/// (REPEATABLE READ): the same workload in plain SeaORM transactions loses
/// updates, and the report counts them as the database's rows show them;
/// the exit status says the invariant is broken.
#[tokio::test]
async fn without_conflictkit_servers_lose_updates() {
    for backend in [Backend::Postgres, Backend::MySql] {
        let Some(tdb) = common::open(backend, "wallet_plain", 2).await else {
            continue;
        };
        let args = [
            "--set",
            "wallet.tasks=16",
            "--set",
            "wallet.operations_per_task=15",
        ];
        let (lost_accounts, _, text) = plain_run_matches_the_database(&tdb, &args).await;
        assert!(lost_accounts > 0, "{backend:?}: no lost update\n{text}");
        assert!(
            line(&text, "verdict:").contains("INVARIANT BROKEN"),
            "{text}"
        );
    }
}

/// `--without-conflictkit` on embedded SQLite (WAL, deferred BEGIN): a
/// reader that wants to write after another writer committed is refused
/// (`database is locked`, SQLITE_BUSY / SQLITE_BUSY_SNAPSHOT) rather than
/// losing an update: the report says what failed, and no balance differs
/// from its ledger.
#[tokio::test]
async fn without_conflictkit_on_sqlite_fails_operations() {
    let tdb = common::sql::server(Backend::Sqlite, "wallet_plain", 1).await;
    let (lost_accounts, failed, text) = plain_run_matches_the_database(&tdb, &[]).await;
    assert_eq!(lost_accounts, 0, "{text}");
    assert!(
        text.contains("default isolation (a deferred BEGIN (WAL))"),
        "{text}"
    );
    for l in text
        .lines()
        .filter(|l| l.trim_start().starts_with("failed "))
    {
        assert!(l.contains("database is locked"), "{l}\n{text}");
    }
    if failed > 0 {
        assert!(
            line(&text, "verdict:").contains("FAILED with database errors"),
            "{text}"
        );
    }
}

/// The wallet's managed functions are replay-safe: with half of the runs
/// that have a replay left failing with an injected conflict (turned on by
/// the environment variable alone), the invariant still holds.
#[test]
fn wallet_survives_conflict_injection() {
    let out = Command::new(common::example_binary("wallet", "examples/wallet"))
        .args(SMALL)
        .env_remove("DATABASE_URL")
        .env("CONFLICTKIT_INJECT_CONFLICTS", "0.5:7")
        .output()
        .expect("run the wallet example");
    assert_healthy(&out, "sqlite with conflict injection");
    let text = stdout(&out);
    let resolver = text
        .lines()
        .find(|l| l.starts_with("resolver:"))
        .expect("resolver line");
    assert!(
        !resolver.contains("retries 0,"),
        "conflicts were injected: {resolver}"
    );
}

#[tokio::test]
async fn wallet_on_servers() {
    for backend in [Backend::Postgres, Backend::MySql] {
        let Some(tdb) = common::open(backend, "wallet", 1).await else {
            continue;
        };
        let out = run_wallet_small(&tdb.url, &[]).await;
        assert_healthy(&out, &format!("{backend:?}"));
    }
}

/// `--replica URL` on the streaming replica of `scripts/replicas.sh`: the
/// wallet's read-only balance checks run there (the resolver's replica
/// counts), the invariant holds on the primary; `--replica` given the
/// primary's own URL is refused by the checked build, exit status 1. In the
/// nextest group `replicas` (one replica test at a time).
#[tokio::test]
async fn wallet_replica_reads_balance_checks_there() {
    // a replica left stopped or paused by another test is brought back
    let Some(pair) = crate::replicas::Pair::open("wallet_replica", 0).await else {
        return;
    };
    let name = common::unique_name("wallet_replica");
    let url = common::create_database(Backend::Postgres, &pair.primary_url, &name).await;
    let replica = common::replace_db_in_url(&pair.replica_url, &name);
    // the replica replays CREATE DATABASE a moment later (longer after a
    // test that paused its replay): poll its catalogue, bounded
    let exists = format!("SELECT COUNT(*) FROM pg_database WHERE datname = '{name}'");
    common::sql::bounded("the replica has the database", async {
        while common::sql::scalar(&pair.replica_admin, &exists).await == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    let out = run_wallet_small(&url, &["--replica", &replica]).await;
    assert_healthy(&out, "postgres with a replica");
    let text = stdout(&out);
    assert!(line(&text, "replica: ").contains(&name), "{text}");
    let checks = line(&text, "balance checks (read-only):");
    let n = numbers(checks);
    // 36 checks, all consistent; replica + primary = 36, most on the replica
    assert_eq!(n[..2], [36, 36], "{text}");
    assert_eq!(n[2] + n[3], 36, "{text}");
    assert!(n[2] > 0, "no balance check ran on the replica:\n{text}");

    // the primary given as its own replica: refused with the builder's error
    let out = run_wallet_small(&url, &["--replica", &url]).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("wallet: replica #0 is not a replica"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // a replica that does not answer (nothing listens on port 1): refused too
    let nowhere = format!("postgres://postgres@127.0.0.1:1/{name}");
    let out = run_wallet_small(&url, &["--replica", &nowhere]).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("wallet: could not check replica #0: the replica did not answer"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn config_file_and_overrides_apply() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wallet.toml");
    std::fs::write(
        &file,
        "[wallet]\naccounts = 2\ntasks = 3\noperations_per_task = 4\n",
    )
    .unwrap();
    let out = run_wallet(
        None,
        &[
            "--config",
            file.to_str().unwrap(),
            "--set",
            "demo.txupdates=1",
        ],
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("3 tasks x 4 operations"), "{text}");
    assert!(text.contains("over 2 hot accounts"), "{text}");
    assert!(
        text.contains("1 txupdate events posted and credited"),
        "{text}"
    );
    assert_eq!(text.matches("  account ").count(), 2, "{text}");
}

#[test]
fn bad_input_is_a_clear_error() {
    let out = run_wallet(None, &["--set", "wallet.tasks"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wallet.tasks"), "{err}");
    let out = run_wallet(None, &["--set", "wallet.tasks=many"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wallet.tasks"), "{err}");
    // a replica for the embedded SQLite file: the resolver's checked build
    // says SQLite has none (the pool connects lazily: nothing listens there)
    let out = run_wallet(None, &["--replica", "postgres://nobody@127.0.0.1:1/wallet"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("replica #0 cannot serve reads of this resolver"),
        "{err}"
    );
    // a comparison run has no resolver to route reads with
    let out = run_wallet(
        None,
        &[
            "--without-conflictkit",
            "--replica",
            "postgres://x@127.0.0.1:1/w",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
}

#[test]
fn a_broken_invariant_fails_the_run() {
    // --simulate-lost-update overwrites one balance behind the ledger's back
    let out = run_wallet(
        None,
        &[
            "--simulate-lost-update",
            "--set",
            "wallet.tasks=2",
            "--set",
            "wallet.operations_per_task=3",
        ],
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("invariant: FAILED"), "{text}");
    assert!(text.contains("account 1 holds"), "{text}");
}

/// The wallet on the 3-node Galera cluster (`scripts/galera.sh`): its tasks
/// spread over the nodes, the invariant holds on every node.
#[tokio::test]
async fn wallet_on_galera() {
    let Some(cluster) = common::galera::open_cluster("wallet", 1).await else {
        return;
    };
    let urls = cluster.urls.join(",");
    let out = run_wallet_small(&urls, &[]).await;
    // Not `assert_healthy`: a hot row written from three nodes still gives
    // up now and then at the wallet's cluster default of 10 retries (the
    // admission control is per node); a give-up is not counted as committed,
    // so the invariant must hold all the same.
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "exit {:?}\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("invariant: OK"), "{text}");
    assert!(
        text.contains("5 txupdate events posted and credited"),
        "{text}"
    );
    assert!(text.contains("database node 3: mysql://"), "{text}");
    assert!(text.contains("the same on each of the 3 nodes"), "{text}");
    for node in 1..=3 {
        assert!(
            text.contains(&format!("  node {node}: success ")),
            "node {node} ran tasks:\n{text}"
        );
    }
}

/// `wallet --serve 127.0.0.1:0` against `url`: the process, and the API's
/// base URL from its `listening on` line.
async fn serve_wallet(url: &str) -> (tokio::process::Child, String) {
    let (child, base, _) = serve_wallet_with(url, &[]).await;
    (child, base)
}

/// `wallet --serve` with `extra` arguments: the child, the API's base URL,
/// and the lines it printed before it listened.
async fn serve_wallet_with(
    url: &str,
    extra: &[&str],
) -> (tokio::process::Child, String, Vec<String>) {
    use tokio::io::AsyncBufReadExt;
    let mut child =
        tokio::process::Command::new(common::example_binary("wallet", "examples/wallet"))
            .args(["--serve", "127.0.0.1:0"])
            .args(extra)
            .env("DATABASE_URL", url)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("run the wallet example");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut before = Vec::new();
    let base = common::sql::bounded("the API listens", async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(base) = line.strip_prefix("listening on ") {
                return base.to_owned();
            }
            before.push(line);
        }
        panic!("the wallet ended without serving")
    })
    .await;
    (child, base, before)
}

/// `wallet --serve --metrics-addr`: after one transfer through the API, the
/// Prometheus text scraped over loopback counts one committed call of the
/// API's label, with its attempts (SQLite).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_metrics_are_served_as_prometheus_text() {
    let tdb = common::sql::server(Backend::Sqlite, "wallet_metrics", 1).await;
    let (mut child, base, before) =
        serve_wallet_with(&tdb.url, &["--metrics-addr", "127.0.0.1:0"]).await;
    let metrics_url = before
        .iter()
        .find_map(|l| l.strip_prefix("metrics on "))
        .unwrap_or_else(|| panic!("the wallet says where its metrics are: {before:?}"))
        .to_owned();
    let client = reqwest::Client::new();
    let posted = client
        .post(format!("{base}/transfer"))
        .header("Idempotency-Key", "wallet-metrics-1")
        .header("content-type", "application/json")
        .body(r#"{"from":1,"to":2,"cents":5}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    let text = client
        .get(&metrics_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // `name{labels} value` lines of one metric, with all of `labels`
    let values = |name: &str, labels: &[&str]| -> Vec<f64> {
        text.lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
                    && labels.iter().all(|want| l.contains(want))
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .collect()
    };
    let api = r#"conflictkit_label="wallet::api::transfer""#;
    assert_eq!(
        values("conflictkit_calls", &[api, r#"outcome="committed""#]),
        [1.0],
        "{text}"
    );
    assert_eq!(
        values("conflictkit_call_attempts_count", &[api]),
        [1.0],
        "{text}"
    );
    child.kill().await.unwrap();
}

/// `wallet --serve`: a `POST /transfer` retried with the same
/// `Idempotency-Key` moves the money once and gets the first answer byte
/// for byte; the key with another body is refused (422). Over loopback,
/// on every engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_api_answers_a_retried_transfer_from_the_stored_response() {
    for backend in Backend::ALL {
        let tdb = common::sql::server(backend, "wallet_api", 1).await;
        let (mut child, base) = serve_wallet(&tdb.url).await;
        let client = reqwest::Client::new();
        let post = |key: &'static str, body: &'static str| {
            client
                .post(format!("{base}/transfer"))
                .header("Idempotency-Key", key)
                .header("content-type", "application/json")
                .body(body)
                .send()
        };
        let body = r#"{"from":1,"to":2,"cents":700}"#;
        let first = post("wallet-req-1", body).await.unwrap();
        let (status, first) = (first.status(), first.bytes().await.unwrap());
        assert_eq!(status, 200, "{backend:?}: {first:?}");
        let again = post("wallet-req-1", body).await.unwrap();
        assert_eq!(again.status(), 200, "{backend:?}");
        assert_eq!(
            again.bytes().await.unwrap(),
            first,
            "{backend:?}: byte for byte"
        );
        let transfers = common::sql::scalar(
            &tdb.db,
            "SELECT COUNT(*) FROM wallet_ledger WHERE amount = 700",
        )
        .await;
        assert_eq!(transfers, 1, "{backend:?}: one credit of 700 cents");
        let receipt: serde_json::Value = serde_json::from_slice(&first).unwrap();
        let balance_of_1 = "SELECT balance FROM wallet_accounts WHERE id = 1";
        let from_balance = common::sql::scalar(&tdb.db, balance_of_1).await;
        assert_eq!(receipt["from_balance"], from_balance, "{backend:?}");
        // the same key for another transfer is refused, and moves nothing
        let other = post("wallet-req-1", r#"{"from":1,"to":2,"cents":1}"#)
            .await
            .unwrap();
        assert_eq!(other.status(), 422, "{backend:?}");
        assert_eq!(
            common::sql::scalar(&tdb.db, balance_of_1).await,
            from_balance
        );
        child.kill().await.unwrap();
    }
}

/// `wallet --serve`: the deposit listener is mounted in the API's own
/// server under `/events`. A signed `txupdate` posted there is credited
/// (ledger row and balance), a replay of the same delivery is answered
/// `duplicate` and credits nothing, a bad signature is refused with 401,
/// and `POST /transfer` answers beside it. Over loopback, on every engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_api_serves_its_event_listener_under_events() {
    use conflictkit::events::{EventPoster, WebhookSecret};
    // the wallet's default secret (examples/wallet/settings.rs)
    let secret: WebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse().unwrap();
    let update = serde_json::json!({
        "transaction": 1, "network_transaction": 1001, "txid": "mounted-deposit-1",
        "account": 2, "address": "tb1qmounted", "amount": "12.34", "confirmations": 3,
    });
    let body = EventPoster::encode("txupdate", &update).unwrap();
    for backend in Backend::ALL {
        let tdb = common::sql::server(backend, "wallet_api_events", 1).await;
        let (mut child, base) = serve_wallet(&tdb.url).await;
        let url = format!("{base}/events");
        let client = reqwest::Client::new();
        let post = |id: &'static str, secret: &WebhookSecret| {
            let ts = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            client
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("webhook-id", id)
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", secret.sign(id, ts, body.as_bytes()))
                .body(body.clone())
                .send()
        };
        let answer = |r: reqwest::Response| async move {
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap();
            (status, body)
        };
        let balance_of_2 = "SELECT balance FROM wallet_accounts WHERE id = 2";
        let before = common::sql::scalar(&tdb.db, balance_of_2).await;

        let (status, reply) = answer(post("msg_mounted_1", &secret).await.unwrap()).await;
        assert_eq!(
            (status, &reply["status"]),
            (200, &serde_json::json!("handled")),
            "{backend:?}"
        );
        let credits = "SELECT COUNT(*) FROM wallet_ledger WHERE txid = 'mounted-deposit-1'";
        assert_eq!(
            common::sql::scalar(&tdb.db, credits).await,
            1,
            "{backend:?}"
        );
        assert_eq!(
            common::sql::scalar(&tdb.db, balance_of_2).await,
            before + 1234,
            "{backend:?}: credited"
        );

        let (status, reply) = answer(post("msg_mounted_1", &secret).await.unwrap()).await;
        assert_eq!(
            (status, &reply["status"]),
            (200, &serde_json::json!("duplicate")),
            "{backend:?}"
        );
        let other = WebhookSecret::generate();
        let (status, reply) = answer(post("msg_mounted_2", &other).await.unwrap()).await;
        assert_eq!(
            (status, &reply["error"]),
            (401, &serde_json::json!("bad_signature")),
            "{backend:?}"
        );
        assert_eq!(
            common::sql::scalar(&tdb.db, credits).await,
            1,
            "{backend:?}: once"
        );
        assert_eq!(
            common::sql::scalar(&tdb.db, balance_of_2).await,
            before + 1234
        );

        let transfer = client
            .post(format!("{base}/transfer"))
            .header("Idempotency-Key", "wallet-events-1")
            .header("content-type", "application/json")
            .body(r#"{"from":1,"to":2,"cents":5}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(transfer.status(), 200, "{backend:?}");
        child.kill().await.unwrap();
    }
}
