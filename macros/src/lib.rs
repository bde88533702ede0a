//! Procedural macros of conflictkit. Use them through the `conflictkit` crate.

mod auto_number;
mod common;
mod event_listener;
mod managed_transaction;

use proc_macro::TokenStream;

/// Registers a function as a handler of the conflictkit event listener.
///
/// - `#[event_listener("txupdate")]` on a function (sync or async) handles the
///   event `txupdate`; `#[event_listener]` handles every event.
/// - Its parameters are decided by type, in any order, as axum extractors are:
///   the event data decoded into any `serde::Deserialize` type (the listener
///   answers 400 when it does not decode), `State<T>` (the state given to
///   `Listener::with_state`) and `EventContext` (event name, `webhook-id`,
///   timestamp, delivery attempt). A parameter of another type is a compile
///   error on that parameter.
/// - The original's every-event form, `fn(event_name: &str, data: serde_json::Value)`,
///   still works.
///
/// ```
/// use conflictkit::events::{EventContext, State};
///
/// #[derive(Clone)]
/// struct Bank { name: &'static str }
///
/// // The data here is a JSON string; any `serde::Deserialize` type works.
/// #[conflictkit::event_listener("doc_macro_txupdate")]
/// async fn on_txupdate(
///     State(bank): State<Bank>,
///     ctx: EventContext,
///     txid: String,
/// ) -> Result<(), std::io::Error> {
///     tracing::info!(bank = bank.name, id = ctx.webhook_id(), txid, "deposit");
///     Ok(())
/// }
/// # fn main() {}
/// ```
///
/// `State<T>` of a function registered here is checked when a listener
/// starts: a listener without a `T` state refuses to start
/// (`ListenerError::MissingState`) rather than fail a request.
///
/// The function may return `()` or `Result<(), E>` with `E: Display`; an
/// error, a panic or a timeout makes the listener answer 500. Sync functions
/// run on tokio's blocking pool. Options: `timeout_ms = N` (per-handler time
/// limit) and `crate = "path"` (when conflictkit is re-exported elsewhere).
///
/// The function stays as written and is registered process-wide at start-up
/// (through `inventory`, re-exported by conflictkit): every
/// [`Listener`](../conflictkit/events/struct.Listener.html) of the program
/// dispatches to it, unless it is built with `registered_handlers: false`.
///
/// More examples are in the `conflictkit` crate's documentation of this macro.
///
/// # Equivalent code
///
/// The function is kept unchanged; next to it:
///
/// ```text
/// const _: () = {
///     fn __ck_prepare(event: &Event, ctx: &EventContext, state: &DynState)
///         -> Result<HandlerFuture, ExtractError>
///     {
///         let arg0 = <State<Bank> as FromEvent<DynState>>::from_event(event, ctx, state)?;
///         let arg1 = <EventContext as FromEvent<DynState>>::from_event(event, ctx, state)?;
///         let arg2 = <TxUpdate as FromEvent<DynState>>::from_event(event, ctx, state)?;
///         Ok(call_async(move || on_txupdate(arg0, arg1, arg2)))
///     }
///     inventory::submit! {
///         Registration::new(Some("txupdate"), "my_crate::on_txupdate", None, __ck_prepare,
///             &[<State<Bank> as FromEvent<DynState>>::state_need, /* … */])
///     }
/// };
/// ```
#[proc_macro_attribute]
pub fn event_listener(
    args: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    event_listener::event_listener(args.into(), item.into()).into()
}

/// Derives [`AutoNumber`](https://docs.rs/conflictkit/latest/conflictkit/trait.AutoNumber.html)
/// for a fieldless enum whose variants are numbered one after another in
/// declaration order.
///
/// The values are the enum's own discriminants, so `Enum::Variant as i32`
/// and `Enum::Variant.value()` always agree. Write the first variant's number
/// (`= 1` counts from 1 as the Python original did, `= 0` from 0); the others
/// follow. A later variant may restate its number, which must then be the next
/// one: gaps and reorderings are compile errors, as is a first variant without
/// a number (Rust would count it from 0).
///
/// ```
/// use conflictkit::AutoNumber;
///
/// #[derive(AutoNumber, Debug, Clone, Copy, PartialEq, Eq)]
/// enum Subsystem { Database = 1, StatusServer, Backend, Broadcast }
///
/// assert_eq!(Subsystem::Broadcast.value(), 4);
/// assert_eq!(Subsystem::Broadcast as i32, 4);
/// assert_eq!(Subsystem::from_value(2), Some(Subsystem::StatusServer));
/// assert_eq!(Subsystem::try_from(3), Ok(Subsystem::Backend));
/// assert_eq!(i32::from(Subsystem::Database), 1);
/// assert_eq!(Subsystem::Backend.to_string(), "Backend");
/// assert_eq!("Broadcast".parse(), Ok(Subsystem::Broadcast));
/// assert_eq!(Subsystem::all().last(), Some(Subsystem::Broadcast));
/// ```
///
/// Besides the [`AutoNumber`] trait (`value`, `from_value`, `name`,
/// `from_name`, `VARIANTS`, `all`, …) it implements `TryFrom<Repr>`,
/// `From<Enum> for Repr`, `Display` (the variant name) and `FromStr` (from the
/// variant name).
///
/// # Options
///
/// `#[auto_number(...)]` on the enum:
///
/// - `repr = i16`: the integer type of the values, one of `i8`, `i16`, `i32`,
///   `i64`, `u8`, `u16`, `u32`, `u64`. The default is the enum's
///   `#[repr(…)]` when it is one of these, else `i32`. Every value must fit:
///   too many variants for the type is a compile error.
/// - `rename_all = "snake_case"`: the names (`name`, `from_name`, `Display`,
///   `FromStr`, serde by name) in one of serde's conventions: `"lowercase"`,
///   `"UPPERCASE"`, `"PascalCase"`, `"camelCase"`, `"snake_case"`,
///   `"SCREAMING_SNAKE_CASE"`, `"kebab-case"`, `"SCREAMING-KEBAB-CASE"`,
///   applied as `#[serde(rename_all)]` applies them.
/// - `serde = "number" | "name" | "none"`: with the `serde` feature (on by
///   default), the enum serializes as its number (like the Python original's
///   `.value`), as its name, or not at all (write your own impls).
///   Giving this option without the feature is a compile error.
/// - `crate = "path"`: where conflictkit is, if not `::conflictkit`.
///
/// and on a variant, `rename = "name"`: this variant's name, instead of the
/// identifier (or `rename_all`'s version of it).
///
/// ```
/// use conflictkit::AutoNumber;
///
/// #[derive(AutoNumber, Debug, PartialEq)]
/// #[auto_number(repr = u8, serde = "name", rename_all = "snake_case")]
/// enum Level {
///     Low = 0,
///     VeryHigh,
///     #[auto_number(rename = "off")]
///     Disabled,
/// }
///
/// assert_eq!(Level::VeryHigh.value(), 1u8);
/// assert_eq!(Level::VeryHigh.to_string(), "very_high");
/// assert_eq!("off".parse(), Ok(Level::Disabled));
/// assert_eq!(serde_json::to_string(&Level::VeryHigh).unwrap(), r#""very_high""#);
/// ```
///
/// With the `sea-orm-value` feature (on by default) the enum is a sea-orm
/// value type stored as an integer column of its repr, so it can be an
/// entity field (`Option<Enum>` for a nullable column).
///
/// # Errors
///
/// Structs, unions, generic enums, variants with fields, a first variant
/// without a number, a number that breaks the count, two variants with one
/// name, and unknown or repeated options are compile errors spanned on the
/// offending tokens. A zero-variant enum is fine.
///
/// ```compile_fail
/// use conflictkit::AutoNumber;
///
/// #[derive(AutoNumber)]
/// enum Subsystem { Database, Backend } // write `Database = 1`
/// ```
///
/// ```compile_fail
/// use conflictkit::AutoNumber;
///
/// #[derive(AutoNumber)]
/// enum Shape { Point = 1, Circle(f64) } // `Shape::Circle` has fields
/// ```
///
/// # Equivalent code
///
/// For `enum Subsystem { Database = 1, StatusServer }` the derive generates, inside
/// a `const _: () = { … };`:
///
/// ```text
/// impl ::conflictkit::AutoNumber for Subsystem {
///     type Repr = i32;
///     const ENUM_NAME: &'static str = "Subsystem";
///     const VARIANTS: &'static [Self] = &[Self::Database, Self::StatusServer];
///     const VARIANT_NAMES: &'static [&'static str] = &["Database", "StatusServer"];
///     fn value(&self) -> i32 { match *self { Self::Database => 1, Self::StatusServer => 2 } }
///     fn from_value(value: i32) -> Option<Self> {
///         match value { 1 => Some(Self::Database), 2 => Some(Self::StatusServer), _ => None }
///     }
///     fn name(&self) -> &'static str { /* "Database" | "StatusServer" */ }
///     fn from_name(name: &str) -> Option<Self> { /* the reverse */ }
/// }
/// impl TryFrom<i32> for Subsystem { type Error = conflictkit::auto_number::TryFromValueError<Self>; /* … */ }
/// impl From<Subsystem> for i32 { /* value() */ }
/// impl Display for Subsystem { /* name() */ }
/// impl FromStr for Subsystem { type Err = conflictkit::auto_number::ParseNameError<Self>; /* … */ }
/// // serde::{Serialize, Deserialize} and the sea-orm value traits, when their features are on
/// ```
///
/// [`AutoNumber`]: https://docs.rs/conflictkit/latest/conflictkit/trait.AutoNumber.html
#[proc_macro_derive(AutoNumber, attributes(auto_number))]
pub fn derive_auto_number(item: TokenStream) -> TokenStream {
    auto_number::derive(item.into()).into()
}

/// Runs an `async fn` as a *managed transaction*: inside a database
/// transaction that is replayed when the database reports a serialization
/// conflict, up to the resolver's `retries` replays.
///
/// Write the function with the transaction as its first parameter
/// (`txn: &Txn`, after `self` for methods). The macro replaces that parameter
/// by the resolver (`resolver: &ConflictResolver`), or removes it when the
/// `resolver = <expr>` option says where the resolver comes from. Everything
/// else of the signature is kept: name, visibility, attributes, generics,
/// where-clauses, receiver and return type.
///
/// ```
/// use conflictkit::{ConflictResolver, Txn, managed_transaction};
/// use sea_orm::{ConnectionTrait, Database, Statement};
///
/// #[managed_transaction(retries = 5)]
/// async fn top_up(txn: &Txn, account: i64, amount: i64) -> Result<i64, conflictkit::Error> {
///     let backend = txn.get_database_backend();
///     txn.execute_raw(Statement::from_sql_and_values(
///         backend,
///         "UPDATE account SET balance = balance + ? WHERE id = ?",
///         [amount.into(), account.into()],
///     ))
///     .await?;
///     let row = txn
///         .query_one_raw(Statement::from_sql_and_values(
///             backend,
///             "SELECT balance FROM account WHERE id = ?",
///             [account.into()],
///         ))
///         .await?
///         .ok_or_else(|| sea_orm::DbErr::RecordNotFound(format!("account {account}")))?;
///     txn.after_commit(move || tracing::info!(account, amount, "credited")); // once, after the final commit
///     Ok(row.try_get("", "balance")?)
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let db = Database::connect("sqlite::memory:").await?;
/// db.execute_unprepared("CREATE TABLE account (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)").await?;
/// db.execute_unprepared("INSERT INTO account VALUES (1, 10)").await?;
/// let resolver = ConflictResolver::new(db);
///
/// let balance = top_up(&resolver, 1, 5).await?; // the `txn` parameter became the resolver
/// assert_eq!(balance, 15);
/// assert_eq!(resolver.stats().success, 1);
/// # Ok::<(), conflictkit::Error>(()) }).unwrap();
/// ```
///
/// # Methods and `resolver = <expr>`
///
/// ```
/// use conflictkit::{ConflictResolver, Txn, managed_transaction};
/// use sea_orm::ConnectionTrait;
///
/// struct Wallet {
///     resolver: ConflictResolver,
/// }
///
/// impl Wallet {
///     /// Records a note; the resolver is the wallet's own.
///     #[managed_transaction(resolver = self.resolver, label = "wallet::note")]
///     pub async fn note(&self, txn: &Txn, text: &str) -> Result<usize, conflictkit::Error> {
///         txn.execute_unprepared("CREATE TABLE IF NOT EXISTS note (t TEXT)").await?;
///         Ok(text.len())
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let wallet = Wallet { resolver: ConflictResolver::new(sea_orm::Database::connect("sqlite::memory:").await?) };
/// assert_eq!(wallet.note("hello").await?, 5); // no resolver argument
/// # Ok::<(), conflictkit::Error>(()) }).unwrap();
/// ```
///
/// `resolver = <expr>` takes any expression that gives a `&ConflictResolver`
/// after a deref (`self.resolver`, an `Arc<ConflictResolver>` field, a
/// `static` `LazyLock<ConflictResolver>`); it is evaluated once per call.
///
/// # Options
///
/// | option | meaning |
/// |---|---|
/// | `retries = N` | replays after the first run (`N + 1` runs at most); default: the resolver's |
/// | `isolation = "serializable" \| "repeatable_read" \| "read_committed"` | isolation on PostgreSQL and MySQL; default: the resolver's (SERIALIZABLE) |
/// | `read_only` | begin the transaction `READ ONLY` (SQLite: deferred); on a resolver with replicas the call runs on a replica (see `ConflictResolverBuilder::replica`) |
/// | `deferrable` | a read-only report that can never conflict: PostgreSQL begins `SERIALIZABLE READ ONLY DEFERRABLE` (its snapshot may wait at the first statement until it cannot be part of an anomaly, then never fails with a conflict and never makes a writer fail); runs on the primary even with replicas; implies `read_only` (other engines: a plain read-only call). Not with `isolation` other than `"serializable"`. See `CallOptions::deferrable` |
/// | `durable` | refuse to run nested (Django's `atomic(durable=True)`): called inside another managed call it fails with `DurableNested`, for a call whose `Ok` must mean "committed now" |
/// | `timeout = "2s"` | the call's time budget (`"250ms"`, `"2s"`, `"1m"`, `"1h"`; at most one hour): queue, lease and slot waits, BEGIN, the body, backoff and replays; past it the call rolls back and fails with `DeadlineExceeded` (or, once COMMIT was sent, reports an unknown outcome); the budget is pushed to the server as a statement and lock timeout |
/// | `sqlite_mode = "immediate" \| "deferred" \| "exclusive"` | how SQLite begins; default immediate (deferred when read-only) |
/// | `contention = "adaptive" \| "off"` | per-function admission control under contention; default adaptive |
/// | `key = <expr>` | what the call contends on, any `Hash` expression of the arguments (`key = account_id`): admission, and the database lock across processes while the key is hot, work per (function, key), so calls on different keys never wait for each other; default: none (per function) |
/// | `idempotency_key = <expr>` | the request's idempotency key (any `Display` expression, evaluated once before the body; it may use the arguments): the call runs once per key, its `Ok` value (`Serialize + DeserializeOwned`) is stored with the key in its own transaction, and a repeat returns it without running; an unknown `COMMIT` outcome is resolved by looking the key up. Not with `read_only`; called nested (with a `txn`) it fails with `NestedOption`. See `ConflictResolver::run_idempotent` |
/// | `fingerprint = <expr>` | with `idempotency_key`: what tells a retry from another request under the same key (`IdempotencyKeyReused`); default: the arguments, serialized (each must be `Serialize`) |
/// | `store_errors` | with `idempotency_key`: an `Err` that serializes is stored too, and a repeat gets it again (`ConflictResolver::run_idempotent_storing_errors`) |
/// | `resolver = <expr>` | where the resolver comes from; the transaction parameter then disappears |
/// | `label = "..."` | names the call in logs, stats and the give-up error; default: the function's path (`module::fn`, or `Type::method` for methods) |
/// | `crate = "path"` | the path of the conflictkit crate, when it is re-exported under another name |
///
/// Contradictory options are compile errors (`read_only` or `deferrable`
/// with `sqlite_mode = "immediate"`, a key set twice, …), as are an unknown key
/// (the message lists the valid ones) and a misspelt value.
///
/// # Arguments are replayed
///
/// Each run of the body gets fresh copies of the arguments: references and
/// `Copy` values as they are, owned values cloned. An owned argument that is
/// not `Clone` (and any `&mut` argument, or a `self` that is not `&self`) is a
/// compile error on that argument. Side effects outside the database belong
/// in `txn.after_commit(..)` hooks, which run once, after the final commit.
///
/// The return type is `Result<T, E>` where `E` implements
/// `From<DbErr> + From<CannotResolveDatabaseConflict> + std::error::Error`;
/// `conflictkit::Error` is ready-made, or use your own `thiserror` enum with
/// `#[from]` on both. Errors that are not conflicts come back unchanged, after
/// the rollback; when every run conflicts the call returns
/// `CannotResolveDatabaseConflict` (its `source()` is the last conflict).
///
/// # Equivalent code
///
/// The `top_up` example above expands to this (the expansion names only
/// `::conflictkit::__private` paths, which are the same items):
///
/// ```
/// use conflictkit::{ConflictResolver, Txn};
/// use conflictkit::resolver::{CallOptions, ReplayArg};
///
/// async fn top_up(resolver: &ConflictResolver, account: i64, amount: i64) -> Result<i64, conflictkit::Error> {
///     ConflictResolver::run(
///         resolver,
///         CallOptions::new(concat!(module_path!(), "::", "top_up")).retries(5),
///         move |txn: &Txn| {
///             let account = ReplayArg::replay(&account);
///             let amount = ReplayArg::replay(&amount);
///             Box::pin(async move {
///                 // (a never-taken `return` pinning the block's type to the return type)
///                 let _ = (txn, account, amount); // … the function's body …
///                 Ok(0)
///             })
///         },
///     )
///     .await
/// }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let resolver = ConflictResolver::new(sea_orm::Database::connect("sqlite::memory:").await?);
/// # assert_eq!(top_up(&resolver, 1, 5).await?, 0);
/// # Ok::<(), conflictkit::Error>(()) }).unwrap();
/// ```
///
/// # Composing calls
///
/// The generated function's first parameter is `resolver: &impl Caller`: a
/// `&ConflictResolver`, or inside a managed body its `txn` (or a savepoint
/// of it). Called with `txn`, the function runs as a savepoint of that
/// transaction: an `Err` from it takes back its own writes and hooks, and the
/// caller may handle it; a conflict replays the outermost call. (The
/// expansion above shows `&ConflictResolver` for brevity; it calls
/// `conflictkit::resolver::run_managed`.) `Caller` is a trait of
/// conflictkit's rather than `impl Into<…>` because a trait of our own can
/// say what to pass: a `DatabaseConnection` given by mistake is one error,
/// on that argument, naming the resolver and `txn`.
///
/// ```
/// use conflictkit::{ConflictResolver, Txn, managed_transaction};
/// use sea_orm::ConnectionTrait;
///
/// #[managed_transaction]
/// async fn debit(txn: &Txn, amount: i64) -> Result<i64, conflictkit::Error> {
///     txn.execute_unprepared(&format!("INSERT INTO ledger VALUES ({})", -amount)).await?;
///     if amount > 100 {
///         return Err(sea_orm::DbErr::Custom("insufficient".into()).into()); // its entry goes too
///     }
///     Ok(amount)
/// }
///
/// #[managed_transaction]
/// async fn transfer(txn: &Txn, amount: i64) -> Result<&'static str, conflictkit::Error> {
///     match debit(txn, amount).await {            // a savepoint of this transaction
///         Ok(_) => Ok("paid"),
///         Err(_) => Ok("refused"),
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let db = sea_orm::Database::connect("sqlite::memory:").await?;
/// db.execute_unprepared("CREATE TABLE ledger (amount INTEGER)").await?;
/// let resolver = ConflictResolver::new(db);
/// assert_eq!(transfer(&resolver, 500).await?, "refused");
/// assert_eq!(debit(&resolver, 5).await?, 5); // outside a body: its own transaction
/// # Ok::<(), conflictkit::Error>(()) }).unwrap();
/// ```
#[proc_macro_attribute]
pub fn managed_transaction(args: TokenStream, item: TokenStream) -> TokenStream {
    managed_transaction::expand(
        args.into(),
        item.into(),
        managed_transaction::Flavor::Retryable,
    )
    .into()
}

/// Like [`macro@managed_transaction`], but runs once: a serialization conflict
/// becomes `CannotResolveDatabaseConflict` at once instead of a replay (the
/// original's `managed_non_retryable_transaction`). Same signature rewrite,
/// same options except `retries`.
///
/// ```
/// use conflictkit::{ConflictResolver, Txn, managed_non_retryable_transaction};
/// use sea_orm::ConnectionTrait;
///
/// #[managed_non_retryable_transaction(sqlite_mode = "exclusive")]
/// async fn migrate(txn: &Txn) -> Result<(), conflictkit::Error> {
///     txn.execute_unprepared("CREATE TABLE account (id INTEGER PRIMARY KEY, balance INTEGER)").await?;
///     Ok(())
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let resolver = ConflictResolver::new(sea_orm::Database::connect("sqlite::memory:").await?);
/// migrate(&resolver).await?;
/// assert_eq!(resolver.stats().success, 1);
/// # Ok::<(), conflictkit::Error>(()) }).unwrap();
/// ```
///
/// # Equivalent code
///
/// ```
/// use conflictkit::{ConflictResolver, Txn};
/// use conflictkit::resolver::{CallOptions, SqliteMode};
///
/// async fn migrate(resolver: &ConflictResolver) -> Result<(), conflictkit::Error> {
///     ConflictResolver::run(
///         resolver,
///         CallOptions::new(concat!(module_path!(), "::", "migrate"))
///             .sqlite_mode(SqliteMode::Exclusive)
///             .non_retryable(),
///         move |txn: &Txn| Box::pin(async move {
///             let _ = txn; // … the function's body …
///             Ok(())
///         }),
///     )
///     .await
/// }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let resolver = ConflictResolver::new(sea_orm::Database::connect("sqlite::memory:").await?);
/// # migrate(&resolver).await?;
/// # Ok::<(), conflictkit::Error>(()) }).unwrap();
/// ```
#[proc_macro_attribute]
pub fn managed_non_retryable_transaction(args: TokenStream, item: TokenStream) -> TokenStream {
    managed_transaction::expand(
        args.into(),
        item.into(),
        managed_transaction::Flavor::NonRetryable,
    )
    .into()
}
