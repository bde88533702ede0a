//! `#[event_listener]`: registers a function as an event handler of the
//! conflictkit event listener. Parse the arguments (`args`), validate the
//! function and generate the registration (`expand`).

mod args;
mod expand;

pub(crate) use expand::event_listener;
