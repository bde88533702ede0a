#[conflictkit::event_listener("txupdate", retries = 3, timeout_ms = "soon")]
fn handler(_data: serde_json::Value) {}

fn main() {}
