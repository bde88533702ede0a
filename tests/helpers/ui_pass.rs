//! Macro uses that must compile without warnings and run: what were
//! trybuild's `pass` cases. As ordinary modules of this binary they cost no
//! second build of the dependency graph: with compile-fail cases only,
//! trybuild (`ui-tests/tests/ui.rs`) type-checks instead of building. The two
//! `#[event_listener]` cases stay programs of their own, since their
//! registrations are process-wide: examples declared in `Cargo.toml`
//! (`ui_pass_listener_*`, built with the examples), run here.

use std::process::Command;

use crate::common;

mod full_range;
mod options_and_paths;
mod renames;
mod zero_variants;

#[test]
fn auto_number_covers_the_full_u8_range_with_shadowed_prelude_names() {
    full_range::run();
}

#[test]
fn auto_number_renames_in_every_accepted_form() {
    renames::run();
}

#[test]
fn auto_number_on_enums_without_variants() {
    zero_variants::run();
}

#[test]
fn managed_transaction_takes_every_option_and_path_form() {
    options_and_paths::run();
}

/// Runs the harness program `name` built from `source` and requires exit status 0.
fn run_program(name: &str, source: &str) {
    let bin = common::example_binary(name, source);
    let out = Command::new(&bin).output().expect("the program starts");
    assert!(
        out.status.success(),
        "{name} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn event_listener_takes_every_extractor_form() {
    run_program(
        "ui_pass_listener_extractors",
        "tests/ui/event_listener/pass/extractor_forms.rs",
    );
}

#[test]
fn event_listener_takes_transactional_handlers() {
    run_program(
        "ui_pass_listener_transactional",
        "tests/ui/event_listener/pass/transactional.rs",
    );
}
