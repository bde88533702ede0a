//! The SQLite writer queue, on real database files with real concurrent
//! tasks (and processes): FIFO order, reads beside the writer, cancellation,
//! no busy-handler waits inside a process, nesting, two processes on one file.

use crate::common;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Backend, TestDb, create_accounts, read_balance, write_balance};
use conflictkit::resolver::{CallOptions, Contention, SqliteMode};
use conflictkit::{ConflictResolver, Error, Txn};
use sea_orm::{ConnectOptions, ConnectionTrait, Database};
use tokio::sync::{Notify, oneshot};

async fn sqlite(test: &str, pool: u32) -> TestDb {
    let tdb = common::open(Backend::Sqlite, test, pool)
        .await
        .expect("SQLite needs no server");
    create_accounts(&tdb.db, &[(1, 0), (2, 0)]).await;
    tdb
}

/// A resolver without contention control, so that only the writer queue
/// orders the writers.
fn resolver(tdb: &TestDb) -> ConflictResolver {
    ConflictResolver::builder(tdb.db.clone())
        .contention(Contention::Off)
        .build()
}

/// Fails the test instead of hanging when the queue misbehaves.
async fn bounded<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within 60 s"))
}

/// Waits until `n` writers queue for the slot.
async fn queued(r: &ConflictResolver, n: usize) {
    bounded(&format!("{n} queued writers"), async {
        while r.sqlite_writers_waiting() != Some(n) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
}

/// A writer that adds `amount` to account 1 and records its turn; the first
/// statement runs only once the slot is held (immediate mode).
async fn add(r: &ConflictResolver, amount: i64, order: &Mutex<Vec<i64>>) -> Result<i64, Error> {
    r.managed(|txn: &Txn| {
        Box::pin(async move {
            order.lock().unwrap().push(amount);
            let b = read_balance(txn, 1).await?;
            write_balance(txn, 1, b + amount).await?;
            Ok(b + amount)
        })
    })
    .await
}

/// A writer that holds the slot (it wrote account 2) until `release` fires,
/// telling `holding` once it is inside its transaction.
fn hold(
    r: &ConflictResolver,
    holding: Arc<Notify>,
    release: oneshot::Receiver<()>,
) -> tokio::task::JoinHandle<Result<(), Error>> {
    let r = r.clone();
    let release = Arc::new(tokio::sync::Mutex::new(Some(release)));
    tokio::spawn(async move {
        r.managed(|txn: &Txn| {
            let holding = holding.clone();
            let release = release.clone();
            Box::pin(async move {
                write_balance(txn, 2, 100).await?;
                holding.notify_one();
                if let Some(rx) = release.lock().await.take() {
                    let _ = rx.await;
                }
                Ok(())
            })
        })
        .await
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_take_the_slot_in_arrival_order() {
    let tdb = sqlite("fifo", 8).await;
    let r = resolver(&tdb);
    let holding = Arc::new(Notify::new());
    let (release, rx) = oneshot::channel();
    let holder = hold(&r, holding.clone(), rx);
    bounded("holder inside", holding.notified()).await;

    let order = Arc::new(Mutex::new(Vec::new()));
    let mut writers = Vec::new();
    for (i, amount) in [1, 10, 100, 1000].into_iter().enumerate() {
        let (r2, order) = (r.clone(), order.clone());
        writers.push(tokio::spawn(async move { add(&r2, amount, &order).await }));
        queued(&r, i + 1).await;
    }
    release.send(()).expect("holder waiting");
    bounded("holder", holder).await.unwrap().unwrap();
    let mut results = Vec::new();
    for w in writers {
        results.push(bounded("writer", w).await.unwrap().unwrap());
    }
    assert_eq!(*order.lock().unwrap(), vec![1, 10, 100, 1000]);
    assert_eq!(results, vec![1, 11, 111, 1111]);
    assert_eq!(r.stats().retries, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_do_not_queue_behind_the_writer() {
    let tdb = sqlite("reads_bypass", 8).await;
    let r = resolver(&tdb);
    let holding = Arc::new(Notify::new());
    let (release, rx) = oneshot::channel();
    let holder = hold(&r, holding.clone(), rx);
    bounded("holder inside", holding.notified()).await;

    // a read-only call, and a deferred call that only reads, both finish
    // while the writer still holds the slot (WAL: they see the last commit)
    let read_only = r.run(
        CallOptions::new("tests::read_only").read_only(true),
        |txn: &Txn| Box::pin(async move { Ok::<_, Error>(read_balance(txn, 2).await?) }),
    );
    assert_eq!(bounded("read-only call", read_only).await.unwrap(), 0);
    let deferred = r.run(
        CallOptions::new("tests::deferred_read").sqlite_mode(SqliteMode::Deferred),
        |txn: &Txn| Box::pin(async move { Ok::<_, Error>(read_balance(txn, 1).await?) }),
    );
    assert_eq!(bounded("deferred read", deferred).await.unwrap(), 0);
    assert_eq!(r.sqlite_writers_waiting(), Some(0));

    release.send(()).expect("holder waiting");
    bounded("holder", holder).await.unwrap().unwrap();
    assert_eq!(read_balance(&tdb.db, 2).await.unwrap(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_writer_releases_nothing_it_did_not_take() {
    let tdb = sqlite("cancel_queued", 8).await;
    let r = resolver(&tdb);
    let order = Arc::new(Mutex::new(Vec::new()));
    let holding = Arc::new(Notify::new());
    let (release, rx) = oneshot::channel();
    let holder = hold(&r, holding.clone(), rx);
    bounded("holder inside", holding.notified()).await;

    let (r1, o1) = (r.clone(), order.clone());
    let cancelled = tokio::spawn(async move { add(&r1, 1, &o1).await });
    queued(&r, 1).await;
    let (r2, o2) = (r.clone(), order.clone());
    let second = tokio::spawn(async move { add(&r2, 10, &o2).await });
    queued(&r, 2).await;
    cancelled.abort();
    assert!(cancelled.await.unwrap_err().is_cancelled());
    queued(&r, 1).await;

    release.send(()).expect("holder waiting");
    bounded("holder", holder).await.unwrap().unwrap();
    assert_eq!(bounded("second", second).await.unwrap().unwrap(), 10);
    assert_eq!(
        *order.lock().unwrap(),
        vec![10],
        "the cancelled writer never ran"
    );

    // still exactly one slot: a new holder makes the next writer queue
    let (release, rx) = oneshot::channel();
    let holder = hold(&r, holding.clone(), rx);
    bounded("holder inside", holding.notified()).await;
    let (r3, o3) = (r.clone(), order.clone());
    let third = tokio::spawn(async move { add(&r3, 100, &o3).await });
    queued(&r, 1).await;
    assert_eq!(*order.lock().unwrap(), vec![10], "the third writer waits");
    release.send(()).expect("holder waiting");
    bounded("holder", holder).await.unwrap().unwrap();
    assert_eq!(bounded("third", third).await.unwrap().unwrap(), 110);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_writer_cancelled_inside_its_transaction_rolls_back_and_frees_the_slot() {
    let tdb = sqlite("cancel_holder", 8).await;
    let r = resolver(&tdb);
    let holding = Arc::new(Notify::new());
    let (_never_released, rx) = oneshot::channel();
    let holder = hold(&r, holding.clone(), rx);
    bounded("holder inside", holding.notified()).await;
    let order = Mutex::new(Vec::new());
    let next = add(&r, 5, &order);
    holder.abort();
    assert!(holder.await.unwrap_err().is_cancelled());
    assert_eq!(bounded("next writer", next).await.unwrap(), 5);
    assert_eq!(
        read_balance(&tdb.db, 2).await.unwrap(),
        0,
        "the cancelled write rolled back"
    );
}

/// With `busy_timeout` 0, a writer that met another writer of the process on
/// SQLite's lock would fail at once with SQLITE_BUSY (a conflict, replayed):
/// zero replays over 16 × 50 concurrent read-modify-writes shows that no
/// writer ever waited on the lock instead of the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_of_one_process_never_meet_on_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("busy.db").display());
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(8)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(Duration::ZERO)
        });
    let db = Database::connect(options).await.unwrap();
    create_accounts(&db, &[(1, 0)]).await;
    for mode in [SqliteMode::Immediate, SqliteMode::Exclusive] {
        let r = ConflictResolver::builder(db.clone())
            .sqlite_mode(mode)
            .build();
        let order = Arc::new(Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (r, order) = (r.clone(), order.clone());
                tokio::spawn(async move {
                    for _ in 0..50 {
                        add(&r, 1, &order).await?;
                    }
                    Ok::<_, Error>(())
                })
            })
            .collect();
        for t in tasks {
            bounded("writers", t).await.unwrap().unwrap();
        }
        let s = r.stats();
        assert_eq!(
            (s.success, s.retries, s.unresolved),
            (800, 0, 0),
            "{mode:?}"
        );
    }
    assert_eq!(read_balance(&db, 1).await.unwrap(), 1600);
}

/// Deferred writers read beside each other; the one that writes while
/// another holds the slot conflicts at once and replays behind the queue:
/// never a second conflict for one call, whatever the interleaving. First
/// two calls read, meet, then both write: one of them conflicts (in
/// immediate mode the second could not even begin before the first
/// committed, and the two would never meet).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deferred_writers_conflict_at_most_once_per_call() {
    let tdb = sqlite("deferred", 8).await;
    let r = ConflictResolver::builder(tdb.db.clone())
        .sqlite_mode(SqliteMode::Deferred)
        .retries(1)
        .build();
    let both_read = Arc::new(tokio::sync::Barrier::new(2));
    let pair: Vec<_> = (0..2)
        .map(|_| {
            let (r, both_read) = (r.clone(), both_read.clone());
            tokio::spawn(async move {
                r.managed(|txn: &Txn| {
                    let both_read = both_read.clone();
                    Box::pin(async move {
                        let b = read_balance(txn, 1).await?;
                        if txn.attempt() == 1 {
                            both_read.wait().await;
                        }
                        write_balance(txn, 1, b + 1).await?;
                        Ok::<_, Error>(())
                    })
                })
                .await
            })
        })
        .collect();
    for p in pair {
        bounded("the two calls that meet", p)
            .await
            .unwrap()
            .unwrap();
    }
    let met = r.stats();
    assert_eq!(
        (met.success, met.retries, met.unresolved),
        (2, 1, 0),
        "the calls that met after their reads: one conflict, replayed once"
    );
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let r = r.clone();
            tokio::spawn(async move {
                let order = Mutex::new(Vec::new());
                for _ in 0..25 {
                    add(&r, 1, &order).await?;
                }
                Ok::<_, Error>(())
            })
        })
        .collect();
    for t in tasks {
        bounded("writers", t).await.unwrap().unwrap();
    }
    let s = r.stats();
    assert_eq!((s.success, s.unresolved), (402, 0), "{s:?}");
    assert_eq!(read_balance(&tdb.db, 1).await.unwrap(), 402);
}

#[tokio::test]
async fn a_nested_call_through_another_resolver_fails_at_once() {
    let tdb = sqlite("nested", 4).await;
    let outer = resolver(&tdb);
    let other = resolver(&tdb);
    let result: Result<(), Error> = bounded(
        "nested call",
        outer.run(CallOptions::new("tests::outer"), |txn: &Txn| {
            let other = other.clone();
            Box::pin(async move {
                write_balance(txn, 1, 7).await?;
                other
                    .run(CallOptions::new("tests::inner"), |inner: &Txn| {
                        Box::pin(async move { Ok::<_, Error>(write_balance(inner, 2, 7).await?) })
                    })
                    .await
            })
        }),
    )
    .await;
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("tests::inner") && err.contains("tests::outer"),
        "{err}"
    );
    assert!(err.contains("same database"), "{err}");
    assert_eq!(read_balance(&tdb.db, 1).await.unwrap(), 0, "rolled back");
}

/// A guard moved to another task holds the slot there: a managed call of
/// the task that opened it waits its turn instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_moved_to_another_task_is_waited_for() {
    let tdb = sqlite("moved_guard_slot", 2).await;
    let r = resolver(&tdb);
    let guard = r.transaction().await.unwrap();
    let (go, wait) = oneshot::channel::<()>();
    let (wrote, has_written) = oneshot::channel::<()>();
    let other = tokio::spawn(async move {
        write_balance(&guard, 2, 7).await.unwrap();
        wrote.send(()).unwrap();
        wait.await.unwrap();
        guard.commit().await.unwrap();
    });
    has_written.await.unwrap();
    let call = {
        let r = r.clone();
        tokio::spawn(async move {
            r.managed(|txn: &Txn| {
                Box::pin(async move {
                    let b = read_balance(txn, 2).await?;
                    write_balance(txn, 1, b).await?;
                    Ok::<_, Error>(b)
                })
            })
            .await
        })
    };
    queued(&r, 1).await;
    go.send(()).unwrap();
    other.await.unwrap();
    let seen = bounded("the queued call", call).await.unwrap().unwrap();
    assert_eq!(seen, 7, "it ran after the guard committed");
}

/// Two processes on one file: the busy handler orders them, the queue orders
/// each one's tasks; no lost update and no give-up at the default retries.
/// The two meet in the file after their first commits, so each one's first
/// commit comes before the other's last: the spans of counter values they
/// report show that they ran at once. The no-give-up result rests on
/// SQLite's busy handler (sqlx's default `busy_timeout`, 5 s): a writer of
/// one process stalled 5 s by the other's would be replayed, and 4 such
/// stalls in a row would give up.
#[test]
fn two_processes_share_one_file() {
    let bin = common::example_binary("shared_sqlite_file", "tests/bin/shared_sqlite_file.rs");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shared.db");
    // create the file first so both processes open the same WAL database
    let setup = std::process::Command::new(&bin)
        .args([file.to_str().unwrap(), "1", "1"])
        .output()
        .expect("run the example");
    assert!(
        setup.status.success(),
        "the setup run: {}\n{}",
        String::from_utf8_lossy(&setup.stdout),
        String::from_utf8_lossy(&setup.stderr)
    );
    let children: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(&bin)
                .args([file.to_str().unwrap(), "8", "100", "2"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn the example")
        })
        .collect();
    let mut spans = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("success 800 ") && text.ends_with("unresolved 0\n"),
            "{text}"
        );
        let span: Vec<i64> = text
            .lines()
            .find_map(|l| l.strip_prefix("span first "))
            .and_then(|l| l.split_once(" last "))
            .map(|(f, l)| vec![f.parse().unwrap(), l.parse().unwrap()])
            .unwrap_or_else(|| panic!("no span line: {text}"));
        spans.push((span[0], span[1]));
    }
    // each one's first commit came before the other's last (the setup run
    // committed value 1)
    assert!(
        spans.iter().all(|&(first, _)| first > 1)
            && spans.iter().map(|s| s.0).max() < spans.iter().map(|s| s.1).min(),
        "the two processes did not overlap: {spans:?}"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let n: i64 = rt.block_on(async {
        let db = Database::connect(format!("sqlite://{}", file.display()))
            .await
            .unwrap();
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Sqlite,
                "SELECT n FROM counter WHERE id = 1",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get("", "n").unwrap()
    });
    assert_eq!(n, 1 + 2 * 800);
}
