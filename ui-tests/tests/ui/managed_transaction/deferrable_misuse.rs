// `deferrable` is a flag, given once, on a read-only call at SERIALIZABLE.
use conflictkit::{Txn, managed_transaction};

#[managed_transaction(deferrable, deferrable)]
async fn twice(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

#[managed_transaction(deferrable = true)]
async fn with_a_value(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

#[managed_transaction(deferrable, isolation = "repeatable_read")]
async fn not_serializable(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

#[managed_transaction(deferrable, sqlite_mode = "immediate")]
async fn takes_the_write_lock(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

#[managed_transaction(deferrable, batch)]
async fn batched(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

#[managed_transaction(deferrable, idempotency_key = request)]
async fn idempotent(txn: &Txn, request: u64) -> Result<(), conflictkit::Error> {
    let _ = (txn, request);
    Ok(())
}

#[managed_transaction(deferable)]
async fn misspelt(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

fn main() {}
