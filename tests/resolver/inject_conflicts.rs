//! Conflict injection on a real SQLite database: a replay-unsafe body is
//! caught, the sequence repeats with a seed, and injection alone never
//! makes a call give up.

use crate::common;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use common::{Backend, create_accounts, read_balance, write_balance};
use conflictkit::resolver::{ConflictCode, InjectConflicts, Stats};
use conflictkit::{ConflictResolver, Error, Txn};

/// Ten credits of one account; each call "sends a notification" twice: once
/// straight from the body (replay-unsafe) and once from an after-commit hook.
async fn credits(inject: InjectConflicts) -> (i64, u32, u32, Stats, Vec<ConflictCode>, Vec<u32>) {
    let tdb = common::open(Backend::Sqlite, "inject", 2).await.unwrap();
    create_accounts(&tdb.db, &[(1, 0)]).await;
    let codes = Arc::new(Mutex::new(Vec::new()));
    let seen = codes.clone();
    let r = ConflictResolver::builder(tdb.db.clone())
        .inject_conflicts(inject)
        .on_retry(move |e| seen.lock().unwrap().push(e.conflict.code.clone()))
        .build();
    let from_body = Arc::new(AtomicU32::new(0));
    let from_hook = Arc::new(AtomicU32::new(0));
    let mut runs_per_call = Vec::new();
    for _ in 0..10 {
        let (b, h) = (from_body.clone(), from_hook.clone());
        let runs = r
            .managed(move |txn: &Txn| {
                let (b, h) = (b.clone(), h.clone());
                Box::pin(async move {
                    let balance = read_balance(txn, 1).await?;
                    write_balance(txn, 1, balance + 1).await?;
                    b.fetch_add(1, Ordering::SeqCst); // a side effect outside the transaction
                    txn.after_commit(move || {
                        h.fetch_add(1, Ordering::SeqCst);
                    });
                    Ok::<_, Error>(txn.attempt())
                })
            })
            .await
            .unwrap();
        runs_per_call.push(runs);
    }
    let balance = read_balance(&tdb.db, 1).await.unwrap();
    let codes = codes.lock().unwrap().clone();
    (
        balance,
        from_body.load(Ordering::SeqCst),
        from_hook.load(Ordering::SeqCst),
        r.stats(),
        codes,
        runs_per_call,
    )
}

#[tokio::test]
async fn injection_catches_a_side_effect_outside_the_transaction() {
    let (balance, from_body, from_hook, stats, codes, runs) =
        credits(InjectConflicts::rate(1.0)).await;
    assert_eq!(balance, 10, "every credit committed once");
    assert_eq!(from_hook, 10, "the after-commit hook ran once per commit");
    assert_eq!(
        from_body, 40,
        "the body's own side effect ran on every replay"
    );
    assert_ne!(
        from_body as i64, balance,
        "the replay-unsafe body is caught"
    );
    // every run but the last allowed one (3 retries) was injected: no give-up
    assert_eq!(runs, vec![4; 10]);
    assert_eq!(
        stats,
        Stats {
            success: 10,
            retries: 30,
            errors: 0,
            unresolved: 0
        }
    );
    assert!(
        codes.iter().all(|c| *c == ConflictCode::Injected),
        "{codes:?}"
    );
}

#[tokio::test]
async fn a_seed_repeats_the_injected_runs() {
    let a = credits(InjectConflicts::rate(0.5).seed(42)).await;
    let b = credits(InjectConflicts::rate(0.5).seed(42)).await;
    assert_eq!(a.5, b.5, "the same runs were injected");
    assert!(a.5.iter().any(|&r| r > 1) && a.5.contains(&1), "{:?}", a.5);
    assert_eq!((a.0, a.2, a.3.unresolved), (10, 10, 0));
}

#[tokio::test]
async fn without_injection_nothing_is_injected() {
    let (balance, from_body, _, stats, codes, _) = credits(InjectConflicts::rate(0.0)).await;
    assert_eq!((balance, from_body, stats.retries), (10, 10, 0));
    assert!(codes.is_empty());
}
