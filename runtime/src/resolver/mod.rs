//! The conflict resolver: run a transaction, and replay it when the database
//! reports a serialization conflict.
//!
//! The heart of conflictkit and the port of cryptoassets.core's
//! `ConflictResolver`. Start with [`ConflictResolver`]; the
//! `#[managed_transaction]` attribute expands to [`ConflictResolver::run`].
//!
//! What counts as a conflict on each database is listed in [`classify`].
//!
//! # One call, room by room
//!
//! ```text
//! run            nested in a managed body of this resolver? a savepoint (nesting, savepoint)
//!  │             another transaction on the same database open? refuse (nesting, guards)
//!  ├ Plan        options + Defaults + Engine, decided once             (plan, defaults, engine)
//!  └ replay_loop for each run:                                         (run)
//!     ├ enter    queue in the (label, key)'s gate, BEGIN while queued,
//!     │          the lease of the database lock when hot or last       (contention)
//!     ├ attempt  BEGIN (SQLite: writer queue first), body, checks,
//!     │          detached COMMIT, hooks                                 (attempt, begin, txn)
//!     └ classify a conflict? report it to the gate, back off, replay   (classify, retry_event)
//!  └ ended        counters, per-label counters, metrics, callbacks     (call_end, stats, metrics)
//! ```
//!
//! A read-only call of a resolver with replicas goes through `replica`
//! first, which picks a replica or the primary and runs the replay loop
//! there (see [Read replicas](#read-replicas)).
//!
//! A call with a time budget (`deadline`) bounds every wait of this flow:
//! `enter`, `BEGIN` and the SQLite slot, the body, backoff and replays; it
//! pushes what is left to the server after `BEGIN`, and waits for `COMMIT`
//! only a grace past the deadline.
//!
//! Each room's module doc says what it owns. The engine's differences are
//! named facts in one place (`engine`); the rule for which runs take the
//! database lock across processes is stated once (`contention::hot`).
//!
//! # SQLite: one writer queue per database
//!
//! SQLite lets one transaction write at a time, so the resolver queues its
//! write transactions itself, in FIFO order, instead of leaving them to
//! SQLite's busy handler (which polls, is unfair, and gives up after
//! `busy_timeout`):
//!
//! - an immediate or exclusive transaction (the default for read-write
//!   calls) waits for the database's write slot before `BEGIN`, so inside one
//!   process no writer ever sleeps in the busy handler or conflicts with
//!   another writer;
//! - a deferred transaction (`sqlite_mode = "deferred"`, and read-only
//!   calls) takes the slot at its first write statement run through the
//!   [`Txn`]. If another writer of the process holds it, that writer commits
//!   after this transaction's snapshot, so the write could only fail: it
//!   fails at once as a conflict (`SQLITE_BUSY_SNAPSHOT`, 517), and the replay
//!   takes the slot before its `BEGIN`, so it cannot fail again that way;
//! - reads never queue: in WAL mode they run beside the writer.
//!
//! Every pool and resolver of the process on the same database file share
//! one queue. Writers of *other processes* on the file are still met by
//! SQLite's busy handler: keep `busy_timeout` (sqlx sets 5 s) above the
//! longest write transaction, and their rare `SQLITE_BUSY` is replayed as a
//! conflict.
//!
//! # Read replicas
//!
//! A resolver built with
//! [`replica`](ConflictResolverBuilder::replica) pools runs its read-only
//! calls (not `deferrable` ones) on a PostgreSQL streaming replica or a
//! MariaDB replica (GTID replication):
//!
//! - **bounded staleness**: only on a replica whose data is at most
//!   `max_lag` old (the resolver's
//!   [`max_lag`](ConflictResolverBuilder::max_lag), or the call's
//!   [`CallOptions::max_lag`]), by the lag a background task samples
//!   from log positions (PostgreSQL LSNs, MariaDB GTIDs); a replica whose
//!   replay stopped (MariaDB: a replication thread) ages from when it last
//!   ran; else on the primary;
//! - **read your writes**: a call carrying a [`CommitPosition`]
//!   ([`CallOptions::after`], the position taken with
//!   [`ConflictResolver::commit_position`] after a commit) runs on the
//!   replica only once it replayed up to it (MariaDB: `MASTER_GTID_WAIT`),
//!   waited for within
//!   [`replica_wait`](ConflictResolverBuilder::replica_wait); else on the
//!   primary;
//! - **down replicas**: a replica that does not answer its samples is
//!   skipped, and a call that loses its replica midway runs again on the
//!   primary, so reads go on;
//! - **writes fail**: a statement that writes in a call routed to a
//!   replica fails the call with [`WriteOnReplica`], and it is not run on
//!   the primary instead;
//! - where each call went is counted in
//!   [`replica_stats`](ConflictResolver::replica_stats) and the
//!   `conflictkit.reads` metric.
//!
//! ```
//! use std::time::Duration;
//! use conflictkit::{ConflictResolver, Txn};
//! use conflictkit::resolver::CallOptions;
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! # let (primary, replica) = (sea_orm::Database::connect("sqlite::memory:").await?, sea_orm::Database::connect("sqlite::memory:").await?);
//! let resolver = ConflictResolver::builder(primary)
//!     .replica(replica)
//!     .max_lag(Duration::from_secs(2))
//!     .build(); // `build_checked().await?` refuses a replica of another database
//! // a write on the primary, then the position the caller carries on
//! resolver.managed(|_txn: &Txn| Box::pin(async { Ok::<_, conflictkit::Error>(()) })).await?;
//! # let at: Result<_, sea_orm::DbErr> = resolver.commit_position().await; // PostgreSQL and MariaDB only
//! # let at = at.unwrap_or_else(|_| "0/0".parse().unwrap());
//! // a read that sees that write, on a replica that replayed it, else on the primary
//! let opts = CallOptions::new("wallet::balance").read_only(true).after(at);
//! resolver.run(opts, |_txn: &Txn| Box::pin(async { Ok::<_, conflictkit::Error>(()) })).await?;
//! # Ok::<(), conflictkit::Error>(()) }).unwrap();
//! ```
//!
//! `deferrable` reports ([`CallOptions::deferrable`]) run on the primary:
//! `SERIALIZABLE READ ONLY DEFERRABLE` waits for a snapshot that can never
//! conflict.
//!
//! # Nesting
//!
//! A managed call made inside another managed call of the same resolver
//! runs as a savepoint of the outer transaction (see [`ConflictResolver::run`]):
//! a nested call that fails takes back its own writes, and its caller may
//! handle the error. Made through
//! a *different* resolver on the same database (server and database name, or
//! SQLite file), it fails at once with an error saying what to do: its second
//! transaction would wait for the first one's locks (or SQLite write slot)
//! while the first waits for it, and no database reports that deadlock.

mod attempt;
pub mod batch;
mod begin;
mod body;
mod call_end;
mod call_error;
mod caller;
mod carried;
pub mod classify;
mod conflict_resolver;
mod contention;
pub mod deadline;
mod deadline_exceeded;
mod defaults;
mod driver_error;
mod engine;
mod error;
mod guards;
pub mod idempotency;
mod inject;
mod inner;
mod lifecycle;
mod metrics;
mod nesting;
mod options;
mod plan;
mod replay_arg;
mod replica;
mod retry_event;
mod run;
mod savepoint;
mod sqlite_writer;
mod stats;
mod txn;
mod waits;

pub use batch::{BatchFailed, BatchStats};
pub use body::{BodyFuture, ImpliedBound, ManagedBody, ScopedFuture};
pub use call_error::TransactionError;
pub use caller::{Caller, CallerRef, TxnOutsideItsBody, run_managed, run_managed_batched};
pub use classify::{Conflict, ConflictCode};
pub use conflict_resolver::ConflictResolverBuilder;
pub use deadline::{COMMIT_GRACE, InvalidDeadline, MAX_TIMEOUT};
pub use deadline_exceeded::DeadlineExceeded;
pub use defaults::DEFAULT_ROLLBACK_TIMEOUT;
pub use error::{
    AbortedTransaction, AmbiguousCommit, CannotResolveDatabaseConflict, DurableNested, Error,
    NestedOption, NestedTransaction, WriteSlotUnavailable,
};
pub use inject::{INJECT_CONFLICTS_ENV, InjectConflicts, InjectedConflict, InvalidInjection};
pub use inner::ConflictResolver;
pub use lifecycle::{CommitEvent, FailedAttempt, GiveUpEvent, OnCommit, OnDeadline, OnGiveUp};
pub use options::{Backoff, CallOptions, Contention, Isolation, SqliteMode, UnknownOption};
pub use replay_arg::ReplayArg;
pub use replica::{
    CommitPosition, DEFAULT_LAG_SAMPLE_INTERVAL, DEFAULT_MAX_LAG, DEFAULT_REPLICA_WAIT,
    InvalidCommitPosition, ReplicaRefused, ReplicaStats, ReplicaStatus, WriteOnReplica,
};
pub use retry_event::{OnRetry, Phase, RetryEvent};
pub use sqlite_writer::{DEFAULT_SLOT_WAIT, SLOT_WAIT_ENV};
pub use stats::Stats;
pub use txn::{Txn, TxnSavepoint};
pub use waits::Waits;
