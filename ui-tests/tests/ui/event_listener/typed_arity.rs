#[conflictkit::event_listener("txupdate")]
fn two_args(_event_name: &str, _data: serde_json::Value) {}

#[conflictkit::event_listener("txupdate")]
fn borrowed_context(_ctx: &conflictkit::events::EventContext) {}

fn main() {}
