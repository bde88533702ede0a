//! Every accepted handler shape compiles: the data, `State<T>` and
//! `EventContext` in any order, none at all, sync or async, and the
//! original's every-event form.
use conflictkit::events::{EventContext, Listener, ListenerConfig, State};

#[derive(Clone)]
struct App;

#[derive(serde::Deserialize)]
struct TxUpdate {
    _txid: String,
}

#[conflictkit::event_listener]
fn every_event_data_only(_data: serde_json::Value) {}

#[conflictkit::event_listener]
fn every_event_original(_event_name: &str, _data: serde_json::Value) {}

#[conflictkit::event_listener("txupdate")]
fn no_parameters() {}

#[conflictkit::event_listener("txupdate")]
async fn state_first(State(_app): State<App>, _ctx: EventContext, _u: TxUpdate) {}

#[conflictkit::event_listener("txupdate", timeout_ms = 10)]
fn data_first(_u: TxUpdate, _ctx: EventContext, State(_app): State<App>) -> Result<(), String> {
    Ok(())
}

fn main() {
    let listener = Listener::new(ListenerConfig::default()).with_state(App);
    listener.on("txupdate", |State(_app): State<App>, _u: TxUpdate| async {});
    listener.on("txupdate", || async {});
    listener.on("txupdate", |_ctx: EventContext, _v: serde_json::Value| {});
    listener.on_any(|_ctx: EventContext, _v: serde_json::Value| async {});
    listener.on_any(|_ctx: EventContext| Ok::<(), String>(()));
}
