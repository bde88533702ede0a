use conflictkit::events::{Listener, ListenerConfig, State};

#[derive(Clone)]
struct AppState;

#[derive(Clone)]
struct OtherState;

fn main() {
    let listener = Listener::new(ListenerConfig::default()).with_state(AppState);
    listener.on("txupdate", |State(_other): State<OtherState>| async {});
}
