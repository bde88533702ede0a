//! The errors of idempotent calls. Each reaches the caller inside a
//! [`DbErr`](sea_orm::DbErr) (so through any error type a managed body
//! uses, as [`AmbiguousCommit`](crate::resolver::AmbiguousCommit) does);
//! find it with its `find`.

use std::error::Error as StdError;

use super::super::carried;

/// An idempotency key (or what a call gave with it) that cannot be used:
/// refused before any transaction begins, so nothing ran.
///
/// ```
/// use conflictkit::resolver::idempotency::{IdempotencyKey, InvalidIdempotencyKey};
/// let err = IdempotencyKey::new("").unwrap_err();
/// assert!(matches!(err, InvalidIdempotencyKey::Empty));
/// assert!(err.to_string().contains("empty"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidIdempotencyKey {
    /// The key is the empty string.
    #[error(
        "the idempotency key is empty: give every request a key of its own (a UUID the client \
         makes), or call without a key"
    )]
    Empty,
    /// The key (or the call's label) is longer than its column holds.
    #[error(
        "the idempotency {what} is {chars} characters long; the table `conflictkit_idempotency` \
         holds at most {max}: use a shorter key (a UUID is 36)"
    )]
    TooLong {
        /// `key` or `label`.
        what: &'static str,
        /// Its length in characters.
        chars: usize,
        /// The most the column holds.
        max: usize,
    },
    /// The arguments given as the request's fingerprint do not serialize.
    #[error(
        "the fingerprint of the request (its arguments, serialized with serde_json) could not be \
         made: {0}; give a fingerprint that serializes, or `fingerprint_bytes`"
    )]
    Fingerprint(#[source] serde_json::Error),
    /// A read-only call was given a key: claiming the key is a write.
    #[error(
        "`{label}` is read-only and was given an idempotency key: recording the key is a write; \
         drop the key (a read is idempotent anyway) or the read-only option"
    )]
    ReadOnly {
        /// The label of the call.
        label: String,
    },
    /// [`run_idempotent`](crate::resolver::ConflictResolver::run_idempotent) was
    /// called with options that carry no key.
    #[error(
        "`{label}` was run with `run_idempotent` but its CallOptions carry no idempotency key: \
         set one with `CallOptions::idempotency_key(IdempotencyKey::new(..)?)`, or call `run`"
    )]
    Missing {
        /// The label of the call.
        label: String,
    },
    /// A key was given to a call that cannot store an outcome under it
    /// (`run` and `run_batched` take any `Ok` type, serializable or not).
    #[error(
        "`{label}` was given an idempotency key, but `{through}` cannot store an outcome under it \
         (nothing would stop a repeat from running again): call `run_idempotent` with these \
         options (its Ok type must be Serialize + DeserializeOwned), or use \
         `#[managed_transaction(idempotency_key = ..)]`"
    )]
    NotStorable {
        /// The label of the call.
        label: String,
        /// The call that was made: `run` or `run_batched`.
        through: &'static str,
    },
}

impl InvalidIdempotencyKey {
    /// The `InvalidIdempotencyKey` in `err` or anywhere along its `source()`
    /// chain (it travels inside a `DbErr`).
    pub fn find<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a Self> {
        carried::find(err)
    }
}

/// Carried in the `DbErr`, so that `?` brings it into any error type of a
/// managed call, and [`InvalidIdempotencyKey::find`] finds it there.
///
/// ```
/// use conflictkit::resolver::idempotency::{IdempotencyKey, InvalidIdempotencyKey};
/// let err = sea_orm::DbErr::from(IdempotencyKey::new("").unwrap_err());
/// assert!(matches!(InvalidIdempotencyKey::find(&err), Some(InvalidIdempotencyKey::Empty)));
/// ```
impl From<InvalidIdempotencyKey> for sea_orm::DbErr {
    fn from(err: InvalidIdempotencyKey) -> Self {
        carried::into_db_err(err)
    }
}

/// The key was used before with another request (another fingerprint: other
/// arguments, another body): the draft standard's 422. Nothing ran; the
/// stored outcome belongs to the first request and is not returned.
///
/// ```
/// use conflictkit::resolver::idempotency::IdempotencyKeyReused;
/// let err = sea_orm::DbErr::RecordNotFound("x".into());
/// assert!(IdempotencyKeyReused::find(&err).is_none());
/// ```
#[derive(Debug, thiserror::Error)]
#[error(
    "the idempotency key `{key}` of `{label}` was already used for another request (other \
     arguments): a key names one request; make a new key for a new request"
)]
pub struct IdempotencyKeyReused {
    pub(crate) label: String,
    pub(crate) key: String,
}

impl IdempotencyKeyReused {
    /// The label of the call.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The `IdempotencyKeyReused` in `err` or anywhere along its `source()`
    /// chain (it travels inside a `DbErr`).
    pub fn find<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a Self> {
        carried::find(err)
    }
}

/// The outcome stored under a key could not be read back into the call's
/// type (the type changed between releases, or the row was edited). The
/// body is **not** run again: the request did happen. Read the row
/// (`conflictkit_idempotency`, by label and key) to see what it stored.
///
/// ```
/// use conflictkit::resolver::idempotency::StoredOutcomeUnreadable;
/// let err = sea_orm::DbErr::RecordNotFound("x".into());
/// assert!(StoredOutcomeUnreadable::find(&err).is_none());
/// ```
#[derive(Debug, thiserror::Error)]
#[error(
    "the outcome stored under the idempotency key `{key}` of `{label}` cannot be read back \
     ({reason}); the request already ran and is not run again: read its row in \
     `conflictkit_idempotency`, or make the type read the stored JSON"
)]
pub struct StoredOutcomeUnreadable {
    pub(crate) label: String,
    pub(crate) key: String,
    pub(crate) reason: String,
    #[source]
    pub(crate) source: Option<serde_json::Error>,
}

impl StoredOutcomeUnreadable {
    /// The label of the call.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The key whose outcome is unreadable.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The `StoredOutcomeUnreadable` in `err` or anywhere along its
    /// `source()` chain (it travels inside a `DbErr`).
    pub fn find<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a Self> {
        carried::find(err)
    }
}

/// `err` carried in a `DbErr`, converted into the call's error type.
pub(crate) fn carry<E, X>(err: X) -> E
where
    E: From<sea_orm::DbErr>,
    X: StdError + Send + Sync + 'static,
{
    E::from(carried::into_db_err(err))
}
