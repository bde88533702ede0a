use conflictkit::{Txn, event_listener};
use conflictkit::events::State;

/// Runs in a managed transaction that records the delivery in the inbox.
#[event_listener("txupdate", transactional, timeout_ms = 5000)]
async fn credit(txn: &Txn, update: Update, State(app): State<App>) -> Result<(), conflictkit::Error> {
    app.credit(txn, update.account, update.cents).await
}
