//! [`TransactionError`]: what the error type of a managed transaction needs,
//! named once so a wrong choice is reported in words.

use std::error::Error as StdError;

use sea_orm::DbErr;

use super::error::CannotResolveDatabaseConflict;

/// An error type a managed transaction can return: database errors
/// ([`DbErr`]) and the give-up ([`CannotResolveDatabaseConflict`]) convert
/// into it with `From`, and it is a `Send + Sync + 'static` error.
///
/// [`conflictkit::Error`](crate::resolver::Error) is one. Your own error
/// enum is one when it has a `#[from]` variant for each:
///
/// ```
/// use conflictkit::CannotResolveDatabaseConflict;
/// use conflictkit::resolver::TransactionError;
///
/// #[derive(Debug, thiserror::Error)]
/// enum TopUpError {
///     #[error("account {0} is closed")]
///     Closed(i32),
///     #[error(transparent)]
///     Conflict(#[from] CannotResolveDatabaseConflict),
///     #[error(transparent)]
///     Db(#[from] sea_orm::DbErr),
/// }
///
/// fn returnable<E: TransactionError>() {}
/// returnable::<TopUpError>();
/// returnable::<conflictkit::Error>();
/// ```
///
/// `sea_orm::DbErr` alone is not: it cannot hold the give-up, which is why
/// `Result<T, sea_orm::DbErr>` is a compile error on a managed function.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the error type of a managed transaction",
    label = "a managed transaction returns its give-up, `CannotResolveDatabaseConflict`, and database errors, `sea_orm::DbErr`, through this error type",
    note = "return `Result<_, conflictkit::Error>`, or give your own error enum the variants `#[error(transparent)] Conflict(#[from] conflictkit::CannotResolveDatabaseConflict)` and `#[error(transparent)] Db(#[from] sea_orm::DbErr)` (thiserror)"
)]
pub trait TransactionError:
    From<DbErr> + From<CannotResolveDatabaseConflict> + StdError + Send + Sync + 'static
{
}

impl<E> TransactionError for E where
    E: From<DbErr> + From<CannotResolveDatabaseConflict> + StdError + Send + Sync + 'static
{
}
