//! Procedural macros of conflictkit. Use them through the `conflictkit` crate.

mod event_listener;

/// Registers a function as a handler of the conflictkit event listener.
///
/// - `#[event_listener("txupdate")]` on `fn(data: T)` (sync or async), where
///   `T: serde::Deserialize`: handles the event `txupdate`; the data is
///   decoded into `T` (the listener answers 400 when it does not decode).
/// - `#[event_listener]` on `fn(event_name: &str, data: serde_json::Value)`:
///   handles every event.
///
/// The function may return `()` or `Result<(), E>` with `E: Display`; an
/// error, a panic or a timeout makes the listener answer 500. Sync functions
/// run on tokio's blocking pool. Options: `timeout_ms = N` (per-handler time
/// limit) and `crate = "path"` (when conflictkit is re-exported elsewhere).
///
/// The function stays as written and is registered process-wide at start-up
/// (through `inventory`, re-exported by conflictkit): every
/// [`Listener`](../conflictkit/events/struct.Listener.html) of the program
/// dispatches to it.
///
/// Examples are in the `conflictkit` crate's documentation of this macro.
///
/// # Equivalent code
///
/// The function is kept unchanged; next to it:
///
/// ```text
/// const _: () = {
///     fn __ck_prepare(event: &Event) -> Result<HandlerFuture, DecodeError> {
///         prepare_async::<TxUpdate, _, _>(event, on_txupdate)
///     }
///     inventory::submit! { Registration::new(Some("txupdate"), "my_crate::on_txupdate", None, __ck_prepare) }
/// };
/// ```
#[proc_macro_attribute]
pub fn event_listener(
    args: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    event_listener::event_listener(args.into(), item.into()).into()
}
