//! Error types of the resolver.

use std::error::Error as StdError;
use std::fmt;

use sea_orm::DbErr;

/// A serialization conflict that could not be resolved by replaying the
/// transaction: every allowed attempt ended in a conflict (or the call was
/// non-retryable).
///
/// The last conflict is kept as [`source()`](std::error::Error::source), so the
/// database error (SQLSTATE, error number) stays inspectable.
///
/// ```
/// use conflictkit::resolver::CannotResolveDatabaseConflict;
/// use sea_orm::{DbErr, RuntimeErr};
///
/// let last = DbErr::Query(RuntimeErr::Internal("could not serialize access".into()));
/// let err = CannotResolveDatabaseConflict::new("wallet::top_up", 4, 3, last);
/// assert_eq!(err.attempts(), 4);
/// assert!(err.to_string().contains("wallet::top_up"));
/// assert!(std::error::Error::source(&err).is_some());
/// ```
#[derive(Debug)]
pub struct CannotResolveDatabaseConflict {
    label: String,
    attempts: u32,
    retries: u32,
    last: Box<dyn StdError + Send + Sync + 'static>,
}

impl CannotResolveDatabaseConflict {
    /// Builds the error for `label` after `attempts` runs with `retries`
    /// allowed replays, `last` being the final conflict.
    pub fn new(
        label: impl Into<String>,
        attempts: u32,
        retries: u32,
        last: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        Self {
            label: label.into(),
            attempts,
            retries,
            last: last.into(),
        }
    }

    /// The label of the managed call (by default the function's path).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// How many times the transaction body ran (every run ended in a conflict).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// How many replays the call allowed (`0` for a non-retryable call).
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// The last conflict error, as returned by the body or by `COMMIT`.
    pub fn last_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.last
    }
}

impl fmt::Display for CannotResolveDatabaseConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.retries == 0 && self.attempts == 1 {
            write!(
                f,
                "cannot resolve the database conflict in `{}`: the transaction is not retryable \
                 and hit a serialization conflict",
                self.label
            )
        } else {
            write!(
                f,
                "could not replay the transaction `{}` even after {} attempts ({} retries allowed); \
                 raise `retries`, or reduce contention on the rows it touches",
                self.label, self.attempts, self.retries
            )
        }
    }
}

impl StdError for CannotResolveDatabaseConflict {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.last)
    }
}

/// A ready-made error type for managed transactions: a database error or an
/// unresolved conflict. Use your own enum instead when the body has errors of
/// its own; it needs `From<DbErr>` and `From<CannotResolveDatabaseConflict>`.
///
/// ```
/// use conflictkit::Error;
/// use sea_orm::DbErr;
///
/// let err: Error = DbErr::RecordNotFound("account 7".into()).into();
/// assert!(matches!(err, Error::Db(_)));
/// assert_eq!(err.to_string(), "RecordNotFound Error: account 7");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error from the database that is not a conflict (or was raised
    /// outside a managed transaction).
    #[error(transparent)]
    Db(#[from] DbErr),
    /// Every attempt ended in a serialization conflict.
    #[error(transparent)]
    Unresolved(#[from] CannotResolveDatabaseConflict),
}
