//! The conflict resolver on real servers, one test binary (one link) for
//! every resolver test; each module is one promise or one engine.
//!
//! Where a new test goes, by the guarantee it pins (DESIGN §7):
//! - a conflict is replayed, a give-up is typed, no update is lost:
//!   [`conflicts`], the attribute forms in [`managed_transaction`];
//! - `Ok` means the writes committed; hooks run once iff the data committed;
//!   no pooled connection is left in a transaction; an unknown COMMIT
//!   outcome is typed, never replayed: [`edges`] for managed calls, [`seams`]
//!   for the manual guard and the errors around the managed path;
//! - where conflicts come from, isolation in effect, panics, cancellation,
//!   nesting: [`semantics`];
//! - contention control per (label, key), across processes: [`processes`],
//!   [`lease_pooler`];
//! - SQLite's writer queue: [`sqlite_writer`]; conflict injection:
//!   [`inject_conflicts`];
//! - faults under a running service (killed sessions, restarts):
//!   [`db_faults`]; a Galera cluster: [`galera`];
//! - the main job, run as a program: [`wallet_example`].

#[path = "../common/mod.rs"]
mod common;

mod conflicts;
mod db_faults;
mod edges;
mod galera;
mod inject_conflicts;
mod lease_pooler;
mod managed_transaction;
mod processes;
mod seams;
mod semantics;
mod sqlite_writer;
mod wallet_example;
