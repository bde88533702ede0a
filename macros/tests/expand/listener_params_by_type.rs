use conflictkit::event_listener;
use conflictkit::events::{EventContext, State};

/// Parameters are produced by type, in any order, each spanned on its own.
#[event_listener("txupdate")]
async fn on_tx(State(app): State<App>, ctx: EventContext, update: Update) {
    app.apply(ctx.event_name(), update).await;
}
