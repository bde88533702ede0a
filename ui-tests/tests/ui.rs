//! Compile-error tests of every macro (trybuild): each case's error must be the
//! one in its checked-in `.stderr`, spanned on the offending tokens.
//!
//! One `TestCases` for all macros, so trybuild checks the dependency graph
//! once. Only cases that must not compile live here: with no `pass` case
//! trybuild runs `cargo check` (no code generation, no linking). The uses
//! that must compile and run are the facade's `tests/helpers/ui_pass.rs` and
//! the two `ui_pass_listener_*` programs (the facade's `Cargo.toml`). This
//! package's dev-dependencies are all that trybuild checks the cases
//! against. Regenerate snapshots with
//! `CONFLICTKIT_BLESS=1 TRYBUILD=overwrite cargo test -p conflictkit-ui-tests --test ui`
//! and review the diff. `TRYBUILD=overwrite` alone (inherited from a shell, say) fails
//! the test instead of rewriting every snapshot and passing.

#[test]
#[cfg_attr(miri, ignore)]
fn ui() {
    // Only `1` blesses, as in the macro crate's expansion snapshots.
    let bless = std::env::var("CONFLICTKIT_BLESS").is_ok_and(|v| v == "1");
    if let Some(trybuild) = std::env::var_os("TRYBUILD") {
        assert!(
            bless,
            "TRYBUILD={trybuild:?} is set: trybuild would rewrite the snapshots instead of \
             checking them. Unset it, or set CONFLICTKIT_BLESS=1 as well to bless on purpose \
             (then review the diff)"
        );
    }
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/auto_number/*.rs");
    t.compile_fail("tests/ui/event_listener/*.rs");
    t.compile_fail("tests/ui/managed_transaction/*.rs");
}
