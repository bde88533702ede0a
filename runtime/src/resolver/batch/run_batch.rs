//! One batch, start to end: its plan (the lane's, with the earliest
//! member's deadline), its runs through the replay loop a single call uses
//! (admission, the lease, the SQLite writer slot, replays, `COMMIT` and the
//! hooks), then each member's end: its own result after a `COMMIT`, or its
//! share of the batch's failure.

use std::error::Error as StdError;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use sea_orm::DbErr;
use tokio::sync::Mutex;
use tracing::Instrument;

use super::super::carried;
use super::super::deadline;
use super::super::deadline_exceeded::DeadlineExceeded;
use super::super::error::{AmbiguousCommit, CannotResolveDatabaseConflict};
use super::super::inner::ConflictResolver;
use super::super::metrics::{self, Outcome, Wait};
use super::composite::{self, RunError};
use super::error::BatchFailed;
use super::member::Member;

impl ConflictResolver {
    /// Runs `members` (at least one, all of one lane) as one batch, and
    /// ends each of them; `from_lane`: taken from the lane (else run again
    /// after a batch gave up, their wait already counted).
    pub(super) async fn run_batch(&self, members: Vec<Box<dyn Member>>, from_lane: bool) {
        let size = members.len();
        let mut plan = members[0].plan().clone();
        plan.batch = Some(size as u32);
        plan.started = members
            .iter()
            .map(|m| m.plan().started)
            .min()
            .unwrap_or(plan.started);
        plan.deadline = members.iter().filter_map(|m| m.plan().deadline).min();
        self.inner.batches.record(plan.label(), size);
        metrics::batch_size(&plan, size);
        // what each call waited in the lane, behind the batches before
        if from_lane {
            for member in &members {
                self.waited(member.plan(), Wait::Queue, member.plan().started.elapsed());
            }
        }
        let members = Mutex::new(members);
        let runs = AtomicU32::new(0);
        let mut body = composite::body(self, &members, &runs);
        let span = tracing::info_span!("managed_batch", label = %plan.label(), members = size);
        let result = self.replay_loop(&plan, &mut body).instrument(span).await;
        drop(body);
        let attempts = runs.load(Ordering::Relaxed).max(1);
        let mut members = members.into_inner();
        match result {
            Ok(()) => {
                for member in members.iter_mut().filter(|m| !m.delivered()) {
                    let outcome = match member.error() {
                        None => Outcome::Committed,
                        Some(_) => Outcome::Error,
                    };
                    self.member_ended(member.plan(), outcome, attempts);
                    member.deliver();
                }
            }
            Err(RunError::GaveUp(_)) if members.iter().filter(|m| !m.delivered()).count() > 1 => {
                // a give-up is per member: each runs again alone, with
                // replays of its own, so that one conflicting member (or
                // traffic that is not batched) does not sink the others
                let alone: Vec<_> = members.into_iter().filter(|m| !m.delivered()).collect();
                tracing::warn!(label = %plan.label(), members = alone.len(), attempts, "a batch gave up on serialization conflicts; running its calls one by one");
                for member in alone {
                    Box::pin(self.run_batch(vec![member], false)).await;
                }
            }
            Err(RunError::GaveUp(gave_up)) => {
                let (runs, retries) = (gave_up.attempts(), gave_up.retries());
                let last: Arc<dyn StdError + Send + Sync> = Arc::from(gave_up.into_last_error());
                for member in members.iter_mut().filter(|m| !m.delivered()) {
                    self.member_ended(member.plan(), Outcome::GaveUp, attempts);
                    let label = member.plan().label().to_owned();
                    member.give_up(CannotResolveDatabaseConflict::new(
                        label,
                        runs,
                        retries,
                        last.clone(),
                    ));
                }
            }
            Err(RunError::Member { index, error }) => {
                // that member's own error ended the run (the transaction
                // could not go on after it): it gets it back, the others
                // share the failure
                let error: Arc<dyn StdError + Send + Sync> = match members[index].give_back(error) {
                    Ok(()) => {
                        self.member_ended(members[index].plan(), Outcome::Error, attempts);
                        let err = members[index].error().map(|e| e.to_string());
                        members[index].deliver();
                        Arc::new(DbErr::Custom(format!(
                            "member #{index} of the batch failed: {}",
                            err.unwrap_or_default()
                        )))
                    }
                    Err(error) => Arc::from(error),
                };
                self.fail_all(&mut members, error, attempts);
            }
            Err(RunError::Db(e)) => {
                if let Some(exceeded) = DeadlineExceeded::find(&e) {
                    let (phase, at) = (exceeded.phase(), plan.deadline.unwrap_or(plan.started));
                    for member in members.iter_mut().filter(|m| !m.delivered()) {
                        self.member_ended(member.plan(), Outcome::Deadline, attempts);
                        let mine = deadline::exceeded(
                            member.plan().label(),
                            member.plan().started,
                            at,
                            attempts,
                            phase,
                        );
                        member.fail(carried::into_db_err(mine));
                    }
                } else if AmbiguousCommit::find(&e).is_some() {
                    let cause = e.to_string();
                    for member in members.iter_mut().filter(|m| !m.delivered()) {
                        self.member_ended(member.plan(), Outcome::Ambiguous, attempts);
                        let mine = AmbiguousCommit::new(
                            member.plan().label(),
                            DbErr::Custom(format!("the batch's COMMIT: {cause}")),
                        );
                        member.fail(carried::into_db_err(mine));
                    }
                } else {
                    self.fail_all(&mut members, Arc::new(e), attempts);
                }
            }
            // its only member panicked, and its caller has the panic
            Err(RunError::Panicked) => {}
        }
    }

    /// Every member not ended yet gets a [`BatchFailed`] caused by `error`.
    fn fail_all(
        &self,
        members: &mut [Box<dyn Member>],
        error: Arc<dyn StdError + Send + Sync>,
        attempts: u32,
    ) {
        let size = members.len();
        for member in members.iter_mut().filter(|m| !m.delivered()) {
            self.member_ended(member.plan(), Outcome::Error, attempts);
            let failed = BatchFailed::new(member.plan().label(), size, error.clone());
            member.fail(carried::into_db_err(failed));
        }
    }
}
