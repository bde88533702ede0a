//! Idempotency keys: a repeated request returns the stored outcome, and a
//! `COMMIT` whose outcome is unknown resolves itself.
//!
//! A client that timed out retries its request with the same key and gets
//! the first request's answer, never a second effect. The key and the
//! outcome are stored **in the call's own transaction**, beside its writes
//! (table `conflictkit_idempotency`, made by [`migrate_idempotency`]): the
//! effect and the key commit together, or neither does.
//!
//! ```text
//! run_idempotent   key and label checked (typed errors, nothing ran)
//!  ├ check         the key's row on a plain connection: stored → answer
//!  │               from it (no transaction, no contention slot)
//!  ├ run           the resolver's run; in its transaction:
//!  │    ├ claim    INSERT … ON CONFLICT DO NOTHING, read back: another
//!  │    │          call's row → answer from it; a concurrent claim
//!  │    │          waits on the primary key until that call ends
//!  │    ├ body     the user's body
//!  │    └ store    the serialized Ok value (or a stored Err), then COMMIT
//!  └ ambiguous     COMMIT outcome unknown → the key's row on a fresh
//!                  connection: this call's claim → committed, run its
//!                  after-commit hooks, answer from it; absent → not
//!                  committed (its hooks dropped), run again
//! ```
//!
//! The key's scope is (label, key): the same key given to two functions
//! names two requests. A key met again with another fingerprint (other
//! arguments) is [`IdempotencyKeyReused`]. By default an `Err` from the
//! body stores nothing (the request may be retried once its cause is
//! fixed); [`ConflictResolver::run_idempotent_storing_errors`](super::ConflictResolver::run_idempotent_storing_errors) stores a
//! serializable `Err` too (a refused payment stays refused).
//!
//! ```
//! use conflictkit::{ConflictResolver, Txn};
//! use conflictkit::resolver::CallOptions;
//! use conflictkit::resolver::idempotency::{IdempotencyKey, migrate_idempotency};
//! use sea_orm::ConnectionTrait;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let db = sea_orm::Database::connect("sqlite::memory:").await?;
//! migrate_idempotency(&db).await?;
//! db.execute_unprepared("CREATE TABLE payment (cents BIGINT)").await?;
//! let resolver = ConflictResolver::new(db.clone());
//!
//! let pay = |cents: i64| {
//!     let key = IdempotencyKey::new("7f1c0c9e-client-request-1")
//!         .and_then(|k| k.fingerprint(&cents));
//!     let resolver = resolver.clone();
//!     async move {
//!         resolver
//!             .run_idempotent(CallOptions::new("payments::pay").idempotency_key(key?), |txn: &Txn| {
//!                 Box::pin(async move {
//!                     txn.execute_unprepared(&format!("INSERT INTO payment VALUES ({cents})"))
//!                         .await?;
//!                     Ok::<_, conflictkit::Error>(format!("paid {cents}"))
//!                 })
//!             })
//!             .await
//!             .map_err(Box::<dyn std::error::Error>::from)
//!     }
//! };
//! assert_eq!(pay(250).await?, "paid 250");
//! assert_eq!(pay(250).await?, "paid 250"); // the retry: answered from the stored outcome
//! let row = db
//!     .query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), "SELECT COUNT(*) AS n FROM payment"))
//!     .await?
//!     .unwrap();
//! assert_eq!(row.try_get::<i64>("", "n")?, 1, "paid once");
//! assert!(pay(300).await.is_err(), "the same key for another request is refused");
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```
#![cfg(feature = "serde")]

mod call;
mod errors;
#[cfg(feature = "events")]
pub mod http;
mod in_flight;
#[cfg(feature = "tower")]
pub mod layer;
mod macro_support;
mod store;

pub use errors::{IdempotencyKeyReused, InvalidIdempotencyKey, StoredOutcomeUnreadable};
pub use macro_support::{
    ArgsFingerprint, FingerprintArgument, StorableOutcome, idempotency_key, run_idempotent_call,
    run_idempotent_call_storing_errors,
};
pub use store::{IDEMPOTENCY_TABLE, MAX_KEY_CHARS, migrate_idempotency, purge_idempotency};

use sha2::{Digest, Sha256};

/// The idempotency key of one request, with the request's fingerprint.
///
/// A key names one request: made by the client (a UUID), sent again with
/// every retry of that request. The fingerprint tells a retry (same
/// request) from a reused key (another request): by default it is empty,
/// and every call with the key is taken for the same request; give one with
/// [`fingerprint`](Self::fingerprint) (the arguments) or
/// [`fingerprint_bytes`](Self::fingerprint_bytes).
///
/// ```
/// use conflictkit::resolver::idempotency::IdempotencyKey;
/// let a = IdempotencyKey::new("order-42")?.fingerprint(&(7, "EUR"))?;
/// let b = IdempotencyKey::new("order-42")?.fingerprint(&(7, "EUR"))?;
/// let c = IdempotencyKey::new("order-42")?.fingerprint(&(8, "EUR"))?;
/// assert_eq!(a, b);
/// assert_ne!(a, c);
/// assert_eq!(a.key(), "order-42");
/// assert!(IdempotencyKey::new("x".repeat(256)).is_err());
/// # Ok::<(), conflictkit::resolver::idempotency::InvalidIdempotencyKey>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    key: String,
    fingerprint: String,
}

impl IdempotencyKey {
    /// The key, checked: not empty, at most [`MAX_KEY_CHARS`] characters.
    pub fn new(key: impl Into<String>) -> Result<Self, InvalidIdempotencyKey> {
        let key = key.into();
        if key.is_empty() {
            return Err(InvalidIdempotencyKey::Empty);
        }
        check_len("key", &key)?;
        Ok(Self {
            key,
            fingerprint: hex_sha256(b""),
        })
    }

    /// The request's fingerprint: `request` serialized with serde_json
    /// (the arguments of the call, say), hashed with SHA-256.
    pub fn fingerprint<R: serde::Serialize + ?Sized>(
        self,
        request: &R,
    ) -> Result<Self, InvalidIdempotencyKey> {
        let bytes = serde_json::to_vec(request).map_err(InvalidIdempotencyKey::Fingerprint)?;
        Ok(self.fingerprint_bytes(&bytes))
    }

    /// The request's fingerprint: `bytes` (an HTTP request's method, path
    /// and body, say), hashed with SHA-256.
    ///
    /// ```
    /// use conflictkit::resolver::idempotency::IdempotencyKey;
    /// let k = IdempotencyKey::new("k1")?.fingerprint_bytes(b"POST /transfer {\"cents\":5}");
    /// assert_eq!(k.fingerprint_hex().len(), 64);
    /// # Ok::<(), conflictkit::resolver::idempotency::InvalidIdempotencyKey>(())
    /// ```
    pub fn fingerprint_bytes(mut self, bytes: &[u8]) -> Self {
        self.fingerprint = hex_sha256(bytes);
        self
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The fingerprint as stored: SHA-256, 64 hexadecimal digits.
    pub fn fingerprint_hex(&self) -> &str {
        &self.fingerprint
    }
}

fn check_len(what: &'static str, value: &str) -> Result<(), InvalidIdempotencyKey> {
    let chars = value.chars().count();
    if chars > MAX_KEY_CHARS {
        return Err(InvalidIdempotencyKey::TooLong {
            what,
            chars,
            max: MAX_KEY_CHARS,
        });
    }
    Ok(())
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
