//! One call in a batch: its body, its plan, where its result goes, and what
//! its last run left (type-erased, so that calls of different result types
//! share a batch).

use std::any::Any;
use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::oneshot;

use super::super::body::ManagedBody;
use super::super::call_error::TransactionError;
use super::super::plan::Plan;
use super::super::txn::Txn;

/// What a member's caller receives.
pub(super) enum Delivery<T, E> {
    /// The member's result, once the batch committed (or failed as a whole).
    Done(Result<T, E>),
    /// The member's body panicked: its caller panics with this payload.
    Panicked(Box<dyn Any + Send>),
}

/// How a member's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ran {
    Ok,
    Err,
    Panicked,
}

/// Where a member stands, shared with its caller: queued, taken into a
/// batch, or given up by its caller (its time budget ran out while it was
/// queued).
#[derive(Debug, Default)]
pub(super) struct Place(AtomicU8);

const QUEUED: u8 = 0;
const TAKEN: u8 = 1;
const CANCELLED: u8 = 2;

impl Place {
    /// The worker takes the member, unless its caller gave it up.
    pub(super) fn take(&self) -> bool {
        self.0
            .compare_exchange(QUEUED, TAKEN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The caller gives the member up, unless a batch took it already.
    pub(super) fn cancel(&self) -> bool {
        self.0
            .compare_exchange(QUEUED, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// A member of a batch, whatever its result and error types.
pub(super) trait Member: Send {
    /// The member's own plan (label, key, when it started, its deadline).
    fn plan(&self) -> &Plan;
    fn place(&self) -> &Place;
    /// Runs the body once on `txn`, keeping what it returned.
    fn run<'t>(&'t mut self, txn: &'t Txn) -> Pin<Box<dyn Future<Output = Ran> + Send + 't>>;
    /// The error the last run returned.
    fn error(&self) -> Option<&(dyn StdError + 'static)>;
    /// Takes the last run's error out, to fail (or replay) the batch with.
    fn take_error(&mut self) -> Option<Box<dyn StdError + Send + Sync>>;
    /// Gives the error taken with `take_error` back as the member's result;
    /// `Err` when it is not this member's.
    fn give_back(
        &mut self,
        error: Box<dyn StdError + Send + Sync>,
    ) -> Result<(), Box<dyn StdError + Send + Sync>>;
    /// Keeps a panic of the last run (delivered at once by `deliver`).
    fn panicked(&mut self, payload: Box<dyn Any + Send>);
    /// Sends what the last run left to the caller: its result, or its panic.
    /// Once; a caller that is gone receives nothing.
    fn deliver(&mut self);
    /// Makes `err` the last run's result (its writes were rolled back).
    fn set_error(&mut self, err: sea_orm::DbErr);
    /// Sends `err` (the batch failed as a whole) to the caller.
    fn fail(&mut self, err: sea_orm::DbErr);
    /// Sends the give-up of the whole batch to the caller.
    fn give_up(&mut self, err: super::super::error::CannotResolveDatabaseConflict);
    /// Whether the result went out already.
    fn delivered(&self) -> bool;
}

/// A member whose body returns `Result<T, E>`.
pub(super) struct Typed<F, T, E> {
    plan: Plan,
    place: Arc<Place>,
    body: F,
    last: Option<Delivery<T, E>>,
    to: Option<oneshot::Sender<Delivery<T, E>>>,
}

impl<F, T, E> Typed<F, T, E> {
    pub(super) fn new(
        plan: Plan,
        place: Arc<Place>,
        body: F,
        to: oneshot::Sender<Delivery<T, E>>,
    ) -> Self {
        Self {
            plan,
            place,
            body,
            last: None,
            to: Some(to),
        }
    }
}

impl<F, T, E> Member for Typed<F, T, E>
where
    F: ManagedBody<'static, T, E> + 'static,
    T: Send + 'static,
    E: TransactionError,
{
    fn plan(&self) -> &Plan {
        &self.plan
    }

    fn place(&self) -> &Place {
        &self.place
    }

    fn run<'t>(&'t mut self, txn: &'t Txn) -> Pin<Box<dyn Future<Output = Ran> + Send + 't>> {
        self.last = None;
        Box::pin(async move {
            let result = (self.body)(txn).await;
            let ran = if result.is_ok() { Ran::Ok } else { Ran::Err };
            self.last = Some(Delivery::Done(result));
            ran
        })
    }

    fn error(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.last {
            Some(Delivery::Done(Err(e))) => Some(e),
            _ => None,
        }
    }

    fn take_error(&mut self) -> Option<Box<dyn StdError + Send + Sync>> {
        match self.last.take() {
            Some(Delivery::Done(Err(e))) => Some(Box::new(e)),
            other => {
                self.last = other;
                None
            }
        }
    }

    fn give_back(
        &mut self,
        error: Box<dyn StdError + Send + Sync>,
    ) -> Result<(), Box<dyn StdError + Send + Sync>> {
        let e = error.downcast::<E>()?;
        self.last = Some(Delivery::Done(Err(*e)));
        Ok(())
    }

    fn panicked(&mut self, payload: Box<dyn Any + Send>) {
        self.last = Some(Delivery::Panicked(payload));
    }

    fn deliver(&mut self) {
        if let (Some(to), Some(last)) = (self.to.take(), self.last.take()) {
            let _ = to.send(last);
        }
    }

    fn set_error(&mut self, err: sea_orm::DbErr) {
        self.last = Some(Delivery::Done(Err(E::from(err))));
    }

    fn fail(&mut self, err: sea_orm::DbErr) {
        self.set_error(err);
        self.deliver();
    }

    fn give_up(&mut self, err: super::super::error::CannotResolveDatabaseConflict) {
        self.last = Some(Delivery::Done(Err(E::from(err))));
        self.deliver();
    }

    fn delivered(&self) -> bool {
        self.to.is_none()
    }
}
