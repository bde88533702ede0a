//! Database faults under a running service, on a PostgreSQL and a MariaDB
//! of their own (`scripts/fault-servers.sh`; the servers every other test
//! shares never see these faults): while contended managed transfers run,
//! sessions are killed in the middle of a body (`pg_terminate_backend`,
//! `KILL CONNECTION`), then the server restarts fast under the calls (`pg_ctl
//! restart -m fast`, MariaDB shutdown and start) while one call is held in
//! the middle of its body.
//!
//! A connection lost before `COMMIT` is replayed (the server rolled the
//! transaction back); a `COMMIT` whose outcome is unknown is an
//! `AmbiguousCommit`, never replayed; calls made after the restart succeed on
//! the same pool. Every transfer writes a ledger row with its unique
//! operation id in its transaction, so at the end the balances and the ledger
//! show 0 lost and 0 double-applied updates: every `Ok` is in the ledger once,
//! no definite error is, and each ambiguous commit is looked up.

use crate::common;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::faults::{open_fault_db, restart};
use common::{Backend, connect, create_accounts, read_balance, write_balance};
use conflictkit::resolver::{CallOptions, ConflictCode};
use conflictkit::{ConflictResolver, Error, Txn};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement};
use tokio::sync::{mpsc, oneshot, watch};

const ACCOUNTS: i32 = 3;
const WORKERS: u32 = 8;
/// Transfers in one run.
const OPS: u64 = 480;
/// The transfer held in its open transaction while the server restarts.
const HELD_OP: u64 = 240;
/// Transfers from this one on begin once the server answered after the
/// restart.
const AFTER_OP: u64 = 360;
/// How many transfers have their session killed in the middle of their
/// first run, picked at random (seeded) among those before `KILL_BEFORE`.
const KILLS: usize = 12;
const KILL_BEFORE: u64 = 200;
const SEED: u64 = 0x5eed_0017;
/// The retries of a killed transfer: its killed run is replayed once, then
/// its replays may meet ordinary conflicts with the other transfers, which
/// must not make it give up.
const KILLED_RETRIES: u32 = 32;

/// The label of a killed transfer's calls: one of its own, so that its
/// replays can be told apart.
fn killed_label(op: u64) -> String {
    format!("db_faults::killed::{op}")
}

/// A body stopped in the middle (after its first read), waiting for `go`.
struct Paused {
    session: i64,
    go: oneshot::Sender<()>,
}

/// Where a transfer stops in the middle of a run, if anywhere: in the
/// first run that gets there (a run may end earlier in a conflict).
#[derive(Clone)]
enum Stop {
    None,
    /// After its first read, its session is killed; then it goes on (its
    /// next statement fails).
    Kill(mpsc::Sender<Paused>, Arc<AtomicBool>),
    /// Before its first statement (holding no lock that could hold up the
    /// kills), the server restarts; then it goes on.
    Restart(mpsc::Sender<Paused>, Arc<AtomicBool>),
}

impl Stop {
    /// Stops here once: tells the fault driver the session and waits for it.
    async fn pause(to: &mpsc::Sender<Paused>, once: &AtomicBool, session: i64) {
        if once.swap(true, Ordering::SeqCst) {
            return;
        }
        let (go, wait) = oneshot::channel();
        to.send(Paused { session, go })
            .await
            .expect("the fault driver listens");
        wait.await.expect("the fault driver answers");
    }
}

/// How a transfer ended.
#[derive(Debug)]
enum Outcome {
    Ok,
    Ambiguous,
    /// A definite error: nothing committed. The string says what kind.
    Failed(String),
}

/// `KILLS` distinct operation ids below `KILL_BEFORE` (xorshift, seeded).
fn killed_ops() -> HashSet<u64> {
    let mut x = SEED;
    let mut picked = HashSet::new();
    while picked.len() < KILLS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        picked.insert(1 + x % (KILL_BEFORE - 1));
    }
    picked
}

async fn exec(db: &impl ConnectionTrait, sql: &str) -> Result<(), DbErr> {
    db.execute_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .map(|_| ())
}

async fn query_i64(db: &impl ConnectionTrait, sql: &str) -> Result<i64, DbErr> {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(sql.to_owned()))?;
    row.try_get_by_index::<i64>(0)
}

/// The server's id of the session `db` runs on.
async fn session_id(db: &impl ConnectionTrait, backend: Backend) -> Result<i64, DbErr> {
    match backend {
        Backend::Postgres => query_i64(db, "SELECT pg_backend_pid()::bigint").await,
        _ => query_i64(db, "SELECT CAST(CONNECTION_ID() AS SIGNED)").await,
    }
}

/// Kills session `id` and returns once the server ended it.
async fn kill_session(admin: &DatabaseConnection, backend: Backend, id: i64) {
    match backend {
        Backend::Postgres => {
            // with a timeout, pg_terminate_backend waits until the backend exited
            let done = query_i64(
                admin,
                &format!("SELECT CASE WHEN pg_terminate_backend({id}, 30000) THEN 1::bigint ELSE 0::bigint END"),
            )
            .await
            .expect("pg_terminate_backend");
            assert_eq!(done, 1, "backend {id} terminated");
        }
        _ => {
            exec(admin, &format!("KILL CONNECTION {id}"))
                .await
                .expect("KILL CONNECTION");
            // KILL marks the thread and shuts its socket; it leaves the
            // process list once the thread saw it
            let mut polls = 0;
            while query_i64(
                admin,
                &format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {id}"),
            )
            .await
            .expect("process list")
                > 0
            {
                polls += 1;
                assert!(polls < 3000, "session {id} still listed after KILL");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// One transfer: `amount` onto `account` and its ledger row `op`, stopping
/// in the middle as `stop` says.
async fn transfer(
    txn: &Txn,
    backend: Backend,
    op: u64,
    account: i32,
    amount: i64,
    stop: Stop,
) -> Result<(), Error> {
    if let Stop::Restart(to, once) = &stop {
        Stop::pause(to, once, 0).await;
    }
    let balance = read_balance(txn, account).await?;
    if let Stop::Kill(to, once) = &stop
        && !once.load(Ordering::SeqCst)
    {
        let session = session_id(txn, backend).await?;
        Stop::pause(to, once, session).await;
    }
    write_balance(txn, account, balance + amount).await?;
    exec(
        txn,
        &format!("INSERT INTO ledger (op_id, account, amount) VALUES ({op}, {account}, {amount})"),
    )
    .await?;
    Ok(())
}

/// What kind of failure `err` is, for the tally; panics on an error that
/// is neither a give-up nor about the connection (every fault here is one).
fn failure_kind(resolver: &ConflictResolver, err: &Error) -> String {
    let lost = |e: &(dyn std::error::Error + 'static)| {
        resolver.classify(e).map(|c| c.code) == Some(ConflictCode::ConnectionLost)
    };
    match err {
        Error::Unresolved(gave_up) if lost(gave_up.last_error()) => {
            "gave up: the last run lost its connection".to_owned()
        }
        // the gate and the retries are the soak's business; here it is a
        // definite error like any other (the ledger checks nothing committed)
        Error::Unresolved(_) => "gave up on conflicts".to_owned(),
        Error::Db(DbErr::ConnectionAcquire(e)) => format!("pool: {e}"),
        e if lost(e) => "connection lost".to_owned(),
        e => panic!("a fault ended in an error that is no connection error: {e:?}"),
    }
}

/// One run on `backend`, with a pool that pings each connection it hands
/// out (`ping`: sea-orm's default) or not (what `ConflictResolver::connect`
/// sets: a dead pooled connection then fails at `BEGIN`).
async fn run_faults(backend: Backend, ping: bool) {
    let Some(fdb) = open_fault_db(backend, "db_faults").await else {
        return;
    };
    let mut options = sea_orm::ConnectOptions::new(fdb.url.clone());
    options
        .max_connections(WORKERS)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(60))
        .test_before_acquire(ping)
        .sqlx_logging(false);
    let db = sea_orm::Database::connect(options)
        .await
        .expect("connect to the fault server");
    create_accounts(&db, &(1..=ACCOUNTS).map(|id| (id, 0)).collect::<Vec<_>>()).await;
    exec(
        &db,
        "CREATE TABLE ledger (op_id BIGINT PRIMARY KEY, account INTEGER NOT NULL, amount BIGINT NOT NULL)",
    )
    .await
    .unwrap();

    let replays: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    // the replays of each killed transfer, by its label
    let replays_by_label: Arc<Mutex<BTreeMap<String, BTreeMap<String, u64>>>> = Arc::default();
    let (seen, seen_by_label) = (replays.clone(), replays_by_label.clone());
    let resolver = ConflictResolver::builder(db.clone())
        .on_retry(move |e| {
            let kind = match e.conflict.code {
                ConflictCode::ConnectionLost => "connection lost",
                _ => "conflict",
            };
            let key = format!("{kind} in {}", e.phase);
            if e.label.starts_with("db_faults::killed::") {
                *seen_by_label
                    .lock()
                    .unwrap()
                    .entry(e.label.to_owned())
                    .or_default()
                    .entry(key.clone())
                    .or_default() += 1;
            }
            *seen.lock().unwrap().entry(key).or_default() += 1;
        })
        .build();

    // the session killer, before the restart
    let (kill_tx, mut kill_rx) = mpsc::channel::<Paused>(1);
    let admin = connect(&fdb.admin_url, 1).await;
    let (kills_done, all_killed) = oneshot::channel();
    let killer = tokio::spawn(async move {
        let mut killed = 0;
        let mut kills_done = Some(kills_done);
        while let Some(p) = kill_rx.recv().await {
            kill_session(&admin, backend, p.session).await;
            killed += 1;
            p.go.send(()).expect("the killed transfer waits");
            if killed == KILLS
                && let Some(done) = kills_done.take()
            {
                done.send(()).expect("the restarter waits");
            }
        }
        killed
    });
    // then the restart, with HELD_OP in its open transaction, once every
    // killed transfer ended (so its replays met no restart); transfers from
    // AFTER_OP on wait for it to be over
    let (restart_tx, mut restart_rx) = mpsc::channel::<Paused>(1);
    let (restarted_tx, restarted) = watch::channel(false);
    let (killed_ended_tx, mut killed_ended) = watch::channel(0_usize);
    let restarter = tokio::spawn(async move {
        let held = restart_rx.recv().await.expect("the held transfer stops");
        all_killed.await.expect("the killer reports");
        killed_ended
            .wait_for(|ended| *ended == KILLS)
            .await
            .expect("the workers report");
        let began = Instant::now();
        restart(&fdb).await;
        let took = began.elapsed();
        held.go.send(()).expect("the held transfer waits");
        restarted_tx
            .send(true)
            .expect("transfers wait for the restart");
        (fdb, took)
    });
    let next = Arc::new(AtomicU64::new(0));

    let killed = Arc::new(killed_ops());
    let killed_ended_tx = Arc::new(killed_ended_tx);
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (resolver, next, killed) = (resolver.clone(), next.clone(), killed.clone());
        let killed_ended_tx = killed_ended_tx.clone();
        let (kill_tx, restart_tx) = (kill_tx.clone(), restart_tx.clone());
        let mut restarted = restarted.clone();
        workers.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            loop {
                let op = next.fetch_add(1, Ordering::SeqCst);
                if op >= OPS {
                    return outcomes;
                }
                if op >= AFTER_OP {
                    restarted
                        .wait_for(|done| *done)
                        .await
                        .expect("the restarter reports");
                }
                let account = (op % ACCOUNTS as u64) as i32 + 1;
                let amount = (op % 7) as i64 + 1;
                let stop = if op == HELD_OP {
                    Stop::Restart(restart_tx.clone(), Arc::default())
                } else if killed.contains(&op) {
                    Stop::Kill(kill_tx.clone(), Arc::default())
                } else {
                    Stop::None
                };
                let options = if killed.contains(&op) {
                    CallOptions::new(killed_label(op)).retries(KILLED_RETRIES)
                } else {
                    CallOptions::new("db_faults::transfer")
                };
                let result = resolver
                    .run(options, |txn: &Txn| {
                        let stop = stop.clone();
                        Box::pin(
                            async move { transfer(txn, backend, op, account, amount, stop).await },
                        )
                    })
                    .await;
                let outcome = match result {
                    Ok(()) => Outcome::Ok,
                    Err(e) if e.is_ambiguous_commit() => Outcome::Ambiguous,
                    Err(e) => Outcome::Failed(failure_kind(&resolver, &e)),
                };
                outcomes.push((op, outcome));
                if killed.contains(&op) {
                    killed_ended_tx.send_modify(|ended| *ended += 1);
                }
            }
        }));
    }
    drop((kill_tx, restart_tx));
    let mut outcomes: HashMap<u64, Outcome> = HashMap::new();
    for w in workers {
        outcomes.extend(w.await.expect("worker"));
    }
    let kills = killer.await.expect("killer");
    let (fdb, restart_took) = restarter.await.expect("restarter");
    assert_eq!(outcomes.len() as u64, OPS, "every transfer ended");
    assert_eq!(kills, KILLS, "every picked session was killed");

    // the ledger and the balances, read on a connection of their own
    let check = connect(&fdb.url, 1).await;
    let rows = check
        .query_all_raw(Statement::from_string(
            check.get_database_backend(),
            "SELECT op_id, account, amount FROM ledger",
        ))
        .await
        .unwrap();
    let mut ledger: HashMap<u64, (i32, i64)> = HashMap::new();
    for row in rows {
        let op = row.try_get::<i64>("", "op_id").unwrap() as u64;
        let entry = (
            row.try_get::<i32>("", "account").unwrap(),
            row.try_get::<i64>("", "amount").unwrap(),
        );
        assert!(ledger.insert(op, entry).is_none(), "op {op} twice");
    }
    let (mut ok, mut ambiguous, mut ambiguous_committed) = (0, 0, 0);
    let mut failed: BTreeMap<String, u64> = BTreeMap::new();
    for (op, outcome) in &outcomes {
        match outcome {
            Outcome::Ok => {
                ok += 1;
                assert!(ledger.contains_key(op), "op {op} returned Ok: lost update");
            }
            Outcome::Ambiguous => {
                ambiguous += 1;
                ambiguous_committed += u64::from(ledger.contains_key(op));
            }
            Outcome::Failed(kind) => {
                *failed.entry(kind.clone()).or_default() += 1;
                assert!(
                    !ledger.contains_key(op),
                    "op {op} failed ({kind}) but committed"
                );
            }
        }
    }
    assert_eq!(ledger.len() as u64, ok + ambiguous_committed);
    for account in 1..=ACCOUNTS {
        let expected: i64 = ledger
            .values()
            .filter(|(a, _)| *a == account)
            .map(|(_, amount)| amount)
            .sum();
        assert_eq!(
            read_balance(&check, account).await.unwrap(),
            expected,
            "account {account}: the balance and the ledger differ (lost or double-applied update)"
        );
    }

    // A killed transfer lost its connection in its body once, was replayed
    // once for it, on another pooled connection, and committed (its replays
    // end before the restart; ordinary conflicts of its replays have room in
    // its retries).
    let replays_by_label = replays_by_label.lock().unwrap().clone();
    for op in killed.iter() {
        assert!(
            matches!(&outcomes[op], Outcome::Ok),
            "op {op} lost its connection in its body and should have been replayed until it committed: {:?}",
            outcomes[op]
        );
        let lost = replays_by_label
            .get(&killed_label(*op))
            .and_then(|r| r.get("connection lost in body"))
            .copied()
            .unwrap_or(0);
        assert_eq!(
            lost,
            1,
            "op {op}: one replay for its killed session: {:?}",
            replays_by_label.get(&killed_label(*op))
        );
    }
    // The call held through the restart ends `Ok`, or, when its replays too
    // met the restart (on a loaded machine), gives up with nothing committed
    // (checked against the ledger above): at the default 3 retries nothing
    // more is promised.
    assert!(
        matches!(&outcomes[&HELD_OP], Outcome::Ok)
            || matches!(&outcomes[&HELD_OP], Outcome::Failed(kind) if kind.starts_with("gave up")),
        "op {HELD_OP} lost its connection in the restart and should have been replayed: {:?}",
        outcomes[&HELD_OP]
    );
    for op in AFTER_OP..OPS {
        assert!(
            matches!(outcomes[&op], Outcome::Ok),
            "op {op} began after the restart: {:?}",
            outcomes[&op]
        );
    }
    let replays = replays.lock().unwrap().clone();
    let lost_in_body = replays.get("connection lost in body").copied().unwrap_or(0);
    assert!(
        lost_in_body > KILLS as u64,
        "every killed session and the held call were replayed: {replays:?}"
    );
    let stats = resolver.stats();
    eprintln!(
        "db_faults {backend:?} (ping on checkout: {ping}): {OPS} transfers on {ACCOUNTS} accounts by {WORKERS} tasks; \
         {kills} sessions killed mid-body; restart took {} ms, {} transfers after it; \
         ok {ok}, ambiguous commits {ambiguous} ({ambiguous_committed} committed), \
         failed {failed:?}; replays {replays:?}; stats {stats:?}",
        restart_took.as_millis(),
        OPS - AFTER_OP,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_killed_sessions_and_a_fast_restart_lose_nothing() {
    run_faults(Backend::Postgres, false).await;
    run_faults(Backend::Postgres, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_killed_sessions_and_a_restart_lose_nothing() {
    run_faults(Backend::MySql, false).await;
    run_faults(Backend::MySql, true).await;
}
