use conflictkit::events::{Listener, ListenerConfig};

struct NotData;

fn main() {
    let listener = Listener::new(ListenerConfig::default());
    listener.on("txupdate", |_data: NotData| async {});
    listener.on_sync("txupdate", |_data: serde_json::Value| async {});
}
