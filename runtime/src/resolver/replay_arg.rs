//! [`ReplayArg`]: how a managed transaction gets fresh arguments for each run.

/// An argument a managed transaction can pass again to each run of its body.
///
/// `#[managed_transaction]` may run the body several times (once per
/// conflict), and each run gets its own copy of every argument: a clone for
/// owned values, the same reference for borrowed ones (`&T` is `Copy`). So
/// every `Clone` type is a `ReplayArg`; the trait exists to give a clear
/// error, on the argument itself, when an owned argument cannot be copied.
///
/// ```
/// use conflictkit::resolver::ReplayArg;
///
/// let names = vec!["a".to_owned()];
/// let fresh: Vec<String> = ReplayArg::replay(&names);
/// assert_eq!(fresh, names);
/// let borrowed: &str = "x";
/// assert_eq!(ReplayArg::replay(&borrowed), "x");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not `Clone`, so a managed transaction cannot pass it to a replay",
    label = "this argument is moved into the transaction body, which runs again on each conflict",
    note = "each run of a managed transaction gets a fresh copy of its arguments: pass a reference \
            (`&T`), make the type `Clone` (an `Arc` works) or build the value inside the body; \
            a `&mut T` cannot be shared by several runs"
)]
pub trait ReplayArg: Sized {
    /// A copy of the argument for one run of the body.
    fn replay(&self) -> Self;
}

impl<T: Clone> ReplayArg for T {
    #[inline]
    fn replay(&self) -> Self {
        self.clone()
    }
}
