//! # conflictkit
//!
//! Race-free database code without hand-written locks.
#![doc = "(crate docs are completed with the resolver)"]

// == resolver (issue 2/3) ==
#[doc(inline)]
pub use conflictkit_macros::{managed_non_retryable_transaction, managed_transaction};
pub use conflictkit_runtime::resolver;
pub use conflictkit_runtime::resolver::{
    CannotResolveDatabaseConflict, ConflictResolver, Error, Txn,
};

// == auto_number (issue 4) ==
pub use conflictkit_runtime::auto_number;

// == merge + config (issue 5) ==
#[cfg(feature = "config")]
pub use conflictkit_runtime::config;
pub use conflictkit_runtime::merge;

// == events (issue 6) ==
#[cfg(feature = "events")]
pub use conflictkit_runtime::events;

// == tunnel (issue 7) ==
#[cfg(feature = "tunnel")]
pub use conflictkit_runtime::tunnel;

/// Support for the code the macros generate. Not public API: it may change in
/// any release without notice.
#[doc(hidden)]
pub mod __private {
    pub use sea_orm;
    pub use serde_json;
    // == resolver ==
    pub use conflictkit_runtime::resolver::{
        CallOptions, ConflictResolver, Isolation, ReplayArg, SqliteMode, Txn,
    };
    // == auto_number ==
    // == events ==
}
