#[conflictkit::event_listener]
fn owned_name(_event_name: String, _data: serde_json::Value) {}

#[conflictkit::event_listener]
fn wrong_data(_event_name: &str, _data: i32) {}

fn main() {}
