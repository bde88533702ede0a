// Near misses of option names get "did you mean".
#[conflictkit::event_listener("txupdate", timeout = 5000)]
fn handler(_data: serde_json::Value) {}

#[conflictkit::event_listener("txupdate", transactionl)]
async fn credit(_data: serde_json::Value) {}

fn main() {}
