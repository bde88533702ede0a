use conflictkit::events::{EventContext, State};
use conflictkit::Txn;
use sea_orm::ConnectionTrait;

#[derive(Clone)]
struct App {
    table: &'static str,
}

#[derive(serde::Deserialize)]
struct Deposit {
    cents: i64,
}

#[conflictkit::event_listener("deposit", transactional, timeout_ms = 5000)]
async fn on_deposit(
    txn: &Txn,
    State(app): State<App>,
    ctx: EventContext,
    deposit: Deposit,
) -> Result<(), conflictkit::Error> {
    let _ = ctx.webhook_id();
    txn.execute_unprepared(&format!("UPDATE {} SET c = c + {}", app.table, deposit.cents))
        .await?;
    Ok(())
}

#[conflictkit::event_listener(transactional)]
async fn every_event(_txn: &conflictkit::Txn, _data: serde_json::Value) -> Result<(), conflictkit::Error> {
    Ok(())
}

fn main() {}
