//! The `#[event_listener(transactional)]` uses that must compile and run
//! (`tests/ui/event_listener/pass/transactional.rs`, a program of its own
//! because `#[event_listener]` registrations are process-wide), run by
//! `tests/helpers/ui_pass.rs`.

include!("../ui/event_listener/pass/transactional.rs");
