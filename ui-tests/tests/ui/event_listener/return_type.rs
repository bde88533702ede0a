#[conflictkit::event_listener("txupdate")]
async fn returns_a_number(_data: serde_json::Value) -> i32 {
    1
}

fn main() {}
