use conflictkit::{Txn, managed_transaction};

#[managed_transaction(isolation = "snapshot")]
async fn bad_isolation(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

#[managed_transaction(sqlite_mode = "wal")]
async fn bad_mode(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

#[managed_transaction(retries = -1, isolation = serializable, label = "", crate = "not a path")]
async fn bad_types(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

fn main() {}
