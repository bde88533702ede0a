// `durable` is a flag, given once.
use conflictkit::{Txn, managed_transaction};

#[managed_transaction(durable, durable)]
async fn twice(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

#[managed_transaction(durable = true)]
async fn with_a_value(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

#[managed_transaction(durable = "yes")]
async fn with_a_string(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

#[managed_transaction(durabel)]
async fn misspelt(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

fn main() {}
