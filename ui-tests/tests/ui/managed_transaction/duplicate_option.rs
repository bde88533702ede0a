use conflictkit::{Txn, managed_transaction};

#[managed_transaction(retries = 3, read_only, retries = 5, read_only)]
async fn top_up(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

fn main() {}
