//! The resolver on a 3-node MariaDB Galera cluster (`scripts/galera.sh`),
//! with real concurrent transactions and one pool per node: the original's
//! four resolver tests with the writers on different nodes, no lost update
//! with writers on all three nodes, a certification failure at COMMIT
//! replayed, an abort between statements found after the body's own error,
//! and a node killed with SIGKILL in the middle of a run.
//!
//! Every node accepts writes; conflicting transactions from different nodes
//! meet at COMMIT (certification: the later one fails with 1213) or when a
//! replicated write set aborts a local transaction holding the row (the
//! victim's next statement fails with 1213). One cluster serves every test,
//! one test at a time (`.config/nextest.toml`, group `galera`).

use crate::common;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::galera::{Cluster, causal, node_script, open_cluster, wait_synced};
use common::rounds::Rounds;
use common::{create_accounts, read_balance, write_balance};
use conflictkit::resolver::{
    AmbiguousCommit, Backoff, CallOptions, ConflictCode, Contention, Phase, Stats,
};
use conflictkit::{CannotResolveDatabaseConflict, ConflictResolver, Error, Txn};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, TransactionTrait};
use tokio::sync::{Barrier, watch};

/// A resolver like the original test's on `db`: `retries`, no backoff, no
/// contention control (its queueing would keep the scripted interleavings
/// from happening).
fn resolver(db: &DatabaseConnection, retries: u32) -> ConflictResolver {
    ConflictResolver::builder(db.clone())
        .retries(retries)
        .contention(Contention::Off)
        .backoff(Backoff::none())
        .build()
}

/// The conflicts a resolver replayed: (attempt, phase, code), in order.
type Replays = Arc<Mutex<Vec<(u32, Phase, ConflictCode)>>>;

/// A resolver on `db` with 3 retries, no backoff and no contention control
/// (as [`resolver`]) that records every conflict it replays.
fn recording_resolver(db: &DatabaseConnection) -> (ConflictResolver, Replays) {
    let events: Replays = Arc::default();
    let seen = events.clone();
    let r = ConflictResolver::builder(db.clone())
        .retries(3)
        .backoff(Backoff::none())
        .contention(Contention::Off)
        .on_retry(move |e| {
            seen.lock()
                .unwrap()
                .push((e.attempt, e.phase, e.conflict.code.clone()));
        })
        .build();
    (r, events)
}

/// The balance of account `id` read on every node with causal reads.
async fn balance_on_every_node(c: &Cluster, id: i32) -> Vec<i64> {
    let mut out = Vec::new();
    for url in &c.urls {
        let db = causal(url).await;
        out.push(read_balance(&db, id).await.expect("read balance"));
        db.close().await.ok();
    }
    out
}

/// Runs `tasks` increments at once, task i on node i % 3, each with a
/// resolver of its own (retries = 1).
async fn run_concurrently(
    c: &Cluster,
    rounds: &Rounds,
    tasks: usize,
) -> (Vec<Result<i64, Error>>, Stats) {
    let resolvers: Vec<ConflictResolver> =
        (0..tasks).map(|i| resolver(&c.nodes[i % 3], 1)).collect();
    rounds.run_all(resolvers).await
}

/// test_conflict: two plain SERIALIZABLE read-modify-writes of one row on
/// nodes 1 and 2: one fails, and its error is retryable.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn raw_conflict_across_nodes_is_classified_retryable() {
    let Some(c) = open_cluster("raw_conflict", 2).await else {
        return;
    };
    create_accounts(&c.nodes[0], &[(1, 10)]).await;
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|i| {
            let db = c.nodes[i].clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let options = sea_orm::TransactionOptions {
                    isolation_level: Some(sea_orm::IsolationLevel::Serializable),
                    ..Default::default()
                };
                let txn = db.begin_with_options(options).await?;
                let b = read_balance(&txn, 1).await?;
                barrier.wait().await;
                write_balance(&txn, 1, b + 1).await?;
                txn.commit().await
            })
        })
        .collect();
    let mut failures = Vec::new();
    for h in handles {
        if let Err(e) = h.await.unwrap() {
            failures.push(e);
        }
    }
    assert_eq!(
        failures.len(),
        1,
        "exactly one of the two commits: {failures:?}"
    );
    let r = resolver(&c.nodes[0], 1);
    for f in &failures {
        assert!(ConflictResolver::is_retryable(f), "got exception {f}");
        assert_eq!(
            r.classify(f).map(|c| c.code),
            Some(ConflictCode::MySql(1213)),
            "{f}"
        );
    }
    assert_eq!(balance_on_every_node(&c, 1).await, vec![11, 11, 11]);
}

/// test_conflict_resolved: two managed increments on nodes 1 and 2 with
/// retries = 1 both succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conflict_across_nodes_resolved() {
    let Some(c) = open_cluster("conflict_resolved", 2).await else {
        return;
    };
    create_accounts(&c.nodes[0], &[(1, 10)]).await;
    let rounds = Rounds::new("galera::increment", &[2]);
    let (results, stats) = run_concurrently(&c, &rounds, 2).await;
    for r in &results {
        assert!(r.is_ok(), "{r:?}");
    }
    assert_eq!(balance_on_every_node(&c, 1).await, vec![12, 12, 12]);
    assert_eq!(
        stats,
        Stats {
            success: 2,
            retries: 1,
            errors: 0,
            unresolved: 0
        }
    );
    assert_eq!(rounds.bodies.load(Ordering::SeqCst), 3);
    assert_eq!(rounds.hooks_run.load(Ordering::SeqCst), 2);
}

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("unknown exception")]
    Unknown,
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
    #[error(transparent)]
    Unresolved(#[from] CannotResolveDatabaseConflict),
}

/// test_conflict_some_other_exception, on every node: a non-conflict error
/// passes through unchanged, runs once, and nothing reaches any node.
#[tokio::test]
async fn other_errors_pass_through_on_every_node() {
    let Some(c) = open_cluster("other_errors", 2).await else {
        return;
    };
    create_accounts(&c.nodes[0], &[(1, 10)]).await;
    for node in &c.nodes {
        let r = resolver(node, 1);
        let runs = AtomicU32::new(0);
        let result: Result<(), AppError> = r
            .managed(|txn: &Txn| {
                runs.fetch_add(1, Ordering::SeqCst);
                Box::pin(async move {
                    write_balance(txn, 1, 99).await?;
                    Err(AppError::Unknown)
                })
            })
            .await;
        assert!(matches!(result, Err(AppError::Unknown)), "{result:?}");
        assert_eq!(runs.load(Ordering::SeqCst), 1, "not replayed");
        assert_eq!(
            r.stats(),
            Stats {
                success: 0,
                retries: 0,
                errors: 1,
                unresolved: 0
            }
        );
    }
    assert_eq!(balance_on_every_node(&c, 1).await, vec![10, 10, 10]);
}

/// test_give_up: three concurrent increments, one per node, retries = 1: one
/// commits at once, one after a replay, one gives up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn give_up_across_nodes() {
    let Some(c) = open_cluster("give_up", 2).await else {
        return;
    };
    create_accounts(&c.nodes[0], &[(1, 10)]).await;
    let rounds = Rounds::new("galera::increment", &[3, 2]);
    let (results, stats) = run_concurrently(&c, &rounds, 3).await;
    common::rounds::assert_one_gave_up(&results, stats, "galera::increment", "galera");
    assert_eq!(balance_on_every_node(&c, 1).await, vec![12, 12, 12]);
}

/// No lost update: 12 tasks (4 per node) x 40 increments of one row, one
/// resolver per node with its defaults but generous retries; the balance is
/// the same on every node and equals the commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_lost_update_across_three_nodes() {
    let Some(c) = open_cluster("no_lost_update", 4).await else {
        return;
    };
    create_accounts(&c.nodes[0], &[(1, 0)]).await;
    let resolvers: Vec<ConflictResolver> = c
        .nodes
        .iter()
        .map(|db| ConflictResolver::builder(db.clone()).retries(200).build())
        .collect();
    let handles: Vec<_> = (0..12)
        .map(|i| {
            let r = resolvers[i % 3].clone();
            tokio::spawn(async move {
                for _ in 0..40 {
                    r.run(CallOptions::new("galera::hot_increment"), |txn: &Txn| {
                        Box::pin(async move {
                            let b = read_balance(txn, 1).await?;
                            write_balance(txn, 1, b + 1).await?;
                            Ok::<_, Error>(())
                        })
                    })
                    .await?;
                }
                Ok::<_, Error>(())
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap().unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(balance_on_every_node(&c, 1).await, vec![480, 480, 480]);
    for (n, r) in resolvers.iter().enumerate() {
        let s = r.stats();
        assert_eq!(s.success, 160, "node {}: {s:?}", n + 1);
        assert_eq!((s.errors, s.unresolved), (0, 0), "node {}: {s:?}", n + 1);
        eprintln!("node {}: {s:?}", n + 1);
    }
    let retries: u64 = resolvers.iter().map(|r| r.stats().retries).sum();
    assert!(retries > 0, "writers on three nodes never conflicted");
}

/// A certification failure at COMMIT, replayed: the call on node 2 wrote the
/// row and, before its COMMIT, a call on node 1 commits the same row. Node 2
/// learns of it at COMMIT (the write set that beat it either aborted it
/// meanwhile or fails its certification): 1213 at COMMIT, then a replay that
/// reads the winner's value and commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn certification_failure_at_commit_is_replayed() {
    let Some(c) = open_cluster("commit_conflict", 2).await else {
        return;
    };
    create_accounts(&c.nodes[0], &[(1, 10)]).await;
    let (loser, events) = recording_resolver(&c.nodes[1]);
    let winner = resolver(&c.nodes[0], 0);
    let (wrote_tx, mut wrote_rx) = watch::channel(false);
    let (won_tx, won_rx) = watch::channel(false);
    let wrote_tx = Arc::new(wrote_tx);
    let loser_call = {
        let loser = loser.clone();
        let won_rx = won_rx.clone();
        tokio::spawn(async move {
            loser
                .run(CallOptions::new("galera::loser"), move |txn: &Txn| {
                    let wrote_tx = wrote_tx.clone();
                    let mut won_rx = won_rx.clone();
                    Box::pin(async move {
                        let b = read_balance(txn, 1).await?;
                        write_balance(txn, 1, b + 1).await?;
                        if txn.attempt() == 1 {
                            wrote_tx.send_replace(true);
                            won_rx.wait_for(|&w| w).await.expect("sender alive");
                        }
                        Ok::<_, Error>(b + 1)
                    })
                })
                .await
        })
    };
    wrote_rx.wait_for(|&w| w).await.expect("the loser wrote");
    let won = winner
        .run(CallOptions::new("galera::winner"), |txn: &Txn| {
            Box::pin(async move {
                let b = read_balance(txn, 1).await?;
                write_balance(txn, 1, b + 1).await?;
                Ok::<_, Error>(b + 1)
            })
        })
        .await
        .expect("node 1 commits first");
    assert_eq!(won, 11);
    won_tx.send_replace(true);
    let lost = loser_call.await.unwrap().expect("replayed and committed");
    assert_eq!(lost, 12, "the replay read the winner's value");
    let events = events.lock().unwrap().clone();
    assert_eq!(
        events,
        vec![(1, Phase::Commit, ConflictCode::MySql(1213))],
        "one conflict, at COMMIT"
    );
    assert_eq!(
        loser.stats(),
        Stats {
            success: 1,
            retries: 1,
            errors: 0,
            unresolved: 0
        }
    );
    assert_eq!(balance_on_every_node(&c, 1).await, vec![12, 12, 12]);
}

/// A local transaction on node 2 holds a row when node 1 commits a write
/// of it: Galera aborts node 2's transaction between its statements and
/// says so only at its next statement. The body, unaware, then fails with
/// an error of its own (as an `INSERT … RETURNING` that found no row did
/// in the wallet now and then): the resolver asks the transaction once
/// more, finds the 1213, and replays the call instead of returning the
/// error, which came of the abort.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_error_after_an_abort_between_statements_is_replayed() {
    let Some(c) = open_cluster("abort_between", 2).await else {
        return;
    };
    create_accounts(&c.nodes[0], &[(1, 10)]).await;
    let (victim, events) = recording_resolver(&c.nodes[1]);
    let (wrote_tx, mut wrote_rx) = watch::channel(false);
    let (won_tx, won_rx) = watch::channel(false);
    let wrote_tx = Arc::new(wrote_tx);
    let call = {
        let victim = victim.clone();
        tokio::spawn(async move {
            victim
                .run(CallOptions::new("galera::victim"), move |txn: &Txn| {
                    let wrote_tx = wrote_tx.clone();
                    let mut won_rx = won_rx.clone();
                    Box::pin(async move {
                        let b = read_balance(txn, 1).await?;
                        write_balance(txn, 1, b + 1).await?;
                        if txn.attempt() == 1 {
                            wrote_tx.send_replace(true);
                            won_rx.wait_for(|&w| w).await.expect("sender alive");
                            return Err(Error::from(sea_orm::DbErr::RecordNotFound(
                                "an answer the abort spoiled".into(),
                            )));
                        }
                        Ok::<_, Error>(b + 1)
                    })
                })
                .await
        })
    };
    wrote_rx.wait_for(|&w| w).await.expect("the victim wrote");
    resolver(&c.nodes[0], 0)
        .run(CallOptions::new("galera::winner"), |txn: &Txn| {
            Box::pin(async move {
                let b = read_balance(txn, 1).await?;
                write_balance(txn, 1, b + 1).await?;
                Ok::<_, Error>(())
            })
        })
        .await
        .expect("node 1 commits");
    // node 2 has applied node 1's write set (a causal read there waits for
    // it): the victim's transaction is aborted by now
    let applied = causal(&c.urls[1]).await;
    assert_eq!(
        common::read_balance(&applied, 1).await.unwrap(),
        11,
        "node 2 applied node 1's commit"
    );
    won_tx.send_replace(true);
    let replayed = call.await.unwrap().expect("replayed and committed");
    assert_eq!(replayed, 12, "the replay read node 1's value");
    assert_eq!(
        events.lock().unwrap().clone(),
        vec![(1, Phase::Body, ConflictCode::MySql(1213))],
        "the abort, found after the body's error"
    );
    assert_eq!(balance_on_every_node(&c, 1).await, vec![12, 12, 12]);
}

/// How a call of the node-kill run ended.
#[derive(Debug)]
enum Ended {
    Ok,
    /// `AmbiguousCommit`: it may have committed.
    Ambiguous,
    /// Any other error: nothing committed.
    Failed(String),
}

/// One credit: +1 on account 1 and a ledger row naming the call, in one
/// managed transaction.
async fn credit(r: &ConflictResolver, call: i64) -> Result<(), Error> {
    r.run(CallOptions::new("galera::credit"), move |txn: &Txn| {
        Box::pin(async move {
            let b = read_balance(txn, 1).await?;
            write_balance(txn, 1, b + 1).await?;
            txn.execute_unprepared(&format!("INSERT INTO ledger (call_id) VALUES ({call})"))
                .await?;
            Ok::<_, Error>(())
        })
    })
    .await
}

fn ended(result: Result<(), Error>) -> Ended {
    match result {
        Ok(()) => Ended::Ok,
        Err(e) if e.is_ambiguous_commit() => Ended::Ambiguous,
        Err(e) => {
            // a dead node is neither a conflict nor a give-up
            assert!(
                matches!(e, Error::Db(_)) && !ConflictResolver::is_retryable(&e),
                "not a plain database error: {e:?}"
            );
            Ended::Failed(e.to_string())
        }
    }
}

/// Starts node `n` again when a test that killed it fails before it did.
struct Revive {
    node: usize,
    dead: Arc<AtomicBool>,
}

impl Drop for Revive {
    fn drop(&mut self) {
        if self.dead.load(Ordering::SeqCst) {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/galera-node.sh");
            for cmd in ["start", "wait"] {
                let _ = std::process::Command::new(script)
                    .args([cmd, &self.node.to_string()])
                    .status();
            }
        }
    }
}

/// Counts of successful calls per node, for waiting on progress.
type Progress = Arc<watch::Sender<[u32; 3]>>;

/// Runs credits on node `n` until `stop`, or until the first error when
/// `stop_on_error`; every call is recorded in `log`.
#[allow(clippy::too_many_arguments)]
fn writer(
    r: ConflictResolver,
    n: usize,
    calls: Arc<AtomicI64>,
    log: Arc<Mutex<Vec<(usize, i64, Ended)>>>,
    progress: Progress,
    stop: Arc<AtomicBool>,
    stop_on_error: bool,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::SeqCst) {
            let call = calls.fetch_add(1, Ordering::SeqCst);
            let end = ended(credit(&r, call).await);
            let failed = !matches!(end, Ended::Ok);
            if !failed {
                progress.send_modify(|p| p[n] += 1);
            }
            log.lock().unwrap().push((n, call, end));
            if failed && stop_on_error {
                return;
            }
        }
    })
}

/// A node killed with SIGKILL in the middle of a run (node 2, while two
/// writers per node run and one of node 2's calls is inside COMMIT): the
/// calls on nodes 1 and 3 go on without an error; node 2's calls in flight
/// fail with a connection error or, for the one in COMMIT, an
/// `AmbiguousCommit`, never replayed; every call that returned `Ok` is in
/// the data on every node, and the only others there are ambiguous commits
/// that landed, each once; node 2 rejoins (cluster size 3) and takes writes.
///
/// The call held in COMMIT is made so on purpose: `FLUSH TABLES WITH READ
/// LOCK` on node 2 blocks commits there, so the kill finds it in flight
/// every time rather than by luck.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn node_killed_mid_run() {
    let Some(c) = open_cluster("node_kill", 4).await else {
        return;
    };
    // account 1 is the hot row; account 2 is the in-doubt call's alone, so
    // no write set from another node aborts it while it waits
    create_accounts(&c.nodes[0], &[(1, 0), (2, 0)]).await;
    c.nodes[0]
        .execute_unprepared(
            "CREATE TABLE ledger (seq BIGINT AUTO_INCREMENT PRIMARY KEY, call_id BIGINT NOT NULL)",
        )
        .await
        .unwrap();
    // node 2's calls fail fast once it is gone instead of waiting 60 s for a
    // connection; nodes 1 and 3 keep the patient default
    let mut pools = c.nodes.clone();
    let mut opts = sea_orm::ConnectOptions::new(c.urls[1].clone());
    opts.max_connections(4)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(2))
        .sqlx_logging(false);
    pools[1] = sea_orm::Database::connect(opts).await.unwrap();
    let resolvers: Vec<ConflictResolver> = pools
        .iter()
        .map(|db| ConflictResolver::builder(db.clone()).retries(50).build())
        .collect();
    let calls = Arc::new(AtomicI64::new(1));
    let log: Arc<Mutex<Vec<(usize, i64, Ended)>>> = Arc::default();
    let progress: Progress = Arc::new(watch::channel([0; 3]).0);
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for n in [0, 1, 2, 0, 1, 2] {
        writers.push(writer(
            resolvers[n].clone(),
            n,
            calls.clone(),
            log.clone(),
            progress.clone(),
            stop.clone(),
            n == 1,
        ));
    }
    let mut rx = progress.subscribe();
    tokio::time::timeout(
        Duration::from_secs(60),
        rx.wait_for(|p| p.iter().all(|&k| k >= 10)),
    )
    .await
    .expect("every node commits before the kill")
    .unwrap();

    // One call on node 2 held in COMMIT.
    let in_doubt = calls.fetch_add(1, Ordering::SeqCst);
    // the in-doubt call's session id, so the kill waits for *its* COMMIT
    // (the other writers' COMMITs on node 2 are held by the read lock too)
    let (wrote_tx, mut wrote_rx) = watch::channel(None::<i64>);
    let (go_tx, go_rx) = watch::channel(false);
    let wrote_tx = Arc::new(wrote_tx);
    let held = {
        let r = resolvers[1].clone();
        tokio::spawn(async move {
            r.run(CallOptions::new("galera::in_doubt"), move |txn: &Txn| {
                let wrote_tx = wrote_tx.clone();
                let mut go_rx = go_rx.clone();
                Box::pin(async move {
                    let b = read_balance(txn, 2).await?;
                    write_balance(txn, 2, b + 1).await?;
                    txn.execute_unprepared(&format!(
                        "INSERT INTO ledger (call_id) VALUES ({in_doubt})"
                    ))
                    .await?;
                    let session = txn
                        .query_one_raw(Statement::from_string(
                            txn.get_database_backend(),
                            // CONNECTION_ID() is BIGINT UNSIGNED, which
                            // does not decode as i64
                            "SELECT CAST(CONNECTION_ID() AS SIGNED)",
                        ))
                        .await?
                        .expect("one row")
                        .try_get_by_index::<i64>(0)?;
                    wrote_tx.send_replace(Some(session));
                    go_rx.wait_for(|&g| g).await.expect("sender alive");
                    Ok::<_, Error>(())
                })
            })
            .await
        })
    };
    let wrote = tokio::time::timeout(Duration::from_secs(60), wrote_rx.wait_for(|w| w.is_some()))
        .await
        .expect("the in-doubt call wrote")
        .map(|w| *w);
    let session = match wrote {
        Ok(Some(session)) => session,
        // the body dropped the sender: the call ended before it wrote
        _ => panic!("the in-doubt call ended early: {:?}", held.await),
    };
    let lock = common::connect(&c.urls[1], 1).await;
    // no causal reads on this session: FTWRL pauses the node's replication,
    // a causal read would wait for it
    lock.execute_unprepared("SET SESSION wsrep_sync_wait = 0")
        .await
        .unwrap();
    lock.execute_unprepared("FLUSH TABLES WITH READ LOCK")
        .await
        .expect("block commits on node 2");
    go_tx.send_replace(true);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let row = lock
            .query_one_raw(Statement::from_string(
                lock.get_database_backend(),
                format!(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                     WHERE ID = {session} AND INFO = 'COMMIT'"
                ),
            ))
            .await
            .unwrap()
            .unwrap();
        if row.try_get_by_index::<i64>(0).unwrap() > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the in-doubt call's COMMIT is not waiting on node 2"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let dead = Arc::new(AtomicBool::new(true));
    let _revive = Revive {
        node: 2,
        dead: dead.clone(),
    };
    node_script("kill", 2).await;
    drop(lock);
    let killed_at = *progress.borrow();
    let held = held.await.unwrap();
    assert!(
        matches!(&held, Err(e) if e.is_ambiguous_commit()),
        "the call in COMMIT on the killed node: {held:?}"
    );
    if let Err(e) = &held {
        let ambiguous = AmbiguousCommit::find(e).expect("found in the chain");
        assert_eq!(ambiguous.label(), "galera::in_doubt");
        eprintln!("in-doubt call: {e}");
    }
    log.lock()
        .unwrap()
        .push((1, in_doubt, ended(held.map(|_| ()))));

    // nodes 1 and 3 go on
    tokio::time::timeout(
        Duration::from_secs(90),
        rx.wait_for(|p| p[0] >= killed_at[0] + 20 && p[2] >= killed_at[2] + 20),
    )
    .await
    .expect("nodes 1 and 3 commit after node 2 died")
    .unwrap();

    // node 2 rejoins and takes writes through the same pool
    node_script("start", 2).await;
    wait_synced(
        &[&c.urls[0], &c.urls[1], &c.urls[2]],
        3,
        Duration::from_secs(120),
    )
    .await;
    dead.store(false, Ordering::SeqCst);
    for _ in 0..10 {
        let call = calls.fetch_add(1, Ordering::SeqCst);
        let end = ended(credit(&resolvers[1], call).await);
        assert!(matches!(end, Ended::Ok), "node 2 after rejoining: {end:?}");
        log.lock().unwrap().push((1, call, end));
    }
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.unwrap();
    }

    let log = std::mem::take(&mut *log.lock().unwrap());
    let ok: BTreeSet<i64> = log
        .iter()
        .filter(|(_, _, e)| matches!(e, Ended::Ok))
        .map(|(_, c, _)| *c)
        .collect();
    let ambiguous: BTreeSet<i64> = log
        .iter()
        .filter(|(_, _, e)| matches!(e, Ended::Ambiguous))
        .map(|(_, c, _)| *c)
        .collect();
    let failed: Vec<(usize, i64, &String)> = log
        .iter()
        .filter_map(|(n, c, e)| match e {
            Ended::Failed(m) => Some((*n, *c, m)),
            _ => None,
        })
        .collect();
    for (n, call, msg) in &failed {
        assert_eq!(*n, 1, "a call failed on surviving node {}: {msg}", n + 1);
        eprintln!("node 2 call {call} failed: {msg}");
    }
    eprintln!(
        "{} calls ok, {} ambiguous, {} failed on node 2",
        ok.len(),
        ambiguous.len(),
        failed.len()
    );
    for url in &c.urls {
        let db = causal(url).await;
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT call_id, COUNT(*) FROM ledger GROUP BY call_id",
            ))
            .await
            .unwrap();
        let landed: BTreeMap<i64, i64> = rows
            .iter()
            .map(|r| {
                (
                    r.try_get_by_index::<i64>(0).unwrap(),
                    r.try_get_by_index::<i64>(1).unwrap(),
                )
            })
            .collect();
        assert!(
            landed.values().all(|&k| k == 1),
            "{url}: a call landed twice"
        );
        let landed: BTreeSet<i64> = landed.into_keys().collect();
        assert!(ok.is_subset(&landed), "{url}: an Ok call is missing");
        let others: BTreeSet<i64> = landed.difference(&ok).copied().collect();
        assert!(
            others.is_subset(&ambiguous),
            "{url}: calls that failed for sure landed: {:?}",
            others.difference(&ambiguous).collect::<Vec<_>>()
        );
        let balance = read_balance(&db, 1).await.unwrap() + read_balance(&db, 2).await.unwrap();
        assert_eq!(
            balance,
            (ok.len() + others.len()) as i64,
            "{url}: credits = calls returned Ok + ambiguous commits that landed"
        );
        db.close().await.ok();
    }
}
