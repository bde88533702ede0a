struct NotDeserialize;

#[conflictkit::event_listener("txupdate")]
fn not_deserialize(_data: NotDeserialize) {}

#[conflictkit::event_listener("txupdate")]
fn borrowed(_data: &serde_json::Value) {}

fn main() {}
