//! Runtime of conflictkit: everything the macros expand to and everything they do
//! not need to know about. Use it through the `conflictkit` crate, which
//! re-exports these modules; the runtime knows nothing of the macros.

pub mod auto_number;
mod backoff;
pub mod merge;
mod panic;
pub mod resolver;
mod sync;

#[cfg(feature = "config")]
pub mod config;
#[cfg(feature = "events")]
pub mod events;
#[cfg(feature = "tunnel")]
pub mod tunnel;
