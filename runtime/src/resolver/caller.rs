//! What a managed function is called with ([`Caller`]): the resolver, or
//! inside a managed body its transaction, so that managed functions compose
//! (`debit(txn, …)` inside `transfer` runs as a savepoint of it).
//!
//! # Why a trait of our own
//!
//! The generated function takes `resolver: &impl Caller`. The other designs
//! considered: `impl Into<CallerRef>` (a misuse reads "the trait
//! `From<&DatabaseConnection>` is not implemented for `CallerRef<'_>`", which
//! names a type the user never wrote), and `txn.resolver()` (two spellings
//! for one intent, and a managed `Txn` would have to carry its resolver). A
//! trait of our own carries `#[diagnostic::on_unimplemented]`, so passing a
//! `DatabaseConnection` (the usual slip) says in one line what to pass
//! instead, spanned on the argument.
//!
//! `Arc`, `Box` and `LazyLock` of a caller are callers too (the
//! `&ConflictResolver` parameter took them by deref coercion). A function
//! whose return type uses precise capturing (`impl Trait + use<…>`) keeps a
//! plain `&ConflictResolver` parameter: `use<…>` cannot name the anonymous
//! type parameter `impl Caller` adds.

use sea_orm::DbErr;

use super::body::ManagedBody;
use super::call_error::TransactionError;
use super::carried;
use super::inner::ConflictResolver;
use super::nesting::ACTIVE;
use super::options::CallOptions;
use super::txn::{Txn, TxnSavepoint};

/// What a managed function can be called with: `&ConflictResolver` (its own
/// transaction, or a savepoint when called inside a managed body of that
/// resolver), or, inside a managed body, its `&Txn` or a `&TxnSavepoint` of
/// it (a savepoint of that transaction: a nested call that fails takes back
/// its writes, and the caller may handle its error).
///
/// ```
/// use conflictkit::{ConflictResolver, Txn, managed_transaction};
/// use sea_orm::ConnectionTrait;
///
/// #[managed_transaction]
/// async fn note(txn: &Txn, x: i32) -> Result<(), conflictkit::Error> {
///     txn.execute_unprepared(&format!("INSERT INTO t VALUES ({x})")).await?;
///     Ok(())
/// }
///
/// #[managed_transaction]
/// async fn twice(txn: &Txn) -> Result<(), conflictkit::Error> {
///     txn.execute_unprepared("CREATE TABLE t (x INTEGER)").await?;
///     note(txn, 1).await?; // a savepoint of this transaction
///     note(txn, 2).await
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let resolver = ConflictResolver::new(sea_orm::Database::connect("sqlite::memory:").await?);
/// twice(&resolver).await?; // outside a body: the resolver
/// assert_eq!(resolver.stats().success, 1);
/// # Ok::<(), conflictkit::Error>(()) }).unwrap();
/// ```
#[diagnostic::on_unimplemented(
    message = "a managed function takes a `&ConflictResolver`, or inside a managed body its `txn`; not `{Self}`",
    label = "expected `&ConflictResolver` (or `txn` inside a managed body)",
    note = "outside a managed body pass the resolver: `f(&resolver, …)`, with `let resolver = ConflictResolver::new(db)`",
    note = "inside a managed body pass its transaction: `f(txn, …)` runs as a savepoint of it"
)]
pub trait Caller: Sync {
    /// What this caller is. Not public API.
    #[doc(hidden)]
    fn __caller(&self) -> CallerRef<'_>;
}

/// What a [`Caller`] is. Not public API.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum CallerRef<'c> {
    /// A resolver.
    Resolver(&'c ConflictResolver),
    /// A managed transaction (or one of its savepoints).
    Txn(&'c Txn),
}

impl Caller for ConflictResolver {
    fn __caller(&self) -> CallerRef<'_> {
        CallerRef::Resolver(self)
    }
}

impl Caller for Txn {
    fn __caller(&self) -> CallerRef<'_> {
        CallerRef::Txn(self)
    }
}

impl Caller for TxnSavepoint {
    fn __caller(&self) -> CallerRef<'_> {
        CallerRef::Txn(self.txn())
    }
}

impl<C: Caller + ?Sized> Caller for &C {
    fn __caller(&self) -> CallerRef<'_> {
        (**self).__caller()
    }
}

// Where a `&ConflictResolver` parameter took these by deref coercion.
impl<C: Caller + ?Sized + Send> Caller for std::sync::Arc<C> {
    fn __caller(&self) -> CallerRef<'_> {
        (**self).__caller()
    }
}

impl<C: Caller + ?Sized> Caller for Box<C> {
    fn __caller(&self) -> CallerRef<'_> {
        (**self).__caller()
    }
}

impl<C: Caller + Send, F: FnOnce() -> C + Send> Caller for std::sync::LazyLock<C, F> {
    fn __caller(&self) -> CallerRef<'_> {
        (**self).__caller()
    }
}

/// A managed function was called with a `Txn` outside the managed body that
/// runs it: from a task the body spawned, or with the `Txn` of a
/// [`transaction()`](ConflictResolver::transaction) guard. Nothing ran.
///
/// It reaches the caller inside a [`DbErr`]; find it with
/// [`TxnOutsideItsBody::find`].
///
/// ```
/// use conflictkit::resolver::TxnOutsideItsBody;
/// assert!(TxnOutsideItsBody::find(&sea_orm::DbErr::RecordNotFound("x".into())).is_none());
/// ```
#[derive(Debug, thiserror::Error)]
#[error(
    "`{inner}` was called with the transaction of `{txn}` outside the managed body that runs it \
     (a spawned task, or a `resolver.transaction()` guard): it can only run as a savepoint from \
     inside that body; call it there, or call it with the resolver (`&resolver`)"
)]
pub struct TxnOutsideItsBody {
    inner: String,
    txn: String,
}

impl TxnOutsideItsBody {
    /// The label of the refused call.
    pub fn label(&self) -> &str {
        &self.inner
    }

    /// The `TxnOutsideItsBody` in `err` or anywhere along its `source()`
    /// chain (it travels inside a [`DbErr`]).
    pub fn find<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Self> {
        carried::find(err)
    }
}

/// Runs a managed call for `caller`: [`ConflictResolver::run`] on a
/// resolver; with a `Txn`, a savepoint of it (through the resolver whose
/// managed body runs it in this task). What the generated function calls.
#[doc(hidden)]
pub async fn run_managed<'a, C, F, T, E>(caller: &C, options: CallOptions, body: F) -> Result<T, E>
where
    C: Caller + ?Sized,
    F: ManagedBody<'a, T, E>,
    T: Send,
    E: TransactionError,
{
    match caller.__caller() {
        CallerRef::Resolver(resolver) => resolver.run(options, body).await,
        CallerRef::Txn(txn) => match running(txn) {
            Some(resolver) => resolver.run(options, body).await,
            None => {
                let refusal = TxnOutsideItsBody {
                    inner: options.label().to_owned(),
                    txn: txn.label().to_owned(),
                };
                Err(E::from(into_db_err(refusal)))
            }
        },
    }
}

/// [`run_managed`] for a batched function (`#[managed_transaction(batch)]`):
/// [`ConflictResolver::run_batched`] on a resolver; with a `Txn`, a
/// savepoint of it, as any nested call.
#[doc(hidden)]
pub async fn run_managed_batched<C, F, T, E>(
    caller: &C,
    options: CallOptions,
    body: F,
) -> Result<T, E>
where
    C: Caller + ?Sized,
    F: ManagedBody<'static, T, E> + 'static,
    T: Send + 'static,
    E: TransactionError,
{
    match caller.__caller() {
        CallerRef::Resolver(resolver) => resolver.run_batched(options, body).await,
        CallerRef::Txn(_) => run_managed(caller, options, body).await,
    }
}

fn into_db_err(refusal: TxnOutsideItsBody) -> DbErr {
    carried::into_db_err(refusal)
}

/// The resolver whose managed body runs `txn` in this task.
fn running(txn: &Txn) -> Option<ConflictResolver> {
    ACTIVE
        .try_with(|a| a.txn.same_as(txn).then(|| a.resolver.clone()))
        .ok()
        .flatten()
}
