//! Compile errors of `#[managed_transaction]` / `#[managed_non_retryable_transaction]`,
//! pinned with their `.stderr` (regenerate: `TRYBUILD=overwrite cargo test --test ui_managed_transaction`).

#[test]
#[cfg_attr(miri, ignore)]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/managed_transaction/*.rs");
    t.pass("tests/ui/managed_transaction/pass/*.rs");
}
