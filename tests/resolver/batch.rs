//! Group commit (`batch`): calls of one (label, key) that queue behind a run
//! in flight run in one transaction, each in a savepoint, with one COMMIT,
//! and each keeps its own outcome. On PostgreSQL, MariaDB and SQLite.
//!
//! Batches are made deterministic without timing: a first call holds the
//! lane (its body waits on a gate the test opens), the test waits until
//! the calls it sends meanwhile are queued (`batch_stats().queued`, polled
//! with a bound), then opens the gate: the next batch takes them all.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::common;
use common::sql::{bounded, exec, server};
use common::{Backend, create_accounts, read_balance};
use conflictkit::resolver::{
    CallOptions, ConflictResolverBuilder, DeadlineExceeded, InjectConflicts, Phase,
};
use conflictkit::{ConflictResolver, Error, Txn, managed_transaction};
use sea_orm::{ConnectionTrait, DbErr, Statement};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

const LABEL: &str = "tests::batch::credit";

/// What a member's body does after its writes.
#[derive(Clone)]
enum Fate {
    Ok,
    /// Returns a business error (its writes are rolled back).
    Refuse,
    Panic,
    /// Runs a statement that fails, ignores its error, returns `Ok`.
    IgnoreAnError,
    /// Says it started, then waits for a permit of the gate (first run only).
    Hold(Arc<Semaphore>, mpsc::UnboundedSender<()>),
}

/// A batched call: one more on account 1, a note, an after-commit hook
/// counted in `hooks`, then its fate.
fn credit(
    resolver: &ConflictResolver,
    note: &'static str,
    fate: Fate,
    hooks: &Arc<AtomicU32>,
    options: CallOptions,
) -> JoinHandle<Result<(), Error>> {
    let (resolver, hooks) = (resolver.clone(), hooks.clone());
    tokio::spawn(async move {
        resolver
            .run_batched(options, move |txn: &Txn| {
                let (fate, hooks) = (fate.clone(), hooks.clone());
                Box::pin(async move {
                    exec(
                        txn,
                        "UPDATE accounts SET balance = balance + 1 WHERE id = 1",
                    )
                    .await?;
                    exec(txn, &format!("INSERT INTO notes (note) VALUES ('{note}')")).await?;
                    txn.after_commit(move || {
                        hooks.fetch_add(1, Ordering::SeqCst);
                    });
                    match fate {
                        Fate::Ok => Ok(()),
                        Fate::Refuse => Err(Error::Db(DbErr::Custom(format!(
                            "{note} is refused by its body"
                        )))),
                        Fate::Panic => panic!("{note} panics in its body"),
                        Fate::IgnoreAnError => {
                            let _ = exec(txn, "SELECT * FROM no_such_table").await;
                            Ok(())
                        }
                        Fate::Hold(gate, started) => {
                            let _ = started.send(());
                            if txn.attempt() == 1 {
                                gate.acquire().await.expect("gate open").forget();
                            }
                            Ok(())
                        }
                    }
                })
            })
            .await
    })
}

fn options() -> CallOptions {
    CallOptions::new(LABEL).key(&1_i32).batch(64)
}

/// A database with account 1 at 0 and an empty `notes` table, and a
/// resolver on it.
async fn setup(backend: Backend, test: &str) -> (common::TestDb, ConflictResolver) {
    setup_with(backend, test, |b| b).await
}

/// [`setup`] with the resolver's builder set by `build`.
async fn setup_with(
    backend: Backend,
    test: &str,
    build: impl FnOnce(ConflictResolverBuilder) -> ConflictResolverBuilder,
) -> (common::TestDb, ConflictResolver) {
    let tdb = server(backend, test, 4).await;
    create_accounts(&tdb.db, &[(1, 0)]).await;
    exec(&tdb.db, "CREATE TABLE notes (note VARCHAR(32) NOT NULL)")
        .await
        .unwrap();
    let resolver = build(ConflictResolver::builder(tdb.db.clone())).build();
    (tdb, resolver)
}

/// The notes committed, sorted.
async fn notes(db: &impl ConnectionTrait) -> Vec<String> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT note FROM notes ORDER BY note",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get::<String>("", "note").unwrap())
        .collect()
}

/// Waits until `n` calls of `LABEL` are queued behind the batch in flight.
async fn until_queued(resolver: &ConflictResolver, n: u64) {
    bounded("calls queue behind the batch in flight", async {
        while resolver
            .batch_stats()
            .get(LABEL)
            .is_none_or(|s| s.queued < n)
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
}

/// A first call that holds the lane until `gate` gets a permit.
async fn holder(
    resolver: &ConflictResolver,
    hooks: &Arc<AtomicU32>,
) -> (JoinHandle<Result<(), Error>>, Arc<Semaphore>) {
    let gate = Arc::new(Semaphore::new(0));
    let (started, mut has_started) = mpsc::unbounded_channel();
    let held = credit(
        resolver,
        "a",
        Fate::Hold(gate.clone(), started),
        hooks,
        options(),
    );
    bounded("the first batch starts", has_started.recv()).await;
    (held, gate)
}

/// Members with mixed outcomes in one batch: the ok ones commit, the one
/// that returns an error and the one that panics leave nothing, and each
/// caller gets its own result (the panic as a panic); hooks run for the
/// committed ones only.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_member_of_a_batch_keeps_its_own_outcome() {
    for backend in Backend::ALL {
        let (tdb, resolver) = setup(backend, "batch_mixed").await;
        let hooks = Arc::new(AtomicU32::new(0));
        let (held, gate) = holder(&resolver, &hooks).await;
        let b = credit(&resolver, "b", Fate::Ok, &hooks, options());
        let c = credit(&resolver, "c", Fate::Refuse, &hooks, options());
        let d = credit(&resolver, "d", Fate::Panic, &hooks, options());
        let e = credit(&resolver, "e", Fate::Ok, &hooks, options());
        until_queued(&resolver, 4).await;
        gate.add_permits(1);

        bounded("the holder", held).await.unwrap().unwrap();
        bounded("b", b).await.unwrap().expect("b committed");
        let refused = bounded("c", c).await.unwrap().expect_err("c refused");
        assert!(refused.to_string().contains("c is refused"), "{refused}");
        let panicked = bounded("d", d).await.expect_err("d panicked");
        assert!(panicked.is_panic(), "{backend:?}: {panicked}");
        bounded("e", e).await.unwrap().expect("e committed");

        assert_eq!(notes(&tdb.db).await, ["a", "b", "e"], "{backend:?}");
        assert_eq!(read_balance(&tdb.db, 1).await.unwrap(), 3, "{backend:?}");
        assert_eq!(
            hooks.load(Ordering::SeqCst),
            3,
            "{backend:?}: hooks of committed members"
        );
        let batches = resolver.batch_stats()[LABEL];
        assert_eq!(
            (
                batches.batches,
                batches.members,
                batches.largest,
                batches.queued
            ),
            (2, 5, 4, 0),
            "{backend:?}"
        );
        let stats = resolver.stats();
        assert_eq!(
            (stats.success, stats.errors),
            (3, 1),
            "{backend:?}: {stats:?}"
        );
        // the four waited in the lane while the holder ran
        let waited = resolver.waits_by_label()[LABEL];
        assert!(waited.queue > Duration::ZERO, "{backend:?}: {waited:?}");
    }
}

/// A member that ignores an error of its own statement: where the error
/// aborted the transaction (PostgreSQL), the member is rolled back to its
/// savepoint and fails alone with `AbortedTransaction`, the others commit;
/// where it did not (MariaDB, SQLite), the member commits with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_that_ignores_an_aborting_error_fails_alone() {
    for backend in Backend::ALL {
        let (tdb, resolver) = setup(backend, "batch_ignored").await;
        let hooks = Arc::new(AtomicU32::new(0));
        let (held, gate) = holder(&resolver, &hooks).await;
        let b = credit(&resolver, "b", Fate::Ok, &hooks, options());
        until_queued(&resolver, 1).await;
        let x = credit(&resolver, "x", Fate::IgnoreAnError, &hooks, options());
        until_queued(&resolver, 2).await;
        let e = credit(&resolver, "e", Fate::Ok, &hooks, options());
        until_queued(&resolver, 3).await;
        gate.add_permits(1);
        bounded("the holder", held).await.unwrap().unwrap();
        bounded("b", b).await.unwrap().expect("b committed");
        bounded("e", e).await.unwrap().expect("e committed");
        let x = bounded("x", x).await.unwrap();
        if backend == Backend::Postgres {
            let err = x.expect_err("x's transaction was aborted");
            assert!(err.is_aborted_transaction(), "{err}");
            assert_eq!(notes(&tdb.db).await, ["a", "b", "e"]);
            assert_eq!(hooks.load(Ordering::SeqCst), 3);
        } else {
            x.unwrap_or_else(|e| panic!("{backend:?}: the error did not abort: {e}"));
            assert_eq!(notes(&tdb.db).await, ["a", "b", "e", "x"], "{backend:?}");
            assert_eq!(hooks.load(Ordering::SeqCst), 4, "{backend:?}");
        }
    }
}

/// A conflict at COMMIT (injected on every run that may replay) replays
/// the whole batch: every member's body runs again, and each member's
/// effect is applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_conflict_at_commit_replays_the_batch_and_applies_each_member_once() {
    for backend in Backend::ALL {
        let (tdb, resolver) = setup_with(backend, "batch_injected", |b| {
            b.retries(2).inject_conflicts(InjectConflicts::rate(1.0))
        })
        .await;
        let hooks = Arc::new(AtomicU32::new(0));
        let (held, gate) = holder(&resolver, &hooks).await;
        let members: Vec<_> = ["b", "c", "d"]
            .into_iter()
            .map(|note| credit(&resolver, note, Fate::Ok, &hooks, options()))
            .collect();
        until_queued(&resolver, 3).await;
        gate.add_permits(1);
        bounded("the holder", held).await.unwrap().unwrap();
        for member in members {
            bounded("a member", member)
                .await
                .unwrap()
                .expect("committed");
        }
        assert_eq!(notes(&tdb.db).await, ["a", "b", "c", "d"], "{backend:?}");
        assert_eq!(read_balance(&tdb.db, 1).await.unwrap(), 4, "{backend:?}");
        assert_eq!(hooks.load(Ordering::SeqCst), 4, "{backend:?}");
        let stats = resolver.stats();
        // the holder's batch replayed twice, the batch of three twice each
        assert_eq!(
            (stats.success, stats.retries),
            (4, 2 + 2 * 3),
            "{backend:?}: {stats:?}"
        );
        assert_eq!(resolver.batch_stats()[LABEL].largest, 3, "{backend:?}");
    }
}

/// A caller dropped while its member is queued leaves the member in the
/// batch: its write commits with the others and its hook runs; a dropped
/// member whose body fails leaves nothing and its hook never runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dropped_caller_leaves_its_member_to_the_batch() {
    for backend in Backend::ALL {
        let (tdb, resolver) = setup(backend, "batch_dropped").await;
        let hooks = Arc::new(AtomicU32::new(0));
        let (held, gate) = holder(&resolver, &hooks).await;
        let x = credit(&resolver, "x", Fate::Ok, &hooks, options());
        let y = credit(&resolver, "y", Fate::Refuse, &hooks, options());
        until_queued(&resolver, 2).await;
        x.abort();
        y.abort();
        assert!(x.await.unwrap_err().is_cancelled());
        assert!(y.await.unwrap_err().is_cancelled());
        let z = credit(&resolver, "z", Fate::Ok, &hooks, options());
        until_queued(&resolver, 3).await;
        gate.add_permits(1);
        bounded("the holder", held).await.unwrap().unwrap();
        // z ran in the batch of x and y: once it answered, their COMMIT
        // and its hooks are done
        bounded("z", z).await.unwrap().expect("z committed");
        assert_eq!(notes(&tdb.db).await, ["a", "x", "z"], "{backend:?}");
        assert_eq!(read_balance(&tdb.db, 1).await.unwrap(), 3, "{backend:?}");
        assert_eq!(hooks.load(Ordering::SeqCst), 3, "{backend:?}: a, x and z");
        assert_eq!(resolver.batch_stats()[LABEL].largest, 3, "{backend:?}");
    }
}

/// A batched call whose time budget runs out while it is still queued ends
/// with `DeadlineExceeded` in the admission phase, and never runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_queued_past_its_deadline_never_runs() {
    let (tdb, resolver) = setup(Backend::Postgres, "batch_deadline").await;
    let hooks = Arc::new(AtomicU32::new(0));
    let (held, gate) = holder(&resolver, &hooks).await;
    let late = options().timeout(Duration::from_millis(200)).unwrap();
    let err = bounded(
        "the queued call's deadline",
        credit(&resolver, "late", Fate::Ok, &hooks, late),
    )
    .await
    .unwrap()
    .expect_err("out of time while queued");
    let exceeded = DeadlineExceeded::find(&err).expect("a DeadlineExceeded");
    assert_eq!(exceeded.phase(), Phase::Admission);
    let after = credit(&resolver, "after", Fate::Ok, &hooks, options());
    until_queued(&resolver, 1).await;
    gate.add_permits(1);
    bounded("the holder", held).await.unwrap().unwrap();
    bounded("after", after).await.unwrap().unwrap();
    assert_eq!(notes(&tdb.db).await, ["a", "after"]);
    assert_eq!(
        resolver.stats().errors,
        1,
        "the late call counts as an error"
    );
}

/// A hot row credited by 64 tasks through a `batch` function: no update is
/// lost, nothing gives up, and batches of more than one call formed (from
/// the counters).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hot_row_under_load_loses_nothing_and_batches() {
    #[managed_transaction(key = account, batch)]
    async fn add_one(txn: &Txn, account: i32) -> Result<(), Error> {
        let sql = format!("UPDATE accounts SET balance = balance + 1 WHERE id = {account}");
        txn.execute_unprepared(&sql).await?;
        Ok(())
    }

    const TASKS: usize = 64;
    const EACH: usize = 20;
    for backend in Backend::ALL {
        let tdb = server(backend, "batch_load", 8).await;
        create_accounts(&tdb.db, &[(1, 0)]).await;
        let resolver = ConflictResolver::builder(tdb.db.clone())
            .retries(20)
            .build();
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let resolver = resolver.clone();
                tokio::spawn(async move {
                    for _ in 0..EACH {
                        add_one(&resolver, 1).await?;
                    }
                    Ok::<_, Error>(())
                })
            })
            .collect();
        for task in tasks {
            bounded("a task", task).await.unwrap().unwrap();
        }
        let total = (TASKS * EACH) as i64;
        assert_eq!(
            read_balance(&tdb.db, 1).await.unwrap(),
            total,
            "{backend:?}"
        );
        let stats = resolver.stats();
        assert_eq!(
            (stats.success, stats.unresolved, stats.errors),
            (total as u64, 0, 0),
            "{backend:?}"
        );
        let label = resolver
            .batch_stats()
            .into_iter()
            .find(|(label, _)| label.ends_with("add_one"))
            .expect("batched")
            .1;
        assert_eq!(label.members, total as u64, "{backend:?}");
        assert!(label.largest > 1, "{backend:?}: {label:?}");
    }
}

/// A batch that gives up runs its calls again one by one, each with replays
/// of its own: a member that conflicts on every run of the batch (a real
/// `40001` from the server) commits alone once it stops conflicting, and
/// one that never stops gives up alone while the others commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_give_up_is_each_members_own() {
    let (tdb, resolver) = setup_with(Backend::Postgres, "batch_give_up", |b| {
        b.retries(2).backoff(conflictkit::resolver::Backoff::none())
    })
    .await;
    let hooks = Arc::new(AtomicU32::new(0));
    let (held, gate) = holder(&resolver, &hooks).await;
    // conflicts on its first `n` runs (`None`: on every run)
    let conflicting = |note: &'static str, n: Option<u32>| {
        let (resolver, runs) = (resolver.clone(), Arc::new(AtomicU32::new(0)));
        tokio::spawn(async move {
            resolver
                .run_batched(options(), move |txn: &Txn| {
                    let runs = runs.clone();
                    Box::pin(async move {
                        exec(txn, &format!("INSERT INTO notes (note) VALUES ('{note}')")).await?;
                        let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
                        if n.is_none_or(|n| run <= n) {
                            exec(
                                txn,
                                "DO $$ BEGIN RAISE EXCEPTION 'scripted' USING ERRCODE = '40001'; END $$",
                            )
                            .await?;
                        }
                        Ok::<_, Error>(())
                    })
                })
                .await
        })
    };
    // the batch runs 3 times (2 replays): `x`, queued first, conflicts on
    // all of them (ending each run before the others run), and on none
    // after
    let x = conflicting("x", Some(3));
    until_queued(&resolver, 1).await;
    let never = conflicting("never", None);
    until_queued(&resolver, 2).await;
    let b = credit(&resolver, "b", Fate::Ok, &hooks, options());
    until_queued(&resolver, 3).await;
    gate.add_permits(1);
    bounded("the holder", held).await.unwrap().unwrap();
    bounded("x", x).await.unwrap().expect("x commits alone");
    let gave_up = bounded("never", never)
        .await
        .unwrap()
        .expect_err("gives up");
    assert!(matches!(gave_up, Error::Unresolved(_)), "{gave_up}");
    bounded("b", b).await.unwrap().expect("b commits alone");
    assert_eq!(notes(&tdb.db).await, ["a", "b", "x"]);
    assert_eq!(read_balance(&tdb.db, 1).await.unwrap(), 2);
    let stats = resolver.stats();
    assert_eq!((stats.success, stats.unresolved), (3, 1), "{stats:?}");
    let batches = resolver.batch_stats()[LABEL];
    // the holder's, the batch of three, then each of the three alone
    assert_eq!((batches.batches, batches.largest), (5, 3), "{batches:?}");
}
