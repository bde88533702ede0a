//! The body of a batch run: each member's body in a savepoint of the one
//! transaction, in the order they queued.
//!
//! - `Ok`: its writes and hooks wait for the `COMMIT`; its savepoint is
//!   released in the round trip that opens the next member's (the last
//!   one's with `COMMIT`), so a member costs one round trip of its own.
//! - `Ok` after ignoring an error that aborted the transaction (any
//!   statement error on PostgreSQL): rolled back to its savepoint, and it
//!   fails alone with [`AbortedTransaction`], as a call run by itself does.
//! - `Err` that is no conflict: `ROLLBACK TO SAVEPOINT` takes back its
//!   writes and drops its hooks; its error waits for the `COMMIT` too (a
//!   replay runs it again, and may end otherwise), and the batch goes on.
//! - a panic: rolled back to its savepoint, and its caller gets the panic
//!   at once; the member leaves the batch.
//! - a conflict, or an error that left the connection outside the
//!   transaction: the run ends there, and the replay loop replays the whole
//!   batch (a serialization failure dooms the transaction, not a part).
//!
//! A member alone in the batch (no load) runs without a savepoint: its end
//! is the run's end, exactly as for a call run by itself.

use std::error::Error as StdError;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, Ordering};

use futures::FutureExt;
use sea_orm::{ConnectionTrait, DbErr};
use tokio::sync::Mutex;

use super::super::body::ManagedBody;
use super::super::carried;
use super::super::error::{AbortedTransaction, CannotResolveDatabaseConflict};
use super::super::inner::ConflictResolver;
use super::super::txn::Txn;
use super::member::{Member, Ran};

/// How a batch run failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum RunError {
    /// From the database (`BEGIN`, a savepoint, `COMMIT`), or the resolver's
    /// own (deadline, ambiguous commit) carried in a `DbErr`.
    #[error(transparent)]
    Db(#[from] DbErr),
    /// Every allowed run of the batch conflicted.
    #[error(transparent)]
    GaveUp(#[from] CannotResolveDatabaseConflict),
    /// A member's error that ended the run: a conflict (replayed), or an
    /// error after which the transaction cannot go on.
    #[error("member #{index} of the batch: {error}")]
    Member {
        index: usize,
        #[source]
        error: Box<dyn StdError + Send + Sync>,
    },
    /// Every member alone in the run panicked: nothing to commit.
    #[error("the only member of the batch panicked")]
    Panicked,
}

/// The batch's body for the replay loop: runs `members` on each run's
/// `Txn`, and notes the run's number in `runs`.
pub(super) fn body<'a>(
    resolver: &'a ConflictResolver,
    members: &'a Mutex<Vec<Box<dyn Member>>>,
    runs: &'a AtomicU32,
) -> impl ManagedBody<'a, (), RunError> + 'a {
    move |txn: &Txn| Box::pin(run(resolver, members, runs, txn))
}

async fn run(
    resolver: &ConflictResolver,
    members: &Mutex<Vec<Box<dyn Member>>>,
    runs: &AtomicU32,
    txn: &Txn,
) -> Result<(), RunError> {
    runs.store(txn.attempt(), Ordering::Relaxed);
    let mut members = members.lock().await;
    let alone = members.iter().filter(|m| !m.delivered()).count() == 1;
    let mut unreleased: Option<String> = None;
    for (index, member) in members.iter_mut().enumerate() {
        if member.delivered() {
            // it panicked in an earlier run
            continue;
        }
        if alone {
            return match AssertUnwindSafe(member.run(txn)).catch_unwind().await {
                Ok(Ran::Ok) => Ok(()),
                Ok(_) => Err(member_error(index, member.as_mut())),
                Err(panic) => {
                    member.panicked(panic);
                    member.deliver();
                    Err(RunError::Panicked)
                }
            };
        }
        let mark = txn.mark();
        let savepoint = resolver
            .inner
            .engine
            .savepoint(&format!("conflictkit_batch_{}", mark.number));
        let db = txn.as_database_transaction();
        // the savepoint of the member before, still open, is released in the
        // same round trip (the last one's goes with COMMIT)
        let open = match unreleased.take() {
            Some(release) => format!("{release}; {}", savepoint.open),
            None => savepoint.open.clone(),
        };
        if let Err(e) = db.execute_unprepared(&open).await {
            // PostgreSQL after an error the member before swallowed is
            // caught below; here the transaction cannot go on
            txn.record(&e);
            return Err(e.into());
        }
        let ran = match AssertUnwindSafe(member.run(txn)).catch_unwind().await {
            Ok(ran) => ran,
            Err(panic) => {
                tracing::error!(label = %txn.label(), member = index, panic = %crate::panic::panic_message(&*panic), "a member of the batch panicked; rolling it back to its savepoint");
                member.panicked(panic);
                member.deliver();
                Ran::Panicked
            }
        };
        let conflicted = ran == Ran::Err
            && (member
                .error()
                .is_some_and(|e| resolver.classify(e).is_some())
                || txn.is_outside());
        if conflicted {
            return Err(member_error(index, member.as_mut()));
        }
        // an error a member's statement returned and the member ignored:
        // a conflict dooms the batch (replayed); one that aborted the
        // transaction (any, on PostgreSQL) is the member's failure, undone
        // by the rollback to its savepoint
        let swallowed = match (ran, txn.recorded_since(&mark)) {
            (Ran::Ok, Some(e)) if resolver.classify(&e).is_some() => {
                return Err(RunError::Db(e));
            }
            (Ran::Ok, Some(e)) if resolver.inner.engine.aborts_transaction(&e) => Some(e),
            _ => None,
        };
        if ran == Ran::Ok && swallowed.is_none() {
            unreleased = Some(savepoint.release);
            continue;
        }
        if let Err(e) = db.execute_unprepared(&savepoint.rollback).await {
            tracing::warn!(label = %txn.label(), member = index, error = %e, "could not roll back to the savepoint of a member of the batch");
            txn.record(&e);
            return Err(e.into());
        }
        txn.rewind(&mark);
        // released with the next member's savepoint
        unreleased = Some(savepoint.release);
        if let Some(e) = swallowed {
            tracing::warn!(label = %txn.label(), member = index, error = %e, "a member of the batch ignored an error that aborted the transaction; rolled back to its savepoint");
            member.set_error(carried::into_db_err(AbortedTransaction::new(
                txn.label(),
                e,
            )));
        }
    }
    Ok(())
}

fn member_error(index: usize, member: &mut dyn Member) -> RunError {
    match member.take_error() {
        Some(error) => RunError::Member { index, error },
        // `run` returned `Err`, so there is one; never reached
        None => RunError::Db(DbErr::Custom(format!(
            "member #{index} of the batch failed without an error"
        ))),
    }
}
