#[conflictkit::event_listener]
fn one_arg(_data: serde_json::Value) {}

fn main() {}
