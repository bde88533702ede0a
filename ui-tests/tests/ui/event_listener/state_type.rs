use conflictkit::events::{EventContext, State};

/// Not `Clone`: each call gets a clone of the state, so this cannot be state.
struct NotClone;

#[conflictkit::event_listener("txupdate")]
async fn takes_unclonable_state(_ctx: EventContext, _state: State<NotClone>) {}

fn main() {}
