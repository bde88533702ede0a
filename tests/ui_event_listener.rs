//! Compile errors of `#[event_listener]`, pinned with trybuild.

#[test]
#[cfg_attr(miri, ignore)]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/event_listener/*.rs");
}
