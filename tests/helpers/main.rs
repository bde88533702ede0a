//! The helpers beside the resolver, one test binary (one link): AutoNumber
//! enums (in Rust and as database columns), the macro options the runtime
//! parses, the deep merge, layered configuration and the tunnels; and the
//! macro cases that must compile and run (`ui_pass`; the cases that must not
//! compile are trybuild's, `ui-tests/tests/ui.rs`).

#[path = "../common/mod.rs"]
mod common;

mod auto_number;
mod auto_number_db;
mod config;
mod merge;
mod option_names;
#[cfg(feature = "tunnel")]
mod tunnel_bore;
#[cfg(feature = "tunnel")]
mod tunnel_ngrok;
mod ui_pass;
