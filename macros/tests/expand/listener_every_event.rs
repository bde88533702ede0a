use conflictkit::event_listener;

/// Every event, blocking: the name, then the data.
#[event_listener]
fn all(name: &str, data: serde_json::Value) {
    log(name, data);
}

/// Every event, async, with a timeout.
#[event_listener(timeout_ms = 1000)]
async fn all_async(name: &str, data: serde_json::Value) -> Result<(), conflictkit::Error> {
    forward(name, data).await
}
