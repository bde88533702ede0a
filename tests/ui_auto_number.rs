//! Compile errors of `#[derive(AutoNumber)]`, pinned with trybuild, and the
//! inputs that must compile without warnings.
//! Regenerate with `TRYBUILD=overwrite cargo test --test ui_auto_number`.

#[test]
#[cfg_attr(miri, ignore)]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/auto_number/*.rs");
    t.pass("tests/ui/auto_number/pass/*.rs");
}
