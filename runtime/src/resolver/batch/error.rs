//! [`BatchFailed`]: a batch failed as a whole, for a reason that was not
//! this member's own.

use std::error::Error as StdError;
use std::sync::Arc;

/// The batch that ran this call failed as a whole, for a reason not of this
/// call's making (an error at `BEGIN` or `COMMIT`, another member's error
/// that left the transaction unusable, a savepoint the database refused):
/// none of its writes committed, and its after-commit hooks did not run.
/// The cause is the [`source`](StdError::source). Running the call again is
/// safe: nothing of it committed.
///
/// It reaches the caller inside a [`DbErr`](sea_orm::DbErr); find it with
/// [`BatchFailed::find`].
///
/// ```
/// use conflictkit::resolver::BatchFailed;
/// assert!(BatchFailed::find(&sea_orm::DbErr::RecordNotFound("x".into())).is_none());
/// ```
#[derive(Debug, thiserror::Error)]
#[error(
    "the batch that ran `{label}` with {others} other call(s) in one transaction failed as a \
     whole, so nothing of this call committed and its hooks did not run; it is safe to run it \
     again: {source}"
)]
pub struct BatchFailed {
    label: String,
    others: usize,
    #[source]
    source: Arc<dyn StdError + Send + Sync>,
}

impl BatchFailed {
    pub(crate) fn new(
        label: &str,
        members: usize,
        source: Arc<dyn StdError + Send + Sync>,
    ) -> Self {
        Self {
            label: label.to_owned(),
            others: members.saturating_sub(1),
            source,
        }
    }

    /// The label of the call.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// How many other calls shared the failed transaction.
    pub fn others(&self) -> usize {
        self.others
    }

    /// The `BatchFailed` in `err` or anywhere along its `source()` chain
    /// (it travels inside a [`DbErr`](sea_orm::DbErr)).
    pub fn find<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a Self> {
        super::super::carried::find(err)
    }
}
