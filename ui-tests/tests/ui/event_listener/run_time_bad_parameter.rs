use conflictkit::events::{Listener, ListenerConfig};

struct NotData;

fn main() {
    let listener = Listener::new(ListenerConfig::default());
    listener.on("txupdate", |_data: NotData| async {});
    // Neither a future nor `()` / `Result<(), E>`.
    listener.on("txupdate", |_data: serde_json::Value| 5u8);
}
