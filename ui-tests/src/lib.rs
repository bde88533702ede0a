//! No code: this package holds the compile-error tests of conflictkit's
//! macros (`tests/ui.rs`, cases under `tests/ui/<macro>/`). They live in a
//! package of their own because trybuild type-checks its cases against the
//! dev-dependencies of the package they belong to; see `Cargo.toml`.
