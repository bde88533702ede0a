//! An idempotent call: the key checked on a plain connection, then the
//! resolver's run with the key claimed and the outcome stored in its
//! transaction, then (on an unknown `COMMIT` outcome) the key looked up to
//! find out. A layer around [`ConflictResolver::run`]: the replay loop and
//! one run are the resolver's own, unchanged.

use std::sync::Mutex;

use sea_orm::DbErr;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::super::body::ManagedBody;
use super::super::call_error::TransactionError;
use super::super::error::AmbiguousCommit;
use super::super::inner::ConflictResolver;
use super::super::options::CallOptions;
use super::super::txn::Txn;
use super::errors::{IdempotencyKeyReused, InvalidIdempotencyKey, StoredOutcomeUnreadable, carry};
use super::in_flight::{InFlight, is_running};
use super::macro_support::nested;
use super::store::{self, Claim, Claimed, Row, State};
use super::{IdempotencyKey, check_len};
use crate::sync::lock;

/// How many times a call whose `COMMIT` outcome was unknown, and was found
/// not to have committed, runs again before it gives up with the
/// [`AmbiguousCommit`].
const RUNS_AFTER_UNKNOWN_COMMIT: u32 = 3;

/// What the body of one run came to.
enum Step<T, E> {
    /// This call claimed the key and ran the body: its value, stored.
    Ran(T),
    /// This call claimed the key, and the body's error was stored.
    StoredErr(E),
    /// Another call holds the key (committed while this one waited).
    Found(Row),
}

/// Whether a call stores the `Err` its body returns, and how.
trait ErrorOutcome<E>: Sync {
    /// `err` as JSON to store, or `None` to store nothing.
    fn encode(&self, err: &E) -> Option<String>;
    /// A stored error read back; `None` when this call reads none.
    fn decode(&self, json: &str) -> Option<Result<E, serde_json::Error>>;
    /// Whether the body runs in a savepoint (its writes are undone when
    /// its error is stored and the transaction commits).
    fn stores(&self) -> bool;
}

/// `run_idempotent`: an `Err` stores nothing.
struct ErrorsNotStored;

impl<E> ErrorOutcome<E> for ErrorsNotStored {
    fn encode(&self, _: &E) -> Option<String> {
        None
    }
    fn decode(&self, _: &str) -> Option<Result<E, serde_json::Error>> {
        None
    }
    fn stores(&self) -> bool {
        false
    }
}

/// `run_idempotent_storing_errors`: an `Err` that serializes is stored.
struct ErrorsStored;

impl<E: Serialize + DeserializeOwned> ErrorOutcome<E> for ErrorsStored {
    fn encode(&self, err: &E) -> Option<String> {
        // A variant that does not serialize (`#[serde(skip)]` on the
        // database error, say) is no business outcome: not stored.
        serde_json::to_string(err).ok()
    }
    fn decode(&self, json: &str) -> Option<Result<E, serde_json::Error>> {
        Some(serde_json::from_str(json))
    }
    fn stores(&self) -> bool {
        true
    }
}

impl ConflictResolver {
    /// Runs `body` as [`run`](Self::run) does, once per idempotency key
    /// (set on the options with
    /// [`CallOptions::idempotency_key`]; without one the call fails with
    /// [`InvalidIdempotencyKey::Missing`] before anything runs): the `Ok`
    /// value is stored with the key in the call's own transaction, and a
    /// repeat of the key returns it without running the body.
    ///
    /// - A repeat after the commit is answered from the stored value, read
    ///   on a plain connection before any transaction begins (it takes no
    ///   contention slot and no SQLite write slot).
    /// - A repeat while the first call runs waits for it (on the key's
    ///   primary key, on every engine), then returns its value, or runs if
    ///   the first rolled back.
    /// - A key met with another fingerprint fails with
    ///   [`IdempotencyKeyReused`]; an `Err` from the body stores nothing
    ///   (see [`run_idempotent_storing_errors`](Self::run_idempotent_storing_errors));
    ///   a stored value that no longer deserializes into `T` fails with
    ///   [`StoredOutcomeUnreadable`], never runs the body again.
    /// - When the outcome of `COMMIT` is unknown (the connection failed
    ///   while committing), the key is looked up on another connection:
    ///   found, the call committed and its stored value is returned; absent,
    ///   it did not, and it runs again; only when the lookup fails too is
    ///   the [`AmbiguousCommit`] returned. The after-commit hooks of a run
    ///   whose `COMMIT` outcome was unknown run once when the key is found
    ///   with that run's claim (it committed; found by the lookup, or later
    ///   by this call when that `COMMIT` landed after the lookup), and
    ///   never otherwise.
    ///
    /// The table must exist ([`migrate_idempotency`](super::migrate_idempotency)).
    /// A read-only call cannot take a key (claiming it is a write), nor a
    /// call made inside another managed body of this resolver, which would
    /// run as a savepoint of it: that fails with
    /// [`NestedOption`](crate::resolver::NestedOption) before anything runs
    /// (only the outermost call's `COMMIT` decides whether it happened, so
    /// give the key to that call).
    ///
    /// ```
    /// use conflictkit::{ConflictResolver, Txn};
    /// use conflictkit::resolver::CallOptions;
    /// use conflictkit::resolver::idempotency::{IdempotencyKey, migrate_idempotency};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// migrate_idempotency(&db).await?;
    /// let resolver = ConflictResolver::new(db);
    /// let runs = std::sync::atomic::AtomicU32::new(0);
    /// for _ in 0..2 {
    ///     let key = IdempotencyKey::new("req-1")?;
    ///     let v: u32 = resolver
    ///         .run_idempotent(CallOptions::new("demo").idempotency_key(key), |_txn: &Txn| {
    ///             let n = runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    ///             Box::pin(async move { Ok::<_, conflictkit::Error>(n * 10) })
    ///         })
    ///         .await?;
    ///     assert_eq!(v, 10);
    /// }
    /// assert_eq!(runs.into_inner(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    pub async fn run_idempotent<'a, F, T, E>(&self, options: CallOptions, body: F) -> Result<T, E>
    where
        F: ManagedBody<'a, T, E>,
        T: Serialize + DeserializeOwned + Send,
        E: TransactionError,
    {
        self.idempotent(options, body, &ErrorsNotStored).await
    }

    /// [`run_idempotent`](Self::run_idempotent), storing an `Err` of the
    /// body too when it serializes (a refused payment stays refused: its
    /// repeat gets the same error without running). The body then runs in
    /// a savepoint: the writes of a body whose error is stored are undone,
    /// and the key and the error commit. Variants that do not serialize
    /// (mark the database error `#[serde(skip)]`) and conflicts are not
    /// stored: they behave as in `run_idempotent`.
    ///
    /// ```
    /// use conflictkit::{CannotResolveDatabaseConflict, ConflictResolver, Txn};
    /// use conflictkit::resolver::CallOptions;
    /// use conflictkit::resolver::idempotency::{IdempotencyKey, migrate_idempotency};
    ///
    /// #[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
    /// enum PayError {
    ///     #[error("card refused")]
    ///     Refused,
    ///     #[error(transparent)]
    ///     #[serde(skip)]
    ///     Db(#[from] sea_orm::DbErr),
    ///     #[error(transparent)]
    ///     #[serde(skip)]
    ///     Conflict(#[from] CannotResolveDatabaseConflict),
    /// }
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
    /// migrate_idempotency(&db).await.unwrap();
    /// let resolver = ConflictResolver::new(db);
    /// let runs = std::sync::atomic::AtomicU32::new(0);
    /// for _ in 0..2 {
    ///     let err = resolver
    ///         .run_idempotent_storing_errors(
    ///             CallOptions::new("demo::pay").idempotency_key(IdempotencyKey::new("pay-9").unwrap()),
    ///             |_txn: &Txn| {
    ///                 runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    ///                 Box::pin(async { Err::<u32, _>(PayError::Refused) })
    ///             },
    ///         )
    ///         .await
    ///         .unwrap_err();
    ///     assert!(matches!(err, PayError::Refused));
    /// }
    /// assert_eq!(runs.into_inner(), 1, "the refusal was stored");
    /// # });
    /// ```
    pub async fn run_idempotent_storing_errors<'a, F, T, E>(
        &self,
        options: CallOptions,
        body: F,
    ) -> Result<T, E>
    where
        F: ManagedBody<'a, T, E>,
        T: Serialize + DeserializeOwned + Send,
        E: TransactionError + Serialize + DeserializeOwned,
    {
        self.idempotent(options, body, &ErrorsStored).await
    }

    /// Whether an idempotent call of `label` with `key` runs now in this
    /// process (through this resolver or a clone of it).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let resolver = conflictkit::ConflictResolver::connect("sqlite::memory:").await?;
    /// assert!(!resolver.idempotent_call_running("demo", "req-1"));
    /// # Ok::<(), sea_orm::DbErr>(()) }).unwrap();
    /// ```
    pub fn idempotent_call_running(&self, label: &str, key: &str) -> bool {
        is_running(self.id(), label, key)
    }

    async fn idempotent<'a, F, T, E, S>(
        &self,
        mut options: CallOptions,
        body: F,
        errors: &S,
    ) -> Result<T, E>
    where
        F: ManagedBody<'a, T, E>,
        T: Serialize + DeserializeOwned + Send,
        E: TransactionError,
        S: ErrorOutcome<E>,
    {
        let label = options.label().to_owned();
        // taken: the runs below go through `run`, which refuses a key
        let Some(key) = options.idempotency.take() else {
            return Err(carry(InvalidIdempotencyKey::Missing { label }));
        };
        if options.read_only {
            return Err(carry(InvalidIdempotencyKey::ReadOnly { label }));
        }
        if let Some(outer) = self.enclosing() {
            return Err(carry(nested(&label, outer.txn.label())));
        }
        if let Err(e) = check_len("label", &label) {
            return Err(carry(e));
        }
        let _running = InFlight::enter(self.id(), &label, key.key());
        let body = Mutex::new(body);
        let mut runs_after_unknown = 0;
        let mut unknown = UnknownRuns::default();
        loop {
            // a repeat after the commit: no transaction, no contention slot
            if let Some(row) = store::read(self.connection(), &label, key.key(), false).await?
                && row.state != Some(State::Pending)
            {
                tracing::debug!(
                    label,
                    key = key.key(),
                    "idempotency key found; answering from the stored outcome"
                );
                unknown.found(&row);
                return answer(row, &label, &key, errors);
            }
            let claim = Claim::new(&label, key.key(), key.fingerprint_hex());
            let result = self
                .run(options.clone(), |txn: &Txn| {
                    let (body, claim) = (&body, &claim);
                    Box::pin(async move { self.claimed_run(txn, claim, body, errors).await })
                })
                .await;
            let err = match result {
                Ok(Step::Ran(value)) => return Ok(value),
                Ok(Step::StoredErr(err)) => return Err(err),
                Ok(Step::Found(row)) => {
                    unknown.found(&row);
                    return answer(row, &label, &key, errors);
                }
                Err(err) => err,
            };
            let Some(ambiguous) = AmbiguousCommit::find(&err) else {
                return Err(err);
            };
            unknown.remember(&claim.token, ambiguous);
            match self.look_up(&claim).await {
                Some(Some(row)) => {
                    let ours = row.claim == claim.token;
                    tracing::info!(
                        label,
                        key = key.key(),
                        ours,
                        "the outcome of COMMIT was unknown; the key is stored, so it committed"
                    );
                    unknown.found(&row);
                    return answer(row, &label, &key, errors);
                }
                Some(None) if runs_after_unknown < RUNS_AFTER_UNKNOWN_COMMIT => {
                    runs_after_unknown += 1;
                    tracing::warn!(
                        label,
                        key = key.key(),
                        "the outcome of COMMIT was unknown; the key is absent, so it did not commit: running it again"
                    );
                }
                _ => return Err(err),
            }
        }
    }

    /// One run's body: claim the key, run the user's body (in a savepoint
    /// when its error may be stored), store the outcome.
    async fn claimed_run<'a, F, T, E, S>(
        &self,
        txn: &Txn,
        claim: &Claim,
        body: &Mutex<F>,
        errors: &S,
    ) -> Result<Step<T, E>, E>
    where
        F: ManagedBody<'a, T, E>,
        T: Serialize + Send,
        E: TransactionError,
        S: ErrorOutcome<E>,
    {
        if let Claimed::Theirs(row) = store::claim(txn, claim).await? {
            return Ok(Step::Found(row));
        }
        let ran = if errors.stores() {
            // nested in this run: a savepoint, undone if it fails
            self.run(CallOptions::new(claim.label.clone()), |t: &Txn| {
                let mut body = lock(body);
                (*body)(t)
            })
            .await
        } else {
            let run = {
                let mut body = lock(body);
                (*body)(txn)
            };
            run.await
        };
        match ran {
            Ok(value) => {
                let json = serde_json::to_string(&value).map_err(|e| {
                    DbErr::Custom(format!(
                        "the value `{}` returned could not be stored under its idempotency key \
                         ({e}), so nothing was committed: make it serialize",
                        claim.label
                    ))
                })?;
                store::finish(txn, claim, State::Ok, &json).await?;
                Ok(Step::Ran(value))
            }
            Err(err) => {
                let stored = match self.classify(&err) {
                    Some(_) => None,
                    None => errors.encode(&err),
                };
                match stored {
                    Some(json) => {
                        store::finish(txn, claim, State::Err, &json).await?;
                        Ok(Step::StoredErr(err))
                    }
                    None => Err(err),
                }
            }
        }
    }

    /// The key's row after a `COMMIT` with an unknown outcome, on a fresh
    /// connection of the pool (a second try if the first one it hands out
    /// was dead too): `None` when the lookup fails.
    ///
    /// Absent means not committed: were that `COMMIT` still running on the
    /// server, the run again would wait for it on the key's primary key, so
    /// it cannot apply the request twice.
    async fn look_up(&self, claim: &Claim) -> Option<Option<Row>> {
        for attempt in 1..=2 {
            match store::read(self.connection(), &claim.label, &claim.key, false).await {
                Ok(row) => return Some(row),
                Err(e) => {
                    tracing::warn!(label = %claim.label, key = %claim.key, attempt, error = %e, "looking up the idempotency key after an unknown COMMIT outcome failed")
                }
            }
        }
        None
    }
}

/// The after-commit hooks of this call's runs whose `COMMIT` outcome was
/// unknown, by their claim's token. A run whose key was absent when looked
/// up may still commit (its `COMMIT` was on its way to the server, and the
/// lookup came first): the row a later read or claim finds then carries
/// that run's claim, and its hooks run, once. Hooks of runs never found are
/// dropped unrun.
#[derive(Default)]
struct UnknownRuns(Vec<(String, Box<dyn FnOnce() + Send>)>);

impl UnknownRuns {
    fn remember(&mut self, token: &str, ambiguous: &AmbiguousCommit) {
        if let Some(hooks) = ambiguous.take_after_commit() {
            self.0.push((token.to_owned(), hooks));
        }
    }

    /// `row` was found: if it is the claim of one of these runs, that run
    /// committed, and its hooks run now.
    fn found(&mut self, row: &Row) {
        if let Some(i) = self.0.iter().position(|(token, _)| *token == row.claim) {
            let (_, hooks) = self.0.swap_remove(i);
            hooks();
        }
    }
}

/// The answer a stored row gives to a call with `key`.
fn answer<T, E, S>(row: Row, label: &str, key: &IdempotencyKey, errors: &S) -> Result<T, E>
where
    T: DeserializeOwned,
    E: From<DbErr>,
    S: ErrorOutcome<E>,
{
    if row.fingerprint != key.fingerprint_hex() {
        return Err(carry(IdempotencyKeyReused {
            label: label.to_owned(),
            key: key.key().to_owned(),
        }));
    }
    let unreadable = |reason: String, source: Option<serde_json::Error>| {
        carry(StoredOutcomeUnreadable {
            label: label.to_owned(),
            key: key.key().to_owned(),
            reason,
            source,
        })
    };
    match (row.state, row.outcome) {
        (Some(State::Ok), Some(json)) => serde_json::from_str(&json).map_err(|e| {
            unreadable(
                format!("the stored value does not deserialize into `{}`", std::any::type_name::<T>()),
                Some(e),
            )
        }),
        (Some(State::Err), Some(json)) => match errors.decode(&json) {
            Some(Ok(err)) => Err(err),
            Some(Err(e)) => Err(unreadable(
                format!("the stored error does not deserialize into `{}`", std::any::type_name::<E>()),
                Some(e),
            )),
            None => Err(unreadable(
                "an error was stored (by `run_idempotent_storing_errors`), and this call reads no stored errors".into(),
                None,
            )),
        },
        (state, _) => Err(unreadable(
            format!("the row has state {state:?} and no outcome"),
            None,
        )),
    }
}
