//! The shape of a managed body: a closure called once per run with that
//! run's [`Txn`], returning a boxed future that may borrow the `Txn` and the
//! caller's data.

use std::future::Future;
use std::pin::Pin;

use super::txn::Txn;

/// The future a managed body returns: boxed, `Send`, borrowing the [`Txn`]
/// (for `'t`) and possibly the caller's data (for `'a`, which outlives `'t`).
///
/// Write it as `Box::pin(async move { … })`: the coercion does the rest. The
/// `'a` parameter is what lets a body borrow the caller's arguments (`&str`,
/// `&self`, …); with only `'t` the body could capture nothing borrowed.
pub type BodyFuture<'a, 't, T, E> = Pin<Box<dyn ScopedFuture<'a, 't, Output = Result<T, E>> + 't>>;

/// `&'t &'a ()`: naming it in [`BodyFuture`] tells the compiler that `'a: 't`
/// inside the body closure (an implied bound), so the body may borrow data
/// that lives for `'a`.
#[doc(hidden)]
pub type ImpliedBound<'a, 't> = std::marker::PhantomData<&'t &'a ()>;

/// A `Send` future that lives for `'t` and may borrow data living for `'a`
/// (`'a: 't`). Implemented for every such future; see [`BodyFuture`].
pub trait ScopedFuture<'a, 't, Bound = ImpliedBound<'a, 't>>: Future + Send + 't {}

impl<'a: 't, 't, Fut: Future + Send + 't> ScopedFuture<'a, 't> for Fut {}

/// A managed body: called once per run with that run's [`Txn`], it returns
/// the run's [`BodyFuture`]. Every `FnMut(&Txn) -> BodyFuture + Send` closure
/// is one (write its parameter type, `|txn: &Txn|`).
///
/// Sealed: implemented for every such closure, by nobody else.
///
/// ```
/// use conflictkit::Txn;
/// use conflictkit::resolver::ManagedBody;
/// fn body<'a, F: ManagedBody<'a, u32, conflictkit::Error>>(f: F) -> F { f }
/// let _ = body(|txn: &Txn| Box::pin(async move { Ok(txn.attempt()) }));
/// ```
pub trait ManagedBody<'a, T, E>:
    for<'t> FnMut(&'t Txn) -> BodyFuture<'a, 't, T, E> + Send + sealed::SealedBody<'a, T, E>
{
}

impl<'a, T, E, F> ManagedBody<'a, T, E> for F where
    F: for<'t> FnMut(&'t Txn) -> BodyFuture<'a, 't, T, E> + Send
{
}

mod sealed {
    use super::{BodyFuture, Txn};

    pub trait SealedBody<'a, T, E> {}
    impl<'a, T, E, F> SealedBody<'a, T, E> for F where
        F: for<'t> FnMut(&'t Txn) -> BodyFuture<'a, 't, T, E> + Send
    {
    }
}
