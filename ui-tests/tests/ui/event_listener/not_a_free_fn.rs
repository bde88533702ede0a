struct Handlers;

impl Handlers {
    #[conflictkit::event_listener("txupdate")]
    fn method(&self, _data: serde_json::Value) {}
}

#[conflictkit::event_listener("txupdate")]
fn generic<T: serde::de::DeserializeOwned>(_data: T) {}

fn main() {}
