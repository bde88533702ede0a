//! `#[managed_transaction]` and `#[managed_non_retryable_transaction]` against
//! real PostgreSQL and SQLite: the original's conflict scenarios run through
//! annotated functions, with real conflicts choreographed by barriers on the
//! first runs, plus methods, generics, borrowed arguments, return values and
//! user error enums.

use crate::common;
use std::time::Duration;

use common::{Backend, TestDb};
use conflictkit::resolver::{Backoff, Contention, Stats};
use conflictkit::{
    CannotResolveDatabaseConflict, ConflictResolver, Txn, managed_non_retryable_transaction,
    managed_transaction,
};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};
use tokio::sync::{Barrier, watch};

const BACKENDS: [Backend; 2] = [Backend::Postgres, Backend::Sqlite];

// ---------------------------------------------------------------- fixtures

/// A database with `account(id, balance, name)` holding account 1 with balance 10
/// (the original's fixture) and account 2 with balance 0.
async fn setup(backend: Backend, test: &str) -> Option<TestDb> {
    let tdb = common::open(backend, test, 8).await?;
    tdb.db
        .execute_unprepared(
            "CREATE TABLE account (id INTEGER PRIMARY KEY, balance BIGINT NOT NULL, name TEXT NOT NULL DEFAULT '')",
        )
        .await
        .expect("create table");
    tdb.db
        .execute_unprepared("INSERT INTO account (id, balance) VALUES (1, 10), (2, 0)")
        .await
        .expect("insert accounts");
    Some(tdb)
}

/// A resolver with `retries` replays, no backoff sleep and no contention
/// control: the scripts below choose who conflicts in which round, and the
/// control would reorder them (a call's last replay runs alone, across
/// resolvers too, through a database lock).
fn resolver(tdb: &TestDb, retries: u32) -> ConflictResolver {
    ConflictResolver::builder(tdb.db.clone())
        .retries(retries)
        .backoff(Backoff::none())
        .contention(Contention::Off)
        .build()
}

/// A statement written with `?` placeholders, numbered for PostgreSQL.
fn stmt(backend: DbBackend, sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    let sql = if backend == DbBackend::Postgres {
        let mut n = 0;
        sql.split('?')
            .enumerate()
            .map(|(i, part)| {
                if i == 0 {
                    part.to_owned()
                } else {
                    n += 1;
                    format!("${n}{part}")
                }
            })
            .collect()
    } else {
        sql.to_owned()
    };
    Statement::from_sql_and_values(backend, sql, values)
}

async fn balance(c: &impl ConnectionTrait, id: i32) -> Result<i64, DbErr> {
    let backend = c.get_database_backend();
    let row = c
        .query_one_raw(stmt(
            backend,
            "SELECT balance FROM account WHERE id = ?",
            [id.into()],
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("account {id}")))?;
    row.try_get("", "balance")
}

async fn set_balance(c: &impl ConnectionTrait, id: i32, value: i64) -> Result<(), DbErr> {
    let backend = c.get_database_backend();
    c.execute_raw(stmt(
        backend,
        "UPDATE account SET balance = ? WHERE id = ?",
        [value.into(), id.into()],
    ))
    .await?;
    Ok(())
}

fn stats(retries: u64, success: u64, errors: u64, unresolved: u64) -> Stats {
    Stats {
        success,
        retries,
        errors,
        unresolved,
    }
}

/// Fails the test instead of hanging when a choreography deadlocks.
async fn bounded<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: the scenario did not finish within 60 s"))
}

// ---------------------------------------------------------------- choreography

/// Who wins each conflicting round. In round `n` (= attempt `n`) the callers
/// still running read the row, meet at a barrier, then the winner writes and
/// commits while the others wait for the winner's call to finish before
/// writing: their snapshots are stale, so the database reports a real
/// serialization conflict (PostgreSQL 40001, SQLite BUSY_SNAPSHOT).
struct Script {
    rounds: Vec<(Barrier, usize)>,
    done: Vec<watch::Sender<bool>>,
}

impl Script {
    /// `rounds[i] = (callers reading in round i + 1, winner of that round)`.
    fn new(callers: usize, rounds: &[(usize, usize)]) -> Self {
        Script {
            rounds: rounds
                .iter()
                .map(|&(n, winner)| (Barrier::new(n), winner))
                .collect(),
            done: (0..callers).map(|_| watch::channel(false).0).collect(),
        }
    }

    /// Called by caller `me` between its read and its write.
    async fn after_read(&self, txn: &Txn, me: usize) {
        let Some((barrier, winner)) = self.rounds.get(txn.attempt() as usize - 1) else {
            return;
        };
        barrier.wait().await;
        if *winner != me {
            let mut done = self.done[*winner].subscribe();
            done.wait_for(|d| *d).await.expect("winner signal");
        }
    }

    /// Called by the driver when caller `me`'s managed call has returned.
    fn finish(&self, me: usize) {
        self.done[me].send_replace(true);
    }
}

// ---------------------------------------------------------------- annotated functions

#[derive(Debug, thiserror::Error)]
enum WalletError {
    #[error("database error")]
    Db(#[from] DbErr),
    #[error(transparent)]
    Unresolved(#[from] CannotResolveDatabaseConflict),
    #[error("account {account} has {balance}, cannot pay {amount}")]
    Insufficient {
        account: i32,
        balance: i64,
        amount: i64,
    },
}

/// The original's `ConflictResolverThread` body: read, (wait), write + 1.
#[managed_transaction(sqlite_mode = "deferred")]
async fn increment(txn: &Txn, id: i32, script: &Script, me: usize) -> Result<i64, WalletError> {
    let b = balance(txn, id).await?;
    script.after_read(txn, me).await;
    set_balance(txn, id, b + 1).await?;
    Ok(b + 1)
}

/// The same body, run once.
#[managed_non_retryable_transaction(sqlite_mode = "deferred", label = "tests.increment_once")]
async fn increment_once(
    txn: &Txn,
    id: i32,
    script: &Script,
    me: usize,
) -> Result<i64, conflictkit::Error> {
    let b = balance(txn, id).await?;
    script.after_read(txn, me).await;
    set_balance(txn, id, b + 1).await?;
    Ok(b + 1)
}

/// Runs `callers` increments of account 1 at once, each with its own resolver
/// (as the original's threads), caller `i` finishing before its losers write.
async fn race(
    tdb: &TestDb,
    script: &Script,
    callers: usize,
    retries: u32,
    once: bool,
) -> (Vec<Result<i64, String>>, Stats) {
    let resolvers: Vec<_> = (0..callers).map(|_| resolver(tdb, retries)).collect();
    let calls = resolvers.iter().enumerate().map(|(me, r)| async move {
        let result = if once {
            increment_once(r, 1, script, me)
                .await
                .map_err(|e| describe_ck(&e))
        } else {
            increment(r, 1, script, me).await.map_err(|e| describe(&e))
        };
        script.finish(me);
        result
    });
    let results = bounded("race", futures::future::join_all(calls)).await;
    (results, resolvers.iter().map(ConflictResolver::stats).sum())
}

fn unresolved(c: &CannotResolveDatabaseConflict) -> String {
    format!("unresolved {} after {}", c.label(), c.attempts())
}

fn describe(e: &WalletError) -> String {
    match e {
        WalletError::Unresolved(c) => unresolved(c),
        other => other.to_string(),
    }
}

fn describe_ck(e: &conflictkit::Error) -> String {
    match e {
        conflictkit::Error::Unresolved(c) => unresolved(c),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------- the original's scenarios

#[tokio::test]
async fn conflict_resolved() {
    for backend in BACKENDS {
        let Some(tdb) = setup(backend, "conflict_resolved").await else {
            continue;
        };
        let script = Script::new(2, &[(2, 0)]);
        let (results, stats_sum) = race(&tdb, &script, 2, 1, false).await;
        assert_eq!(results, vec![Ok(11), Ok(12)], "{backend:?}");
        assert_eq!(balance(&tdb.db, 1).await.unwrap(), 12, "{backend:?}");
        assert_eq!(stats_sum, stats(1, 2, 0, 0), "{backend:?}");
    }
}

/// PostgreSQL only: on SQLite a replay queues for the write slot and cannot
/// conflict again inside the process (see the next test).
#[tokio::test]
async fn give_up_names_the_function() {
    for backend in [Backend::Postgres] {
        let Some(tdb) = setup(backend, "give_up").await else {
            continue;
        };
        // round 1: 0 wins, 1 and 2 conflict; round 2: 1 wins, 2 conflicts again.
        let script = Script::new(3, &[(3, 0), (2, 1)]);
        let (results, stats_sum) = race(&tdb, &script, 3, 1, false).await;
        let label = concat!(module_path!(), "::increment");
        assert_eq!(
            results,
            vec![Ok(11), Ok(12), Err(format!("unresolved {label} after 2"))],
            "{backend:?}"
        );
        assert_eq!(balance(&tdb.db, 1).await.unwrap(), 12, "{backend:?}");
        assert_eq!(stats_sum, stats(3, 2, 0, 1), "{backend:?}");
    }
}

/// SQLite: the losers of a conflict replay behind the writer queue, one at a
/// time, so the round in which one of them would conflict again on another
/// engine never happens: all three commit, with one replay each.
#[tokio::test]
async fn sqlite_replays_queue_and_do_not_conflict_again() {
    let Some(tdb) = setup(Backend::Sqlite, "replays_queue").await else {
        unreachable!("SQLite needs no server")
    };
    // round 1: 0 wins, 1 and 2 conflict; their replays read after each other.
    let script = Script::new(3, &[(3, 0)]);
    let (mut results, stats_sum) = race(&tdb, &script, 3, 1, false).await;
    results.sort();
    assert_eq!(results, vec![Ok(11), Ok(12), Ok(13)]);
    assert_eq!(balance(&tdb.db, 1).await.unwrap(), 13);
    assert_eq!(stats_sum, stats(2, 3, 0, 0));
}

#[tokio::test]
async fn non_retryable_gives_up_on_the_first_conflict() {
    for backend in BACKENDS {
        let Some(tdb) = setup(backend, "non_retryable").await else {
            continue;
        };
        let script = Script::new(2, &[(2, 0)]);
        // a resolver allowing 5 retries: the attribute still runs once
        let (results, stats_sum) = race(&tdb, &script, 2, 5, true).await;
        assert_eq!(
            results,
            vec![
                Ok(11),
                Err("unresolved tests.increment_once after 1".to_owned())
            ],
            "{backend:?}"
        );
        assert_eq!(balance(&tdb.db, 1).await.unwrap(), 11, "{backend:?}");
        assert_eq!(stats_sum, stats(0, 1, 0, 1), "{backend:?}");
    }
}

#[managed_transaction]
async fn fail_with_user_error(txn: &Txn, id: i32) -> Result<(), WalletError> {
    set_balance(txn, id, 999).await?;
    Err(WalletError::Insufficient {
        account: id,
        balance: 999,
        amount: 1000,
    })
}

#[tokio::test]
async fn other_errors_pass_through_unchanged_and_roll_back() {
    for backend in BACKENDS {
        let Some(tdb) = setup(backend, "other_errors").await else {
            continue;
        };
        let r = resolver(&tdb, 1);
        let err = fail_with_user_error(&r, 1).await.unwrap_err();
        assert!(
            matches!(
                err,
                WalletError::Insufficient {
                    account: 1,
                    balance: 999,
                    amount: 1000
                }
            ),
            "{backend:?}: {err:?}"
        );
        assert_eq!(
            balance(&tdb.db, 1).await.unwrap(),
            10,
            "{backend:?}: the write was rolled back"
        );
        assert_eq!(r.stats(), stats(0, 0, 1, 0), "{backend:?}");
    }
}

// ---------------------------------------------------------------- methods

struct Wallet {
    resolver: ConflictResolver,
}

impl Wallet {
    /// Moves `amount` from `from` to `to`; fails without a trace when funds are short.
    #[managed_transaction(resolver = self.resolver, retries = 2, sqlite_mode = "deferred")]
    async fn transfer(
        &self,
        txn: &Txn,
        from: i32,
        to: i32,
        amount: i64,
        script: &Script,
        me: usize,
    ) -> Result<(i64, i64), WalletError> {
        let a = balance(txn, from).await?;
        script.after_read(txn, me).await;
        set_balance(txn, from, a - amount).await?;
        if a < amount {
            return Err(WalletError::Insufficient {
                account: from,
                balance: a,
                amount,
            });
        }
        let b = balance(txn, to).await? + amount;
        set_balance(txn, to, b).await?;
        Ok((a - amount, b))
    }

    /// No `resolver` option: the transaction parameter becomes the resolver.
    #[managed_transaction(retries = 0)]
    async fn total(&self, txn: &Txn) -> Result<i64, conflictkit::Error> {
        Ok(balance(txn, 1).await? + balance(txn, 2).await?)
    }
}

#[tokio::test]
async fn method_with_resolver_from_self() {
    for backend in BACKENDS {
        let Some(tdb) = setup(backend, "method_resolver").await else {
            continue;
        };
        let wallet = Wallet {
            resolver: resolver(&tdb, 3),
        };
        let script = Script::new(2, &[(2, 0)]);
        let calls = (0..2).map(|me| {
            let (wallet, script) = (&wallet, &script);
            async move {
                let r = wallet
                    .transfer(1, 2, 3, script, me)
                    .await
                    .map_err(|e| e.to_string());
                script.finish(me);
                r
            }
        });
        let results = bounded("transfer", futures::future::join_all(calls)).await;
        // the loser replays after the winner: it sees 7 and leaves 4
        assert_eq!(results, vec![Ok((7, 3)), Ok((4, 6))], "{backend:?}");
        assert_eq!(wallet.resolver.stats(), stats(1, 2, 0, 0), "{backend:?}");
        assert_eq!(
            wallet.total(&wallet.resolver).await.unwrap(),
            10,
            "{backend:?}"
        );

        let idle = Script::new(1, &[]);
        let err = wallet.transfer(1, 2, 100, &idle, 0).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "account 1 has 4, cannot pay 100",
            "{backend:?}"
        );
        assert_eq!(
            balance(&tdb.db, 1).await.unwrap(),
            4,
            "{backend:?}: rolled back"
        );
        assert_eq!(wallet.resolver.stats().errors, 1, "{backend:?}");
    }
}

// ---------------------------------------------------------------- labels, fresh arguments

/// A resolver for which `DbErr::Custom("synthetic conflict")` is a conflict:
/// deterministic replays without a second connection.
fn synthetic(tdb: &TestDb, retries: u32) -> ConflictResolver {
    ConflictResolver::builder(tdb.db.clone())
        .retries(retries)
        .backoff(Backoff::none())
        .retry_if(|e| {
            let mut cur = Some(e);
            std::iter::from_fn(|| {
                let err = cur?;
                cur = err.source();
                Some(err.to_string())
            })
            .any(|m| m.contains("synthetic conflict"))
        })
        .build()
}

fn synthetic_conflict() -> DbErr {
    DbErr::Custom("synthetic conflict".to_owned())
}

struct Ledger;

impl Ledger {
    #[managed_transaction(retries = 2)]
    async fn always_conflicts(&self, txn: &Txn) -> Result<(), WalletError> {
        let _ = txn;
        Err(synthetic_conflict().into())
    }
}

#[managed_transaction(label = "wallet.top_up", retries = 1)]
async fn labelled(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Err(synthetic_conflict().into())
}

#[tokio::test]
async fn labels_in_the_give_up_error() {
    for backend in BACKENDS {
        let Some(tdb) = setup(backend, "labels").await else {
            continue;
        };
        let r = synthetic(&tdb, 5);
        let WalletError::Unresolved(e) = Ledger.always_conflicts(&r).await.unwrap_err() else {
            panic!("{backend:?}: expected a give-up")
        };
        assert_eq!(
            e.label(),
            concat!(module_path!(), "::Ledger::always_conflicts"),
            "{backend:?}"
        );
        assert_eq!(
            (e.attempts(), e.retries()),
            (3, 2),
            "{backend:?}: the attribute's retries win"
        );
        assert!(
            e.to_string()
                .contains(concat!("`", module_path!(), "::Ledger::always_conflicts`")),
            "{e}"
        );
        // source(): the last error of the body (the user's enum), then its DbErr
        let last = std::error::Error::source(&e).expect("last conflict");
        assert_eq!(last.to_string(), "database error");
        assert_eq!(
            last.source().map(ToString::to_string).as_deref(),
            Some("Custom Error: synthetic conflict")
        );

        let err = labelled(&r).await.unwrap_err();
        assert!(
            err.to_string().contains("`wallet.top_up`"),
            "{backend:?}: {err}"
        );
        assert_eq!(r.stats(), stats(5, 0, 0, 2), "{backend:?}");
    }
}

/// Each run gets a fresh copy of `log` (and of the tuple), so the first run's
/// push is gone in the second.
#[managed_transaction]
async fn fresh_copies(
    txn: &Txn,
    mut log: Vec<u32>,
    (a, b): (i64, i64),
) -> Result<(Vec<u32>, i64), conflictkit::Error> {
    log.push(txn.attempt());
    if txn.attempt() == 1 {
        return Err(synthetic_conflict().into());
    }
    Ok((log, a + b))
}

#[tokio::test]
async fn arguments_are_fresh_on_each_run() {
    for backend in BACKENDS {
        let Some(tdb) = setup(backend, "fresh").await else {
            continue;
        };
        let r = synthetic(&tdb, 3);
        assert_eq!(
            fresh_copies(&r, vec![7], (1, 2)).await.unwrap(),
            (vec![7, 2], 3),
            "{backend:?}"
        );
        assert_eq!(r.stats(), stats(1, 1, 0, 0), "{backend:?}");
    }
}

// ---------------------------------------------------------------- generics, borrows, return values

/// Generic over the amount type, with a where-clause and a borrowed slice.
#[managed_transaction]
async fn deposit_all<T>(txn: &Txn, id: i32, amounts: &[T]) -> Result<i64, conflictkit::Error>
where
    T: Copy + Into<i64> + Sync,
{
    let total = balance(txn, id).await? + amounts.iter().map(|&a| a.into()).sum::<i64>();
    set_balance(txn, id, total).await?;
    Ok(total)
}

/// A borrowed `&str` in, an owned `String` out; generic owned argument too.
#[managed_transaction(isolation = "repeatable_read")]
async fn rename<S: Clone + Send + std::fmt::Display>(
    txn: &Txn,
    id: i32,
    name: &str,
    suffix: S,
) -> Result<String, WalletError> {
    let full = format!("{name}-{suffix}");
    let backend = txn.get_database_backend();
    txn.execute_raw(stmt(
        backend,
        "UPDATE account SET name = ? WHERE id = ?",
        [full.clone().into(), id.into()],
    ))
    .await?;
    let row = txn
        .query_one_raw(stmt(
            backend,
            "SELECT name FROM account WHERE id = ?",
            [id.into()],
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("account {id}")))?;
    Ok(row.try_get("", "name")?)
}

#[managed_transaction(read_only)]
async fn read_both(txn: &Txn) -> Result<Vec<i64>, conflictkit::Error> {
    Ok(vec![balance(txn, 1).await?, balance(txn, 2).await?])
}

#[tokio::test]
async fn generics_borrows_and_return_values() {
    for backend in BACKENDS {
        let Some(tdb) = setup(backend, "generics").await else {
            continue;
        };
        let r = resolver(&tdb, 3);
        assert_eq!(
            deposit_all(&r, 2, &[1i32, 2, 3]).await.unwrap(),
            6,
            "{backend:?}"
        );
        assert_eq!(
            deposit_all::<u8>(&r, 2, &[4]).await.unwrap(),
            10,
            "{backend:?}"
        );
        let name = String::from("alice");
        assert_eq!(
            rename(&r, 1, &name, 7u8).await.unwrap(),
            "alice-7",
            "{backend:?}"
        );
        assert_eq!(
            rename(&r, 2, "bob", "x".to_owned()).await.unwrap(),
            "bob-x",
            "{backend:?}"
        );
        assert_eq!(read_both(&r).await.unwrap(), vec![10, 10], "{backend:?}");
        assert_eq!(r.stats(), stats(0, 5, 0, 0), "{backend:?}");
    }
}

#[tokio::test]
async fn read_only_option_reaches_the_database() {
    // PostgreSQL refuses writes in a READ ONLY transaction (SQLSTATE 25006).
    let Some(tdb) = setup(Backend::Postgres, "read_only").await else {
        return;
    };
    #[managed_transaction(read_only)]
    async fn write_in_read_only(txn: &Txn) -> Result<(), conflictkit::Error> {
        set_balance(txn, 1, 0).await?;
        Ok(())
    }
    let r = resolver(&tdb, 0);
    let err = write_in_read_only(&r).await.unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
    assert_eq!(balance(&tdb.db, 1).await.unwrap(), 10);
}

// ---------------------------------------------------------------- nesting through the macro

#[managed_transaction]
async fn inner_read(txn: &Txn, id: i32) -> Result<i64, conflictkit::Error> {
    balance(txn, id).await.map_err(Into::into)
}

/// Calls another managed function with its own `resolver` parameter: the
/// inner call joins this transaction and sees its uncommitted write.
#[managed_transaction]
async fn outer_write_then_read(txn: &Txn, id: i32) -> Result<i64, conflictkit::Error> {
    set_balance(txn, id, 50).await?;
    inner_read(resolver, id).await
}

#[tokio::test]
async fn nested_call_joins_the_outer_transaction() {
    for backend in BACKENDS {
        let Some(tdb) = setup(backend, "nested").await else {
            continue;
        };
        let r = resolver(&tdb, 3);
        assert_eq!(
            outer_write_then_read(&r, 1).await.unwrap(),
            50,
            "{backend:?}"
        );
        assert_eq!(
            r.stats(),
            stats(0, 1, 0, 0),
            "{backend:?}: one managed call, the inner one joined"
        );
    }
}

// ---------------------------------------------------------------- nested calls as savepoints

const ALL_ENGINES: [Backend; 3] = [Backend::Postgres, Backend::MySql, Backend::Sqlite];

/// Debits `amount` from `id`: writes first, then refuses when the balance
/// was too low (as a ledger entry written before the check would).
#[managed_transaction]
async fn debit_or_refuse(
    txn: &Txn,
    id: i32,
    amount: i64,
    hooks: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> Result<i64, WalletError> {
    let b = balance(txn, id).await?;
    set_balance(txn, id, b - amount).await?;
    txn.after_commit(move || {
        hooks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    });
    if b < amount {
        return Err(WalletError::Insufficient {
            account: id,
            balance: b,
            amount,
        });
    }
    Ok(b - amount)
}

/// Writes account 2, then debits account 1 through a nested managed call and
/// handles a refusal.
#[managed_transaction]
async fn pay_or_refuse(
    txn: &Txn,
    amount: i64,
    hooks: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> Result<&'static str, WalletError> {
    set_balance(txn, 2, 7).await?;
    match debit_or_refuse(resolver, 1, amount, hooks).await {
        Ok(_) => Ok("paid"),
        Err(WalletError::Insufficient { .. }) => Ok("refused"),
        Err(e) => Err(e),
    }
}

#[tokio::test]
async fn a_failed_nested_call_takes_back_its_writes_and_hooks_and_the_caller_commits() {
    for backend in ALL_ENGINES {
        let Some(tdb) = setup(backend, "nested_refused").await else {
            continue;
        };
        let r = resolver(&tdb, 3);
        let hooks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        assert_eq!(
            pay_or_refuse(&r, 100, hooks.clone()).await.unwrap(),
            "refused",
            "{backend:?}"
        );
        assert_eq!(
            balance(&tdb.db, 1).await.unwrap(),
            10,
            "{backend:?}: the refused debit's write was rolled back to its savepoint"
        );
        assert_eq!(
            balance(&tdb.db, 2).await.unwrap(),
            7,
            "{backend:?}: the caller's own write committed"
        );
        assert_eq!(
            hooks.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "{backend:?}: the refused debit's hook never ran"
        );
        assert_eq!(pay_or_refuse(&r, 4, hooks.clone()).await.unwrap(), "paid");
        assert_eq!(balance(&tdb.db, 1).await.unwrap(), 6, "{backend:?}");
        assert_eq!(
            hooks.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "{backend:?}: a nested call that succeeded runs its hook once, after the commit"
        );
        assert_eq!(r.stats(), stats(0, 2, 0, 0), "{backend:?}: two outer calls");
    }
}

/// Inserts account 1 again: a duplicate key, which on PostgreSQL aborts the
/// whole transaction until it is rolled back to a savepoint.
#[managed_transaction]
async fn insert_duplicate(txn: &Txn) -> Result<(), WalletError> {
    txn.execute_unprepared("INSERT INTO account (id, balance) VALUES (1, 0)")
        .await?;
    Ok(())
}

#[managed_transaction]
async fn tolerate_a_nested_statement_error(txn: &Txn) -> Result<bool, WalletError> {
    set_balance(txn, 2, 3).await?;
    let failed = insert_duplicate(resolver).await.is_err();
    set_balance(txn, 2, 4).await?;
    Ok(failed)
}

#[tokio::test]
async fn a_statement_error_rolled_back_with_its_nested_call_does_not_fail_the_caller() {
    for backend in ALL_ENGINES {
        let Some(tdb) = setup(backend, "nested_statement_error").await else {
            continue;
        };
        let r = resolver(&tdb, 3);
        assert!(
            tolerate_a_nested_statement_error(&r).await.unwrap(),
            "{backend:?}: the nested call failed"
        );
        assert_eq!(
            balance(&tdb.db, 2).await.unwrap(),
            4,
            "{backend:?}: the caller went on after the savepoint's rollback and committed"
        );
    }
}

/// Swallows a duplicate-key error *without* a savepoint around it: on
/// PostgreSQL the transaction is aborted and the call must not report
/// success; elsewhere only that statement failed.
#[managed_transaction]
async fn swallow_a_statement_error_in_a_nested_call(txn: &Txn) -> Result<(), WalletError> {
    set_balance(txn, 2, 5).await?;
    swallowing_nested(resolver).await
}

#[managed_transaction]
async fn swallowing_nested(txn: &Txn) -> Result<(), WalletError> {
    let _ignored = txn
        .execute_unprepared("INSERT INTO account (id, balance) VALUES (1, 0)")
        .await;
    Ok(())
}

#[tokio::test]
async fn an_error_swallowed_inside_a_nested_call_still_counts() {
    for backend in ALL_ENGINES {
        let Some(tdb) = setup(backend, "nested_swallowed").await else {
            continue;
        };
        let r = resolver(&tdb, 3);
        let result = swallow_a_statement_error_in_a_nested_call(&r).await;
        if backend == Backend::Postgres {
            let err = result.expect_err("PostgreSQL aborted the transaction");
            assert_eq!(
                balance(&tdb.db, 2).await.unwrap(),
                0,
                "nothing committed: {err}"
            );
        } else {
            result.unwrap_or_else(|e| panic!("{backend:?}: only the statement failed: {e}"));
            assert_eq!(balance(&tdb.db, 2).await.unwrap(), 5, "{backend:?}");
        }
    }
}

#[managed_transaction(isolation = "read_committed")]
async fn read_committed_read(txn: &Txn, id: i32) -> Result<i64, WalletError> {
    Ok(balance(txn, id).await?)
}

#[managed_transaction(read_only)]
async fn read_only_read(txn: &Txn, id: i32) -> Result<i64, WalletError> {
    Ok(balance(txn, id).await?)
}

#[managed_transaction(timeout = "5s")]
async fn read_in_time(txn: &Txn, id: i32) -> Result<i64, WalletError> {
    Ok(balance(txn, id).await?)
}

/// The refusals of a nested call's options that cannot apply inside this
/// call, as their messages.
#[managed_transaction]
async fn nested_options_refused(txn: &Txn) -> Result<Vec<String>, WalletError> {
    let _ = txn;
    let mut refused = Vec::new();
    for result in [
        read_committed_read(resolver, 1).await,
        read_only_read(resolver, 1).await,
        read_in_time(resolver, 1).await,
    ] {
        match result {
            Err(WalletError::Db(e)) => {
                let found = conflictkit::resolver::NestedOption::find(&e)
                    .map(|n| (n.label().to_owned(), e.to_string()));
                refused.push(
                    found.map_or_else(|| format!("other: {e}"), |(l, m)| format!("{l}: {m}")),
                );
            }
            other => refused.push(format!("not refused: {other:?}")),
        }
    }
    Ok(refused)
}

#[tokio::test]
async fn nested_options_that_cannot_apply_are_refused_with_a_typed_error() {
    let Some(tdb) = setup(Backend::Sqlite, "nested_options").await else {
        return;
    };
    let r = resolver(&tdb, 3);
    let refused = nested_options_refused(&r).await.unwrap();
    assert_eq!(refused.len(), 3);
    assert!(
        refused[0].contains("read_committed_read")
            && refused[0].contains("isolation `read_committed`")
            && refused[0].contains("isolation `serializable`"),
        "{}",
        refused[0]
    );
    assert!(
        refused[1].contains("read_only_read") && refused[1].contains("`read_only`"),
        "{}",
        refused[1]
    );
    assert!(
        refused[2].contains("read_in_time") && refused[2].contains("time budget"),
        "{}",
        refused[2]
    );
}

/// A nested body whose first run fails with an error the resolver counts as
/// a conflict (`retry_if`); `runs` counts the nested body's runs.
#[managed_transaction]
async fn nested_conflict_once(
    txn: &Txn,
    runs: std::sync::Arc<std::sync::atomic::AtomicU32>,
) -> Result<(), WalletError> {
    runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    set_balance(txn, 1, 77).await?;
    if txn.attempt() == 1 {
        return Err(DbErr::Custom("conflict for the test".into()).into());
    }
    Ok(())
}

#[managed_transaction]
async fn outer_of_a_conflict(
    txn: &Txn,
    runs: std::sync::Arc<std::sync::atomic::AtomicU32>,
) -> Result<u32, WalletError> {
    set_balance(txn, 2, 1).await?;
    nested_conflict_once(resolver, runs).await?;
    Ok(txn.attempt())
}

#[tokio::test]
async fn a_conflict_in_a_nested_call_replays_the_whole_outer_call() {
    for backend in ALL_ENGINES {
        let Some(tdb) = setup(backend, "nested_conflict").await else {
            continue;
        };
        let r = ConflictResolver::builder(tdb.db.clone())
            .retries(3)
            .backoff(Backoff::none())
            .contention(Contention::Off)
            .retry_if(|e| {
                std::iter::successors(Some(e), |e| e.source())
                    .any(|e| e.to_string().contains("conflict for the test"))
            })
            .build();
        let runs = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        assert_eq!(
            outer_of_a_conflict(&r, runs.clone()).await.unwrap(),
            2,
            "{backend:?}: the outer call committed on its replay"
        );
        assert_eq!(
            runs.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "{backend:?}"
        );
        assert_eq!(
            r.stats(),
            stats(1, 1, 0, 0),
            "{backend:?}: one replay of the outer call"
        );
        assert_eq!(balance(&tdb.db, 1).await.unwrap(), 77, "{backend:?}");
    }
}
