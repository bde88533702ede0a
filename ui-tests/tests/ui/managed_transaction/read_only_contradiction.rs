use conflictkit::{Txn, managed_transaction};

#[managed_transaction(read_only, sqlite_mode = "immediate")]
async fn report(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

#[managed_transaction(sqlite_mode = "exclusive", read_only)]
async fn report_exclusive(txn: &Txn) -> Result<(), conflictkit::Error> {
    let _ = txn;
    Ok(())
}

fn main() {}
