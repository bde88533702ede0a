#[conflictkit::event_listener(42)]
fn numeric(_data: serde_json::Value) {}

#[conflictkit::event_listener(txupdate)]
fn bare_ident(_data: serde_json::Value) {}

#[conflictkit::event_listener("")]
fn empty(_data: serde_json::Value) {}

fn main() {}
