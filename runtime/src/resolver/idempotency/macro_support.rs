//! What `#[managed_transaction(idempotency_key = …)]` expands to: the key
//! and the arguments' fingerprint made before the body closure moves the
//! arguments, then the idempotent call for the caller the function was
//! given. The traits here are named so that a misuse reads in words, on the
//! user's own tokens (the macro spans each check on the type it checks).

use std::fmt::Display;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::super::body::ManagedBody;
use super::super::call_error::TransactionError;
use super::super::caller::{Caller, CallerRef};
use super::super::error::NestedOption;
use super::super::inner::ConflictResolver;
use super::super::options::CallOptions;
use super::IdempotencyKey;
use super::errors::{InvalidIdempotencyKey, carry};

/// A value an idempotent call can return: stored as JSON with its key, and
/// read back for a repeat. Implemented for every `Serialize +
/// DeserializeOwned + Send` type; named so that a type that is not one is
/// reported in words, on the function's return type.
///
/// ```
/// use conflictkit::resolver::idempotency::StorableOutcome;
/// fn storable<T: StorableOutcome>() {}
/// storable::<(u32, String)>();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the value of an idempotent call",
    label = "an idempotent call stores its value as JSON under its key and reads it back for a repeat",
    note = "derive `serde::Serialize` and `serde::Deserialize` for it (and keep it `Send`)"
)]
pub trait StorableOutcome: Serialize + DeserializeOwned + Send {}

impl<T: Serialize + DeserializeOwned + Send> StorableOutcome for T {}

/// An argument of a `#[managed_transaction(idempotency_key = …)]` function:
/// part of the request's default fingerprint, so it must serialize.
/// Implemented for every `Serialize` type; named so that an argument that
/// does not is reported in words, on its type.
///
/// ```
/// use conflictkit::resolver::idempotency::FingerprintArgument;
/// fn part_of_the_fingerprint<T: FingerprintArgument + ?Sized>() {}
/// part_of_the_fingerprint::<str>();
/// part_of_the_fingerprint::<(i64, Vec<u8>)>();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be part of the fingerprint of an idempotent call",
    label = "the arguments, serialized, tell a retry of the request from another request with the same key",
    note = "derive `serde::Serialize` for it, or give the fingerprint yourself: `fingerprint = <expr>`"
)]
pub trait FingerprintArgument: Serialize {}

impl<T: Serialize + ?Sized> FingerprintArgument for T {}

/// The default fingerprint of a call: its arguments serialized as one
/// tuple of them would be (`(a, b)` gives the JSON array `[a,b]`), made one
/// argument at a time so that the macro can check each argument on its own
/// type.
///
/// ```
/// use conflictkit::resolver::idempotency::{ArgsFingerprint, IdempotencyKey};
/// let by_macro = ArgsFingerprint::new().arg(&7).arg("EUR").key("k")?;
/// assert_eq!(by_macro.key(), "k");
/// let by_hand = IdempotencyKey::new("k")?.fingerprint(&(7, "EUR"))?;
/// assert_eq!(by_macro, by_hand);
/// # Ok::<(), conflictkit::resolver::idempotency::InvalidIdempotencyKey>(())
/// ```
#[derive(Debug, Default)]
pub struct ArgsFingerprint {
    json: Vec<u8>,
    args: usize,
    failed: Option<serde_json::Error>,
}

impl ArgsFingerprint {
    /// No argument yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next argument.
    pub fn arg<A: FingerprintArgument + ?Sized>(mut self, arg: &A) -> Self {
        if self.failed.is_some() {
            return self;
        }
        self.json.push(if self.args == 0 { b'[' } else { b',' });
        self.args += 1;
        if let Err(e) = serde_json::to_writer(&mut self.json, arg) {
            self.failed = Some(e);
        }
        self
    }

    /// The checked `key` (borrowed, so that an argument used as the key is
    /// still the body's: a `String`, a `&str`, a UUID) with this
    /// fingerprint.
    pub fn key<K: Display + ?Sized>(
        self,
        key: &K,
    ) -> Result<IdempotencyKey, InvalidIdempotencyKey> {
        let key = IdempotencyKey::new(key.to_string())?;
        if let Some(e) = self.failed {
            return Err(InvalidIdempotencyKey::Fingerprint(e));
        }
        let mut json = self.json;
        if self.args == 0 {
            json.extend_from_slice(b"null"); // as `()` serializes
        } else {
            json.push(b']');
        }
        Ok(key.fingerprint_bytes(&json))
    }
}

/// The key of a `#[managed_transaction(idempotency_key = …, fingerprint =
/// …)]` call, checked and fingerprinted with the given value. Generated
/// code computes it before building the body closure, so that the
/// fingerprint's borrows of the arguments end before the closure moves them.
#[doc(hidden)]
pub fn idempotency_key<K, R>(
    key: &K,
    fingerprint: &R,
) -> Result<IdempotencyKey, InvalidIdempotencyKey>
where
    K: Display + ?Sized,
    R: Serialize + ?Sized,
{
    IdempotencyKey::new(key.to_string()).and_then(|k| k.fingerprint(fingerprint))
}

/// What `#[managed_transaction(idempotency_key = …)]` expands to, with the
/// key made before: a bad key is the call's typed error, before any
/// transaction; then [`ConflictResolver::run_idempotent`] with the
/// resolver. Called with a `Txn` (inside another managed body) it refuses
/// with [`NestedOption`]: a savepoint's outcome is only known when the
/// outermost call commits, so the key belongs on that call.
#[doc(hidden)]
pub async fn run_idempotent_call<'a, C, F, T, E>(
    caller: &C,
    options: CallOptions,
    key: Result<IdempotencyKey, InvalidIdempotencyKey>,
    body: F,
) -> Result<T, E>
where
    C: Caller + ?Sized,
    F: ManagedBody<'a, T, E>,
    T: StorableOutcome,
    E: TransactionError,
{
    let resolver = resolver_of::<C, E>(caller, &options)?;
    resolver
        .run_idempotent(options.idempotency_key(key.map_err(carry::<E, _>)?), body)
        .await
}

/// [`run_idempotent_call`] with `store_errors`:
/// [`ConflictResolver::run_idempotent_storing_errors`].
#[doc(hidden)]
pub async fn run_idempotent_call_storing_errors<'a, C, F, T, E>(
    caller: &C,
    options: CallOptions,
    key: Result<IdempotencyKey, InvalidIdempotencyKey>,
    body: F,
) -> Result<T, E>
where
    C: Caller + ?Sized,
    F: ManagedBody<'a, T, E>,
    T: StorableOutcome,
    E: TransactionError + Serialize + DeserializeOwned,
{
    let resolver = resolver_of::<C, E>(caller, &options)?;
    resolver
        .run_idempotent_storing_errors(options.idempotency_key(key.map_err(carry::<E, _>)?), body)
        .await
}

/// The resolver of an idempotent call, or its refusal when it was given a
/// transaction (a nested call).
fn resolver_of<'c, C, E>(caller: &'c C, options: &CallOptions) -> Result<&'c ConflictResolver, E>
where
    C: Caller + ?Sized,
    E: TransactionError,
{
    match caller.__caller() {
        CallerRef::Resolver(resolver) => Ok(resolver),
        CallerRef::Txn(txn) => Err(carry(nested(options.label(), txn.label()))),
    }
}

/// The refusal of an idempotent call made inside the managed call `outer`.
pub(super) fn nested(label: &str, outer: &str) -> NestedOption {
    NestedOption::new(
        label,
        outer,
        "an idempotency key".to_owned(),
        "whose COMMIT alone decides whether the nested call happened, so only it can store the \
         outcome under a key"
            .to_owned(),
    )
}
