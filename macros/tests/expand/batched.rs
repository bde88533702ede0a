use conflictkit::{Txn, managed_transaction};

#[managed_transaction(key = account, batch = 32)]
async fn credit_fee(txn: &Txn, account: i64, cents: i64) -> Result<(), conflictkit::Error> {
    let _ = (txn, account, cents);
    Ok(())
}
