//! Nested managed calls as savepoints: a managed call made inside a managed
//! body of the same resolver runs in a `SAVEPOINT` of the caller's
//! transaction, so that a nested call that fails takes back its own writes
//! and nothing else, and the caller may handle its error (Django's nested
//! `atomic`, SeaORM's `txn.begin()`, Spring's `NESTED`).
//!
//! - `Ok`: `RELEASE SAVEPOINT`; its writes and after-commit hooks are the
//!   caller's, and commit (or not) with the caller's transaction.
//! - `Err` that is not a conflict: `ROLLBACK TO SAVEPOINT` takes back its
//!   writes and drops the hooks it registered; an error a statement of it
//!   returned no longer counts against the caller (it was handled: its
//!   effects are undone). The error goes to the caller's body.
//! - `Err` that is a conflict, or after an error that left the connection
//!   outside the transaction: nothing is rolled back; the error goes up to
//!   the outermost call, which replays everything (a serialization failure
//!   dooms the whole transaction, not a part of it).
//! - A panic unwinds to the outermost call, which rolls everything back.
//!
//! A `durable` call refuses to run nested at all, with [`DurableNested`]:
//! its `Ok` must mean "committed", which a savepoint cannot promise.
//!
//! What cannot apply inside the caller's transaction is refused with
//! [`NestedOption`] before anything runs: an `isolation` other than the
//! caller's, `read_only` inside a call that writes, a time budget (the
//! outermost call's budget bounds the nested call). Its `retries`,
//! `contention` and `key` have no effect: admission and replays are the
//! outermost call's. Nested calls of one body run one after another: two
//! awaited together on the same `Txn` would interleave their savepoints.

use std::borrow::Cow;

use sea_orm::ConnectionTrait;

use super::body::ManagedBody;
use super::call_error::TransactionError;
use super::carried;
use super::error::{DurableNested, NestedOption};
use super::inner::ConflictResolver;
use super::nesting::Enclosing;
use super::options::CallOptions;

impl ConflictResolver {
    /// Runs `body` as a savepoint of `outer`, the managed transaction of
    /// this resolver that the task runs (see the [module](self)).
    pub(crate) async fn run_nested<'a, F, T, E>(
        &self,
        outer: Enclosing,
        options: CallOptions,
        mut body: F,
    ) -> Result<T, E>
    where
        F: ManagedBody<'a, T, E>,
        T: Send,
        E: TransactionError,
    {
        let txn = &outer.txn;
        if options.durable {
            let refusal = DurableNested::new(options.label(), txn.label());
            return Err(E::from(carried::into_db_err(refusal)));
        }
        if let Some(refusal) = refuse_options(&outer, &options) {
            return Err(E::from(carried::into_db_err(refusal)));
        }
        tracing::debug!(label = %options.label(), outer = %txn.label(), "running as a savepoint of the enclosing managed transaction");
        let mark = txn.mark();
        let savepoint = self
            .inner
            .engine
            .savepoint(&format!("conflictkit_nested_{}", mark.number));
        let db = txn.as_database_transaction();
        if let Err(e) = db.execute_unprepared(&savepoint.open).await {
            txn.record(&e);
            return Err(E::from(e));
        }
        let result = body(txn).await;
        let end = match &result {
            Ok(_) => &savepoint.release,
            Err(e) if self.classify(e).is_some() || txn.is_outside() => return result,
            Err(_) => &savepoint.rollback,
        };
        match db.execute_unprepared(end).await {
            Ok(_) => {
                if result.is_err() {
                    txn.rewind(&mark);
                }
                result
            }
            Err(e) => {
                // The transaction is in no state to go on (PostgreSQL after
                // an error the nested body swallowed: RELEASE answers
                // 25P02): the caller must not commit it.
                tracing::warn!(label = %options.label(), error = %e, "could not end the savepoint of a nested managed call");
                txn.record(&e);
                match result {
                    Ok(_) => Err(E::from(e)),
                    Err(err) => Err(err),
                }
            }
        }
    }
}

/// What in `options` cannot apply inside `outer`.
fn refuse_options(outer: &Enclosing, options: &CallOptions) -> Option<NestedOption> {
    let refuse = |asked: Cow<'_, str>, has: Cow<'_, str>| {
        Some(NestedOption::new(
            options.label(),
            outer.txn.label(),
            asked.into_owned(),
            has.into_owned(),
        ))
    };
    if let Some(isolation) = options.isolation
        && isolation != outer.isolation
    {
        return refuse(
            format!("isolation `{}`", isolation.name()).into(),
            format!("isolation `{}`", outer.isolation.name()).into(),
        );
    }
    if options.read_only && !outer.read_only {
        return refuse("`read_only`".into(), "read-write".into());
    }
    if options.budget.is_some() {
        // A savepoint cannot be cut off at its own deadline without leaving
        // the caller's connection mid-statement; the outermost call's budget
        // bounds the nested call already.
        return refuse(
            "a time budget (`timeout` / `deadline`)".into(),
            "its own budget, which bounds every nested call".into(),
        );
    }
    None
}
