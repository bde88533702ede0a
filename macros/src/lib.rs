//! Procedural macros of conflictkit. Use them through the `conflictkit` crate.
