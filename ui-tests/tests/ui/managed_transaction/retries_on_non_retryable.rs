use conflictkit::{Txn, managed_non_retryable_transaction};

#[managed_non_retryable_transaction(retries = 3)]
async fn once(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

fn main() {}
