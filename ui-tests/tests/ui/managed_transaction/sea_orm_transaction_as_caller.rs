// Inside a managed body, the SeaORM transaction underneath where the `txn`
// goes: the message says to pass `txn`.
use conflictkit::{Txn, managed_transaction};

#[managed_transaction]
async fn debit(txn: &Txn, amount: i64) -> Result<i64, conflictkit::Error> {
    let _ = txn;
    Ok(amount)
}

#[managed_transaction]
async fn transfer(txn: &Txn, amount: i64) -> Result<i64, conflictkit::Error> {
    debit(txn.as_database_transaction(), amount).await
}

fn main() {}
