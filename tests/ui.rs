//! Compile-error tests of every macro (trybuild): each case's error must be the
//! one in its checked-in `.stderr`, spanned on the offending tokens.
//!
//! One `TestCases` for all macros, so trybuild builds the dependency graph
//! once. Regenerate snapshots with `TRYBUILD=overwrite cargo test --test ui`
//! and review the diff.

#[test]
#[cfg_attr(miri, ignore)]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/auto_number/*.rs");
    t.pass("tests/ui/auto_number/pass/*.rs");
    t.compile_fail("tests/ui/event_listener/*.rs");
    t.pass("tests/ui/event_listener/pass/*.rs");
    t.compile_fail("tests/ui/managed_transaction/*.rs");
    t.pass("tests/ui/managed_transaction/pass/*.rs");
}
