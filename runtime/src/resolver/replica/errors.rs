//! [`WriteOnReplica`]: a read-only call routed to a replica wrote.

use std::error::Error as StdError;

/// A read-only call ran on a replica and a statement of its body wrote: the
/// replica refused it (PostgreSQL `25006`, a read-only transaction; MariaDB
/// `1792`, a `READ ONLY` transaction, or `1290`, `--read-only`). Nothing
/// was written anywhere, and the call was **not** run again on the primary:
/// a read-only call that writes is a bug to fix, not a routing accident.
/// Drop `read_only` (the [`CallOptions`](crate::resolver::CallOptions)
/// option, the resolver's default, or `#[managed_transaction(read_only)]`)
/// from a call that writes.
///
/// It reaches the caller inside a [`DbErr`](sea_orm::DbErr) (so through any
/// error type a managed body uses); find it with [`WriteOnReplica::find`].
/// The server's error is its `source()`.
///
/// ```
/// use conflictkit::resolver::WriteOnReplica;
/// assert!(WriteOnReplica::find(&sea_orm::DbErr::RecordNotFound("x".into())).is_none());
/// ```
#[derive(Debug, thiserror::Error)]
#[error(
    "`{label}` is a read-only call, so it ran on a replica, and it wrote: the replica refused the \
     write ({source}); nothing was written. Drop `read_only` from a call that writes (the call \
     option, the resolver's default, or `#[managed_transaction(read_only)]`)"
)]
pub struct WriteOnReplica {
    label: String,
    #[source]
    source: Box<dyn StdError + Send + Sync + 'static>,
}

impl WriteOnReplica {
    pub(crate) fn new(label: &str, source: Box<dyn StdError + Send + Sync + 'static>) -> Self {
        Self {
            label: label.to_owned(),
            source,
        }
    }

    /// The label of the managed call.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The `WriteOnReplica` in `err` or anywhere along its `source()` chain
    /// (it travels inside a [`DbErr`](sea_orm::DbErr)).
    pub fn find<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a Self> {
        super::super::carried::find(err)
    }
}
