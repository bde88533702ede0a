use conflictkit::event_listener;

/// One event, its data decoded into `Update`, with a timeout.
#[event_listener("txupdate", timeout_ms = 50)]
async fn on_tx(update: Update) -> Result<(), conflictkit::Error> {
    record(update).await
}

/// A blocking handler returning nothing.
#[conflictkit::event_listener("ping")]
fn on_ping(_ping: serde_json::Value) {}
